import pytest
import torch
from transformers import AutoModelForSequenceClassification

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import MLPFusionConfig, MLPFusionForClassification, SynIBConfig, SynIBTrainer
from tiny_models import as_dataset, mlp_fusion, vector_xor


def test_authors_xor_is_the_authors_network():
    model = MLPFusionForClassification(MLPFusionConfig.authors_xor())
    encoder = model.encoders["x1"]
    assert [type(layer).__name__ for layer in encoder] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert isinstance(model.norm, torch.nn.Identity)
    assert [layer.out_features for layer in model.fusion if isinstance(layer, torch.nn.Linear)] == [128, 128]
    assert model.fusion[0].in_features == 2 * 256 and model.classifier.out_features == 1
    features = model.synib_encode("x1", {"x1": torch.randn(5, 32)})
    assert features.shape == (5, 256) and bool((features >= 0).all())  # rectified, not normalised


def test_default_architecture_is_unchanged():
    model = mlp_fusion()
    assert [type(layer).__name__ for layer in model.encoders["x1"]] == ["Linear", "ReLU", "Linear"]
    assert isinstance(model.norm, torch.nn.LayerNorm)
    assert model.config.fusion_hidden_sizes == [16] and model.classifier.in_features == 16


def test_one_logit_head_round_trips_through_the_auto_classes(tmp_path):
    torch.manual_seed(0)
    model = MLPFusionForClassification(MLPFusionConfig.authors_xor({"x1": 6, "x2": 6}, hidden_size=16,
                                                                   fusion_hidden_sizes=[8, 4], logvar_head=True))
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config.num_labels == 1 and loaded.config.fusion_hidden_sizes == [8, 4]
    assert loaded.config.encoder_output_activation and not loaded.config.normalize_features
    inputs = {"x1": torch.randn(3, 6), "x2": torch.randn(3, 6)}
    model.eval()
    loaded.eval()
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
    assert loaded.logvar.in_features == 4  # the logvar head reads the last fusion layer


@pytest.mark.parametrize("options, message", [
    (dict(num_labels=0), "num_labels must be 1"),
    (dict(fusion_hidden_sizes=[8, 0]), "fusion_hidden_sizes must be positive"),
])
def test_bad_architecture_options_name_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        MLPFusionConfig(modality_dims={"x1": 4, "x2": 4}, **options)


@pytest.mark.parametrize("mask_type, penalty", [("random", "kl_uniform"), ("learned", "kl_uniform"),
                                                ("random", "gaussian")])
def test_one_logit_head_trains_with_every_mask_and_reports_masked_accuracy(tmp_path, mask_type, penalty):
    model = mlp_fusion(num_labels=1, normalize_features=False, encoder_output_activation=True,
                       fusion_hidden_sizes=[8, 8], logvar_head=penalty == "gaussian")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    data = as_dataset(vector_xor(32))
    args = SynIBConfig(output_dir=str(tmp_path), synib_weight=1.0, mask_type=mask_type, synib_penalty=penalty,
                       learned_mask_steps=2, max_steps=2, per_device_train_batch_size=8, learning_rate=1e-2,
                       report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=1)
    trainer = SynIBTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    trainer.train()
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_synib/masked_accuracy_x1"] <= 1.0
    assert 0.5 <= metrics["eval_synib/masked_max_prob_x2"] <= 1.0  # a one-logit head is a Bernoulli
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert "classifier.weight" in changed and "encoders.x1.0.weight" in changed
