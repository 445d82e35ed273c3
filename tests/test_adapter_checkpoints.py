"""LoRA folders reload by themselves: `save_base_reference` writes what rebuilds the base (its config naming the
towers' checkpoints, or the base weights where no checkpoint holds them), and `from_pretrained(folder)` merges the
adapters back in — for fusion models built in code and for stock transformers models built from a config."""

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

import synib_hf  # noqa: F401  (registers the Auto classes)
from synib_hf import FusionForSequenceClassification, lora_config_for
from synib_hf.checkpoints import CheckpointError
from synib_hf.models.adapter_checkpoints import save_base_reference
from tiny_models import tiny_fusion


def trained(peft_model):
    """The adapters and heads moved away from their initial values, as training would."""
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    return peft_model.eval()


def probe():
    generator = torch.Generator().manual_seed(0)
    return {"pixel_values": torch.randn(3, 3, 30, 30, generator=generator),
            "input_ids": torch.randint(5, 40, (3, 7), generator=generator),
            "attention_mask": torch.ones(3, 7, dtype=torch.long)}


@pytest.fixture
def towers(tmp_path):
    """A fusion model whose towers come from checkpoints (two local folders), as `from_vision_text_pretrained`."""
    model = tiny_fusion()
    model.vision_model.save_pretrained(tmp_path / "vision")
    model.text_model.save_pretrained(tmp_path / "text")
    return FusionForSequenceClassification.from_vision_text_pretrained(
        str(tmp_path / "vision"), str(tmp_path / "text"), projection_dim=16, fusion_hidden_size=32,
        id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1})


def test_towers_from_checkpoints_need_only_the_config(towers, tmp_path):
    peft_model = trained(get_peft_model(towers, lora_config_for(towers, r=2)))
    with torch.no_grad():
        expected = peft_model(**probe()).logits
    peft_model.save_pretrained(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "adapter_config.json").read_text())["base_model_name_or_path"] is None
    assert save_base_reference(peft_model, tmp_path / "out") == "config"
    assert not (tmp_path / "out" / "model.safetensors").exists()
    for loader in (FusionForSequenceClassification, AutoModelForSequenceClassification):
        loaded = loader.from_pretrained(tmp_path / "out")
        assert type(loaded) is FusionForSequenceClassification and loaded.config.id2label == {0: "no", 1: "yes"}
        with torch.no_grad():
            torch.testing.assert_close(loaded(**probe()).logits, expected)


def test_towers_built_from_a_config_are_saved_beside_the_adapter(tmp_path):
    model = tiny_fusion()  # random towers, adapters on both: no checkpoint holds their base weights
    peft_model = trained(get_peft_model(model, lora_config_for(model, r=2)))
    with torch.no_grad():
        expected = peft_model(**probe()).logits
    peft_model.save_pretrained(tmp_path / "out")
    assert save_base_reference(peft_model, tmp_path / "out") == "config+weights"
    saved = (tmp_path / "out" / "model.safetensors")
    from safetensors import safe_open

    with safe_open(saved, "pt") as weights:
        assert not [key for key in weights.keys() if "lora_" in key or "base_layer" in key or "original_module" in key]
    with torch.no_grad():
        torch.testing.assert_close(AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")(**probe()).logits,
                                   expected)


def test_a_stock_model_built_from_a_config_reloads_with_its_own_class(tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=4, intermediate_size=37))
    peft_model = trained(get_peft_model(model, LoraConfig(r=2, target_modules=["query", "value"],
                                                          modules_to_save=["classifier"])))
    ids = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
    peft_model.save_pretrained(tmp_path / "out")
    assert save_base_reference(peft_model, tmp_path / "out") == "config+weights"
    loaded = BertForSequenceClassification.from_pretrained(tmp_path / "out").eval()  # transformers: base + adapter
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected)


def test_a_base_with_a_name_is_left_to_peft(towers, tmp_path):
    towers.save_pretrained(tmp_path / "base")
    base = FusionForSequenceClassification.from_pretrained(tmp_path / "base")
    peft_model = get_peft_model(base, lora_config_for(base, r=2))
    peft_model.save_pretrained(tmp_path / "out")
    assert save_base_reference(peft_model, tmp_path / "out") is None
    assert json.loads((tmp_path / "out" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tmp_path / "base")
    assert save_base_reference(base, tmp_path / "out") is None  # not a PeftModel


def test_an_adapter_whose_base_cannot_be_rebuilt_is_named(tmp_path):
    model = tiny_fusion()
    peft_model = get_peft_model(model, lora_config_for(model, r=2))
    peft_model.save_pretrained(tmp_path / "out")
    model.config.save_pretrained(tmp_path / "out")  # a config, but the random towers' weights are nowhere
    with pytest.raises(CheckpointError, match="holds an adapter whose base cannot be rebuilt: the weights "
                                              "vision_model.*save_base_reference"):
        FusionForSequenceClassification.from_pretrained(tmp_path / "out")
