"""Model cards for SynIB checkpoints: `ModelCardData` (with a `model-index`) rendered from the Jinja template in
`synib_hf.model_cards`."""

import json
import math
import numbers
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Optional, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData


CITATION = """@article{kontras2026synib,
  title   = {SynIB: Informational Bottleneck for Maximizing Synergy in Multimodal Learning},
  author  = {Kontras, Konstantinos and others},
  journal = {arXiv preprint arXiv:2606.09853},
  year    = {2026}
}"""

BASE_TAGS = ("synib", "multimodal", "synib-hf")
CARD_INPUTS_NAME = "synib_card.json"  # what the card was rendered from, so a push can re-render it for its repo id


# What every Trainer evaluation adds besides measurements (counters, timings), and SynIB's weight (a setting, shown
# with the settings): left out of the card.
NOT_MEASURED = (
    "runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos", "model_preparation_time",
    "jit_compilation_time", "synib/weight",
)


# accuracy on a slice of the evaluation set (`eval_accuracy_<slice>`, e.g. easy-VQA's question types) → its name
SLICE_NAMES = {
    "yes_no": "yes/no questions",
    "yes_no_balanced": "yes/no questions, each question's prior taken out (ground-truth synergy)",
    "color": "color questions",
    "shape": "shape questions",
}

# a ground-truth synergy slice (`eval_ground_truth_<name>_accuracy` / `_size`; `synergy_subset_scores`) → what it is
GROUND_TRUTH_NAMES = {
    "synergy": "the ground-truth synergy slice",
    "synergy_source": "the synergy slice, the examples generated as synergistic (ground-truth synergy)",
    "irony_class": "the irony class (ground-truth synergy)",
}


@dataclass(frozen=True)
class MetricRow:
    """One measured value as the card shows it; `reported` rows also go into the `model-index` (finite numbers that
    score the model, not losses, group sizes, chance references or SynIB's training diagnostics)."""

    key: str
    name: str
    text: str
    value: Optional[float] = None
    metric_type: str = ""
    reported: bool = False


def _as_number(value) -> Optional[float]:
    """A metric's value as a float (ints, floats, numpy and 0-d tensor scalars, numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real) or getattr(value, "ndim", None) == 0:
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def mask_description(hyperparameters: Optional[Mapping] = None) -> str:
    """How the masked views behind `synib/masked_accuracy_<m>` masked a modality, from the settings that differ from
    `SynIBConfig`'s defaults (a card's `hyperparameters`): what a reader needs to read the number right. A learned or
    random mask hides part of a modality; only the full mask takes it all out.

    Example:

    ```python
    >>> mask_description({"mask_type": "learned"})
    'partly masked (learned mask: per-example gates, not the modality removed)'
    ```
    """
    settings = dict(hyperparameters or {})
    mask_type, fill = settings.get("mask_type", "random"), settings.get("mask_fill", "auto")
    fill_text = "" if fill == "auto" else f", {fill} fill"
    if mask_type == "full":
        return f"removed (full mask{fill_text})"
    if mask_type == "learned":
        return "partly masked (learned mask: per-example gates, not the modality removed)"
    if mask_type == "oracle":
        return "masked on its synergy coordinates (oracle mask)"
    return f"masked (random mask, {float(settings.get('mask_ratio', 0.5)):.0%} of its features{fill_text})"


def _pretty(name: str, mask: str = "masked") -> tuple:
    """`(shown name, metric type)` of a metric name without its `eval_` prefix; `mask` says how the masked views
    masked (see [`mask_description`])."""
    if name == "accuracy":
        return "Accuracy", "accuracy"
    if name.startswith("synib/masked_accuracy_"):
        return f"Accuracy with {name.removeprefix('synib/masked_accuracy_')} {mask}", "accuracy"
    if name.startswith("synib/full_mask_accuracy_"):
        return f"Accuracy with {name.removeprefix('synib/full_mask_accuracy_')} removed (full mask)", "accuracy"
    if name.removeprefix("accuracy_") in SLICE_NAMES:
        return f"Accuracy on {SLICE_NAMES[name.removeprefix('accuracy_')]}", "accuracy"
    if name == "synergy_chance":  # a reference to read the subset's accuracy beside, not a score
        return "Synergy-subset chance reference (1/C: uniform guessing over the C classes)", name
    for suffix, shown in (("_accuracy", "Accuracy on"), ("_size", "Examples in")):
        if name.startswith("ground_truth_") and name.endswith(suffix):
            slice_name = name.removeprefix("ground_truth_").removesuffix(suffix)
            described = GROUND_TRUTH_NAMES.get(slice_name, f"{slice_name.replace('_', ' ')} (ground-truth synergy)")
            return f"{shown} {described}", "accuracy" if suffix == "_accuracy" else name
    for suffix, kind in (("_accuracy", "accuracy"), ("_size", "")):
        group = name.removesuffix(suffix)
        if name.endswith(suffix) and (group in ("synergy", "coexistence") or group.startswith("cue_")):
            shown = group.replace("cue_", "cue-") if group.startswith("cue_") else group
            return f"{shown.capitalize()}-subset {suffix[1:]}", kind or name
    return name, name


def metric_rows(metrics: Mapping, mask: str = "masked") -> list:
    """The card's rows for an evaluation's metrics (with or without the `eval_` prefix): every value measured, in a
    stable order (`model-index` rows first), each shown as given when it is not a number. `mask` names how the masked
    views masked (see [`mask_description`]); `synib/full_mask_accuracy_<m>` is the accuracy with `<m>` removed.

    Example:

    ```python
    >>> [row.name for row in metric_rows({"eval_acc": 0.9, "eval_loss": 0.3, "eval_runtime": 1.2})]
    ['acc', 'loss']
    ```
    """
    rows = []
    for key, value in metrics.items():
        name = key.removeprefix("eval_")
        if name in NOT_MEASURED:
            continue
        shown, metric_type = _pretty(name, mask)
        number = _as_number(value)
        if name == "synergy_chance" and number and 0 < number <= 0.5 and abs(1 / number - round(1 / number)) < 1e-6:
            shown = shown.replace("the C classes", f"the C = {round(1 / number)} classes")
        if number is None:
            text = " ".join(str(value).split()).replace("|", "\\|")  # one table cell
        elif isinstance(value, numbers.Integral) or (number.is_integer() and name.endswith("_size")):
            text = str(int(number))
        else:
            text = f"{number:.4f}"
        diagnostic = name == "loss" or name.endswith(("_loss", "_size", "_chance")) or (
            name.startswith("synib/") and not name.startswith(("synib/masked_accuracy_", "synib/full_mask_accuracy_"))
        )
        reported = number is not None and math.isfinite(number) and not diagnostic
        rows.append(MetricRow(key, shown, text, number, metric_type, reported))
    return sorted(rows, key=lambda row: not row.reported)  # stable: each group keeps the given order


def framework_versions() -> dict:
    import importlib.metadata as metadata

    versions = {}
    for package in ("synib-hf", "transformers", "torch", "accelerate", "peft", "huggingface_hub"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def build_model_card(
    model_name: str,
    *,
    repo_id: Optional[str] = None,
    path: str = "native",
    base_models: Sequence[str] = (),
    datasets: Sequence[str] = (),
    dataset_name: str = "evaluation set",
    tags: Sequence[str] = (),
    hyperparameters: Optional[Mapping] = None,
    eval_metrics: Optional[Mapping] = None,
    load_snippet: Optional[str] = None,
    auto_class: str = "AutoModelForSequenceClassification",
    summary: Optional[str] = None,
    template_path: Optional[str] = None,
    published: Optional[bool] = None,
    local_path: Optional[str] = None,
) -> ModelCard:
    """A rendered model card for a SynIB checkpoint.

    Args:
        model_name: the checkpoint's name (never a local path).
        repo_id: the Hub repo the checkpoint lives in, used in the quick-start snippet.
        path: "native", "generic" or "embedding", the SynIB path it was trained with.
        eval_metrics: evaluation metrics as the Trainer reports them (`eval_accuracy`, `eval_synergy_accuracy`,
            `eval_synib/masked_accuracy_<m>`, or any other name). Every value is shown (see [`metric_rows`]); finite
            scores also become the card's `model-index`.
        load_snippet: Python code that loads the checkpoint; by default `auto_class` with `repo_id` when the model is
            published, else with its local folder, the repo id shown as "once published".
        published: whether the checkpoint is on the Hub under `repo_id`; default: whether a `repo_id` is given.
        local_path: the folder the quick start loads an unpublished checkpoint from (default: `model_name`; never an
            absolute path).
        auto_class: the transformers Auto class of the default snippet (`AutoModelForImageTextToText` for a
            generative vision-language model).
        template_path: a Jinja template in place of the shipped one. It sees the variables the shipped one does, and
            `metrics` (name without `eval_` → value). A variable it uses that has no value is an error, not a blank.

    Raises:
        ValueError: the template uses a variable (or a metric) that has no value.

    Example:

    ```python
    >>> card = build_model_card("xor-synib", repo_id="org/xor-synib", eval_metrics={"eval_accuracy": 0.98})
    >>> card.data.eval_results[0].metric_value
    0.98
    ```
    """
    rows = metric_rows(eval_metrics or {}, mask_description(hyperparameters))
    reported = [row for row in rows if row.reported]
    eval_results = [
        EvalResult(
            task_type="text-classification",
            task_name="Multimodal classification",
            dataset_type=(datasets[0] if datasets else "custom"),
            dataset_name=dataset_name,
            metric_type=row.metric_type,
            metric_name=row.name,
            metric_value=round(row.value, 6),
        )
        for row in reported
    ]
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        license="apache-2.0",
        base_model=list(base_models) or None,
        datasets=list(datasets) or None,
        tags=list(dict.fromkeys([*BASE_TAGS, *tags])),
        metrics=list(dict.fromkeys(row.metric_type for row in reported)) or None,
        eval_results=eval_results or None,
    )
    published = bool(repo_id) if published is None else published
    reference = repo_id or f"<your-namespace>/{model_name}"
    header = ("import synib_hf  # registers the SynIB model classes with the Auto classes\n"
              f"from transformers import {auto_class}\n\n")
    if load_snippet is None and published:
        load_snippet = header + f'model = {auto_class}.from_pretrained("{reference}")'
    elif load_snippet is None:
        folder = local_path or model_name
        load_snippet = (header + f'model = {auto_class}.from_pretrained("{folder}")  # the checkpoint\'s folder\n'
                        f'# once published on the Hub (synib-hf push {folder} --repo-id {reference}):\n'
                        f'# model = {auto_class}.from_pretrained("{reference}")')
    snippet = load_snippet
    variables = dict(
        model_name=model_name,
        summary=summary or f"A SynIB-trained multimodal classifier evaluated on {dataset_name}.",
        quick_start=snippet,
        eval_rows=[(row.name, row.text) for row in rows],
        metrics={row.key.removeprefix("eval_"): row.text if row.value is None else row.value for row in rows},
        path=path,
        datasets=list(datasets),
        base_models=list(base_models),
        hyperparameters=dict(hyperparameters or {}),
        versions=framework_versions(),
        citation=CITATION,
    )
    if template_path is not None:
        return _render_strictly(card_data, str(template_path), variables)
    template = resources.files("synib_hf.model_cards").joinpath("synib_model_card.md")
    with resources.as_file(template) as shipped:
        return _render_strictly(card_data, str(shipped), variables)


def _render_strictly(card_data: ModelCardData, template_path: str, variables: dict) -> ModelCard:
    """`ModelCard.from_template`, after a strict rendering has shown that every variable the template uses has a value
    (Jinja's default renders a missing one as a blank, and None as "None")."""
    import jinja2
    import jinja2.meta

    text = Path(template_path).read_text(encoding="utf-8")
    available = {**card_data.to_dict(), **variables}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    used = jinja2.meta.find_undeclared_variables(environment.parse(text)) - {"card_data"}
    empty = sorted(name for name in used if available.get(name) is None)
    fix = "pass a value (a metric: in eval_metrics) or take it out of the template"
    if empty:
        raise ValueError(f"model card template {template_path} uses {', '.join(empty)}, which has no value: {fix}.")
    try:
        environment.from_string(text).render(card_data=card_data.to_yaml(), **available)
    except jinja2.UndefinedError as error:
        raise ValueError(f"model card template {template_path}: {error.message}, so it has no value: {fix}.") from None
    return ModelCard.from_template(card_data, template_path=template_path, **variables)


def save_card_inputs(card_inputs: Mapping, output_dir: str) -> None:
    """Store the arguments of [`build_model_card`] beside the card (JSON; no token or path is among them)."""
    with open(os.path.join(output_dir, CARD_INPUTS_NAME), "w") as f:
        json.dump({k: v for k, v in card_inputs.items() if k != "repo_id"}, f, indent=2, default=str)


def render_card_for_repo(checkpoint_dir: str, repo_id: str, published: bool = True,
                         local_path: Optional[str] = None) -> Optional[ModelCard]:
    """Re-render a checkpoint's card for the repo it is pushed to (`published=False`: for a folder not pushed yet,
    whose quick start loads `local_path` and shows the repo id as "once published"); None if the checkpoint has no
    SynIB card inputs."""
    path = os.path.join(checkpoint_dir, CARD_INPUTS_NAME)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        card_inputs = json.load(f)
    card_inputs["model_name"] = repo_id.split("/")[-1]
    card_inputs.pop("published", None)
    card_inputs.pop("local_path", None)
    return build_model_card(repo_id=repo_id, published=published, local_path=local_path, **card_inputs)
