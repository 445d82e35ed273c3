"""Synergy-subset evaluation: unimodal predictors, the `synergy_subset` metric, and a `compute_metrics` that reports
it through any Trainer.

The metric itself is the `evaluate` module in `synib_hf/metrics/synergy_subset` (loadable by path, offline).
"""

from pathlib import Path
from typing import Mapping

import numpy as np
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


def synergy_compute_metrics(unimodal: Mapping[str, np.ndarray], compute_metrics=None):
    """A `compute_metrics` for any Trainer: `compute_metrics`'s own metrics (if given) plus the synergy-subset groups
    of the evaluation set (accuracy and size of each group).

    The Trainer gathers predictions across processes in the evaluation set's order, so `unimodal` (predictions
    aligned with that set) lines up; the numbers join the evaluation's log line and so reach every `report_to`
    integration.

    Example:

    ```python
    >>> trainer = SynIBTrainer(model, args, train_dataset=train, eval_dataset=test,
    ...                        compute_metrics=synergy_compute_metrics(unimodal, compute_metrics=accuracy))
    ```
    """
    unimodal = {m: np.asarray(p) for m, p in unimodal.items()}

    def metrics(prediction) -> dict:
        scores = {} if compute_metrics is None else dict(compute_metrics(prediction))
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted = predicted_classes(np.asarray(logits))
        scores.update(synergy_subset_scores(predicted, np.asarray(prediction.label_ids), unimodal))
        return scores

    return metrics
