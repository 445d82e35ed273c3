"""Client side of the Hub tests, run in a subprocess with HF_ENDPOINT pointing at the local server (the client reads
it at import). `python hub_client.py push OUT` trains and pushes; `python hub_client.py download OUT` loads by repo id.
Both write logits on the same fixed inputs to OUT/<step>.json."""

import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

import synib_hf  # noqa: E402,F401
from synib_hf import SynIBConfig, SynIBTrainer, lora_config_for  # noqa: E402
from tiny_models import as_dataset, fusion_rows, tiny_fusion, tiny_fusion_processor  # noqa: E402


FULL, BASE, LORA = "synib-org/fusion-full", "synib-org/fusion-base", "synib-org/fusion-lora"
LORA_BY_TRAINER = "synib-org/fusion-lora-trainer"


def probe():
    """Fixed model inputs, the same in every process (the tiny tokenizer's training is not deterministic)."""
    generator = torch.Generator().manual_seed(7)
    return {"pixel_values": torch.randn(4, 3, 30, 30, generator=generator),
            "input_ids": torch.randint(5, 40, (4, 8), generator=generator),
            "attention_mask": torch.ones(4, 8, dtype=torch.long)}


def logits(model):
    model.eval()
    with torch.no_grad():
        return model(**probe()).logits.tolist()


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def push(out):
    work = os.path.join(out, "work")
    # full model: the trainer pushes (one commit), with its processor and card
    model = tiny_fusion()
    args = SynIBConfig(output_dir=os.path.join(work, "full"), report_to="none", use_cpu=True, max_steps=2,
                       synib_weight=0.5, per_device_train_batch_size=4, disable_tqdm=True, save_strategy="no",
                       eval_strategy="no", push_to_hub=True, hub_model_id=FULL, hub_strategy="end")
    trainer = SynIBTrainer(model=model, args=args, train_dataset=as_dataset(fusion_rows(8)),
                           eval_dataset=as_dataset(fusion_rows(8, seed=1)), processing_class=tiny_fusion_processor(),
                           compute_metrics=accuracy)
    trainer.train()
    metrics = trainer.evaluate()
    trainer.push_to_hub(commit_message="SynIB fusion model")
    # LoRA: the base goes up first, then the adapters name it, so one from_pretrained call loads both
    base = tiny_fusion()
    base.save_pretrained(os.path.join(work, "base"))
    push_command(os.path.join(work, "base"), "--repo-id", BASE)
    lora = SynIBTrainer(model=base, args=SynIBConfig(output_dir=os.path.join(work, "lora"), report_to="none",
                                                     use_cpu=True, max_steps=2, per_device_train_batch_size=4,
                                                     learning_rate=5e-2, disable_tqdm=True, save_strategy="no",
                                                     push_to_hub=True, hub_model_id=LORA_BY_TRAINER,
                                                     hub_strategy="end"),
                        train_dataset=as_dataset(fusion_rows(8)), peft_config=lora_config_for(base, r=4))
    lora.train()
    lora.push_to_hub(commit_message="SynIB LoRA adapters")  # the trainer pushes the adapters and their card
    final = os.path.join(work, "lora", "final")
    lora.model.save_pretrained(final)  # not save_model: with push_to_hub=True that would push a second commit
    lora.create_model_card(output_dir=final)
    push_command(os.path.join(work, "lora", "final"), "--repo-id", LORA, "--base-model", BASE)
    return {"full": logits(trainer.model), "lora": logits(lora.model), "metrics": metrics}


def push_command(*argv):
    subprocess.run([sys.executable, "-m", "synib_hf", "push", *argv], check=True)


def download(out):
    from transformers import AutoModelForSequenceClassification, AutoProcessor

    full = AutoModelForSequenceClassification.from_pretrained(FULL)
    processor = AutoProcessor.from_pretrained(FULL)
    lora = AutoModelForSequenceClassification.from_pretrained(LORA)  # base + adapters in one call
    return {"full": logits(full), "lora": logits(lora), "full_class": type(full).__name__,
            "processor_class": type(processor).__name__, "lora_class": type(lora).__name__}


if __name__ == "__main__":
    step, out = sys.argv[1], sys.argv[2]
    result = {"push": push, "download": download}[step](out)
    with open(os.path.join(out, f"{step}.json"), "w") as f:
        json.dump(result, f)
