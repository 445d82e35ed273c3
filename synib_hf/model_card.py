"""Model cards for SynIB checkpoints: `ModelCardData` (with a `model-index`) rendered from the Jinja template in
`synib_hf.model_cards`."""

import json
import math
import os
from importlib import resources
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


# accuracy on a slice of the evaluation set (`eval_accuracy_<slice>`, e.g. easy-VQA's question types) → its name
SLICE_NAMES = {
    "yes_no": "yes/no questions",
    "yes_no_balanced": "yes/no questions, each question's prior taken out (ground-truth synergy)",
    "color": "color questions",
    "shape": "shape questions",
}


def metric_rows(metrics: Mapping[str, float]) -> list[tuple[str, str, float]]:
    """`(metric_type, pretty name, value)` for the evaluation metrics a card reports, in a stable order."""
    rows = []
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or math.isnan(value):
            continue
        name = key.removeprefix("eval_")
        if name == "accuracy":
            rows.append(("accuracy", "Accuracy", value))
        elif name == "synergy_accuracy":
            rows.append(("accuracy", "Synergy-subset accuracy", value))
        elif name.removeprefix("accuracy_") in SLICE_NAMES:
            rows.append(("accuracy", f"Accuracy on {SLICE_NAMES[name.removeprefix('accuracy_')]}", value))
        elif name.startswith("synib/masked_accuracy_"):
            modality = name.removeprefix("synib/masked_accuracy_")
            rows.append(("accuracy", f"Accuracy with {modality} masked", value))
    return rows


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
    eval_metrics: Optional[Mapping[str, float]] = None,
    load_snippet: Optional[str] = None,
    summary: Optional[str] = None,
) -> ModelCard:
    """A rendered model card for a SynIB checkpoint.

    Args:
        model_name: the checkpoint's name (never a local path).
        repo_id: the Hub repo the checkpoint lives in, used in the quick-start snippet.
        path: "native" or "generic", the SynIB path it was trained with.
        eval_metrics: evaluation metrics as the Trainer reports them (`eval_accuracy`, `eval_synergy_accuracy`,
            `eval_synib/masked_accuracy_<m>`); they become the card's `model-index`.
        load_snippet: Python code that loads the checkpoint; by default the Auto classes with `repo_id`.

    Example:

    ```python
    >>> card = build_model_card("xor-synib", repo_id="org/xor-synib", eval_metrics={"eval_accuracy": 0.98})
    >>> card.data.eval_results[0].metric_value
    0.98
    ```
    """
    rows = metric_rows(eval_metrics or {})
    eval_results = [
        EvalResult(
            task_type="text-classification",
            task_name="Multimodal classification",
            dataset_type=(datasets[0] if datasets else "custom"),
            dataset_name=dataset_name,
            metric_type=metric_type,
            metric_name=name,
            metric_value=round(float(value), 6),
        )
        for metric_type, name, value in rows
    ]
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        license="apache-2.0",
        base_model=list(base_models) or None,
        datasets=list(datasets) or None,
        tags=list(dict.fromkeys([*BASE_TAGS, *tags])),
        metrics=["accuracy"] if rows else None,
        eval_results=eval_results or None,
    )
    reference = repo_id or f"<your-namespace>/{model_name}"
    snippet = load_snippet or (
        "import synib_hf  # registers the SynIB model classes with the Auto classes\n"
        "from transformers import AutoModelForSequenceClassification\n\n"
        f'model = AutoModelForSequenceClassification.from_pretrained("{reference}")'
    )
    template = resources.files("synib_hf.model_cards").joinpath("synib_model_card.md")
    with resources.as_file(template) as template_path:
        return ModelCard.from_template(
            card_data,
            template_path=str(template_path),
            model_name=model_name,
            summary=summary or f"A SynIB-trained multimodal classifier evaluated on {dataset_name}.",
            quick_start=snippet,
            eval_rows=[(name, f"{value:.4f}") for _, name, value in rows],
            path=path,
            datasets=list(datasets),
            base_models=list(base_models),
            hyperparameters=dict(hyperparameters or {}),
            versions=framework_versions(),
            citation=CITATION,
        )


def save_card_inputs(card_inputs: Mapping, output_dir: str) -> None:
    """Store the arguments of [`build_model_card`] beside the card (JSON; no token or path is among them)."""
    with open(os.path.join(output_dir, CARD_INPUTS_NAME), "w") as f:
        json.dump({k: v for k, v in card_inputs.items() if k != "repo_id"}, f, indent=2, default=str)


def render_card_for_repo(checkpoint_dir: str, repo_id: str) -> Optional[ModelCard]:
    """Re-render a checkpoint's card for the repo it is pushed to; None if the checkpoint has no SynIB card inputs."""
    path = os.path.join(checkpoint_dir, CARD_INPUTS_NAME)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        card_inputs = json.load(f)
    card_inputs["model_name"] = repo_id.split("/")[-1]
    return build_model_card(repo_id=repo_id, **card_inputs)
