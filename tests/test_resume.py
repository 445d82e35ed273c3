"""Resuming equals not stopping: N steps straight and N/2 + resume give the same parameters, bit for bit on CPU, for
every mask type and fill on both paths; a checkpoint left incomplete by a kill during a save is skipped."""

import os

import pytest
import torch
from transformers import TrainerCallback

from synib_hf import SynIBConfig, SynIBTrainer, vlm_lora_config
from tiny_models import CLIPWithHead, as_dataset, image_text_rows, mlp_fusion, tiny_tokenizer, vector_xor
from tiny_vlms import VLMRows, random_batch, tiny_vlm, tiny_vlm_tokenizer, vlm_collator


IMAGE_TEXT = {"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]}
CASES = {  # name → (model, data, SynIBConfig options)
    "native-random-ema_noise": (mlp_fusion, lambda: as_dataset(vector_xor(48)), dict(mask_fill="ema_noise")),
    "native-random-shuffle": (mlp_fusion, lambda: as_dataset(vector_xor(48)), dict(mask_fill="shuffle")),
    "native-learned": (mlp_fusion, lambda: as_dataset(vector_xor(48)), dict(mask_type="learned")),
    "native-full": (mlp_fusion, lambda: as_dataset(vector_xor(48)), dict(mask_type="full")),
    "generic-random-ema_noise": (CLIPWithHead, lambda: as_dataset(image_text_rows(24)),
                                 dict(mask_fill="ema_noise", modality_keys=IMAGE_TEXT)),
    "generic-random-shuffle": (CLIPWithHead, lambda: as_dataset(image_text_rows(24)),
                               dict(mask_fill="shuffle", modality_keys=IMAGE_TEXT)),
    # generative VLMs: EMA statistics of the merged embeddings, LoRA and full fine-tuning (whose checkpoint keys
    # transformers 5.24 does not convert back on a state-dict load, transformers#43701: SynIBTrainer loads them
    # through from_pretrained)
    "embedding-full-random-zero": (lambda: tiny_vlm("llava"), lambda: VLMRows(random_batch("llava", 24)),
                                   dict(mask_fill="zero", answer_candidates=["yes", "no"], lora=False)),
    "embedding-lora-random-ema_noise": (lambda: tiny_vlm("llava"), lambda: VLMRows(random_batch("llava", 24)),
                                        dict(mask_fill="ema_noise", answer_candidates=["yes", "no"])),
    "embedding-lora-random-shuffle": (lambda: tiny_vlm("qwen2_vl"), lambda: VLMRows(random_batch("qwen2_vl", 24)),
                                      dict(mask_fill="shuffle", answer_candidates=["yes", "no"])),
}
STEPS = 8


class StopAt(TrainerCallback):
    """Stops training after `step` (as a kill right after that step's checkpoint would)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def run(case, output_dir, resume=None, stop_at=None):
    build, data, options = CASES[case]
    options = dict(options)
    lora = options.pop("lora", True)
    torch.manual_seed(0)
    model = build()
    args = SynIBConfig(output_dir=str(output_dir), report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
                       synib_weight=1.0, per_device_train_batch_size=4, max_steps=STEPS, learning_rate=1e-2,
                       save_strategy="steps", save_steps=2, logging_steps=1, **{"mask_type": "random", **options})
    if "answer_candidates" in options:
        inputs = dict(processing_class=tiny_vlm_tokenizer(), data_collator=vlm_collator,
                      peft_config=vlm_lora_config(model, r=4) if lora else None)
    else:
        inputs = dict(processing_class=tiny_tokenizer() if "modality_keys" in options else None)
    trainer = SynIBTrainer(model=model, args=args, train_dataset=data(),
                           callbacks=[StopAt(stop_at)] if stop_at else None, **inputs)
    trainer.train(resume_from_checkpoint=resume)
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, trainer


@pytest.mark.parametrize("case", list(CASES))
def test_resume_is_bitwise_an_uninterrupted_run(tmp_path, case):
    straight, _ = run(case, tmp_path / "straight")
    run(case, tmp_path / "stopped", stop_at=STEPS // 2)
    assert sorted(os.listdir(tmp_path / "stopped")) == ["checkpoint-2", "checkpoint-4"]
    resumed, trainer = run(case, tmp_path / "stopped", resume=True)
    assert trainer.state.global_step == STEPS
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_without_the_synib_state_the_resumed_masks_repeat_the_first_steps(tmp_path):
    """The control: delete the saved SynIB state and the resumed run differs (masks restart from the seed)."""
    case = "native-random-ema_noise"
    straight, _ = run(case, tmp_path / "straight")
    run(case, tmp_path / "stopped", stop_at=STEPS // 2)
    os.remove(tmp_path / "stopped" / "checkpoint-4" / "synib_state.pt")
    with pytest.warns(UserWarning, match="holds no SynIB state"):
        resumed, _ = run(case, tmp_path / "stopped", resume=True)
    assert any(not torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.mark.parametrize("damage", ["truncate-weights", "remove-trainer-state", "truncate-optimizer"])
def test_a_kill_during_a_save_resumes_from_the_last_complete_checkpoint(tmp_path, damage):
    case = "native-random-shuffle"
    straight, _ = run(case, tmp_path / "straight")
    run(case, tmp_path / "killed", stop_at=6)
    last = tmp_path / "killed" / "checkpoint-6"
    if damage == "truncate-weights":
        weights = last / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "remove-trainer-state":
        (last / "trainer_state.json").unlink()
    else:
        optimizer = last / "optimizer.pt"
        optimizer.write_bytes(optimizer.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Skipping the incomplete checkpoint .*checkpoint-6"):
        resumed, trainer = run(case, tmp_path / "killed", resume=True)
    assert trainer.state.global_step == STEPS
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_no_complete_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    with pytest.raises(ValueError, match=r"No valid checkpoint found in output directory .*: every checkpoint is incomplete \(checkpoint-2: no trainer_state.json\)"):
        run("native-full", tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"^No valid checkpoint found in output directory \(.*empty\)$"):
        run("native-full", tmp_path / "empty", resume=True)


def test_a_model_whose_config_is_not_registered_resumes(tmp_path):
    """The complete-checkpoint check parses configs without the Auto classes: a custom model still resumes."""
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class CustomConfig(PretrainedConfig):
        model_type = "synib_test_unregistered"

    class Custom(PreTrainedModel):
        config_class = CustomConfig

        def __init__(self, config):
            super().__init__(config)
            self.left, self.right = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2)

        def forward(self, x1=None, x2=None, labels=None):
            return SequenceClassifierOutput(logits=self.left(x1) + self.right(x2))

    def go(resume=None, stop_at=None):
        torch.manual_seed(0)
        model = Custom(CustomConfig())
        args = SynIBConfig(output_dir=str(tmp_path / "custom"), report_to="none", use_cpu=True, disable_tqdm=True,
                           seed=0, synib_weight=1.0, per_device_train_batch_size=4, max_steps=4, save_steps=2,
                           modality_keys={"a": ["x1"], "b": ["x2"]}, remove_unused_columns=False)
        trainer = SynIBTrainer(model=model, args=args, train_dataset=as_dataset(vector_xor(16)),
                               callbacks=[StopAt(stop_at)] if stop_at else None)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    go(stop_at=2)
    assert go(resume=True).state.global_step == 4
