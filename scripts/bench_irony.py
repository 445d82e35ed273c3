"""Irony benchmark on real data (method page §5): CE-only, modality dropout and SynIB (random, learned) on
scikit-learn's digits (top vs bottom half) and breast cancer ("mean" vs "worst" features) with an irony class added
at several rates; overall and synergy-subset test accuracy over seeds.

    python scripts/bench_irony.py --output_dir docs/benchmarks/irony
"""

import argparse
import json
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, beside this script


METHODS = {
    "ce": ("SynIBTrainer", {"synib_weight": 0.0}),
    "dropout": ("ModalityDropoutTrainer", {"synib_weight": 1.0, "mask_type": "random", "mask_ratio": 0.3}),
    "synib_random": ("SynIBTrainer", {"mask_type": "random", "mask_ratio": 0.3}),
    "synib_learned": ("SynIBTrainer", {"mask_type": "learned"}),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/irony")
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.1, 0.3, 0.6])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--lambdas", nargs="+", type=float, default=[0.01, 0.1, 1.0])
    parser.add_argument("--epochs", type=float, default=40)
    parser.add_argument("--mask_fill", choices=["ema_noise", "shuffle", "zero"], default="ema_noise",
                        help="what replaces masked features, for every masking method")
    return parser


def train_and_score(method, weight, seed, epochs, data, dims, num_labels, mask_fill="ema_noise"):
    """Predicted classes on the validation and test splits of one method (at λ = `weight` for SynIB)."""
    from synib_hf.cli.vector import train_vector_model

    from synib_hf import predicted_classes

    trainer_name, overrides = METHODS[method]
    overrides = {**overrides, **({"synib_weight": weight} if weight is not None else {})}
    if "mask_type" in overrides:
        overrides["mask_fill"] = mask_fill
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
                    start = time.time()
                    grid = args.lambdas if method.startswith("synib") else [None]
                    runs = []
                    for weight in grid:
                        predicted = train_and_score(method, weight, seed, args.epochs, data, dims, num_labels,
                                                    args.mask_fill)
                        validation = float((predicted["validation"] == splits["validation"]["labels"]).mean())
                        runs.append((validation, weight, predicted["test"]))
                    validation, weight, predicted = max(runs, key=lambda r: r[0])
                    scores = synergy_subset_scores(predicted, test["labels"], unimodal)
                    row = {
                        "dataset": name, "rate": rate, "method": method, "seed": seed, "mask_fill": args.mask_fill,
                        "lambda": weight if weight is not None else METHODS[method][1]["synib_weight"],
                        "overall_acc": scores["accuracy"], "synergy_acc": scores["synergy_accuracy"],
                        "synergy_size": scores["synergy_size"], "val_acc": validation,
                        "irony_acc": float((predicted[test["is_irony"]] == test["labels"][test["is_irony"]]).mean()),
                        "seconds": round(time.time() - start, 1),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def markdown(rows) -> str:
    import numpy as np

    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["rate"], row["method"]), []).append(row)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    fills = sorted({r.get("mask_fill", "ema_noise") for r in rows})
    lines = [
        f"Test accuracy overall / synergy subset / irony class, mean ± std over seeds {seeds}, mask fill "
        f"{' + '.join(fills)} (synergy subset: examples both unimodal predictors get wrong; mean size in brackets).",
        "",
        "| data set | irony rate | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for dataset, rate in dict.fromkeys((r["dataset"], r["rate"]) for r in rows):
        cells = []
        for method in methods:
            group = groups[(dataset, rate, method)]
            overall = np.array([r["overall_acc"] for r in group])
            synergy = np.array([r["synergy_acc"] for r in group])
            irony = np.array([r["irony_acc"] for r in group])
            size = np.mean([r["synergy_size"] for r in group])
            cells.append(f"{overall.mean():.3f} / {np.nanmean(synergy):.3f}±{np.nanstd(synergy):.3f} ({size:.0f}) / "
                         f"{irony.mean():.3f}")
        lines.append(f"| {dataset} | {rate} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        rates = sorted({r["rate"] for r in rows if r["dataset"] == dataset})
        for method in methods:
            means = [np.nanmean([r["synergy_acc"] for r in rows if (r["dataset"], r["rate"], r["method"]) ==
                                 (dataset, rate, method)]) for rate in rates]
            axis.plot(rates, means, marker="o", label=method)
        axis.set_title(dataset)
        axis.set_xlabel("irony rate")
        axis.set_ylabel("synergy-subset test accuracy")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    from bench_common import write_outputs

    rows = run(args)
    print(write_outputs(rows, args.output_dir, markdown, plot))
    return rows


if __name__ == "__main__":
    main()
