"""Synergy-subset evaluation: unimodal predictors, the `synergy_subset` metric, and Trainer hooks that report it.

The metric itself is the `evaluate` module in `synib_hf/metrics/synergy_subset` (loadable by path, offline).
"""

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from transformers import TrainerCallback

from .extras import require
from .penalties import predicted_classes


SYNERGY_SUBSET_METRIC = str(Path(__file__).parent / "metrics" / "synergy_subset")


def load_synergy_metric():
    """The `synergy_subset` metric, loaded by path (works offline)."""
    import evaluate

    return evaluate.load(SYNERGY_SUBSET_METRIC)


def train_unimodal_predictors(columns: Mapping[str, np.ndarray], labels: np.ndarray, seed: int = 0, **mlp_kwargs):
    """One scikit-learn MLP per modality, each trained on that modality alone (flattened), `{modality: model}`.

    Example:

    ```python
    >>> predictors = train_unimodal_predictors({"x1": train["x1"], "x2": train["x2"]}, train["labels"])
    >>> unimodal = {m: p.predict(test[m].reshape(len(test[m]), -1)) for m, p in predictors.items()}
    ```
    """
    require("sklearn", "train_unimodal_predictors")
    from sklearn.neural_network import MLPClassifier

    options = dict(hidden_layer_sizes=(128,), max_iter=300, early_stopping=True, random_state=seed)
    options.update(mlp_kwargs)
    return {
        modality: MLPClassifier(**options).fit(np.asarray(values).reshape(len(values), -1), labels)
        for modality, values in columns.items()
    }


def synergy_subset_scores(
    predictions: np.ndarray, references: np.ndarray, unimodal: Mapping[str, np.ndarray], prefix: str = ""
) -> dict:
    """Per-group accuracies and sizes (see the metric), keys prefixed, e.g. `eval_synergy_accuracy`."""
    if len(unimodal) != 2:
        raise ValueError(f"The synergy subset needs exactly two unimodal predictors, got {sorted(unimodal)}.")
    names = tuple(unimodal)
    for name in names:
        if len(unimodal[name]) != len(references):
            raise ValueError(
                f"unimodal predictions for {name!r} cover {len(unimodal[name])} examples, the evaluation set "
                f"{len(references)}: they must be aligned with the evaluation set."
            )
    scores = load_synergy_metric().compute(
        predictions=predictions, references=references, unimodal_1=unimodal[names[0]], unimodal_2=unimodal[names[1]],
        modality_names=names,
    )
    return {f"{prefix}{k}": v for k, v in scores.items()}


def synergy_compute_metrics(unimodal: Mapping[str, np.ndarray]):
    """A `compute_metrics` for the Trainer that reports accuracy and the synergy-subset groups of the eval set."""

    def compute_metrics(prediction) -> dict:
        predicted = predicted_classes(np.asarray(prediction.predictions))
        return synergy_subset_scores(predicted, np.asarray(prediction.label_ids), unimodal)

    return compute_metrics


class SynergySubsetCallback(TrainerCallback):
    """Adds `eval_synergy_accuracy` and the other groups (with their sizes) to every evaluation.

    It re-runs the model over the evaluation set once (a no-grad pass) to read its clean predictions, so it works
    whatever `compute_metrics` is; `synergy_compute_metrics` gets the same numbers without the extra pass.

    Args:
        unimodal: modality → unimodal predictions, aligned with the evaluation set's order.
        label_name: the label column of the batches.
    """

    def __init__(self, unimodal: Mapping[str, Sequence[int]], label_name: str = "labels"):
        self.unimodal = {m: np.asarray(p) for m, p in unimodal.items()}
        self.label_name = label_name

    def on_evaluate(self, args, state, control, metrics=None, model=None, eval_dataloader=None, **kwargs):
        import torch

        predictions, references = [], []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for batch in eval_dataloader:
                labels = batch.pop(self.label_name)
                batch = {k: v.to(args.device) if hasattr(v, "to") else v for k, v in batch.items()}
                predictions.append(predicted_classes(model(**batch).logits).cpu())
                references.append(labels)
        model.train(was_training)
        scores = synergy_subset_scores(
            torch.cat(predictions).numpy(), torch.cat(references).numpy(), self.unimodal, prefix="eval_"
        )
        metrics.update(scores)
        if state.log_history and any(k.startswith("eval_") for k in state.log_history[-1]):
            state.log_history[-1].update(scores)  # the evaluation's log line, so cards and logs carry it
