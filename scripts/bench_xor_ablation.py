"""Why plain cross-entropy fails on Gaussian-XOR: CE-only on red .8 / syn .2 with the authors' XOR network, changing
one thing at a time — an architectural choice, or the data's 14 pure-noise coordinates per modality (dim 18 keeps
only the unique, redundant and synergy blocks) — seeds 0-4, 30 epochs.

    python scripts/bench_xor_ablation.py --output_dir docs/benchmarks/xor_ablation     # ~6 CPU-minutes
    python scripts/bench_xor_ablation.py --render docs/benchmarks/xor_ablation/results.json \
        --output_dir docs/benchmarks/xor_ablation                                        # the table, no training

Writes `results.json` (one row per variant × seed) and `results.md`.
"""

import argparse
import json
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_xor, beside this script

VARIANTS = {  # name → (MLPFusionConfig options changed from the authors' network, width of each modality)
    "authors' network": ({}, 32),
    "authors' network, no noise coordinates (dim 18)": ({}, 18),
    "no ReLU after the encoders": ({"encoder_output_activation": False}, 32),
    "layer-normalised features": ({"normalize_features": True}, 32),
    "both (our MLPFusionConfig default encoders)": ({"encoder_output_activation": False, "normalize_features": True},
                                                    32),
    "one fusion layer of 256": ({"fusion_hidden_sizes": [256]}, 32),
    "two-class softmax head": ({"num_labels": 2}, 32),
}
MIXTURE = "red .8 syn .2"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/xor_ablation")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="do not train: merge these results.json files (a cell saved twice must agree) and write "
                             "the table")
    return parser


def markdown(rows) -> str:
    import numpy as np

    from bench_common import mean_std

    lines = [f"CE-only on Gaussian-XOR {MIXTURE}, the authors' network with one change per row; test accuracy, mean "
             f"± sample std (ddof = 1) over seeds {sorted({r['seed'] for r in rows})} (each seed's synergy slice in "
             "brackets). Synergy slice: the test examples whose only active source is synergy (chance 0.500).", "",
             "| network / data | overall | synergy slice | synergy examples (test / train) |", "|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        seeds = ", ".join(f"{r['synergy_acc']:.3f}" for r in mine)
        counts = " / ".join(f"{np.mean([r[key] for r in mine]):.0f}" for key in ("n_synergy_test", "n_synergy_train"))
        lines.append(f"| {variant} | {mean_std([r['overall_acc'] for r in mine])} | "
                     f"{mean_std([r['synergy_acc'] for r in mine])} ({seeds}) | {counts} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    if args.render:
        from bench_common import merge

        rows = merge((row for path in args.render for row in json.load(open(path))),
                     lambda row: (row["variant"], row["seed"]), compared=("overall_acc", "synergy_acc"))
        rows.sort(key=lambda r: (r["seed"], list(VARIANTS).index(r["variant"])))
    else:
        rows = train(args)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = markdown(rows)
    with open(os.path.join(args.output_dir, "results.md"), "w") as f:
        f.write(table)
    print(table)
    return rows


def train(args) -> list:
    from transformers.utils import logging

    from bench_xor import run_one, synergy_counts, xor_data

    logging.set_verbosity_error()
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            options, dim = VARIANTS[variant]
            generator, data = xor_data(MIXTURE, seed, dim)
            scores = run_one("ce", MIXTURE, seed, None, args.epochs, data, generator, "authors", options)
            row = {"variant": variant, "options": options, "dim": dim, "seed": seed, "overall_acc": scores["test"],
                   "synergy_acc": scores["synergy"], **synergy_counts(data)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()
