"""Gaussian-XOR synergy suite (method page §4): every method of the shared method table — CE-only, modality
dropout, multiloss, the unimodal ensemble, OGM-GE, MMPareto, MLB and SynIB (random 30 %, learned, oracle) — on the
paper's five mixtures, λ (SynIB) or α/γ (the balancing baselines) chosen on validation accuracy, seeds 0-4, beside
the authors' numbers.

    python scripts/bench_xor.py --mask_fills shuffle ema_noise --output_dir docs/benchmarks/xor   # the full run
    python scripts/bench_xor.py --quick --output_dir runs/xor-quick                               # a few minutes
    python scripts/bench_xor.py --render a/results.json b/results.json --output_dir out            # merge, re-draw

`--model authors` (default) is the authors' XOR network (`MLPFusionConfig.authors_xor`); `--model layernorm` is
`MLPFusionConfig`'s default (layer-normalised features, one fusion layer, two-class softmax), on which plain
cross-entropy already learns the synergy. `--dim 18` drops the 14 pure-noise coordinates of each modality. Methods
that mask run once per `--mask_fills` value. Writes `results.json` (one row per mixture × method × fill × seed, with
every grid value's validation and test scores), `results.md` (mean ± sample std over seeds, the synergy-example
counts, the authors' numbers) and `results.png`.
"""

import argparse
import json
import math
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, beside this script

import bench_common  # noqa: E402
from bench_common import (  # noqa: E402
    MASK_FILLS, METHODS, arguments, fill_differences, grid, label, labels, masks, mean_std, sample_std, selected_values,
)


MIXTURES = {  # name → (p_u1, p_u2, p_red, p_syn)
    "red .9 syn .1": (0.0, 0.0, 0.9, 0.1),
    "red .8 syn .2": (0.0, 0.0, 0.8, 0.2),
    "red .7 syn .3": (0.0, 0.0, 0.7, 0.3),
    "u1 .9 syn .1": (0.9, 0.0, 0.0, 0.1),
    "red .95 syn .05": (0.0, 0.0, 0.95, 0.05),
}
# Test accuracy overall / synergy slice, mean of 3 seeds (the paper's table).
AUTHORS = {
    "red .9 syn .1": {"ce": (0.948, 0.512), "synib_oracle": (0.992, 0.946), "synib_random": (0.978, 0.803),
                      "synib_learned": (0.974, 0.777)},
    "red .8 syn .2": {"ce": (0.899, 0.501), "synib_oracle": (0.992, 0.971), "synib_random": (0.983, 0.916),
                      "synib_learned": (0.984, 0.923)},
    "red .7 syn .3": {"ce": (0.873, 0.584), "synib_oracle": (0.988, 0.971), "synib_random": (0.988, 0.964),
                      "synib_learned": (0.984, 0.958)},
    "u1 .9 syn .1": {"ce": (0.950, 0.493), "synib_oracle": (0.991, 0.942), "synib_random": (0.969, 0.698),
                     "synib_learned": (0.973, 0.755)},
    "red .95 syn .05": {"ce": (0.974, 0.499), "synib_oracle": (0.994, 0.890), "synib_random": (0.978, 0.583),
                        "synib_learned": (0.975, 0.509)},
}
PAPER_NAMES = {"ce": "CE only", "synib_random": "SynIB random 30 %", "synib_learned": "SynIB learned",
               "synib_oracle": "SynIB oracle"}
MODELS = ("authors", "layernorm")  # the --model choices; their MLPFusionConfig options: model_options()
SEEDS = [0, 1, 2, 3, 4]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/xor")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 mixtures, 10 epochs, λ ∈ {1, 10}")
    parser.add_argument("--model", choices=MODELS, default="authors",
                        help="the network: the authors' XOR model, or MLPFusionConfig's layer-normalised default")
    parser.add_argument("--mask_fills", nargs="+", choices=MASK_FILLS, default=["shuffle"],
                        help="what replaces masked features; every masking method runs once per fill. shuffle keeps "
                        "them in distribution, which the rectified features of the authors' network need (see "
                        "docs/benchmarks/README.md)")
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="do not train: merge these results.json files and write the table and plot")
    parser.add_argument("--select", choices=["val_acc", "val_synergy_acc"], default="val_acc",
                        help="how λ/α is chosen from the grid: validation accuracy (the spec's) or validation "
                        "synergy-slice accuracy (the authors' tuning files); with --render, re-selects saved rows")
    parser.add_argument("--mixtures", nargs="+", choices=list(MIXTURES), default=None)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help=f"default {SEEDS}")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--lambdas", nargs="+", type=float, default=None, help="SynIB's λ grid (default 0.1 1 10 100)")
    parser.add_argument("--dim", type=int, default=32, help="width of each modality; 18 = no pure-noise coordinates")
    return parser


def model_options(model: str) -> dict:
    """`MLPFusionConfig` options of a `--model` choice (the layer-normalised default needs only its head size)."""
    from synib_hf.models.mlp_fusion import AUTHORS_XOR_MODEL

    return dict(AUTHORS_XOR_MODEL) if model == "authors" else {"num_labels": 2}


def xor_data(mixture: str, seed: int, dim: int = 32):
    """`(generator, data)`: the splits without their `source` column, and each split's sources beside them."""
    from synib_hf.data.xor import GaussianXOR

    generator = GaussianXOR(mixture=MIXTURES[mixture], seed=seed, dim=dim)
    splits = generator.datasets()
    data = {name: split.remove_columns("source") for name, split in splits.items()}
    data["source"] = splits["test"]["source"]
    data["validation_source"] = splits["validation"]["source"]
    data["train_source"] = splits["train"]["source"]
    return generator, data


def run_one(method, mixture, seed, value, epochs, data, generator, model="authors", model_overrides=None,
            mask_fill="shuffle"):
    """Train one method (its searched argument at `value`) and score it: validation and test accuracy, synergy slice.
    `model_overrides` changes single `MLPFusionConfig` options of the `model` choice (the ablation script)."""
    import numpy as np

    from synib_hf import predicted_classes
    from synib_hf.cli.vector import train_vector_model

    oracle = METHODS[method][1].get("mask_type") == "oracle"
    extra = {"oracle_coordinates": generator.synergy_coordinates} if oracle else {}
    trainer_name, overrides = arguments(method, value, mask_fill, **extra)
    options = {**model_options(model), **(model_overrides or {})}
    dims = {"x1": generator.dim, "x2": generator.dim}
    trainer = train_vector_model(trainer_name, overrides, dims, options["num_labels"], data["train"], seed=seed,
                                 epochs=epochs, learning_rate=3e-4, hidden_size=256, model_options=options)
    scores = {}
    for split, synergy_key, source_key in (("validation", "validation_synergy", "validation_source"),
                                           ("test", "synergy", "source")):
        prediction = trainer.predict(data[split])
        correct = predicted_classes(prediction.predictions) == prediction.label_ids
        scores[split] = float(correct.mean())
        if source_key in data:
            synergy = np.asarray(data[source_key]) == 3
            scores[synergy_key] = float(correct[synergy].mean()) if synergy.any() else float("nan")
    return scores


def synergy_counts(data) -> dict:
    """How many synergy examples (the only active source is synergy) each split holds."""
    import numpy as np

    return {f"n_synergy_{split}": int((np.asarray(data[key]) == 3).sum())
            for split, key in (("train", "train_source"), ("validation", "validation_source"), ("test", "source"))}


def run(args) -> list:
    from transformers.utils import logging

    logging.set_verbosity_error()
    mixtures = args.mixtures or (["red .8 syn .2", "red .95 syn .05"] if args.quick else list(MIXTURES))
    seeds = args.seeds or ([0] if args.quick else SEEDS)
    epochs = args.epochs or (10 if args.quick else 30)
    lambdas = args.lambdas or ([1.0, 10.0] if args.quick else [0.1, 1.0, 10.0, 100.0])
    methods = args.methods or list(METHODS)
    rows = []
    for mixture in mixtures:
        for seed in seeds:
            generator, data = xor_data(mixture, seed, args.dim)
            for method in methods:
                for fill in (args.mask_fills if masks(method) else [None]):
                    start = time.time()
                    runs = [(value, run_one(method, mixture, seed, value, epochs, data, generator, args.model,
                                            mask_fill=fill)) for value in grid(method, lambdas)]
                    row = {"model": args.model, "dim": args.dim, "mask_fill": fill, "mixture": mixture,
                           "method": method, "seed": seed, "searched": METHODS[method][2],
                           "lambda": METHODS[method][1].get("synib_weight"), "epochs": epochs,
                           "seconds": round(time.time() - start, 1), **synergy_counts(data),
                           "grid": {str(v): {"val_acc": r["validation"], "val_synergy_acc": r["validation_synergy"],
                                             "overall_acc": r["test"], "synergy_acc": r["synergy"]} for v, r in runs}}
                    rows.append(select_lambda(row, args.select))
                    print(json.dumps({k: v for k, v in rows[-1].items() if k != "grid"}), flush=True)
    return rows


def select_lambda(row: dict, criterion: str) -> dict:
    """`row` with the searched value (`lambda`: λ for SynIB, α or γ for a balancing baseline, named by `searched`),
    `overall_acc`, `synergy_acc` and `val_acc` of the grid entry best on the validation `criterion` (`val_acc`, the
    spec's, or `val_synergy_acc`, what the authors' tuning files use); ties go to the smallest value, as in the
    authors' selection code. A row without a grid (CE-only, dropout, multiloss, the ensemble) has one entry."""
    scores = row["grid"]
    key = max(scores, key=lambda w: -1.0 if math.isnan(scores[w][criterion]) else scores[w][criterion])  # NaN: none
    chosen = scores[key]
    selected = {**row, "overall_acc": chosen["overall_acc"], "synergy_acc": chosen["synergy_acc"],
                "val_acc": chosen["val_acc"], "selected_by": criterion}
    if key != "None":
        selected["lambda"] = float(key)
    return selected


def normalise(row: dict) -> dict:
    """A saved row in today's shape: rows written before the method table have no `searched` or `dim`, a fill on
    methods that do not mask, and no synergy counts (recounted here from the seeded generator)."""
    row = dict(row)
    row.setdefault("searched", METHODS[row["method"]][2])
    row.setdefault("dim", 32)
    if not masks(row["method"]):
        row["mask_fill"] = None
    else:
        row.setdefault("mask_fill", "ema_noise")  # rows written before --mask_fill used the method page's default
    if "n_synergy_test" not in row:
        row.update(synergy_counts(xor_data(row["mixture"], row["seed"], row["dim"])[1]))
    return row


def merge(rows) -> list:
    """Rows of several runs, one per (model, dim, mixture, method, fill, seed); a row saved twice must agree."""
    return bench_common.merge(map(normalise, rows), lambda row: (row.get("model", "layernorm"), row["dim"],
                                                                 row["mixture"], row["method"], row["mask_fill"],
                                                                 row["seed"]))


def cells(rows) -> dict:
    """(mixture, method label) → the rows of that cell, one per seed."""
    table = {}
    for row in rows:
        table.setdefault((row["mixture"], label(row)), []).append(row)
    return table


def markdown(rows) -> str:
    import numpy as np

    table = cells(rows)
    mixtures = [m for m in MIXTURES if any(r["mixture"] == m for r in rows)]
    names = labels(rows)
    seeds = sorted({r["seed"] for r in rows})
    per_cell = sorted({len(v) for v in table.values()})
    counts = {m: [np.mean([r[f"n_synergy_{split}"] for r in rows if r["mixture"] == m and f"n_synergy_{split}" in r])
                  for split in ("test", "train", "validation")] for m in mixtures}
    header = ["| method | " + " | ".join(mixtures) + " |", "|---|" + "---|" * len(mixtures)]
    describe = lambda key: sorted({str(r.get(key)) for r in rows})  # noqa: E731
    lines = [
        f"Gaussian-XOR, model {' + '.join(describe('model'))}, dim {' + '.join(describe('dim'))}, mean ± sample std "
        f"(ddof = 1) over seeds {seeds} ({' or '.join(map(str, per_cell))} per cell); λ (SynIB) and α/γ (balancing "
        f"baselines) chosen by {' + '.join(describe('selected_by'))}. Synergy slice: the test examples whose only "
        "active source is synergy — the ground truth; each modality alone is at chance there, so **chance = 0.500**.",
        "", "**Synergy-slice accuracy**", "", *header,
        "| *synergy examples: test / train / validation (mean over seeds)* | "
        + " | ".join(" / ".join(f"{c:.0f}" for c in counts[m]) for m in mixtures) + " |",
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            mean_std([r["synergy_acc"] for r in table.get((m, name), [])]) for m in mixtures) + " |")
    lines += _paper_rows(mixtures, 1)
    lines += ["", "**Overall test accuracy**", "", *header]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            mean_std([r["overall_acc"] for r in table.get((m, name), [])]) for m in mixtures) + " |")
    lines += _paper_rows(mixtures, 0)
    if {r.get("mask_fill") for r in rows} >= {"shuffle", "ema_noise"}:
        lines += ["", "**The fill: synergy slice with `shuffle` minus with `ema_noise`**, paired by seed (mean ± "
                  "sample std; seeds where shuffle is ahead ↑ / behind ↓)", "",
                  fill_differences(rows, lambda r: r["mixture"], mixtures, "synergy_acc")]
    lines += ["", "**Values chosen on validation** (all cells)", "", selected_values(rows)]
    return "\n".join(lines)


def _paper_rows(mixtures, index) -> list:
    return [f"| *paper: {title} (mean of 3 seeds)* | " + " | ".join(
        f"{AUTHORS[m][method][index]:.3f}" if method in AUTHORS.get(m, {}) else "–" for m in mixtures) + " |"
        for method, title in PAPER_NAMES.items()]


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    table = cells(rows)
    mixtures = [m for m in MIXTURES if any(r["mixture"] == m for r in rows)]
    names = labels(rows)
    width = 0.85 / len(names)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(names), 2)))
    figure, axis = plt.subplots(figsize=(3 + 2.6 * len(mixtures), 5.2))
    for i, name in enumerate(names):
        values = [[r["synergy_acc"] for r in table.get((m, name), [])] for m in mixtures]
        axis.bar(np.arange(len(mixtures)) + i * width, [np.nanmean(v) if v else np.nan for v in values], width,
                 yerr=[sample_std(v) for v in values], label=name, color=colours[i], capsize=1.5,
                 error_kw={"linewidth": 0.6})
    axis.axhline(0.5, color="grey", linewidth=0.8, linestyle="--", label="chance")
    axis.set_xticks(np.arange(len(mixtures)) + 0.425 - width / 2, mixtures)
    axis.set_ylabel("synergy-slice test accuracy (mean ± sample std)")
    axis.set_ylim(0.3, 1.02)
    axis.set_title("Gaussian-XOR: the synergy slice, every method")
    axis.legend(fontsize=7, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    from bench_common import write_outputs

    if args.render:
        rows = merge(row for path in args.render for row in json.load(open(path)))
        rows = [select_lambda(row, args.select) if "grid" in row else row for row in rows]
    else:
        rows = run(args)
    print(write_outputs(rows, args.output_dir, markdown, plot))
    return rows


if __name__ == "__main__":
    main()
