"""LoRA presets for VLMs: adapters on the language model only (the vision tower stays frozen) unless asked."""

import re

import pytest
import torch
from peft import LoraConfig, get_peft_model

from synib_hf import VLMClassificationConfig, VLMForSequenceClassification, vlm_lora_config
from synib_hf.generative import candidate_token_ids
from synib_hf.masking import MaskRandomness, MaskSpec
from synib_hf.models.vlm import embedding_views
from synib_hf.models.vlm.families import language_model_name, vision_module_names
from synib_hf.penalties import kl_uniform
from tiny_vlms import CANDIDATES, FAMILIES, random_batch, tiny_vlm, tiny_vlm_config, tiny_vlm_tokenizer


def lora_modules(model):
    return [name for name, module in model.named_modules() if hasattr(module, "lora_A")]


@pytest.mark.parametrize("family", FAMILIES)
def test_preset_adapts_only_the_language_model_and_a_step_leaves_the_vision_side_unchanged(family):
    base = tiny_vlm(family).train()
    vision = tuple(vision_module_names(base))
    language = language_model_name(base)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = get_peft_model(base, vlm_lora_config(base, r=4, lora_dropout=0.0))
    adapted = lora_modules(model.get_base_model())
    assert adapted and all(name.startswith(language + ".") for name in adapted)
    assert {name.rsplit(".", 1)[1] for name in adapted} == {"q_proj", "v_proj"}
    trainable = [name for name, p in model.get_base_model().named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    for _ in range(2):  # the first step moves B away from zero, the second moves A too
        model(**random_batch(family, 2), use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = model.get_base_model().state_dict()
    for key, value in before.items():
        stored = key if key in after else re.sub(r"\.(weight|bias)$", r".base_layer.\1", key)
        assert torch.equal(after[stored], value), key  # no base weight moved, vision or language
    assert any(after[k].abs().sum() > 0 for k in after if "lora_B" in k)
    assert vision and all(not any(name.startswith(v + ".") for v in vision) for name in adapted)


@pytest.mark.parametrize("family", ["llava", "idefics3", "smolvlm", "paligemma", "gemma3"])
def test_a_bare_q_v_target_list_would_adapt_the_vision_tower(family):
    """Why the preset anchors its pattern: the towers of these families name their projections q_proj/v_proj too."""
    base = tiny_vlm(family)
    vision = tuple(vision_module_names(base))
    adapted = lora_modules(get_peft_model(base, LoraConfig(target_modules=["q_proj", "v_proj"])).get_base_model())
    assert any(name.startswith(vision) for name in adapted)


@pytest.mark.parametrize("family", ["llava", "qwen2_vl", "idefics3"])
def test_include_vision_adds_the_towers_attention(family):
    base = tiny_vlm(family)
    vision = tuple(vision_module_names(base))
    adapted = lora_modules(get_peft_model(base, vlm_lora_config(base, include_vision=True)).get_base_model())
    tower = [name for name in adapted if name.startswith(vision)]
    assert tower and len(tower) < len(adapted)


def test_classifier_preset_trains_the_heads_in_full():
    torch.manual_seed(0)
    model = VLMForSequenceClassification(VLMClassificationConfig(vlm_config=tiny_vlm_config("qwen3_vl"),
                                                                 logvar_head=True))
    config = vlm_lora_config(model)
    assert set(config.modules_to_save) == {"readout_norm", "classifier", "logvar"}
    peft_model = get_peft_model(model, config)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("classifier.modules_to_save" in name for name in trainable)
    assert all("lora_" in name or "modules_to_save" in name for name in trainable)
    assert all(name.removeprefix("base_model.model.").startswith(("model.language_model", "readout_norm", "classifier",
                                                                   "logvar")) for name in trainable)


def test_lora_gradients_of_lean_and_full_logits_agree():
    tokenizer = tiny_vlm_tokenizer()
    candidates = candidate_token_ids(tokenizer, CANDIDATES)
    base = tiny_vlm("llava")
    model = get_peft_model(base, vlm_lora_config(base, r=4, lora_dropout=0.0, init_lora_weights=False))
    grads = []
    for lean in (True, False):
        spec = MaskSpec(mask_type="full", mask_fill="zero")
        views = embedding_views(base, spec, MaskRandomness(0), tokenizer.all_special_ids)
        readout = views.generative(model, random_batch("llava", 4), candidates, (None, "image", "text"),
                                   training=True, lean_logits=lean)
        (readout.task_loss + kl_uniform(readout.masked_logits.flatten(0, 1)).sum()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        model.zero_grad()
    assert grads[0].keys() == grads[1].keys() and all("lora_" in n for n in grads[0]) and len(grads[0]) == 8
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-7, msg=name)
