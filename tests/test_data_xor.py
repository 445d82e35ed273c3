import numpy as np
import pytest

from synib_hf.data.xor import GaussianXOR


def test_deterministic_and_seeded():
    a, b = GaussianXOR(seed=3).splits(), GaussianXOR(seed=3).splits()
    c = GaussianXOR(seed=4).splits()
    assert np.array_equal(a["test"]["x1"], b["test"]["x1"]) and not np.array_equal(a["test"]["x1"], c["test"]["x1"])


def test_shapes_sources_and_z_scoring_with_training_statistics():
    splits = GaussianXOR(mixture=(0.1, 0.2, 0.3, 0.4), seed=0).splits()
    train = splits["train"]
    assert train["x1"].shape == (1800, 32) and splits["validation"]["x2"].shape == (200, 32)
    assert splits["test"]["x1"].shape == (4000, 32)
    np.testing.assert_allclose(train["x1"].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(train["x1"].std(0), 1, atol=1e-3)
    shares = np.bincount(splits["test"]["source"], minlength=4) / 4000
    np.testing.assert_allclose(shares, [0.1, 0.2, 0.3, 0.4], atol=0.03)


def test_each_modality_alone_is_at_chance_on_synergy_examples_but_not_together():
    from sklearn.neural_network import MLPClassifier

    splits = GaussianXOR(mixture=(0, 0, 0, 1.0), seed=0, n_train=3000).splits()
    train, test = splits["train"], splits["test"]
    for key in ("x1", "x2"):
        alone = MLPClassifier((64,), max_iter=400, random_state=0).fit(train[key], train["labels"])
        assert abs(alone.score(test[key], test["labels"]) - 0.5) < 0.05
    both = MLPClassifier((64,), max_iter=400, random_state=0).fit(
        np.hstack([train["x1"], train["x2"]]), train["labels"])
    assert both.score(np.hstack([test["x1"], test["x2"]]), test["labels"]) > 0.8
    # and the signal lives in the synergy coordinates the generator names
    coordinates = GaussianXOR().synergy_coordinates["x1"]
    other = [i for i in range(32) if i not in coordinates]
    without = MLPClassifier((64,), max_iter=400, random_state=0).fit(
        np.hstack([train["x1"][:, other], train["x2"][:, other]]), train["labels"])
    assert without.score(np.hstack([test["x1"][:, other], test["x2"][:, other]]), test["labels"]) < 0.56


def test_unique_source_informs_only_its_modality():
    from sklearn.linear_model import LogisticRegression

    splits = GaussianXOR(mixture=(1.0, 0, 0, 0), seed=0).splits()
    train, test = splits["train"], splits["test"]
    assert LogisticRegression().fit(train["x1"], train["labels"]).score(test["x1"], test["labels"]) > 0.9
    assert LogisticRegression().fit(train["x2"], train["labels"]).score(test["x2"], test["labels"]) < 0.56


def test_bad_mixture():
    with pytest.raises(ValueError, match="summing to 1"):
        GaussianXOR(mixture=(0.5, 0.5, 0.5, 0.0))
