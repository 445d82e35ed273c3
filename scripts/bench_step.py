"""Step time and peak memory of SynIBTrainer against a plain Trainer step, through the real trainer code path.

    python scripts/bench_step.py --size tiny                           # CPU, seconds
    python scripts/bench_step.py --size base --batch 128 --bf16 --lora # CLIP-B/16 + DeBERTa-v3-base sizes, a GPU
    python scripts/bench_step.py --from runs/bench_step_base.json --plot step.png   # draw saved results (matplotlib)
    python scripts/bench_step.py --size tiny --family llava --cases vlm-concatenated vlm-shared-vision vlm-shared-lean

Cases: native path with `random` masks, native with `learned` masks, generic path concatenated, generic sequential.
Each case trains the same fusion model on the same fixed batch; rounds of plain and SynIB steps are interleaved and
medians reported. One JSON object per case: ms/step, the ratio to plain, peak CUDA memory (and its ratio) on a GPU.
The `vlm-*` cases time a generative vision-language model's SFT step against the same step with an image view and a
text view (`bench_step_vlm.py`: concatenated, shared vision, shared vision + lean logits), for `--family`.
Imports only torch, transformers, peft, accelerate and synib_hf (no datasets/evaluate).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_step_vlm, beside this script

from bench_step_vlm import VLM_CASES, VLM_FAMILIES, VLM_SIZES  # noqa: E402  (standard library only at import)


CASES = {
    "native-random": {"synib_path": "native", "mask_type": "random"},
    "native-learned": {"synib_path": "native", "mask_type": "learned"},
    "generic-concatenated": {"synib_path": "generic", "view_batching": "concatenated", "mask_type": "random"},
    "generic-sequential": {"synib_path": "generic", "view_batching": "sequential", "mask_type": "random"},
}
VLM_ONLY_SIZES = [size for size in VLM_SIZES if size not in ("tiny", "base")]
SIZES = {
    # CLIP ViT-B/16 vision tower and DeBERTa-v3-base text tower shapes (random weights)
    "base": dict(vision=dict(image_size=224, patch_size=16, hidden_size=768, intermediate_size=3072,
                             num_hidden_layers=12, num_attention_heads=12),
                 text=dict(vocab_size=128100, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, max_position_embeddings=512, relative_attention=True,
                           position_buckets=256, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                           share_att_key=True)),
    "tiny": dict(vision=dict(image_size=32, patch_size=4, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4),
                 text=dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=64)),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=[*SIZES, *VLM_ONLY_SIZES], default="tiny",
                        help="image-dominant: the vlm-* cases only (LLaVA-shaped, 256 image tokens)")
    parser.add_argument("--batch", type=int, default=None, help="default: 16 (tiny), 128 (base), 4 (image-dominant)")
    parser.add_argument("--seq_len", type=int, default=None,
                        help="prompt tokens; default: 16 (tiny), 64 (base), 32 (image-dominant)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round (after one warm-up step)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES) + list(VLM_CASES), default=list(CASES))
    parser.add_argument("--family", choices=VLM_FAMILIES, default="smolvlm", help="the model of the vlm-* cases")
    parser.add_argument("--output", default=None, help="also write the JSON lines to this file")
    parser.add_argument("--from", dest="saved", nargs="+", default=None, metavar="JSON_LINES",
                        help="do not time anything: read results written by --output (for --plot)")
    parser.add_argument("--plot", default=None, help="draw the time (and memory) ratios with the targets to this PNG")
    return parser


class StepTimer:
    """A TrainerCallback timing each optimizer step (synchronising CUDA so the time is the step's)."""

    def __init__(self):
        import torch

        self.torch, self.times, self._start = torch, [], None

    def _sync(self):
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()

    def on_step_begin(self, *args, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_step_end(self, *args, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._start)

    def __getattr__(self, name):  # every other callback event is a no-op
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def build(size, seq_len, batch, lora):
    import torch
    from torch.utils.data import Dataset
    from transformers import CLIPVisionConfig, DebertaV2Config

    from synib_hf import FusionConfig, FusionForSequenceClassification, lora_config_for

    spec = SIZES[size]
    config = FusionConfig(vision_config=CLIPVisionConfig(**spec["vision"]),
                          text_config=DebertaV2Config(**spec["text"]),
                          projection_dim=256, fusion_hidden_size=512, fusion_dropout=0.0)
    torch.manual_seed(0)
    model = FusionForSequenceClassification(config)
    generator = torch.Generator().manual_seed(0)
    image = spec["vision"]["image_size"]
    row = {
        "pixel_values": torch.randn(batch, 3, image, image, generator=generator),
        "input_ids": torch.randint(5, spec["text"]["vocab_size"], (batch, seq_len), generator=generator),
        "attention_mask": torch.ones(batch, seq_len, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch,), generator=generator),
    }

    class FixedBatch(Dataset):  # the same examples every step: time the step, not the data
        def __len__(self):
            return batch * 10_000

        def __getitem__(self, index):
            return {k: v[index % batch] for k, v in row.items()}

    peft_config = lora_config_for(model, r=16) if lora else None
    return model, FixedBatch(), peft_config


def mask_tokenizer():
    """A DeBERTa-v2 tokenizer trained offline: the generic path reads its mask and special-token ids."""
    from transformers import DebertaV2Tokenizer

    return DebertaV2Tokenizer().train_new_from_iterator(["synib masks token inputs"] * 4, vocab_size=32)


def time_steps(model, dataset, peft_config, overrides, args, batch):
    import tempfile

    import torch
    from transformers import PrinterCallback, default_data_collator

    from synib_hf import SynIBConfig, SynIBTrainer

    scratch = tempfile.TemporaryDirectory(prefix="synib-bench-step-")  # nothing is saved; removed when timing ends
    config = SynIBConfig(
        output_dir=scratch.name, report_to="none", save_strategy="no", logging_strategy="no",
        disable_tqdm=True, per_device_train_batch_size=batch, max_steps=args.steps + 1, learning_rate=1e-5,
        bf16=args.bf16, use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=False,
        remove_unused_columns=False, seed=0, **overrides,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer()
    trainer = SynIBTrainer(model=model, args=config, train_dataset=dataset, peft_config=peft_config,
                           callbacks=[timer], processing_class=mask_tokenizer(), data_collator=default_data_collator)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    if peft_config is not None:
        trainer.model.unload()  # give the next case the bare base model back
    scratch.cleanup()
    return timer.times[1:], peak  # the first step warms up


TARGETS = {  # the performance issue's ceilings on a GPU (bf16, batch 128): time ratio, memory ratio
    "native-random": (1.05, 1.02),
    "native-learned": (1.25, None),
    "generic-concatenated": (2.77, None),
    "generic-sequential": (None, 1.1),
    "vlm-drop-shared": (1.4, None),  # issue 25's ceiling against the fair (lean-logits) plain step, image-dominant
}


def plot(results, path) -> None:
    """Bars of SynIB/plain ratios per case and setting, with the issue's targets as ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def setting(r):
        family = f"{r['family']}, " if r.get("family") else ""
        return f"{r['device']}, {family}{r['size']}, batch {r['batch']}{', bf16' if r['bf16'] else ''}"

    settings = list(dict.fromkeys(setting(r) for r in results))
    cases = list(dict.fromkeys(r["case"] for r in results))
    memory = any("memory_ratio" in r for r in results)
    figure, axes = plt.subplots(1, 2 if memory else 1, figsize=(6 + 3 * memory + len(settings), 4), squeeze=False)
    for axis, key, index in zip(axes[0], ("time_ratio", "memory_ratio"), (0, 1)):
        width = 0.8 / len(settings)
        for i, name in enumerate(settings):
            values = {r["case"]: r.get(key) for r in results if setting(r) == name}
            axis.bar([c + i * width for c in range(len(cases))], [values.get(case) or 0 for case in cases], width,
                     label=name)
        for c, case in enumerate(cases):
            target = TARGETS.get(case, (None, None))[index]
            if target:
                axis.hlines(target, c - width / 2, c + 0.8 - width / 2, colors="black", linestyles="dashed")
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.set_xticks([c + 0.4 - width / 2 for c in range(len(cases))], cases, rotation=15, fontsize=8)
        axis.set_ylabel(f"SynIB / plain ({key.split('_')[0]})")
        axis.legend(fontsize=7)
    axes[0][0].set_title("step time (dashed: the issues' targets)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def time_fusion_case(case, args, batch, seq_len, setting) -> dict:
    """One fusion-model case: rounds of plain and SynIB Trainer steps, interleaved; medians."""
    import torch

    plain_times, synib_times, plain_peaks, synib_peaks = [], [], [], []
    for _ in range(args.rounds):  # interleave plain and SynIB rounds
        for synib, times, peaks in ((False, plain_times, plain_peaks), (True, synib_times, synib_peaks)):
            model, dataset, peft_config = build(args.size, seq_len, batch, args.lora)
            if torch.cuda.is_available():
                model = model.cuda()
            step_times, peak = time_steps(model, dataset, peft_config,
                                          {**CASES[case], "synib_weight": 0.1 if synib else 0.0}, args, batch)
            times += step_times
            peaks.append(peak)
    result = summarise(case, setting, plain_times, synib_times)
    if torch.cuda.is_available():
        result.update(memory(plain_peaks, synib_peaks))
    print(json.dumps(result), flush=True)
    return result


def time_vlm_cases(cases, args, batch, seq_len, setting) -> list:
    """The vlm-* cases on one model: per round the fair plain step (lean logits), the full-logits plain step, then
    each case; medians over the rounds. Ratios against the fair plain step (`time_ratio`) and the full-logits one."""
    from bench_step_vlm import build_vlm, time_vlm_steps

    vlm = build_vlm(args.family, args.size, batch, seq_len, args.lora)
    times = {name: [] for name in ("plain", "plain_full", *cases)}
    peaks = {name: [] for name in times}
    for _ in range(args.rounds):
        for name in times:
            variant = name if name.startswith("plain") else "synib"
            step_times, peak = time_vlm_steps(*vlm, cases[0] if variant != "synib" else name, variant, args.steps,
                                              args.bf16)
            times[name] += step_times
            peaks[name].append(peak)
    results = []
    full_ms = 1e3 * statistics.median(times["plain_full"])
    for case in cases:
        result = summarise(case, {**setting, "family": args.family}, times["plain"], times[case])
        result.update(plain_full_logits_ms_per_step=round(full_ms, 2),
                      time_ratio_to_full_logits_plain=round(result["synib_ms_per_step"] / full_ms, 3))
        result.update(memory(peaks["plain"], peaks[case], saved_activations=setting["device"] == "cpu"))
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def summarise(case, setting, plain_times, synib_times) -> dict:
    plain_ms, synib_ms = 1e3 * statistics.median(plain_times), 1e3 * statistics.median(synib_times)
    return {"case": case, **setting, "plain_ms_per_step": round(plain_ms, 2), "synib_ms_per_step": round(synib_ms, 2),
            "time_ratio": round(synib_ms / plain_ms, 3)}


def memory(plain_peaks, synib_peaks, saved_activations=False) -> dict:
    """Peak CUDA memory (GiB), or on a CPU the saved activations of one step (MiB), and their ratio."""
    if saved_activations:
        return {"plain_saved_activations_mib": round(max(plain_peaks) / 2**20, 2),
                "synib_saved_activations_mib": round(max(synib_peaks) / 2**20, 2),
                "memory_ratio": round(max(synib_peaks) / max(plain_peaks), 3)}
    return {"plain_peak_gib": round(max(plain_peaks) / 2**30, 2), "synib_peak_gib": round(max(synib_peaks) / 2**30, 2),
            "memory_ratio": round(max(synib_peaks) / max(plain_peaks), 3)}


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    if args.saved:
        results = [json.loads(line) for path in args.saved for line in open(path) if line.strip()]
        if args.plot:
            plot(results, args.plot)
        return results
    import torch
    from transformers.utils import logging

    logging.set_verbosity_error()
    defaults = {"tiny": (16, 16), "base": (128, 64), "image-dominant": (4, 32)}[args.size]
    batch, seq_len = args.batch or defaults[0], args.seq_len or defaults[1]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    fusion_cases = [case for case in args.cases if case not in VLM_CASES]
    vlm_cases = [case for case in args.cases if case in VLM_CASES]
    if fusion_cases and args.size in VLM_ONLY_SIZES:
        raise ValueError(f"--size {args.size} is a VLM preset; it has no {fusion_cases} case.")
    setting = {"size": args.size, "batch": batch, "seq_len": seq_len, "bf16": args.bf16, "lora": args.lora,
               "device": device}
    results = [time_fusion_case(case, args, batch, seq_len, setting) for case in fusion_cases]
    if vlm_cases:
        results += time_vlm_cases(vlm_cases, args, batch, seq_len, setting)
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n".join(json.dumps(r) for r in results) + "\n")
    if args.plot:
        plot(results, args.plot)
    return results


if __name__ == "__main__":
    main()
