import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoProcessor, TrainerCallback

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import FusionForSequenceClassification, FusionProcessor, SynIBConfig, SynIBTrainer
from tiny_models import CLIPWithHead, as_dataset, fusion_rows, tiny_fusion, tiny_fusion_processor


def batch(n=4):
    return {k: torch.tensor(v) for k, v in fusion_rows(n).items()}


def test_forward_returns_clean_and_unimodal_logits():
    model = tiny_fusion()
    out = model(**batch(), output_unimodal_logits=True)
    assert out.logits.shape == (4, 2) and out.unimodal_logits.shape == (2, 4, 2) and out.loss.ndim == 0
    assert out.fused_loss.ndim == 0 and out.fused_loss <= out.loss
    plain = model(**batch())  # a plain forward is (loss, logits): Trainer.predict gives one array
    assert plain.unimodal_logits is None and len(plain.to_tuple()) == 2


def test_save_pretrained_round_trip_through_the_auto_classes(tmp_path):
    model = tiny_fusion().eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "synib_fusion"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is FusionForSequenceClassification
    inputs = {k: v for k, v in batch().items() if k != "labels"}
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_processor_round_trip(tmp_path):
    processor = tiny_fusion_processor()
    processor.save_pretrained(tmp_path)
    tiny_fusion().save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is FusionProcessor
    assert loaded.tokenizer("a cat")["input_ids"] == processor.tokenizer("a cat")["input_ids"]
    assert loaded.image_processor.crop_size == processor.image_processor.crop_size


def test_from_vision_text_pretrained_takes_the_towers_weights(tmp_path):
    clip = CLIPWithHead().clip  # a full CLIPModel checkpoint: its vision tower is used
    clip.save_pretrained(tmp_path / "clip")
    text = AutoModel.from_config(tiny_fusion().config.text_config)
    text.save_pretrained(tmp_path / "deberta")
    model = FusionForSequenceClassification.from_vision_text_pretrained(
        str(tmp_path / "clip"), str(tmp_path / "deberta"), num_labels=3, projection_dim=8
    )
    assert model.config.vision_config.model_type == "clip_vision_model" and model.config.num_labels == 3
    clip_vision = {k.removeprefix("vision_model."): v for k, v in clip.state_dict().items() if k.startswith("vision_model.")}
    ours = {k.removeprefix("vision_model."): v for k, v in model.state_dict().items() if k.startswith("vision_model.")}
    assert clip_vision.keys() == ours.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], clip_vision[key], rtol=0, atol=0)
    for key, value in text.state_dict().items():
        torch.testing.assert_close(model.text_model.state_dict()[key], value, rtol=0, atol=0)
    assert model.config.vision_name_or_path.endswith("clip")


def test_trainer_uses_the_native_path_and_runs_each_tower_once_per_step(tmp_path):
    model = tiny_fusion()
    calls = {"vision": 0, "text": 0}
    model.vision_model.register_forward_hook(lambda *_: calls.__setitem__("vision", calls["vision"] + 1))
    model.text_model.register_forward_hook(lambda *_: calls.__setitem__("text", calls["text"] + 1))

    class CountSteps(TrainerCallback):  # from the first step on: the first-batch check runs one forward before it
        def on_train_begin(self, *args, **kwargs):
            calls.update(vision=0, text=0)

    trainer = SynIBTrainer(
        model=model,
        args=SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=3, synib_weight=1.0,
                         mask_type="learned", per_device_train_batch_size=4, disable_tqdm=True, save_strategy="no",
                         logging_steps=1),
        train_dataset=as_dataset(fusion_rows(12)), callbacks=[CountSteps()],
    )
    assert trainer.view_builder.name == "native"
    trainer.train()
    assert calls == {"vision": 3, "text": 3}
    assert "synib/penalty_image" in trainer.state.log_history[0]


@pytest.mark.parametrize("mask_type", ["random", "learned"])
def test_bf16_training_with_deberta_v2(tmp_path, mask_type):
    model = tiny_fusion()
    before = {k: v.clone() for k, v in model.named_parameters()}
    trainer = SynIBTrainer(
        model=model,
        args=SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=True, max_steps=2,
                         synib_weight=1.0, mask_type=mask_type, per_device_train_batch_size=4, learning_rate=1e-2,
                         disable_tqdm=True, save_strategy="no", logging_steps=1),
        train_dataset=as_dataset(fusion_rows(8)),
    )
    trainer.train()
    log = trainer.state.log_history[0]
    assert torch.isfinite(torch.tensor([log["loss"], log["synib/penalty_text"], log["synib/penalty_image"]])).all()
    changed = [k for k, v in model.named_parameters() if not torch.equal(before[k], v)]
    assert any(k.startswith("text_model.") for k in changed) and any(k.startswith("vision_model.") for k in changed)


def test_label_count_survives_save_and_load(tmp_path):
    from tiny_models import mlp_fusion

    for model in (tiny_fusion(num_labels=5), mlp_fusion(num_labels=11)):
        model.save_pretrained(tmp_path / type(model).__name__)
        loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / type(model).__name__)
        assert loaded.config.num_labels == model.config.num_labels
        assert loaded.classifier.weight.shape == model.classifier.weight.shape


def test_deduplicated_text_gives_the_same_logits_and_runs_the_tower_on_distinct_texts_only():
    plain, deduplicated = tiny_fusion().eval(), tiny_fusion(deduplicate_text=True).eval()
    inputs = {k: v for k, v in batch(6).items() if k != "labels"}
    for key in ("input_ids", "attention_mask"):
        inputs[key] = inputs[key][[0, 1, 0, 2, 1, 0]]  # three distinct texts among six examples
    seen = []
    deduplicated.text_model.register_forward_hook(
        lambda module, args, kwargs, output: seen.append(kwargs["input_ids"]), with_kwargs=True
    )
    with torch.no_grad():
        expected, got = plain(**inputs).logits, deduplicated(**inputs).logits
    assert seen[0].shape[0] == 3
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_cnn_vision_tower_built_from_a_config_pools_to_its_last_width():
    from transformers import ResNetConfig

    vision = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    model = tiny_fusion(vision_config=vision).eval()
    assert model.vision_projection.in_features == 12
    out = model(**{k: v for k, v in batch().items() if k != "labels"})
    assert out.logits.shape == (4, 2)


def test_concat_product_fusion_reads_the_features_and_their_product(tmp_path):
    model = tiny_fusion(fusion_type="concat_product").eval()
    assert model.fusion[2].in_features == 3 * model.config.projection_dim
    inputs = {k: v for k, v in batch().items() if k != "labels"}
    with torch.no_grad():
        features = {m: model.synib_encode(m, inputs) for m in model.synib_modalities}
        image, text = features["image"], features["text"]
        hidden = torch.nn.functional.gelu(model.fusion[2](torch.cat([image, text, image * text], dim=-1)))
        torch.testing.assert_close(model(**inputs).logits, model.classifier(hidden), rtol=0, atol=0)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.fusion_type == "concat_product"
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_the_default_fusion_keeps_its_layers_and_an_unknown_fusion_type_is_named():
    model = tiny_fusion()
    assert model.config.fusion_type == "concat" and set(model.fusion.state_dict()) == {"1.weight", "1.bias"}
    assert model.fusion[1].in_features == 2 * model.config.projection_dim
    with pytest.raises(ValueError, match="fusion_type='bilinear'"):
        tiny_fusion(fusion_type="bilinear")


def test_synib_masks_reach_the_product_in_the_fusion_head(tmp_path):
    model = tiny_fusion(fusion_type="concat_product")
    trainer = SynIBTrainer(
        model=model,
        args=SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=2, synib_weight=1.0,
                         mask_type="random", mask_ratio=0.3, mask_fill="shuffle", per_device_train_batch_size=4,
                         disable_tqdm=True, save_strategy="no", logging_steps=1),
        train_dataset=as_dataset(fusion_rows(8)),
    )
    assert trainer.view_builder.name == "native"  # encoders once, the fusion head per masked view
    trainer.train()
    log = trainer.state.log_history[0]
    assert torch.isfinite(torch.tensor([log["loss"], log["synib/penalty_text"], log["synib/penalty_image"]])).all()
