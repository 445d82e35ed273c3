"""`load_easy_vqa` on the installed easy-vqa package (the `vqa` extra, which `test` includes)."""

import sys

import numpy as np
import pytest
from datasets import Image

from synib_hf.data.easy_vqa import QUESTION_TYPES, accuracy_by_question_type, answers, load_easy_vqa


@pytest.fixture(scope="module")
def natural():
    return load_easy_vqa(seed=0)


def image_paths(split):
    return {row["path"] for row in split.cast_column("image", Image(decode=False))["image"]}


def test_splits_hold_every_question_and_are_disjoint_by_image(natural):
    assert {name: len(split) for name, split in natural.items()} == {"train": 38575 - len(natural["validation"]),
                                                                     "validation": len(natural["validation"]),
                                                                     "test": 9673}
    assert len(set(natural["validation"]["image_id"])) == 400
    assert not set(natural["train"]["image_id"]) & set(natural["validation"]["image_id"])
    train, validation, test = (image_paths(natural[s]) for s in ("train", "validation", "test"))
    assert len(train) + len(validation) == 4000 and len(test) == 1000
    assert not train & validation and not (train | validation) & test


def test_rows_are_decoded_64px_images_with_a_question_and_an_answer(natural):
    row = natural["test"][0]
    assert row["image"].size == (64, 64) and row["image"].mode == "RGB"
    assert row["question"].endswith("?")
    assert natural["train"].features["label"].names == answers() and len(answers()) == 13
    assert natural["train"].features["question_type"].names == list(QUESTION_TYPES)


def test_question_types_follow_the_answers(natural):
    test = natural["test"]
    names = np.array(answers())[test["label"]]
    types = np.array(QUESTION_TYPES)[test["question_type"]]
    assert set(names[types == "yes/no"]) == {"yes", "no"}
    assert set(names[types == "shape"]) == {"circle", "rectangle", "triangle"}
    assert len(set(names[types == "color"])) == 8
    # the package's own counts: 7,136 of the 9,673 test questions are yes/no
    assert (types == "yes/no").sum() == 7136
    assert all("color" in q for q, t in zip(test["question"], types) if t == "color")


def test_synergy_rate_sets_the_yes_no_share_of_train_and_validation_only():
    data = load_easy_vqa(synergy_rate=0.05, train_questions=1000, validation_questions=200, seed=1)
    yes_no = QUESTION_TYPES.index("yes/no")
    assert len(data["train"]) == 1000 and np.sum(np.array(data["train"]["question_type"]) == yes_no) == 50
    assert np.sum(np.array(data["validation"]["question_type"]) == yes_no) == 10
    assert np.sum(np.array(data["test"]["question_type"]) == yes_no) == 7136  # the test set keeps all of them
    again = load_easy_vqa(synergy_rate=0.05, train_questions=1000, validation_questions=200, seed=1)
    assert again["train"]["question"] == data["train"]["question"]


def test_impossible_rates_and_sizes_are_refused():
    with pytest.raises(ValueError, match="synergy_rate must lie in"):
        load_easy_vqa(synergy_rate=1.5)
    with pytest.raises(ValueError, match="Ask for fewer questions"):
        load_easy_vqa(synergy_rate=0.5, train_questions=30000)


def test_a_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "easy_vqa", None)  # import easy_vqa now raises ImportError
    with pytest.raises(ImportError, match=r"synib-hf\[vqa\]"):
        load_easy_vqa()


def test_accuracy_by_question_type():
    names = answers()
    labels = [names.index(a) for a in ("yes", "no", "red", "circle")]
    predictions = [names.index(a) for a in ("yes", "yes", "red", "triangle")]
    scores = accuracy_by_question_type(predictions, labels)
    assert scores == {"accuracy": 0.5, "accuracy_yes_no": 0.5, "accuracy_color": 1.0, "accuracy_shape": 0.0}


def test_balanced_yes_no_accuracy_puts_any_question_only_answer_at_one_half(natural):
    from collections import Counter, defaultdict

    from synib_hf.data.easy_vqa import yes_no_balanced_accuracy

    train, test = natural["train"], natural["test"]
    counts = defaultdict(Counter)
    for question, label in zip(train["question"], train["label"]):
        counts[question][label] += 1
    prior = np.array([counts[q].most_common(1)[0][0] for q in test["question"]])  # reads the question alone
    labels, yes_no = np.array(test["label"]), np.array(test["question_type"]) == 0
    assert (prior == labels)[yes_no].mean() > 0.8  # the wording alone answers most yes/no questions...
    assert yes_no_balanced_accuracy(prior, labels, test["question"]) == 0.5  # ...and none of the balanced slice
    assert yes_no_balanced_accuracy(labels, labels, test["question"]) == 1.0
