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
