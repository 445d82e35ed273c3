"""Bad inputs outside the trainer: data on disk, model inputs, checkpoints, model cards, the Hub and the command line.

Each case asserts the message a user gets (it names the field or file and the fix) or a defined behaviour. The
trainer's bad inputs have their own matrix.
"""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import ImageTextCollator
from synib_hf.checkpoints import CheckpointError, checkpoint_problems
from synib_hf.cli import push
from synib_hf.data.hateful_memes import load_hateful_memes, write_memes_fixture
from synib_hf.model_card import build_model_card
from tiny_models import fusion_rows, mlp_fusion, tiny_fusion, tiny_fusion_processor


# ---- data: load_hateful_memes ------------------------------------------------------------------------------------


@pytest.fixture
def memes(tmp_path):
    return write_memes_fixture(tmp_path / "memes", rows_per_split=3)


def set_img(value):
    """An edit that sets the first training row's `img` to `value` (or to `value(memes)`)."""

    def edit(memes):
        rewrite_first_row(memes, lambda row: row.update(img=value(memes) if callable(value) else value))

    return edit


def rewrite_first_row(memes, edit):
    path = memes / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows[0])
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")


def first_image(memes):
    return memes / json.loads((memes / "train.jsonl").read_text().splitlines()[0])["img"]


def outside_image(memes):
    """A real image beside the data folder, which a row must not be able to reach."""
    target = memes.parent / "outside.png"
    target.write_bytes(first_image(memes).read_bytes())
    return target


def relative_outside(memes):
    outside_image(memes)
    return "../outside.png"


def through_the_folder_and_out(memes):
    outside_image(memes)
    return "img/../../outside.png"


def absolute_outside(memes):
    return str(outside_image(memes))


def overwrite_first_image(content):
    def edit(memes):
        image = first_image(memes)
        image.write_bytes(content(image.read_bytes()))

    return edit


def first_line_is(text):
    def edit(memes):
        path = memes / "train.jsonl"
        path.write_text(text + "\n" + "\n".join(path.read_text().splitlines()[1:]) + "\n")

    return edit


OUTSIDE = r"train.jsonl:1 \(id \d+\): image .* points outside the data folder .*; 'img' must be a path inside it"
DOES_NOT_DECODE = (
    r"train.jsonl:1 \(id \d+\): image 'img/\d+.png' \(.*img/\d+.png\) does not decode: .*Replace the file"
)

DATA_CASES = [
    ("img-parent-folder", set_img(relative_outside), OUTSIDE),
    ("img-absolute-path", set_img(absolute_outside), OUTSIDE),
    ("img-through-the-folder-and-out", set_img(through_the_folder_and_out), OUTSIDE),
    ("img-not-a-string", set_img(42), r"train.jsonl:1 \(id \d+\): 'img' must be a path inside the data folder.*42"),
    ("img-empty", set_img(""), r"'img' must be a path inside the data folder, like 'img/42.png'; got ''"),
    ("image-not-an-image", overwrite_first_image(lambda _: b"<html>not found</html>"), DOES_NOT_DECODE),
    ("image-truncated", overwrite_first_image(lambda data: data[: len(data) // 2]), DOES_NOT_DECODE),
    ("image-empty-file", overwrite_first_image(lambda _: b""), DOES_NOT_DECODE),
    ("row-not-an-object", first_line_is("[1, 2]"), r"train.jsonl:1: not a JSON object but a list"),
]


@pytest.mark.parametrize("edit, message", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_hateful_memes_bad_rows_are_named(memes, edit, message):
    edit(memes)
    with pytest.raises(ValueError, match=message):
        load_hateful_memes(memes)


def test_hateful_memes_path_that_stays_inside_loads(memes):
    name = json.loads((memes / "train.jsonl").read_text().splitlines()[0])["img"]
    set_img(f"img/./../img/{name.split('/')[-1]}")(memes)
    assert load_hateful_memes(memes)["train"][0]["image"].size == (32, 32)


def test_hateful_memes_symlinked_image_folder_is_followed(memes, tmp_path):
    # the folder's layout is its owner's choice (img/ on another disk); only the rows are untrusted
    (memes / "img").rename(tmp_path / "elsewhere")
    (memes / "img").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert load_hateful_memes(memes)["train"].num_rows == 3


def test_hateful_memes_verify_images_false_reads_no_image(memes):
    overwrite_first_image(lambda data: data[: len(data) // 2])(memes)
    data = load_hateful_memes(memes, verify_images=False)  # the broken file is not read here...
    assert data["train"].num_rows == 3
    with pytest.raises(OSError):  # ...but when its row is decoded
        data["train"][0]["image"]


# ---- data: ImageTextCollator -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collator():
    return ImageTextCollator(tiny_fusion_processor(), max_length=8)


def a_png(tmp_path, size=(36, 40)):
    path = tmp_path / "image.png"
    Image.fromarray(np.zeros((*size, 3), dtype=np.uint8)).save(path)
    return path


def broken_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image at all")
    return str(path)


def lazily_opened_truncated_image(tmp_path):
    path = a_png(tmp_path, size=(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Image.open(path)  # PIL reads the header only; the data fails on convert()


COLLATOR_CASES = [
    ("path-that-does-not-decode", broken_file, ValueError,
     r"ImageTextCollator: image '.*broken.png' \(row 'm1'\) does not decode"),
    ("lazy-image-truncated", lazily_opened_truncated_image, ValueError,
     r"ImageTextCollator: image '.*image.png' \(row 'm1'\) does not decode"),
    ("image-column-holds-a-number", lambda tmp_path: 7, TypeError,
     r"'image' of row 'm1' is a int; expected a PIL image or the path of an image file"),
]


@pytest.mark.parametrize("image, error, message", [c[1:] for c in COLLATOR_CASES], ids=[c[0] for c in COLLATOR_CASES])
def test_collator_names_the_image_it_cannot_use(collator, tmp_path, image, error, message):
    with pytest.raises(error, match=message):
        collator([{"id": "m1", "image": image(tmp_path), "text": "a cat", "label": 1}])


def test_collator_takes_image_paths(collator, tmp_path):
    batch = collator([{"image": str(a_png(tmp_path)), "text": "a cat", "label": 0}])
    assert batch["pixel_values"].shape == (1, 3, 30, 30) and batch["labels"].tolist() == [0]


# ---- models: inputs --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fusion():
    return tiny_fusion().eval()


@pytest.fixture(scope="module")
def fusion_batch():
    return {k: torch.tensor(v) for k, v in fusion_rows(4).items() if k != "labels"}


FUSION_CASES = [
    ("one-channel-image", lambda b: {"pixel_values": b["pixel_values"][:, :1]},
     r"pixel_values has shape \(4, 1, 30, 30\); FusionForSequenceClassification expects \(B, 3, H, W\)\. It has one "
     r"channel: convert the images to RGB"),
    ("channels-last-image", lambda b: {"pixel_values": b["pixel_values"].permute(0, 2, 3, 1)},
     r"pixel_values has shape \(4, 30, 30, 3\); .* expects \(B, 3, H, W\)\. It looks channels-last: pass "
     r"pixel_values\.permute\(0, 3, 1, 2\)"),
    ("image-without-batch-axis", lambda b: {"pixel_values": b["pixel_values"][0]},
     r"pixel_values has shape \(3, 30, 30\); .* expects \(B, 3, H, W\)"),
    ("raw-uint8-pixels", lambda b: {"pixel_values": (b["pixel_values"] * 50).to(torch.uint8)},
     r"pixel_values are torch.uint8; .* expects floats as the image processor makes them"),
    ("fewer-images-than-texts", lambda b: {"pixel_values": b["pixel_values"][:3]},
     r"pixel_values hold 3 examples but input_ids 4"),
    ("token-ids-beyond-the-vocabulary", lambda b: {"input_ids": b["input_ids"] + 1000},
     r"input_ids hold ids in \[\d+, \d+\], but the text tower's vocabulary has 64 tokens: the tokenizer does not "
     r"match"),
    ("attention-mask-of-another-shape", lambda b: {"attention_mask": b["attention_mask"][:, :3]},
     r"attention_mask has shape \(4, 3\) but input_ids \(4, 8\); they must match"),
    ("input-ids-without-batch-axis", lambda b: {"input_ids": b["input_ids"][0]},
     r"input_ids has shape \(8,\); .* expects \(B, T\)"),
]


@pytest.mark.parametrize("change, message", [c[1:] for c in FUSION_CASES], ids=[c[0] for c in FUSION_CASES])
def test_fusion_model_names_the_bad_input(fusion, fusion_batch, change, message):
    with pytest.raises(ValueError, match=message):
        fusion(**{**fusion_batch, **change(fusion_batch)})


MLP_CASES = [
    ("feature-width-mismatch", {"x1": torch.randn(4, 5)}, ValueError,
     r"input 'x1' has shape \(4, 5\); expected \(B, 6\) as config.modality_dims\['x1'\] = 6 says"),
    ("one-example-without-batch-axis", {"x1": torch.randn(6), "x2": torch.randn(6)}, ValueError,
     r"input 'x1' has shape \(6,\); expected \(B, 6\)"),
    ("extra-axis", {"x1": torch.randn(4, 2, 6)}, ValueError, r"input 'x1' has shape \(4, 2, 6\); expected \(B, 6\)"),
    ("integer-features", {"x1": torch.ones(4, 6, dtype=torch.long)}, ValueError,
     r"input 'x1' is torch.int64; expected floats"),
    ("batch-sizes-differ", {"x2": torch.randn(3, 6)}, ValueError,
     r"inputs hold different numbers of examples: \{'x1': 4, 'x2': 3\}"),
    ("numpy-array", {"x1": np.zeros((4, 6), dtype=np.float32)}, TypeError,
     r"input 'x1' is a ndarray; expected a torch tensor \(B, 6\)"),
]


@pytest.mark.parametrize("change, error, message", [c[1:] for c in MLP_CASES], ids=[c[0] for c in MLP_CASES])
def test_mlp_fusion_names_the_bad_input(change, error, message):
    inputs = {"x1": torch.randn(4, 6), "x2": torch.randn(4, 6), **change}
    with pytest.raises(error, match=message):
        mlp_fusion()(**inputs)


# ---- checkpoints: loading --------------------------------------------------------------------------------------


def cut_weights(keep):
    def corrupt(folder):
        path = folder / "model.safetensors"
        path.write_bytes(path.read_bytes()[:keep])

    return corrupt


def fill_classifier_bias(value):
    def corrupt(folder):
        state = load_file(folder / "model.safetensors")
        state["classifier.bias"] = torch.full_like(state["classifier.bias"], value)
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})

    return corrupt


UNPARSABLE = (
    r"model\.safetensors: does not parse as safetensors \(.*\): the file is truncated or corrupt; save it again"
)
NON_FINITE = r"model\.safetensors: the tensors classifier\.bias hold NaN or inf: .*use an earlier checkpoint"

WEIGHT_FAULTS = [
    ("truncated-end", cut_weights(-10), UNPARSABLE),
    ("truncated-header", cut_weights(4), UNPARSABLE),
    ("nan-weights", fill_classifier_bias(float("nan")), NON_FINITE),
    ("inf-weights", fill_classifier_bias(float("inf")), NON_FINITE),
]


@pytest.fixture
def checkpoint(tmp_path):
    mlp_fusion().save_pretrained(tmp_path / "checkpoint")
    return tmp_path / "checkpoint"


@pytest.mark.parametrize("corrupt, message", [c[1:] for c in WEIGHT_FAULTS], ids=[c[0] for c in WEIGHT_FAULTS])
def test_from_pretrained_names_the_broken_weights_file(checkpoint, corrupt, message):
    corrupt(checkpoint)
    with pytest.raises(CheckpointError, match=message) as raised:
        AutoModelForSequenceClassification.from_pretrained(checkpoint)
    assert str(checkpoint / "model.safetensors") in str(raised.value)


def test_fusion_tower_with_a_truncated_weights_file_is_named(tmp_path):
    from transformers import AutoModel

    from synib_hf import FusionForSequenceClassification

    config = tiny_fusion().config
    AutoModel.from_config(config.vision_config).save_pretrained(tmp_path / "vision")
    AutoModel.from_config(config.text_config).save_pretrained(tmp_path / "text")
    cut_weights(-10)(tmp_path / "text")
    with pytest.raises(CheckpointError, match=r"text/model\.safetensors: does not parse as safetensors"):
        FusionForSequenceClassification.from_vision_text_pretrained(str(tmp_path / "vision"), str(tmp_path / "text"))


def broken_adapter_config(folder):
    (folder / "adapter").mkdir()
    (folder / "adapter" / "adapter_config.json").write_text("[")


def write_index(folder):
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"classifier.bias": "model-00002-of-00002.safetensors"}})
    )


FOLDER_FAULTS = [
    ("index-names-a-missing-shard", write_index,
     r"model\.safetensors\.index\.json: names shards that are missing: model-00002-of-00002\.safetensors"),
    ("config-not-json", lambda f: (f / "config.json").write_text("{"), r"config\.json: is not valid JSON"),
    ("config-unknown-model-type", lambda f: (f / "config.json").write_text('{"model_type": "no-such-model"}'),
     r"config\.json: does not load \(ValueError: .*no-such-model"),
    ("corrupt-torch-bin", lambda f: (f / "pytorch_model.bin").write_bytes(b"\x80\x04garbage"),
     r"pytorch_model\.bin: does not load with torch\.load"),
    ("adapter-config-not-json", broken_adapter_config, r"adapter/adapter_config\.json: is not valid JSON"),
]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch.load meeting the garbage on purpose
@pytest.mark.parametrize("corrupt, message", [c[1:] for c in FOLDER_FAULTS], ids=[c[0] for c in FOLDER_FAULTS])
def test_checkpoint_problems_name_file_and_problem(checkpoint, corrupt, message):
    assert checkpoint_problems(checkpoint) == []
    corrupt(checkpoint)
    problems = checkpoint_problems(checkpoint)
    assert any(re.search(message, line) for line in problems), problems


# ---- the command line: synib-hf push verifies before it uploads ----------------------------------------------------


def drop_classifier_bias(folder):
    state = load_file(folder / "model.safetensors")
    del state["classifier.bias"]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


def broken_adapter(folder):
    (folder / "adapter").mkdir()
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"\x10")


PUSH_FAULTS = [
    *WEIGHT_FAULTS,
    ("weights-miss-a-tensor", drop_classifier_bias,
     r"config\.json \+ weights: the weights do not fit MLPFusionForClassification .*missing keys: classifier\.bias"),
    ("config-not-json", lambda f: (f / "config.json").write_text("{"), r"config\.json: is not valid JSON"),
    ("broken-adapter-subfolder", broken_adapter, r"adapter/adapter_model\.safetensors: does not parse as safetensors"),
]


@pytest.mark.parametrize("corrupt, message", [c[1:] for c in PUSH_FAULTS], ids=[c[0] for c in PUSH_FAULTS])
def test_push_refuses_a_checkpoint_that_does_not_load(checkpoint, capsys, corrupt, message):
    corrupt(checkpoint)
    with pytest.raises(SystemExit) as exited:
        push.main([str(checkpoint), "--repo-id", "synib-org/never", "--endpoint", "http://127.0.0.1:9"])
    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"synib-hf push: error: checkpoint {checkpoint} does not load, so nothing was uploaded" in error
    assert re.search(message, error), error


@pytest.mark.parametrize(
    "folder, message",
    [("missing", r"checkpoint folder '.*missing' does not exist"),
     ("empty", r"'.*empty' holds no model: expected config.json \(or adapter_config.json\) and weights")],
    ids=["folder-does-not-exist", "folder-holds-no-model"],
)
def test_push_names_a_folder_that_is_not_a_checkpoint(tmp_path, capsys, folder, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exited:
        push.main([str(tmp_path / folder), "--repo-id", "synib-org/never", "--dry-run"])
    assert exited.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_push_of_a_good_checkpoint_verifies_and_reports_what_it_would_push(checkpoint, capsys):
    assert push.main([str(checkpoint), "--repo-id", "synib-org/never", "--dry-run"]) == 0
    assert "would push to synib-org/never in one commit: config.json, model.safetensors" in capsys.readouterr().out


# ---- the Hub: failures end in "nothing was committed", never a traceback --------------------------------------------


NOTHING_COMMITTED = (
    "Nothing was committed: the Hub applies a commit all at once, so the repo's files are as they were."
)


@pytest.fixture(scope="module")
def hub():
    from hub_server import LocalHub

    with LocalHub() as server:
        yield server


def push_in_subprocess(hub, checkpoint, tmp_path, *argv):
    from test_hub import client_env

    return subprocess.run([sys.executable, "-m", "synib_hf", "push", str(checkpoint), *argv],
                          env=client_env(hub, tmp_path / "cache"), capture_output=True, text=True, timeout=300)


def test_push_to_an_unreachable_endpoint_commits_nothing(hub, checkpoint, tmp_path):
    result = push_in_subprocess(hub, checkpoint, tmp_path, "--repo-id", "synib-org/away", "--endpoint",
                                "http://127.0.0.1:9")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "push to synib-org/away failed: ConnectError" in result.stderr and NOTHING_COMMITTED in result.stderr


def test_push_whose_lfs_upload_fails_commits_nothing(hub, checkpoint, tmp_path):
    hub.fail_lfs_uploads = True
    try:
        result = push_in_subprocess(hub, checkpoint, tmp_path, "--repo-id", "synib-org/lfs-down")
    finally:
        hub.fail_lfs_uploads = False
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    failed = "push to synib-org/lfs-down failed: RuntimeError: Error while uploading 'model.safetensors'"
    assert failed in result.stderr
    assert "the LFS storage refused the object" in result.stderr and NOTHING_COMMITTED in result.stderr
    assert [c.message for c in hub.repos["synib-org/lfs-down"].commits] == ["initial commit"]


# ---- model cards ---------------------------------------------------------------------------------------------------


def card_table(card):
    content = card.content
    return content[content.index("## Evaluation"):content.index("## Training")]


def reported(card):
    return {r.metric_name: r.metric_value for r in card.data.eval_results or []}


CARD_CASES = [
    ("metric-named-acc", {"eval_acc": 0.9}, {"acc": 0.9}, ["| acc | 0.9000 |"]),
    ("metric-given-as-a-string", {"eval_accuracy": "0.93"}, {"Accuracy": 0.93}, ["| Accuracy | 0.9300 |"]),
    ("numpy-float32-metric", {"eval_f1": np.float32(0.5)}, {"f1": 0.5}, ["| f1 | 0.5000 |"]),
    ("text-metric-shown-not-reported", {"eval_accuracy": 0.5, "eval_note": "a | b\nc"}, {"Accuracy": 0.5},
     [r"| note | a \| b c |"]),
    ("nan-shown-not-reported", {"eval_accuracy": 0.5, "eval_synergy_accuracy": math.nan}, {"Accuracy": 0.5},
     ["| Synergy-subset accuracy | nan |"]),
    ("loss-only-is-an-evaluation", {"eval_loss": 0.25}, {}, ["| loss | 0.2500 |"]),
    ("subset-accuracies-and-sizes", {"eval_cue_x1_accuracy": 0.75, "eval_synergy_size": 12},
     {"Cue-x1-subset accuracy": 0.75}, ["| Cue-x1-subset accuracy | 0.7500 |", "| Synergy-subset size | 12 |"]),
    ("timings-left-out", {"eval_accuracy": 1.0, "eval_runtime": 3.5, "eval_samples_per_second": 9.0, "epoch": 2.0},
     {"Accuracy": 1.0}, ["| Accuracy | 1.0000 |"]),
]


@pytest.mark.parametrize("metrics, in_model_index, in_table", [c[1:] for c in CARD_CASES],
                         ids=[c[0] for c in CARD_CASES])
def test_card_renders_what_was_measured(metrics, in_model_index, in_table):
    card = build_model_card("name", eval_metrics=metrics)
    table = card_table(card)
    assert reported(card) == in_model_index
    for line in in_table:
        assert line in table, table
    assert "No evaluation was run" not in table
    assert "runtime" not in table and "samples_per_second" not in table and "epoch" not in table


TEMPLATE_CASES = [
    ("variable-nobody-passes", "{{ developer }}", r"uses developer, which has no value"),
    ("metric-nobody-passes", "F1: {{ metrics.f1 }}", r"'dict object' has no attribute 'f1', so it has no value"),
    ("card-data-field-left-empty", "Base: {{ base_model }}", r"uses base_model, which has no value"),
]


@pytest.mark.parametrize("body, message", [c[1:] for c in TEMPLATE_CASES], ids=[c[0] for c in TEMPLATE_CASES])
def test_card_template_variable_without_a_value_fails_loudly(tmp_path, body, message):
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n\n# {{ model_name }}\n\n" + body + "\n")
    with pytest.raises(ValueError, match=f"model card template {template}.*{message}.*pass a value"):
        build_model_card("name", eval_metrics={"eval_accuracy": 0.5}, template_path=template)


def test_card_template_sees_the_metrics_passed(tmp_path):
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n\nF1 {{ metrics.f1 }}, accuracy {{ metrics.accuracy }}\n")
    card = build_model_card("name", eval_metrics={"eval_f1": 0.5, "eval_accuracy": "0.25"}, template_path=template)
    assert "F1 0.5, accuracy 0.25" in card.content


# ---- optional dependencies -------------------------------------------------------------------------------------


def irony_digits():
    from synib_hf.data.irony import irony_splits

    irony_splits("digits", rate=0.3, seed=0)


def unimodal_predictors():
    from synib_hf.synergy import train_unimodal_predictors

    train_unimodal_predictors({"x1": np.zeros((4, 2)), "x2": np.zeros((4, 2))}, np.array([0, 1, 0, 1]))


@pytest.mark.parametrize("call", [irony_digits, unimodal_predictors], ids=["irony-data", "unimodal-predictors"])
def test_missing_scikit_learn_names_the_extra(monkeypatch, call):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what `import sklearn` meets when it is not installed
    message = r"needs scikit-learn, which is not installed: pip install 'synib-hf\[sklearn\]'"
    with pytest.raises(ImportError, match=message):
        call()

