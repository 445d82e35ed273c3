"""The released `minilm-easyvqa-synib`: its committed card's numbers are those of its committed weights (the LoRA
adapters plus the towers and heads trained in full, on the pretrained MiniLM from the `vqa` extra)."""

from pathlib import Path

from huggingface_hub import ModelCard
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, set_seed

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf.cli import train as train_cli
from synib_hf.data.easy_vqa import evaluate_on_easy_vqa, load_easy_vqa
from synib_hf.model_card import metric_rows


RELEASED = Path(__file__).resolve().parent.parent / "model_cards" / "released"


def test_released_card_numbers_equal_a_re_evaluation_of_the_released_weights(tmp_path):
    card = ModelCard.load(RELEASED / "minilm-easyvqa-synib.md")
    reported = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert "Accuracy on yes/no questions, each question's prior taken out (ground-truth synergy)" in reported
    # the released weights: the recipe's base (pretrained MiniLM; the rest is replaced by the adapter's copies),
    # the committed adapters merged in, saved and re-loaded as a user loads the released folder
    _, model_args, _ = train_cli.parse(["easy_vqa_minilm_lora", "--output_dir", str(tmp_path)])
    set_seed(0)
    base, processor = train_cli.build_pretrained(model_args, num_labels=13)
    merged = PeftModel.from_pretrained(base, RELEASED / "minilm-easyvqa-synib-adapter").merge_and_unload()
    merged.save_pretrained(tmp_path / "released")
    released = AutoModelForSequenceClassification.from_pretrained(tmp_path / "released")
    test = load_easy_vqa()["test"]
    rows = metric_rows({f"eval_{k}": v for k, v in evaluate_on_easy_vqa(released, processor, test).items()})
    measured = {row.name: round(row.value, 6) for row in rows if row.reported}
    assert measured == reported
    assert card.data.eval_results[0].dataset_name == f"easy-VQA test split ({len(test)} questions)"  # all of them


LOAD_SHIPPED = r"""
import sys, torch, synib_hf
from transformers import AutoModelForSequenceClassification, AutoProcessor
from synib_hf import FusionForSequenceClassification, ImageTextCollator
from synib_hf.data.easy_vqa import load_easy_vqa

folder = sys.argv[1]
model = FusionForSequenceClassification.from_pretrained(folder)
auto = AutoModelForSequenceClassification.from_pretrained(folder)
processor = AutoProcessor.from_pretrained(folder)
test = load_easy_vqa(test_questions=256)["test"]
batch = ImageTextCollator(processor, text_column="question")(list(test))
labels = batch.pop("labels")
with torch.no_grad():
    logits = model(**batch).logits
    assert torch.equal(logits, auto(**batch).logits)
answers = [model.config.id2label[int(i)] for i in logits.argmax(-1)]
print("accuracy", float((logits.argmax(-1) == labels).float().mean()))
print("answers", sorted(set(answers)))
"""


def test_the_shipped_adapter_folder_loads_offline_with_from_pretrained_and_answers_by_name(tmp_path):
    """`from_pretrained(folder)` with HF_HUB_OFFLINE=1: the base is the packaged MiniLM (the `vqa` extra) plus the
    ResNet and heads saved with the adapters; predictions come out as answer names."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", LOAD_SHIPPED, str(RELEASED / "minilm-easyvqa-synib-adapter")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(result.stdout.split("accuracy ")[1].split()[0])
    assert accuracy > 0.75  # the card: 0.87 on the whole test split
    answers = eval(result.stdout.split("answers ")[1])
    assert {"yes", "no"} <= set(answers) and all(not a.startswith("LABEL_") for a in answers)
    assert "Warning" not in result.stderr
