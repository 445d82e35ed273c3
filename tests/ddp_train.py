"""Trains every SynIB path and every balancing baseline for a few SGD steps and saves the parameters; run by
test_distributed.py under `accelerate launch --multi_gpu --num_processes 2` (real 2-process DDP over gloo) and as one
process."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers  # noqa: E402

import synib_hf  # noqa: E402
from synib_hf import SynIBConfig, SynIBTrainer  # noqa: E402
from tiny_models import CLIPWithHead, as_dataset, image_text_rows, mlp_fusion, tiny_tokenizer, vector_xor  # noqa: E402
from tiny_vlms import VLMRows, random_batch, tiny_vlm, tiny_vlm_tokenizer, vlm_collator  # noqa: E402


IMAGE_TEXT = {"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]}
CASES = {
    "native": dict(model=lambda: mlp_fusion(), data=lambda: as_dataset(vector_xor(32)), extra={}),
    "native-learned": dict(model=lambda: mlp_fusion(), data=lambda: as_dataset(vector_xor(32)),
                           extra={"mask_type": "learned"}),
    "generic-concatenated": dict(model=lambda: CLIPWithHead(), data=lambda: as_dataset(image_text_rows(32)),
                                 extra={"modality_keys": IMAGE_TEXT}),
    "generic-sequential": dict(model=lambda: CLIPWithHead(), data=lambda: as_dataset(image_text_rows(32)),
                               extra={"modality_keys": IMAGE_TEXT, "view_batching": "sequential"}),
    # a generative VLM: embedding-level views, the verbalizer over two answers, shared vision and lean logits
    "embedding-llava": dict(model=lambda: tiny_vlm("llava"), data=lambda: VLMRows(random_batch("llava", 32)),
                            extra={"answer_candidates": ["yes", "no"]}, tokenizer=tiny_vlm_tokenizer,
                            collator=vlm_collator),
    # the balancing baselines rewrite gradients after backward: every process must apply the same change
    "ogm_ge": dict(model=lambda: mlp_fusion(), data=lambda: as_dataset(vector_xor(32)), trainer="OGMGETrainer",
                   extra={"ogm_alpha": 0.5}),
    "mmpareto": dict(model=lambda: mlp_fusion(), data=lambda: as_dataset(vector_xor(32)), trainer="MMParetoTrainer",
                     extra={}),
    "mlb": dict(model=lambda: mlp_fusion(), data=lambda: as_dataset(vector_xor(32)), trainer="MLBTrainer",
                extra={}),
    "ensemble": dict(model=lambda: mlp_fusion(), data=lambda: as_dataset(vector_xor(32)),
                     trainer="UnimodalEnsembleTrainer", extra={}),
}


def rank_spread(model, world: int) -> float:
    """Largest difference of any parameter between the processes (0 when every process applied the same updates)."""
    if world == 1:
        return 0.0
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    torch.distributed.all_gather(gathered, flat)
    return max((g - gathered[0]).abs().max().item() for g in gathered)


class StopAt(transformers.TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step == self.step


def resume_case(output_dir: str, global_batch: int) -> None:
    """Random masks with shuffle fills (per-process generators): 6 steps straight, and 3 + resume from checkpoint-3."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    results = {}
    for name, stop in (("straight", None), ("resumed", 3), ("resumed", None)):
        torch.manual_seed(0)
        model = mlp_fusion()
        args = SynIBConfig(
            output_dir=os.path.join(output_dir, f"resume-{name}"), report_to="none", use_cpu=True, disable_tqdm=True,
            seed=0, synib_weight=1.0, mask_type="random", mask_fill="shuffle", max_steps=6, learning_rate=0.1,
            per_device_train_batch_size=global_batch // world, save_strategy="steps", save_steps=3,
        )
        trainer = SynIBTrainer(model=model, args=args, train_dataset=as_dataset(vector_xor(48)),
                               callbacks=[StopAt(stop)] if stop else None)
        trainer.train(resume_from_checkpoint=name == "resumed" and stop is None)
        results[name] = {k: v.detach().cpu() for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()}
    if trainer.is_world_process_zero():
        torch.save(results, os.path.join(output_dir, "resume.pt"))


def synergy_case(output_dir: str, global_batch: int) -> None:
    """The synergy-subset compute_metrics under DDP: an evaluation set of 13 (uneven across processes) and its
    groups."""
    from synib_hf.synergy import synergy_compute_metrics

    world = int(os.environ.get("WORLD_SIZE", "1"))
    data = vector_xor(13, seed=3)
    unimodal = {"x1": (data["x1"][:, 0] > 0).astype(int), "x2": (data["x2"][:, 1] > 0).astype(int)}
    args = SynIBConfig(output_dir=os.path.join(output_dir, "synergy"), report_to="none", use_cpu=True, seed=0,
                       disable_tqdm=True, synib_weight=1.0, max_steps=2, per_device_train_batch_size=global_batch // world,
                       per_device_eval_batch_size=3, eval_strategy="steps", eval_steps=2, save_strategy="no")
    trainer = SynIBTrainer(model=mlp_fusion(), args=args, train_dataset=as_dataset(vector_xor(32)),
                           eval_dataset=as_dataset(data), compute_metrics=synergy_compute_metrics(unimodal))
    trainer.train()
    if trainer.is_world_process_zero():
        evaluation = [h for h in trainer.state.log_history if "eval_loss" in h][-1]
        with open(os.path.join(output_dir, "synergy.json"), "w") as f:
            json.dump(evaluation, f)


def main(output_dir: str, global_batch: int = 8) -> None:
    transformers.logging.set_verbosity_error()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    resume_case(output_dir, global_batch)
    synergy_case(output_dir, global_batch)
    for name, case in CASES.items():
        model = case["model"]()
        learned = case["extra"].get("mask_type") == "learned"
        deterministic = {} if learned else {"mask_type": "full", "mask_fill": "zero"}
        trainer_class = getattr(synib_hf, case.get("trainer", "SynIBTrainer"))
        synib = {"synib_weight": 1.0, **deterministic} if trainer_class.args_class is synib_hf.SynIBConfig else {}
        args = trainer_class.args_class(
            output_dir=os.path.join(output_dir, name), report_to="none", use_cpu=True, save_strategy="no",
            disable_tqdm=True, seed=0, per_device_train_batch_size=global_batch // world,
            max_steps=3, learning_rate=0.5, optim="sgd", logging_steps=1, train_sampling_strategy="sequential",
            **{**synib, **case["extra"]},
        )
        tokenizer = case.get("tokenizer", tiny_tokenizer if "modality_keys" in case["extra"] else lambda: None)()
        trainer = trainer_class(model=model, args=args, train_dataset=case["data"](), processing_class=tokenizer,
                                data_collator=case.get("collator"))
        trainer.train()
        spread = rank_spread(trainer.accelerator.unwrap_model(trainer.model), world)
        if trainer.is_world_process_zero():
            state = {k: v.detach().cpu() for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()}
            torch.save(state, os.path.join(output_dir, f"{name}.pt"))
            logs = [h for h in trainer.state.log_history if "loss" in h]
            with open(os.path.join(output_dir, f"{name}.json"), "w") as f:
                json.dump({"world_size": world, "distributed": str(trainer.args.parallel_mode), "logs": logs,
                           "rank_spread": spread}, f)
    # Every case has trained and rank 0 has written its files. On CPU (gloo, torch 2.13) a normal interpreter exit
    # sometimes aborts in gloo's thread teardown ("terminate called without an active exception", SIGABRT), and
    # barrier() / destroy_process_group() here sometimes hang instead: leave without running those destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
