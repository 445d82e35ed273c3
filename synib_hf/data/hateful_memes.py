"""Hateful Memes on disk (`img/` + `train.jsonl`, `dev_seen.jsonl`, `test_seen.jsonl`) as a `datasets.DatasetDict`,
and a small synthetic data set written in exactly that format (for offline runs and tests)."""

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


SPLIT_FILES = {"train": "train.jsonl", "validation": "dev_seen.jsonl", "test": "test_seen.jsonl"}
LABELS = (0, 1)


def _read_split(data_dir: Path, filename: str, require_labels: bool) -> dict:
    path = data_dir / filename
    columns = {"id": [], "image": [], "text": [], "label": []}
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not a JSON object ({error}).") from None
        missing = {"id", "img"} - set(row)
        if missing:
            raise ValueError(f"{where}: the row has no {sorted(missing)}; every row needs id, img, text, label.")
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where} (id {row['id']}): the row has no text; every meme needs its caption in 'text'.")
        image = data_dir / row["img"]
        if not image.is_file():
            raise FileNotFoundError(f"{where} (id {row['id']}): image {row['img']!r} not found under {data_dir}.")
        label = row.get("label")
        if label is None and require_labels:
            raise ValueError(f"{where} (id {row['id']}): the row has no label; labels must be one of {LABELS}.")
        if label is not None and label not in LABELS:
            raise ValueError(f"{where} (id {row['id']}): label {label!r} is outside the classes {LABELS}.")
        columns["id"].append(str(row["id"]))
        columns["image"].append(str(image.resolve()))
        columns["text"].append(text)
        columns["label"].append(-1 if label is None else int(label))
    if not columns["id"]:
        raise ValueError(f"{path} holds no rows.")
    return columns


def load_hateful_memes(data_dir, splits: Optional[Sequence[str]] = None, require_labels: bool = True):
    """Load the Hateful Memes folder layout into a `DatasetDict` with columns `id`, `image` (decoded as PIL), `text`,
    `label`; splits are named `train`, `validation` (dev_seen) and `test` (test_seen).

    Raises:
        FileNotFoundError: a split file or an image a row names is missing.
        ValueError: a row without text, without a label (when `require_labels`), or with a label outside {0, 1}.

    Example:

    ```python
    >>> data = load_hateful_memes("data/hateful_memes")
    >>> data["train"][0]["text"]
    ```
    """
    from datasets import Dataset, DatasetDict, Image

    data_dir = Path(data_dir)
    splits = list(splits or SPLIT_FILES)
    unknown = sorted(set(splits) - set(SPLIT_FILES))
    if unknown:
        raise ValueError(f"Unknown split(s) {unknown}; the splits are {sorted(SPLIT_FILES)}.")
    for split in splits:
        if not (data_dir / SPLIT_FILES[split]).is_file():
            raise FileNotFoundError(
                f"{data_dir / SPLIT_FILES[split]} not found: the Hateful Memes folder needs img/ and "
                f"{', '.join(SPLIT_FILES[s] for s in splits)}."
            )
    return DatasetDict(
        {
            split: Dataset.from_dict(_read_split(data_dir, SPLIT_FILES[split], require_labels)).cast_column(
                "image", Image()
            )
            for split in splits
        }
    )


FIXTURE_WORDS = ("cat", "dog", "meme", "day", "face", "city", "party", "food")


def write_memes_fixture(data_dir, rows_per_split: int = 64, image_size: int = 32, seed: int = 0) -> Path:
    """Write a synthetic data set in the Hateful Memes format: label = (bright image) XOR ("not" in the caption).

    Neither modality alone predicts the label, so it is a small synergy task. Returns `data_dir`.
    """
    from PIL import Image

    data_dir = Path(data_dir)
    (data_dir / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    next_id = 10000
    for split, filename in SPLIT_FILES.items():
        lines = []
        for _ in range(rows_per_split):
            bright, negated = int(rng.integers(0, 2)), int(rng.integers(0, 2))
            base = 190 if bright else 60
            pixels = np.clip(rng.normal(base, 25, size=(image_size, image_size, 3)), 0, 255).astype(np.uint8)
            name = f"img/{next_id}.png"
            Image.fromarray(pixels).save(data_dir / name)
            words = list(rng.choice(FIXTURE_WORDS, size=3))
            if negated:
                words.insert(int(rng.integers(0, 4)), "not")
            lines.append(json.dumps({"id": next_id, "img": name, "text": " ".join(words), "label": bright ^ negated}))
            next_id += 1
        (data_dir / filename).write_text("\n".join(lines) + "\n")
    return data_dir
