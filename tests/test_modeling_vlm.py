"""`VLMForSequenceClassification`: the authors' classification-head variant around any supported VLM."""

import functools

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import VLMClassificationConfig, VLMForSequenceClassification
from synib_hf.masking import MaskRandomness, MaskSpec
from synib_hf.models.vlm import embedding_views
from synib_hf.penalties import gaussian, kl_uniform
from tiny_vlms import FAMILIES, PAD, VOCAB, random_batch, tiny_vlm, tiny_vlm_config, tiny_vlm_tokenizer


@functools.lru_cache(maxsize=None)
def classifier(family, logvar_head=True, readout_token_id=None):
    torch.manual_seed(0)
    config = VLMClassificationConfig(vlm_config=tiny_vlm_config(family), num_labels=3, logvar_head=logvar_head,
                                     readout_token_id=readout_token_id)
    model = VLMForSequenceClassification(config)
    if family == "gemma3":  # its projector starts at zero, so a fresh model would ignore the image
        torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.5)
    return model.eval()


def class_batch(family, n=4, seed=0):
    batch = random_batch(family, n, seed=seed)
    batch["labels"] = torch.arange(n) % 3  # one class per example
    return batch


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_gives_class_logits_logvar_and_loss(family):
    out = classifier(family)(**class_batch(family))
    assert out.logits.shape == (4, 3) and out.logvar.shape == (4, 3) and out.loss.ndim == 0
    out.loss.backward()
    assert classifier(family).classifier.weight.grad.abs().sum() > 0
    classifier(family).zero_grad()


def test_readout_is_the_last_attended_token_or_the_last_readout_token():
    model = classifier("llava")
    ids = torch.tensor([[5, 6, 7, PAD], [PAD, 5, 6, 7]])
    attention = (ids != PAD).long()
    assert model.readout_positions(ids, attention).tolist() == [2, 3]  # right and left padding
    cls = VOCAB["<cls>"]
    with_cls = classifier("llava", readout_token_id=cls)
    assert with_cls.readout_positions(torch.tensor([[cls, 5, cls, 6], [5, cls, 6, 7]])).tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"Examples \[1\] lack the read-out token.*'<CLS>'"):
        with_cls.readout_positions(torch.tensor([[cls, 5], [5, 6]]))


def test_the_feature_is_read_at_the_readout_position():
    """Tokens after the read-out position cannot change the logits (causal attention)."""
    model = classifier("qwen2_vl", readout_token_id=VOCAB["ASSISTANT:"])
    batch = class_batch("qwen2_vl")
    changed = {**batch, "input_ids": batch["input_ids"].clone()}
    changed["input_ids"][:, -1] = VOCAB["w3"]  # after ASSISTANT:
    with torch.no_grad():
        torch.testing.assert_close(model(**changed).logits, model(**batch).logits, rtol=0, atol=1e-6)


def test_wrapping_a_pretrained_vlm_keeps_its_weights(tmp_path):
    generative = tiny_vlm("qwen3_vl")
    generative.save_pretrained(tmp_path / "vlm")
    model = VLMForSequenceClassification.from_vlm_pretrained(str(tmp_path / "vlm"), num_labels=2, logvar_head=True)
    expected = AutoModel.from_pretrained(tmp_path / "vlm").state_dict()
    assert expected.keys() == model.model.state_dict().keys()
    for key, value in model.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
    torch.testing.assert_close(model.model.language_model.embed_tokens.weight,
                               generative.model.language_model.embed_tokens.weight, rtol=0, atol=0)
    assert model.config.vlm_name_or_path == str(tmp_path / "vlm") and model.config.num_labels == 2


def test_save_and_load_through_the_auto_classes(tmp_path):
    model = classifier("smolvlm")
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "synib_vlm"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is VLMForSequenceClassification and loaded.config.vlm_config.model_type == "smolvlm"
    batch = {k: v for k, v in class_batch("smolvlm").items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)
        torch.testing.assert_close(loaded(**batch).logvar, model(**batch).logvar, rtol=0, atol=0)


@pytest.mark.parametrize("family", ["llava", "qwen3_vl", "paligemma"])
def test_embedding_views_and_every_penalty_apply(family):
    model = classifier(family)
    tokenizer = tiny_vlm_tokenizer()
    batch, changed = class_batch(family, seed=0), class_batch(family, seed=1)
    changed = {**batch, "pixel_values": changed["pixel_values"]}
    spec = MaskSpec(mask_type="full", mask_fill="zero")
    runner = embedding_views(model, spec, MaskRandomness(0), tokenizer.all_special_ids)
    readouts = [runner.classification(model, b, (None, "image", "text"), training=False) for b in (batch, changed)]
    first = readouts[0]
    assert first.masked_logits.shape == (2, 4, 3) and first.masked_logvar.shape == (2, 4, 3)
    torch.testing.assert_close(first.logits, model(**batch).logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(readouts[1].masked_logits[0], first.masked_logits[0], rtol=0, atol=1e-6)
    assert (readouts[1].logits - first.logits).abs().max() > 1e-4
    penalty = kl_uniform(first.masked_logits.flatten(0, 1)).sum() + gaussian(
        first.masked_logits.flatten(0, 1), first.masked_logvar.flatten(0, 1)).sum()
    (first.task_loss + penalty).backward()
    assert model.logvar.weight.grad.abs().sum() > 0 and model.readout_norm.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="vlm_config needs a 'model_type'"):
        VLMClassificationConfig(vlm_config={"hidden_size": 3})
    with pytest.raises(ValueError, match="classifier_dropout must be in"):
        VLMClassificationConfig(vlm_config=tiny_vlm_config("llava"), classifier_dropout=1.5)
    with pytest.raises(ValueError, match="needs config.vlm_config"):
        VLMForSequenceClassification(VLMClassificationConfig())
