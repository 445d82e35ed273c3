"""Irony benchmark on real data (method page §5): every method of the shared method table but the oracle — CE-only,
modality dropout, multiloss, the unimodal ensemble, OGM-GE, MMPareto, MLB, SynIB random and learned — on
scikit-learn's digits (top vs bottom half) and breast cancer ("mean" vs "worst" features) with an irony class added at
several rates, λ / α / γ chosen on validation accuracy, seeds 0-4.

    python scripts/bench_irony.py --mask_fills ema_noise shuffle --output_dir docs/benchmarks/irony   # the full run
    python scripts/bench_irony.py --render a/results.json b/results.json --output_dir out             # merge, re-draw

Three test accuracies per cell: overall; on the **irony class** — the ground-truth synergy slice (neither view alone
tells irony from a genuine example); and on the **synergy subset** — the examples both unimodal predictors get wrong,
which is biased against models that copy one view (they agree with that view's predictor, so they score below
chance there). Tables give each beside its example count and a chance reference (1/C, uniform guessing).
"""

import argparse
import json
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, beside this script

import bench_common  # noqa: E402
from bench_common import (  # noqa: E402
    MASK_FILLS, METHODS, arguments, fill_differences, grid, label, labels, masks, mean_std, selected_values,
)


IRONY_METHODS = [m for m in METHODS if m != "synib_oracle"]  # the oracle needs synthetic data's synergy coordinates
SEEDS = [0, 1, 2, 3, 4]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/irony")
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.1, 0.3, 0.6])
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--methods", nargs="+", choices=IRONY_METHODS, default=IRONY_METHODS)
    parser.add_argument("--lambdas", nargs="+", type=float, default=[0.1, 1.0], help="SynIB's λ grid")
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--mask_fills", nargs="+", choices=MASK_FILLS, default=["shuffle"],
                        help="what replaces masked features; every masking method runs once per fill")
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="do not train: merge these results.json files and write the tables and plot")
    return parser


def train_and_score(method, value, seed, epochs, data, dims, num_labels, mask_fill="shuffle"):
    """Predicted classes on the validation and test splits of one method (its searched argument at `value`)."""
    from synib_hf import predicted_classes
    from synib_hf.cli.vector import train_vector_model

    trainer_name, overrides = arguments(method, value, mask_fill)
    trainer = train_vector_model(trainer_name, overrides, dims, num_labels, data["train"], seed=seed, epochs=epochs,
                                 learning_rate=1e-3, hidden_size=128)
    return {split: predicted_classes(trainer.predict(data[split]).predictions) for split in ("validation", "test")}


def run(args) -> list:
    from transformers.utils import logging

    from synib_hf.data.irony import as_datasets, irony_splits
    from synib_hf.synergy import synergy_subset_scores, train_unimodal_predictors

    logging.set_verbosity_error()
    rows = []
    for name in args.datasets:
        for rate in args.rates:
            for seed in args.seeds:
                splits = irony_splits(name, rate, seed)
                data = as_datasets(splits)
                train, test = splits["train"], splits["test"]
                predictors = train_unimodal_predictors({"x1": train["x1"], "x2": train["x2"]}, train["labels"], seed)
                unimodal = {m: p.predict(test[m]) for m, p in predictors.items()}
                dims = {"x1": train["x1"].shape[1], "x2": train["x2"].shape[1]}
                num_labels = int(train["labels"].max()) + 1
                for method in args.methods:
                    for fill in (args.mask_fills if masks(method) else [None]):
                        start = time.time()
                        runs = {}
                        for value in grid(method, args.lambdas):
                            predicted = train_and_score(method, value, seed, args.epochs, data, dims, num_labels,
                                                        fill)
                            runs[str(value)] = {"val_acc": float((predicted["validation"] ==
                                                                  splits["validation"]["labels"]).mean()),
                                                **test_scores(predicted["test"], test, unimodal,
                                                              synergy_subset_scores)}
                        chosen = max(runs, key=lambda v: runs[v]["val_acc"])  # ties: the first (smallest) value
                        row = {"dataset": name, "rate": rate, "method": method, "seed": seed, "mask_fill": fill,
                               "searched": METHODS[method][2], "num_labels": num_labels,
                               "lambda": float(chosen) if chosen != "None" else METHODS[method][1].get("synib_weight"),
                               **runs[chosen], "irony_size": int(test["is_irony"].sum()), "grid": runs,
                               "seconds": round(time.time() - start, 1)}
                        rows.append(row)
                        print(json.dumps({k: v for k, v in row.items() if k != "grid"}), flush=True)
    return rows


def test_scores(predicted, test, unimodal, synergy_subset_scores) -> dict:
    """Overall, synergy-subset and irony-class accuracy of the test predictions, with the subset's size."""
    scores = synergy_subset_scores(predicted, test["labels"], unimodal)
    irony = test["is_irony"]
    return {"overall_acc": scores["accuracy"], "synergy_acc": scores["synergy_accuracy"],
            "synergy_size": scores["synergy_size"],
            "irony_acc": float((predicted[irony] == test["labels"][irony]).mean()),
            "test_size": len(test["labels"])}


def normalise(row: dict) -> dict:
    """A saved row in today's shape: rows written before the method table have no `searched`, a fill on methods that
    do not mask, and no class, test or irony counts (recounted here from the seeded splits)."""
    row = dict(row)
    row.setdefault("searched", METHODS[row["method"]][2])
    if not masks(row["method"]):
        row["mask_fill"] = None
    if not {"irony_size", "num_labels", "test_size"} <= set(row):
        from synib_hf.data.irony import irony_splits

        splits = irony_splits(row["dataset"], row["rate"], row["seed"])
        row["irony_size"] = int(splits["test"]["is_irony"].sum())
        row["test_size"] = len(splits["test"]["labels"])
        row["num_labels"] = int(splits["train"]["labels"].max()) + 1
    return row


def merge(rows) -> list:
    """Rows of several runs, one per (data set, rate, method, fill, seed); a row saved twice must agree."""
    return bench_common.merge(map(normalise, rows), lambda row: (row["dataset"], row["rate"], row["method"],
                                                                 row["mask_fill"], row["seed"]),
                              compared=("overall_acc",))


def markdown(rows) -> str:
    import numpy as np

    settings = list(dict.fromkeys((r["dataset"], r["rate"]) for r in rows))
    names = labels(rows)
    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["rate"], label(row)), []).append(row)
    seeds = sorted({r["seed"] for r in rows})
    per_cell = sorted({len(v) for v in groups.values()})
    header = ["| method | " + " | ".join(f"{d} {r}" for d, r in settings) + " |", "|---|" + "---|" * len(settings)]

    def reference(key, title):
        values = [np.mean([r[key] for r in rows if (r["dataset"], r["rate"]) == s]) for s in settings]
        return f"| *{title}* | " + " | ".join(f"{v:.0f}" for v in values) + " |"

    chance = "| *chance (1/C, uniform guessing)* | " + " | ".join(
        f"{1 / next(r['num_labels'] for r in rows if (r['dataset'], r['rate']) == s):.3f}" for s in settings) + " |"

    def table(key, title, count_key, count_title):
        lines = ["", f"**{title}**", "", *header, reference(count_key, count_title), chance]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(
                mean_std([r[key] for r in groups.get((*s, name), [])]) for s in settings) + " |")
        return lines

    lines = [
        f"Irony data sets, mean ± sample std (ddof = 1) over seeds {seeds} ({' or '.join(map(str, per_cell))} per "
        "cell); λ (SynIB) and α/γ (balancing baselines) chosen by validation accuracy. The irony class is the "
        "ground-truth synergy slice; the synergy subset (both unimodal predictors wrong) is biased against models "
        "that copy one view — read it beside the irony class and chance.",
        *table("irony_acc", "Irony class: the ground-truth synergy slice", "irony_size",
               "irony test examples (mean over seeds)"),
        *table("synergy_acc", "Synergy subset (both unimodal predictors wrong)", "synergy_size",
               "subset size (mean over seeds)"),
        *table("overall_acc", "Overall test accuracy", "test_size", "test examples"),
    ]
    if {r.get("mask_fill") for r in rows} >= {"shuffle", "ema_noise"}:
        setting_names = [f"{d} {r}" for d, r in settings]
        for key, title in (("irony_acc", "irony class"), ("synergy_acc", "synergy subset")):
            lines += ["", f"**The fill: {title} with `shuffle` minus with `ema_noise`**, paired by seed (mean ± "
                      "sample std; seeds where shuffle is ahead ↑ / behind ↓)", "",
                      fill_differences(rows, lambda r: f"{r['dataset']} {r['rate']}", setting_names, key)]
    lines += ["", "**Values chosen on validation** (all cells)", "", selected_values(rows)]
    return "\n".join(lines)


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    names = labels(rows)
    figure, axes = plt.subplots(2, len(datasets), figsize=(5.5 * len(datasets), 7), squeeze=False)
    for column, dataset in enumerate(datasets):
        rates = sorted({r["rate"] for r in rows if r["dataset"] == dataset})
        for row_index, (key, title) in enumerate((("irony_acc", "irony class (ground truth)"),
                                                  ("synergy_acc", "synergy subset"))):
            axis = axes[row_index][column]
            for name in names:
                means = [np.nanmean([r[key] for r in rows if (r["dataset"], r["rate"], label(r)) ==
                                     (dataset, rate, name)]) for rate in rates]
                axis.plot(rates, means, marker="o", label=name, linewidth=1)
            axis.set_title(f"{dataset}: {title}")
            axis.set_xlabel("irony rate")
            axis.set_ylabel("test accuracy (mean over seeds)")
    axes[0][0].legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    from bench_common import write_outputs

    rows = merge(row for path in args.render for row in json.load(open(path))) if args.render else run(args)
    print(write_outputs(rows, args.output_dir, markdown, plot))
    return rows


if __name__ == "__main__":
    main()
