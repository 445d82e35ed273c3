"""Why plain cross-entropy fails on Gaussian-XOR: CE-only on red .8 / syn .2 with the authors' XOR network, changing
one architectural choice at a time (3 seeds, 30 epochs).

    python scripts/bench_xor_ablation.py --output_dir docs/benchmarks/xor_ablation     # ~3 minutes on 1 CPU core

Writes `results.json` (one row per variant × seed) and `results.md`.
"""

import argparse
import json
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_xor, beside this script

VARIANTS = {  # name → MLPFusionConfig options changed from the authors' network
    "authors' network": {},
    "no ReLU after the encoders": {"encoder_output_activation": False},
    "layer-normalised features": {"normalize_features": True},
    "both (our MLPFusionConfig default encoders)": {"encoder_output_activation": False, "normalize_features": True},
    "one fusion layer of 256": {"fusion_hidden_sizes": [256]},
    "two-class softmax head": {"num_labels": 2},
}
MIXTURE = "red .8 syn .2"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/xor_ablation")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    return parser


def markdown(rows) -> str:
    import numpy as np

    lines = [f"CE-only on Gaussian-XOR {MIXTURE}, test accuracy overall / synergy slice, mean of seeds "
             f"{sorted({r['seed'] for r in rows})} (each seed's synergy slice in brackets).", "",
             "| network | overall | synergy slice |", "|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        synergy = ", ".join(f"{r['synergy_acc']:.3f}" for r in mine)
        lines.append(f"| {variant} | {np.mean([r['overall_acc'] for r in mine]):.3f} | "
                     f"{np.mean([r['synergy_acc'] for r in mine]):.3f} ({synergy}) |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    from transformers.utils import logging

    from bench_xor import MIXTURES, run_one
    from synib_hf.data.xor import GaussianXOR

    logging.set_verbosity_error()
    rows = []
    for seed in args.seeds:
        generator = GaussianXOR(mixture=MIXTURES[MIXTURE], seed=seed)
        splits = generator.datasets()
        data = {name: split.remove_columns("source") for name, split in splits.items()}
        data["source"] = splits["test"]["source"]
        for variant in args.variants:
            scores = run_one("ce", MIXTURE, seed, None, args.epochs, data, generator, "authors", VARIANTS[variant])
            row = {"variant": variant, "options": VARIANTS[variant], "seed": seed, "overall_acc": scores["test"],
                   "synergy_acc": scores["synergy"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = markdown(rows)
    with open(os.path.join(args.output_dir, "results.md"), "w") as f:
        f.write(table)
    print(table)
    return rows


if __name__ == "__main__":
    main()
