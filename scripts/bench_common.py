"""What the benchmark scripts share: the method table, the hyperparameter grids searched on validation, and writing
their outputs (training the vector model is `synib_hf.cli.vector`).

A benchmark takes a method through one line of `METHODS`: the trainer's name in `synib_hf`, the arguments that
define the method, and the one argument chosen on validation accuracy (None: nothing is searched). Methods that mask
(their arguments name a `mask_type`) run once per mask fill. `grid(method, lambdas)` lists the values to try and
`trainer_and_args(method, value, fill, **training_arguments)` builds one run's trainer class and arguments.
"""

import json
import math
import os


METHODS = {  # name → (trainer in synib_hf, arguments, the argument searched on validation or None)
    "ce": ("SynIBTrainer", {"synib_weight": 0.0}, None),
    "ensemble": ("UnimodalEnsembleTrainer", {}, None),
    "multiloss": ("MultilossTrainer", {}, None),
    "ogm_ge": ("OGMGETrainer", {}, "ogm_alpha"),
    "mmpareto": ("MMParetoTrainer", {}, "mmpareto_gamma"),
    "mlb": ("MLBTrainer", {}, "mlb_alpha"),
    "dropout": ("ModalityDropoutTrainer", {"synib_weight": 1.0, "mask_type": "random", "mask_ratio": 0.3}, None),
    "synib_random": ("SynIBTrainer", {"mask_type": "random", "mask_ratio": 0.3}, "synib_weight"),
    "synib_learned": ("SynIBTrainer", {"mask_type": "learned"}, "synib_weight"),
    "synib_oracle": ("SynIBTrainer", {"mask_type": "oracle"}, "synib_weight"),
}
# Grids of the balancing baselines (SynIB's λ grid is each benchmark's --lambdas): OGM-GE's α around the authors'
# recommendations (0.1 VGGSound, 0.8 CREMA-D), MMPareto's γ around their code's 1.5, MLB's α from the authors' sweep.
GRIDS = {"ogm_alpha": [0.1, 0.3, 0.8], "mmpareto_gamma": [1.0, 1.5, 3.0], "mlb_alpha": [0.5, 1.5, 3.0]}
MASK_FILLS = ("shuffle", "ema_noise", "zero")


def masks(method: str) -> bool:
    """Whether a method builds masked views (and so depends on the mask fill)."""
    return "mask_type" in METHODS[method][1]


def grid(method: str, lambdas) -> list:
    """The values tried for the method's searched argument: `[None]` when nothing is searched."""
    searched = METHODS[method][2]
    if searched is None:
        return [None]
    return list(lambdas) if searched == "synib_weight" else GRIDS[searched]


def arguments(method: str, value, mask_fill: str, **extra) -> tuple:
    """`(trainer name, arguments)` of one run: the method's arguments, the searched one set to `value`, the fill."""
    trainer, overrides, searched = METHODS[method]
    overrides = {**overrides, **extra}
    if searched is not None:
        overrides[searched] = value
    if masks(method):
        overrides["mask_fill"] = mask_fill
    return trainer, overrides


def trainer_and_args(method: str, value, mask_fill: str, extra=None, **training_arguments) -> tuple:
    """`(trainer class, its arguments)` for one run of `method`: what a benchmark that builds its own model needs, e.g.
    `trainer_class, args = trainer_and_args("ogm_ge", 0.8, "shuffle", output_dir=..., learning_rate=...)`, then
    `trainer_class(model=model, args=args, train_dataset=...)`. The arguments class is the trainer's own
    (`SynIBConfig`, or `BalancingConfig` for the balancing baselines)."""
    import synib_hf

    trainer_name, overrides = arguments(method, value, mask_fill, **(extra or {}))
    trainer_class = getattr(synib_hf, trainer_name)
    return trainer_class, trainer_class.args_class(**training_arguments, **overrides)


def label(row: dict) -> str:
    """A table's name for a row's method: masking methods carry their fill, e.g. `synib_random (shuffle)`."""
    fill = row.get("mask_fill")
    return f"{row['method']} ({fill})" if fill and masks(row["method"]) else row["method"]


def labels(rows) -> list:
    """The tables' row names in the method table's order, each masking method's fills in `MASK_FILLS` order."""
    order = {name: i for i, name in enumerate(METHODS)}
    named = {label(r): (order[r["method"]], MASK_FILLS.index(r["mask_fill"]) if r.get("mask_fill") in MASK_FILLS
                        else -1) for r in rows}
    return sorted(named, key=named.get)


def sample_std(values) -> float:
    """The sample std (ddof = 1) of `values`, NaNs left out; 0.0 where fewer than two remain (error bars, paired
    differences)."""
    import numpy as np

    values = [v for v in values if not math.isnan(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def mean_std(values, ddof: int = 1) -> str:
    """`mean ± std` over seeds, NaNs (a seed whose slice is empty) left out: the sample std (`ddof=1`, as papers
    report it; a single value then has no std and is shown alone); `ddof=0` gives the population std."""
    import numpy as np

    values = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if values.size == 0:
        return "–"
    if values.size <= ddof:
        return f"{values.mean():.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=ddof):.3f}"


def paired_counts(values: dict, reference: dict) -> str:
    """On how many seeds `values` is above / below `reference`, paired by seed (both `{seed: value}`; seeds missing
    from either side or NaN on either side left out), e.g. `4↑ 1↓ of 5`."""
    pairs = [(values[s], reference[s]) for s in sorted(values) if s in reference
             and not (math.isnan(values[s]) or math.isnan(reference[s]))]
    above, below = sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)
    return f"{above}↑ {below}↓ of {len(pairs)}"


def selected_values(rows) -> str:
    """Markdown lines: for each searched method, how often each grid value was chosen."""
    lines = ["| method | searched | chosen on validation (value: times) |", "|---|---|---|"]
    for name in [n for n in labels(rows) if any(label(r) == n and r.get("searched") for r in rows)]:
        chosen = [r for r in rows if label(r) == name]
        counts = {}
        for row in chosen:
            counts[row["lambda"]] = counts.get(row["lambda"], 0) + 1
        cells = ", ".join(f"{value:g}: {counts[value]}" for value in sorted(counts))
        lines.append(f"| {name} | {chosen[0]['searched']} | {cells} |")
    return "\n".join(lines) + "\n"


def fill_differences(rows, setting, settings, key: str) -> str:
    """Markdown lines: for each masking method run with both `shuffle` and `ema_noise`, the difference shuffle −
    ema_noise of `key` per setting, paired by seed (mean ± sample std), and on how many seeds shuffle is ahead / behind.

    `setting(row)` names a row's setting (a mixture, a data set and rate), `settings` orders them."""
    import numpy as np

    by_key = {(r["method"], r.get("mask_fill"), setting(r), r["seed"]): r[key] for r in rows}
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)
               and masks(m) and {"shuffle", "ema_noise"} <= {r.get("mask_fill") for r in rows if r["method"] == m}]
    lines = ["| method | " + " | ".join(map(str, settings)) + " |", "|---|" + "---|" * len(settings)]
    for method in methods:
        cells = []
        for name in settings:
            seeds = sorted({r["seed"] for r in rows if r["method"] == method and setting(r) == name})
            pairs = [(by_key[(method, "shuffle", name, s)], by_key[(method, "ema_noise", name, s)]) for s in seeds
                     if (method, "shuffle", name, s) in by_key and (method, "ema_noise", name, s) in by_key]
            pairs = [(a, b) for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
            if not pairs:
                cells.append("–")
                continue
            differences = np.array([a - b for a, b in pairs])
            ahead, behind = int((differences > 0).sum()), int((differences < 0).sum())
            cells.append(f"{differences.mean():+.3f} ± {sample_std(differences):.3f} ({ahead}↑ {behind}↓ of "
                         f"{len(pairs)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def merge(rows, key, compared=("overall_acc", "synergy_acc")) -> list:
    """Rows of several runs, one per `key(row)`; a row saved twice must agree on the `compared` fields (a run that
    does not reproduce is an error, not a silently kept first copy)."""
    merged = {}
    for row in rows:
        cell = key(row)
        if cell in merged and any(merged[cell][f] != row[f] for f in compared):
            raise ValueError(f"Two saved runs disagree on {cell}: "
                             + ", ".join(f"{f} {merged[cell][f]} vs {row[f]}" for f in compared) + ".")
        merged.setdefault(cell, row)
    return list(merged.values())


def write_outputs(rows, output_dir, markdown, plot) -> str:
    """`results.json`, `results.md` (from `markdown(rows)`) and `results.png` (from `plot(rows, path)`)."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = markdown(rows)
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(table)
    plot(rows, os.path.join(output_dir, "results.png"))
    return table
