import numpy as np
import pytest

from synib_hf.data.irony import add_irony, irony_splits, two_view_digits


def test_irony_count_labels_and_donors():
    x1, x2, labels, contradicting = two_view_digits()
    rng = np.random.default_rng(0)
    out = add_irony(x1, x2, labels, 0.5, contradicting, rng)
    expected = round(0.5 * len(labels) / 10)
    assert out["is_irony"].sum() == expected and (out["labels"][out["is_irony"]] == 10).all()
    assert (out["labels"][~out["is_irony"]] == labels[~out["is_irony"]]).all()
    # an irony example keeps its own first view and gets the second view of another example of another digit
    assert np.array_equal(out["x1"], x1)
    changed = np.flatnonzero(out["is_irony"])
    for index in changed[:20]:
        donors = np.flatnonzero((x2 == out["x2"][index]).all(1))
        assert any(labels[d] != labels[index] for d in donors)


def test_splits_are_standardised_and_seeded():
    a, b = irony_splits("breast_cancer", 0.3, seed=1), irony_splits("breast_cancer", 0.3, seed=1)
    assert np.array_equal(a["test"]["x2"], b["test"]["x2"])
    np.testing.assert_allclose(a["train"]["x1"].mean(0), 0, atol=1e-4)
    assert set(np.unique(a["train"]["labels"])) == {0, 1, 2}


def test_bad_inputs():
    with pytest.raises(ValueError, match="irony rate must be in"):
        irony_splits("digits", 1.5)
    with pytest.raises(ValueError, match="Unknown data set"):
        irony_splits("mnist", 0.1)
