"""Hateful Memes on disk (`img/` + `train.jsonl`, `dev_seen.jsonl`, `test_seen.jsonl`) as a `datasets.DatasetDict`,
and a small synthetic data set written in exactly that format (for offline runs and tests)."""

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..tasks import IGNORE_INDEX


SPLIT_FILES = {"train": "train.jsonl", "validation": "dev_seen.jsonl", "test": "test_seen.jsonl"}
LABELS = (0, 1)
HATEFUL_LABELS = ("not hateful", "hateful")  # the names of LABELS, for a model's id2label


def _image_path(data_dir: Path, img, where: str, verify: bool) -> Path:
    """The image a row names. It must lie inside the data folder: the rows are data, and a row must not make the
    loader read elsewhere (`"../secret.png"`, an absolute path). Symbolic links inside the folder are the folder
    owner's choice and are followed."""
    if not isinstance(img, str) or not img.strip():
        raise ValueError(f"{where}: 'img' must be a path inside the data folder, like 'img/42.png'; got {img!r}.")
    root = Path(os.path.normpath(data_dir.absolute()))
    image = Path(os.path.normpath(root / img))  # an absolute `img` replaces root here, and is caught below
    if not image.is_relative_to(root):
        raise ValueError(
            f"{where}: image {img!r} points outside the data folder {root}; 'img' must be a path inside it, like "
            "'img/42.png'. Move the image into the folder and name it relative to the folder."
        )
    if not image.is_file():
        raise FileNotFoundError(f"{where}: image {img!r} not found under {data_dir}.")
    if verify:
        _check_image(image, img, where)
    return image


def _check_image(image: Path, img: str, where: str) -> None:
    """Read the whole file once, cheaply (PNG: its checksums; JPEG: a decode at 1/8 scale, which still reads every
    byte), so that a broken image fails here, named, rather than mid-training inside the DataLoader."""
    from PIL import Image

    try:
        with Image.open(image) as opened:
            if opened.format == "PNG":
                opened.verify()
            else:
                opened.draft("RGB", (1, 1))
                opened.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"{where}: image {img!r} ({image}) does not decode: {error}. Replace the file (or drop the row)."
        ) from None


def _read_split(data_dir: Path, filename: str, require_labels: bool, verify_images: bool) -> dict:
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
        if not isinstance(row, dict):
            raise ValueError(f"{where}: not a JSON object but a {type(row).__name__}; each line is one row, {{...}}.")
        missing = {"id", "img"} - set(row)
        if missing:
            raise ValueError(f"{where}: the row has no {sorted(missing)}; every row needs id, img, text, label.")
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where} (id {row['id']}): the row has no text; every meme needs its caption in 'text'.")
        image = _image_path(data_dir, row["img"], f"{where} (id {row['id']})", verify_images)
        label = row.get("label")
        if label is None and require_labels:
            raise ValueError(f"{where} (id {row['id']}): the row has no label; labels must be one of {LABELS}.")
        if label is not None and label not in LABELS:
            raise ValueError(f"{where} (id {row['id']}): label {label!r} is outside the classes {LABELS}.")
        columns["id"].append(str(row["id"]))
        columns["image"].append(str(image.resolve()))
        columns["text"].append(text)
        columns["label"].append(IGNORE_INDEX if label is None else int(label))
    if not columns["id"]:
        raise ValueError(f"{path} holds no rows.")
    return columns


def load_hateful_memes(
    data_dir, splits: Optional[Sequence[str]] = None, require_labels: bool = True, verify_images: bool = True
):
    """Load the Hateful Memes folder layout into a `DatasetDict` with columns `id`, `image` (decoded as PIL), `text`,
    `label`; splits are named `train`, `validation` (dev_seen) and `test` (test_seen).

    Args:
        data_dir: the folder holding `img/` and the split files.
        splits: the splits to load; default all three.
        require_labels: every row must have a label (False: a missing label is stored as -100, the ignore index:
            such rows count in no loss or metric, and `Trainer.predict` runs on them).
        verify_images: read every image once at load time (about 1 ms per image), so that a file that does not
            decode is named here; False skips that, and a broken image then fails when its batch is built.

    Raises:
        FileNotFoundError: a split file or an image a row names is missing.
        ValueError: a row without text, without a label (when `require_labels`), with a label outside {0, 1}, with an
            `img` that points outside `data_dir`, or with an image that does not decode (when `verify_images`).

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
            split: Dataset.from_dict(
                _read_split(data_dir, SPLIT_FILES[split], require_labels, verify_images)
            ).cast_column("image", Image())
            for split in splits
        }
    )


FIXTURE_WORDS = ("cat", "dog", "meme", "day", "face", "city", "party", "food")
# Written beside a synthetic data set: a folder holding it was made by `write_memes_fixture`, which may rewrite it.
FIXTURE_MARKER = "SYNTHETIC_FIXTURE.md"


def _data_in_the_way(data_dir: Path) -> list:
    """The files of a data set that a fixture would overwrite in `data_dir` (its split files and images), unless the
    folder holds a fixture already (its marker file)."""
    if (data_dir / FIXTURE_MARKER).is_file():
        return []
    found = [data_dir / name for name in SPLIT_FILES.values() if (data_dir / name).exists()]
    images = data_dir / "img"
    if images.is_dir() and any(images.iterdir()):
        found.append(images)
    return found


def write_memes_fixture(data_dir, rows_per_split: int = 64, image_size: int = 32, seed: int = 0) -> Path:
    """Write a synthetic data set in the Hateful Memes format: label = (bright image) XOR ("not" in the caption).

    Neither modality alone predicts the label, so it is a small synergy task. A file `SYNTHETIC_FIXTURE.md` marks the
    folder as synthetic; only such a folder (or one without split files or images) is written to, so that the real
    data set, unpacked where a recipe's `data_dir` points, is never overwritten. Returns `data_dir`.

    Raises:
        FileExistsError: `data_dir` holds a data set that is not a fixture (`train.jsonl`, `dev_seen.jsonl`,
            `test_seen.jsonl` or images in `img/`); the message names the files.

    Example:

    ```python
    >>> data = load_hateful_memes(write_memes_fixture("runs/memes-fixture", rows_per_split=32))
    ```
    """
    from PIL import Image

    data_dir = Path(data_dir)
    in_the_way = _data_in_the_way(data_dir)
    if in_the_way:
        raise FileExistsError(
            f"{data_dir} already holds a data set ({', '.join(str(path) for path in in_the_way)}) that is not a "
            "synthetic fixture, and writing one there would overwrite it. Give the fixture its own folder "
            "(--data_dir runs/memes-fixture), or drop --make_fixture (make_fixture: false) to train on the data "
            "that is there."
        )
    (data_dir / "img").mkdir(parents=True, exist_ok=True)
    (data_dir / FIXTURE_MARKER).write_text(
        "# Synthetic data in the Hateful Memes format\n\nWritten by `synib_hf.data.hateful_memes.write_memes_fixture` "
        f"(rows per split {rows_per_split}, image size {image_size}, seed {seed}): label = bright image XOR \"not\" "
        "in the caption. Not the Hateful Memes data set. This folder may be rewritten by the next fixture; remove "
        "this file to protect it.\n"
    )
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
