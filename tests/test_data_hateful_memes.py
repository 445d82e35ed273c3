import json

import pytest

from synib_hf.data.hateful_memes import load_hateful_memes, write_memes_fixture


@pytest.fixture
def memes(tmp_path):
    return write_memes_fixture(tmp_path / "memes", rows_per_split=6)


def test_loads_the_on_disk_format(memes):
    data = load_hateful_memes(memes)
    assert set(data) == {"train", "validation", "test"} and data["train"].num_rows == 6
    row = data["validation"][0]
    assert row["image"].size == (32, 32) and isinstance(row["text"], str) and row["label"] in (0, 1)
    first = json.loads((memes / "dev_seen.jsonl").read_text().splitlines()[0])
    assert row["id"] == str(first["id"]) and row["text"] == first["text"]


def rewrite(memes, filename, edit):
    path = memes / filename
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_missing_image_file(memes):
    rewrite(memes, "train.jsonl", lambda rows: rows[2].update(img="img/nope.png"))
    with pytest.raises(FileNotFoundError, match=r"train.jsonl:3 \(id \d+\): image 'img/nope.png' not found"):
        load_hateful_memes(memes)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_row_without_text(memes, text):
    rewrite(memes, "dev_seen.jsonl", lambda rows: rows[0].update(text=text))
    with pytest.raises(ValueError, match=r"dev_seen.jsonl:1 \(id \d+\): the row has no text"):
        load_hateful_memes(memes)


def test_label_outside_the_classes(memes):
    rewrite(memes, "test_seen.jsonl", lambda rows: rows[4].update(label=2))
    with pytest.raises(ValueError, match=r"test_seen.jsonl:5 \(id \d+\): label 2 is outside the classes \(0, 1\)"):
        load_hateful_memes(memes)


def test_missing_label_and_missing_split(memes):
    rewrite(memes, "train.jsonl", lambda rows: rows[0].pop("label"))
    with pytest.raises(ValueError, match="the row has no label"):
        load_hateful_memes(memes)
    assert load_hateful_memes(memes, require_labels=False)["train"][0]["label"] == -100  # the ignore index
    (memes / "test_seen.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="test_seen.jsonl not found"):
        load_hateful_memes(memes, require_labels=False)


def test_fixture_is_a_synergy_task(memes):
    data = load_hateful_memes(memes)["train"]
    for row in data:
        bright = sum(row["image"].convert("L").getdata()) / (32 * 32) > 128
        assert row["label"] == int(bright) ^ int("not" in row["text"].split())


@pytest.mark.parametrize("existing", ["train.jsonl", "dev_seen.jsonl", "test_seen.jsonl", "img/1.png"])
def test_fixture_never_overwrites_a_real_data_set(tmp_path, existing):
    """A user's data (any split file, or images) in the folder: the fixture refuses, names the file and the fix, and
    leaves every byte as it was."""
    data = tmp_path / "hateful_memes"
    (data / "img").mkdir(parents=True)
    (data / existing).write_bytes(b"the user's licensed data")
    before = {path: path.read_bytes() for path in data.rglob("*") if path.is_file()}
    with pytest.raises(FileExistsError) as error:
        write_memes_fixture(data, rows_per_split=2)
    message = str(error.value)
    assert str(data / existing.split("/")[0]) in message and "not a synthetic fixture" in message
    assert "--data_dir runs/memes-fixture" in message and "drop --make_fixture" in message
    assert {path: path.read_bytes() for path in data.rglob("*") if path.is_file()} == before


def test_fixture_rewrites_its_own_folder_and_an_empty_one(tmp_path):
    empty = tmp_path / "empty"
    (empty / "img").mkdir(parents=True)
    write_memes_fixture(empty, rows_per_split=2)
    write_memes_fixture(empty, rows_per_split=3, seed=1)  # its own marker: rewritten
    assert load_hateful_memes(empty)["train"].num_rows == 3
    assert "Not the Hateful Memes data set" in (empty / "SYNTHETIC_FIXTURE.md").read_text()
