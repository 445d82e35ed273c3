import torch
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers import AutoModelForSequenceClassification

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import SynIBConfig, SynIBTrainer
from synib_hf.model_card import build_model_card
from tiny_models import as_dataset, mlp_fusion, vector_xor


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def test_every_saved_checkpoint_has_a_card_with_the_evaluation_it_ran(tmp_path):
    model = mlp_fusion()
    args = SynIBConfig(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True, max_steps=2,
                       synib_weight=0.3, mask_type="full", eval_strategy="steps", eval_steps=2,
                       save_strategy="steps", save_steps=2, disable_tqdm=True)
    trainer = SynIBTrainer(model=model, args=args, train_dataset=as_dataset(vector_xor(16)),
                           eval_dataset=as_dataset(vector_xor(16, seed=1)), compute_metrics=accuracy)
    trainer.train()
    card = ModelCard.load(tmp_path / "run" / "checkpoint-2" / "README.md")
    evaluation = next(h for h in trainer.state.log_history if "eval_accuracy" in h)
    _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    reported = {r.metric_name: r.metric_value for r in results}
    assert reported["Accuracy"] == round(evaluation["eval_accuracy"], 6)
    assert reported["Accuracy with x1 removed (full mask)"] == round(evaluation["eval_synib/masked_accuracy_x1"], 6)
    assert {"synib", "multimodal"} <= set(card.data.tags)
    assert "| `synib_weight` | `0.3` |" in card.content and "| `mask_type` | `full` |" in card.content
    assert str(tmp_path) not in card.content
    assert card.data.model_name == "run"  # the run's name, not the checkpoint folder


def test_saved_checkpoint_loads_through_the_auto_classes_with_identical_logits(tmp_path):
    model = mlp_fusion()
    trainer = SynIBTrainer(model=model, args=SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True,
                                                         max_steps=1, disable_tqdm=True),
                           train_dataset=as_dataset(vector_xor(16)))
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "final")
    assert type(loaded) is type(model)
    inputs = {"x1": torch.randn(4, 6), "x2": torch.randn(4, 6)}
    model.eval()
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
    assert (tmp_path / "final" / "README.md").exists()


def test_card_never_shows_a_token_or_local_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    card = build_model_card("name", eval_metrics={"eval_accuracy": 0.5, "eval_loss": 1.0})
    assert "hf_secret_token_value" not in str(card) and "/tmp" not in str(card)
    assert [r.metric_name for r in card.data.eval_results] == ["Accuracy"]


def test_masked_view_accuracies_are_labelled_with_the_mask_that_produced_them():
    metrics = {"eval_accuracy": 1.0, "eval_synib/masked_accuracy_image": 1.0, "eval_synib/full_mask_accuracy_image": 0.5}
    shown = {settings.get("mask_type", "random"): [r.metric_name for r in build_model_card(
        "m", eval_metrics=metrics, hyperparameters=settings).data.eval_results][1:]
        for settings in ({"mask_type": "learned"}, {"mask_ratio": 0.3, "mask_fill": "shuffle"}, {"mask_type": "full"})}
    assert shown["learned"] == ["Accuracy with image partly masked (learned mask: per-example gates, not the modality "
                                "removed)", "Accuracy with image removed (full mask)"]
    assert shown["random"][0] == "Accuracy with image masked (random mask, 30% of its features, shuffle fill)"
    assert shown["full"][0] == "Accuracy with image removed (full mask)"


def test_an_unpublished_card_loads_its_folder_first_and_shows_the_hub_id_as_once_published():
    local = str(build_model_card("xor-synib", repo_id="org/xor-synib", published=False, local_path="runs/xor"))
    assert 'from_pretrained("runs/xor")' in local
    assert '# once published on the Hub (synib-hf push runs/xor --repo-id org/xor-synib):' in local
    published = str(build_model_card("xor-synib", repo_id="org/xor-synib"))
    assert 'model = AutoModelForSequenceClassification.from_pretrained("org/xor-synib")' in published
    assert "once published" not in published


def test_the_released_cards_read_right():
    """The committed cards: unpublished models load from a folder first; the tiny CLIP + DeBERTa card labels its
    learned-mask figures and shows the accuracy with each modality removed, at chance on its pure-synergy data."""
    from pathlib import Path

    released = Path(__file__).resolve().parent.parent / "model_cards" / "released"
    for path in released.glob("*.md"):
        text = path.read_text()
        assert "# once published on the Hub" in text, path.name
    tiny = {r.metric_name: r.metric_value
            for r in ModelCard.load(released / "tiny-clip-deberta-synib.md").data.eval_results}
    assert all("partly masked (learned mask" in name for name in tiny if "masked" in name)
    assert all(abs(tiny[f"Accuracy with {m} removed (full mask)"] - 0.5) < 0.1 for m in ("image", "text"))


def test_the_synergy_subset_is_shown_beside_its_chance_reference_and_the_ground_truth_slice():
    metrics = {"eval_accuracy": 0.9, "eval_synergy_accuracy": 0.6, "eval_synergy_size": 20,
               "eval_synergy_chance": 0.25,
               "eval_ground_truth_irony_class_accuracy": 0.7, "eval_ground_truth_irony_class_size": 11,
               "eval_ground_truth_synergy_accuracy": 0.8, "eval_ground_truth_synergy_size": 5}
    card = build_model_card("m", eval_metrics=metrics)
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {
        "Accuracy": 0.9, "Synergy-subset accuracy": 0.6, "Accuracy on the irony class (ground-truth synergy)": 0.7,
        "Accuracy on the ground-truth synergy slice": 0.8}  # a chance reference or a size is not a score
    chance = "| Synergy-subset chance reference (1/C: uniform guessing over the C = 4 classes) | 0.2500 |"
    assert chance in card.content
    assert "| Examples in the irony class (ground-truth synergy) | 11 |" in card.content
    assert "| Synergy-subset size | 20 |" in card.content


def test_the_released_synergy_cards_carry_size_chance_and_ground_truth():
    """xor-synib and irony-digits-synib: the synergy subset with its size, its chance reference (1/C; never in the
    model-index) and the accuracy on the data's ground-truth synergy slice."""
    from pathlib import Path

    released = Path(__file__).resolve().parent.parent / "model_cards" / "released"
    for name, classes, ground_truth in (
        ("xor-synib", 2, "the synergy slice, the examples generated as synergistic (ground-truth synergy)"),
        ("irony-digits-synib", 11, "the irony class (ground-truth synergy)"),
    ):
        card = ModelCard.load(released / f"{name}.md")
        reported = {r.metric_name: r.metric_value for r in card.data.eval_results}
        assert {"Synergy-subset accuracy", f"Accuracy on {ground_truth}"} <= set(reported), name
        assert not any("chance" in metric or "size" in metric or "Examples in" in metric for metric in reported)
        table = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1].rstrip(" |")
                 for line in card.content.splitlines() if line.startswith("| ") and " | " in line}
        chance = f"Synergy-subset chance reference (1/C: uniform guessing over the C = {classes} classes)"
        assert float(table[chance]) == round(1 / classes, 4), name
        assert int(table["Synergy-subset size"]) > 0 and int(table[f"Examples in {ground_truth}"]) > 0, name
