"""easy-VQA (the `easy-vqa` package, MIT: 64×64 images of one coloured shape, templated questions, 13 answers) as a
`datasets.DatasetDict`, with a rare-synergy regime: the share of yes/no questions in training is the synergy rate.

Yes/no questions ("is there a red shape?", "does the image not contain a circle?") need the image and the question
together: neither alone says more than the answer prior. Colour and shape questions are answered from the image (the
question only says which of the two is asked). The yes/no test questions are therefore a *ground-truth* synergy
slice, which the synergy subset of two unimodal predictors only approximates.
"""

from typing import Optional

import numpy as np

from ..extras import require


QUESTION_TYPES = ("yes/no", "color", "shape")
SHAPES = ("circle", "rectangle", "triangle")


def question_type(answer: str) -> str:
    """`yes/no`, `shape` or `color`, read off the answer (every easy-VQA question asks exactly one of the three)."""
    if answer in ("yes", "no"):
        return "yes/no"
    return "shape" if answer in SHAPES else "color"


def _questions(split: str) -> dict:
    easy_vqa = require("easy_vqa", "easy-VQA data")
    texts, answers, image_ids = easy_vqa.get_train_questions() if split == "train" else easy_vqa.get_test_questions()
    paths = easy_vqa.get_train_image_paths() if split == "train" else easy_vqa.get_test_image_paths()
    missing = sorted(set(image_ids) - set(paths))
    if missing:
        raise FileNotFoundError(
            f"easy-vqa's {split} questions name images {missing[:5]} that its package folder lacks "
            f"({len(missing)} in all); reinstall it: pip install --force-reinstall easy-vqa."
        )
    labels = {answer: index for index, answer in enumerate(easy_vqa.get_answers())}
    return {
        "image": [paths[i] for i in image_ids],
        "image_id": [int(i) for i in image_ids],
        "question": list(texts),
        "label": [labels[a] for a in answers],
        "question_type": [QUESTION_TYPES.index(question_type(a)) for a in answers],
    }


def answers() -> list[str]:
    """The 13 answers, in label order."""
    return list(require("easy_vqa", "easy-VQA data").get_answers())


def with_synergy_rate(columns: dict, rate: float, size: Optional[int], rng: np.random.Generator) -> dict:
    """Rows of `columns` drawn without replacement so that a share `rate` of them are yes/no questions (`size` rows
    in all; by default as many as the rarer part allows)."""
    is_yes_no = np.asarray(columns["question_type"]) == QUESTION_TYPES.index("yes/no")
    yes_no, other = np.flatnonzero(is_yes_no), np.flatnonzero(~is_yes_no)
    if size is None:
        size = int(min(len(yes_no) / rate if rate > 0 else np.inf, len(other) / (1 - rate) if rate < 1 else np.inf))
    n_yes_no = int(round(rate * size))
    if n_yes_no > len(yes_no) or size - n_yes_no > len(other):
        raise ValueError(
            f"synergy_rate={rate} with {size} questions needs {n_yes_no} yes/no and {size - n_yes_no} other "
            f"questions; this split has {len(yes_no)} and {len(other)}. Ask for fewer questions."
        )
    chosen = np.sort(np.concatenate([rng.choice(yes_no, n_yes_no, replace=False),
                                     rng.choice(other, size - n_yes_no, replace=False)]))
    return {key: [values[i] for i in chosen] for key, values in columns.items()}


def _subsample(columns: dict, size: Optional[int], rng: np.random.Generator) -> dict:
    count = len(columns["label"])
    if size is None or size >= count:
        return columns
    chosen = np.sort(rng.choice(count, size, replace=False))
    return {key: [values[i] for i in chosen] for key, values in columns.items()}


def load_easy_vqa(
    synergy_rate: Optional[float] = None,
    train_questions: Optional[int] = None,
    validation_questions: Optional[int] = None,
    test_questions: Optional[int] = None,
    validation_images: int = 400,
    seed: int = 0,
):
    """easy-VQA as a `DatasetDict` with splits `train`, `validation` (carved from the training images: no image is in
    both) and `test` (the package's test images), and columns `image` (decoded as PIL by the `datasets` Image
    feature), `image_id`, `question`, `label` (index into the 13 answers, a `ClassLabel`) and `question_type`
    (`ClassLabel` of yes/no, color, shape).

    Args:
        synergy_rate: share of yes/no questions in train and validation (the rare-synergy regime, e.g. 0.05); None
            keeps the natural share (about 74 %). The test split always keeps its natural share.
        train_questions, validation_questions, test_questions: subsample each split to this many questions
            (None: all the split has at that rate).
        validation_images: how many training images (with all their questions) form the validation split.
        seed: the validation images and every subsample.

    Raises:
        ImportError: `easy-vqa` is not installed (it comes with the `vqa` extra).
        ValueError: a synergy rate outside [0, 1], or more questions than the split holds at that rate.

    Example:

    ```python
    >>> data = load_easy_vqa(synergy_rate=0.05, train_questions=3000, seed=0)
    >>> data["train"].features["question_type"].names
    ['yes/no', 'color', 'shape']
    ```
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

    if synergy_rate is not None and not 0.0 <= synergy_rate <= 1.0:
        raise ValueError(f"synergy_rate must lie in [0, 1] (a share of yes/no questions), got {synergy_rate}.")
    rng = np.random.default_rng(seed)
    train = _questions("train")
    image_ids = np.unique(train["image_id"])
    if not 0 < validation_images < len(image_ids):
        raise ValueError(f"validation_images must be between 1 and {len(image_ids) - 1}, got {validation_images}.")
    held_out = set(rng.choice(image_ids, validation_images, replace=False).tolist())
    in_validation = [i in held_out for i in train["image_id"]]
    splits = {
        name: {key: [v for v, keep in zip(values, in_validation) if keep == wanted] for key, values in train.items()}
        for name, wanted in (("train", False), ("validation", True))
    }
    sizes = {"train": train_questions, "validation": validation_questions, "test": test_questions}
    for name in ("train", "validation"):
        if synergy_rate is None:
            splits[name] = _subsample(splits[name], sizes[name], rng)
        else:
            splits[name] = with_synergy_rate(splits[name], synergy_rate, sizes[name], rng)
    splits["test"] = _subsample(_questions("test"), test_questions, rng)
    features = Features({
        "image": Image(),
        "image_id": Value("int32"),
        "question": Value("string"),
        "label": ClassLabel(names=answers()),
        "question_type": ClassLabel(names=list(QUESTION_TYPES)),
    })
    return DatasetDict({name: Dataset.from_dict(columns, features=features) for name, columns in splits.items()})


def accuracy_by_question_type(predictions, labels) -> dict:
    """`accuracy` and `accuracy_<type>` (yes_no, color, shape; the type read off each true answer), so a
    `compute_metrics` needs no column beside the labels.

    Example:

    ```python
    >>> accuracy_by_question_type(predicted_classes(prediction.predictions), prediction.label_ids)["accuracy_yes_no"]
    ```
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    types = np.array([question_type(answer) for answer in answers()])[labels]
    correct = predictions == labels
    scores = {"accuracy": float(correct.mean())}
    for name in QUESTION_TYPES:
        members = types == name
        key = f"accuracy_{name.replace('/', '_')}"
        scores[key] = float(correct[members].mean()) if members.any() else float("nan")
    return scores


def yes_no_balanced_accuracy(predictions, labels, questions) -> float:
    """Accuracy on the yes/no questions with each question's prior taken out: per distinct question, the mean of the
    accuracy on its "yes" rows and on its "no" rows, averaged over the questions that have both.

    The wording of an easy-VQA yes/no question predicts its answer (a model that reads the question alone answers
    82.5 % of the test yes/no questions: "is there a red shape?" is mostly "no"). Any answer that ignores the image
    scores at most 0.5 here (exactly 0.5 if it always answers yes or no), so this slice needs the image *and* the
    question: the ground-truth synergy slice.

    Example:

    ```python
    >>> yes_no_balanced_accuracy(predicted, test["label"], test["question"])
    ```
    """
    names = answers()
    yes, no = names.index("yes"), names.index("no")
    predictions, labels, questions = np.asarray(predictions), np.asarray(labels), np.asarray(questions)
    per_question = []
    for question in np.unique(questions[(labels == yes) | (labels == no)]):
        rows = questions == question
        recalls = [(predictions[rows & (labels == answer)] == answer).mean() for answer in (yes, no)
                   if (rows & (labels == answer)).any()]
        if len(recalls) == 2:
            per_question.append(np.mean(recalls))
    return float(np.mean(per_question)) if per_question else float("nan")


def evaluate_on_easy_vqa(model, processor, split, batch_size: int = 256) -> dict:
    """`accuracy`, `accuracy_<type>` and `accuracy_yes_no_balanced` of a fusion model on an easy-VQA split; each
    distinct image is decoded and processed once (a split has ~10 questions per image).

    Example:

    ```python
    >>> model = AutoModelForSequenceClassification.from_pretrained("synib-hf/minilm-easyvqa-synib")
    >>> evaluate_on_easy_vqa(model, AutoProcessor.from_pretrained("synib-hf/minilm-easyvqa-synib"), data["test"])
    ```
    """
    import torch
    from datasets import Image

    from ..penalties import predicted_classes

    paths = [row["path"] for row in split.cast_column("image", Image(decode=False))["image"]]
    first_row = {path: row for row, path in reversed(list(enumerate(paths)))}
    images = {path: processor.image_processor(images=split[row]["image"].convert("RGB"),
                                              return_tensors="pt")["pixel_values"][0]
              for path, row in first_row.items()}
    questions, predictions = split["question"], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            rows = range(start, min(start + batch_size, len(split)))
            batch = dict(processor.tokenizer([questions[i] for i in rows], padding=True, return_tensors="pt"))
            batch["pixel_values"] = torch.stack([images[paths[i]] for i in rows])
            predictions.append(predicted_classes(model(**batch).logits))
    predicted, labels = torch.cat(predictions).numpy(), np.asarray(split["label"])
    scores = accuracy_by_question_type(predicted, labels)
    scores["accuracy_yes_no_balanced"] = yes_no_balanced_accuracy(predicted, labels, questions)
    return scores
