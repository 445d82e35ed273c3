"""The irony construction (method page §5) on real two-view data that installs offline (scikit-learn's data sets).

A share of each split is relabelled as an extra class, "irony", and its second view is replaced by a donor's second
view from a contradicting class. Each view alone looks like an ordinary example; only their mismatch tells irony,
so `rate` dials how much of the task is synergistic.
"""

from typing import Callable, Mapping, Optional

import numpy as np

from ..extras import require


def two_view_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable]:
    """scikit-learn's 8×8 digits as two views: the top half (32 pixels) and the bottom half (32 pixels).

    The donor of digit d is any other digit.
    """
    require("sklearn", "The digits irony data set")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.reshape(-1, 8, 8).astype(np.float32)
    top, bottom = images[:, :4].reshape(-1, 32), images[:, 4:].reshape(-1, 32)

    def contradicting(label: int, rng: np.random.Generator) -> int:
        return int((label + rng.integers(1, 10)) % 10)

    return top, bottom, digits.target.astype(np.int64), contradicting


def two_view_breast_cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable]:
    """scikit-learn's breast cancer data as two views: the ten "mean" features and the ten "worst" features.

    The donor of a malignant example is benign and vice versa.
    """
    require("sklearn", "The breast-cancer irony data set")
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = data.data.astype(np.float32)
    return features[:, :10], features[:, 20:30], data.target.astype(np.int64), lambda label, rng: 1 - int(label)


DATASETS = {"digits": two_view_digits, "breast_cancer": two_view_breast_cancer}


def add_irony(
    x1: np.ndarray, x2: np.ndarray, labels: np.ndarray, rate: float, contradicting: Callable, rng: np.random.Generator
) -> dict:
    """Relabel `k = round(rate × mean class size)` examples as the irony class (index `C`) and give each the second
    view of a donor from a contradicting class. Returns `x1`, `x2`, `labels` and `is_irony` (all new arrays).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"irony rate must be in [0, 1], got {rate}.")
    classes = int(labels.max()) + 1
    count = int(round(rate * len(labels) / classes))
    x2, labels = x2.copy(), labels.copy()
    chosen = rng.choice(len(labels), size=count, replace=False)
    by_class = {c: np.flatnonzero(labels == c) for c in range(classes)}
    for index in chosen:
        donor_class = contradicting(int(labels[index]), rng)
        x2[index] = x2[rng.choice(by_class[donor_class])]
        labels[index] = classes
    is_irony = np.zeros(len(labels), dtype=bool)
    is_irony[chosen] = True
    return {"x1": x1, "x2": x2, "labels": labels, "is_irony": is_irony}


def irony_splits(name: str, rate: float, seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> dict:
    """Train / validation / test splits of a two-view data set with the irony class added per split, standardised
    with training statistics. Each split is a dict of arrays (`x1`, `x2`, `labels`, `is_irony`).

    Example:

    ```python
    >>> splits = irony_splits("digits", rate=0.3, seed=0)
    >>> int(splits["train"]["labels"].max())  # digits 0-9, then irony
    10
    ```
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown data set {name!r}; choose one of {sorted(DATASETS)}.")
    x1, x2, labels, contradicting = DATASETS[name]()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    cuts = np.cumsum([int(f * len(labels)) for f in fractions[:-1]])
    splits = {}
    for split, indices in zip(("train", "validation", "test"), np.split(order, cuts)):
        splits[split] = add_irony(x1[indices], x2[indices], labels[indices], rate, contradicting, rng)
    for key in ("x1", "x2"):
        mean, std = splits["train"][key].mean(0), splits["train"][key].std(0) + 1e-6
        for split in splits.values():
            split[key] = ((split[key] - mean) / std).astype(np.float32)
    return splits


def as_datasets(splits: Mapping[str, Mapping[str, np.ndarray]], columns: Optional[tuple] = ("x1", "x2", "labels")):
    """The splits as a `datasets.DatasetDict` with the model's columns."""
    from datasets import Dataset, DatasetDict

    return DatasetDict({name: Dataset.from_dict({c: split[c] for c in columns}) for name, split in splits.items()})
