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
