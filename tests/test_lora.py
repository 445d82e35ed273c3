import pytest
import torch
from peft import PeftModel

from synib_hf import FusionForSequenceClassification, SynIBConfig, SynIBTrainer, lora_config_for
from tiny_models import as_dataset, fusion_rows, tiny_fusion


def inputs():
    return {k: torch.tensor(v) for k, v in fusion_rows(4, seed=3).items() if k != "labels"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lora")
    base = tiny_fusion()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    trainer = SynIBTrainer(
        model=base,
        args=SynIBConfig(output_dir=str(directory), report_to="none", use_cpu=True, max_steps=3, synib_weight=1.0,
                         per_device_train_batch_size=4, learning_rate=5e-2, disable_tqdm=True, save_strategy="no"),
        train_dataset=as_dataset(fusion_rows(12)),
        peft_config=lora_config_for(base, r=4),
    )
    trainer.train()
    trainer.save_model(str(directory / "adapters"))
    return trainer, base_state, directory


def test_base_weights_stay_frozen_and_adapters_and_heads_train(trained):
    trainer, base_state, _ = trained
    model = trainer.model
    assert isinstance(model, PeftModel) and trainer.view_builder.name == "native"
    parameters = dict(model.named_parameters())
    for name, value in model.get_base_model().state_dict().items():
        if "lora_" in name or "modules_to_save" in name or "original_module" in name:
            continue
        key = name.replace(".base_layer", "")
        torch.testing.assert_close(value, base_state[key], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    lora_b = [v for k, v in parameters.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero
    head = parameters["base_model.model.classifier.modules_to_save.default.weight"]
    assert not torch.equal(head, base_state["classifier.weight"])
    assert parameters["base_model.model.classifier.modules_to_save.default.weight"].requires_grad
    assert not parameters["base_model.model.text_model.embeddings.word_embeddings.weight"].requires_grad


def test_adapters_load_onto_a_fresh_base_with_identical_logits(trained):
    trainer, _, directory = trained
    assert (directory / "adapters" / "adapter_model.safetensors").exists()
    trainer.model.eval()
    expected = trainer.model(**inputs()).logits
    fresh = PeftModel.from_pretrained(tiny_fusion(), directory / "adapters").eval()
    torch.testing.assert_close(fresh(**inputs()).logits, expected, rtol=0, atol=0)


def test_merged_export_gives_the_same_logits(trained, tmp_path):
    trainer, _, directory = trained
    model = PeftModel.from_pretrained(tiny_fusion(), directory / "adapters").eval()
    expected = model(**inputs()).logits
    merged = model.merge_and_unload()
    merged.save_pretrained(tmp_path)
    reloaded = FusionForSequenceClassification.from_pretrained(tmp_path).eval()
    assert not any("lora" in k for k in reloaded.state_dict())
    torch.testing.assert_close(reloaded(**inputs()).logits, expected, rtol=1e-5, atol=1e-5)


def test_peft_config_on_a_peft_model_is_refused(tmp_path):
    from peft import get_peft_model

    base = tiny_fusion()
    config = lora_config_for(base)
    with pytest.raises(ValueError, match="already a PeftModel"):
        SynIBTrainer(model=get_peft_model(base, config), args=SynIBConfig(output_dir=str(tmp_path), report_to="none"),
                     peft_config=lora_config_for(tiny_fusion()))


def test_lora_presets_refuse_unknown_towers():
    with pytest.raises(ValueError, match="towers may contain"):
        lora_config_for(tiny_fusion(), towers=("audio",))


def test_a_tower_trained_in_full_is_saved_with_the_adapters_and_trains():
    from peft import get_peft_model

    base = tiny_fusion()
    config = lora_config_for(base, towers=("text",), trained_in_full=("vision",))
    assert "vision_model" in config.modules_to_save
    model = get_peft_model(base, config)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any(".vision_model.modules_to_save.default." in name for name in trainable)
    assert any("text_model" in name and "lora_A" in name for name in trainable)
    assert not any("text_model" in name and "lora_" not in name for name in trainable)
    with pytest.raises(ValueError, match="trained_in_full may name towers without adapters"):
        lora_config_for(tiny_fusion(), towers=("vision", "text"), trained_in_full=("vision",))


def test_adapters_can_be_kept_to_the_top_layers():
    from peft import get_peft_model

    model = get_peft_model(tiny_fusion(), lora_config_for(tiny_fusion(), towers=("text",), layers=[1]))
    adapted = {name.split(".lora_A")[0] for name, _ in model.named_parameters() if "lora_A" in name}
    assert adapted and all(".layer.1." in name for name in adapted)
    assert {name.rsplit(".", 1)[-1] for name in adapted} == {"query_proj", "key_proj", "value_proj"}
