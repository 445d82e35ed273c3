"""Synergy-subset evaluation: unimodal predictors, the `synergy_subset` metric, and a `compute_metrics` that reports
it through any Trainer.

The metric itself is the `evaluate` module in `synib_hf/metrics/synergy_subset` (loadable by path, offline).
"""

from pathlib import Path
from typing import Mapping, Optional

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


def _ground_truth_slices(ground_truth) -> dict:
    """`ground_truth` as `{name: boolean mask}`: a mask alone is named "synergy"."""
    if ground_truth is None:
        return {}
    if isinstance(ground_truth, Mapping):
        return {str(name): np.asarray(mask, dtype=bool) for name, mask in ground_truth.items()}
    return {"synergy": np.asarray(ground_truth, dtype=bool)}


def synergy_subset_scores(
    predictions: np.ndarray,
    references: np.ndarray,
    unimodal: Mapping[str, np.ndarray],
    prefix: str = "",
    num_classes: Optional[int] = None,
    ground_truth=None,
) -> dict:
    """Per-group accuracies and sizes (see the metric), keys prefixed, e.g. `eval_synergy_accuracy`, with the
    references the subset is to be read beside (its selection bias: see the metric's description):

    * `num_classes` C given: `synergy_chance`, the subset's chance reference 1/C (uniform guessing over the C
      classes; the same on every group);
    * `ground_truth` given (a boolean mask aligned with the evaluation set, or `{name: mask}` for named slices): the
      accuracy and size of each ground-truth synergy slice, `ground_truth_<name>_accuracy` and
      `ground_truth_<name>_size` (a mask alone is named "synergy": `ground_truth_synergy_accuracy`), e.g. the
      Gaussian-XOR examples generated as synergistic or the irony class. An empty slice has accuracy NaN.

    Example:

    ```python
    >>> unimodal = {"a": np.array([0, 0]), "b": np.array([0, 1])}
    >>> scores = synergy_subset_scores(np.array([1, 0]), np.array([1, 1]), unimodal, num_classes=2,
    ...                                ground_truth=np.array([True, False]))
    >>> scores["synergy_accuracy"], scores["synergy_chance"], scores["ground_truth_synergy_accuracy"]
    (1.0, 0.5, 1.0)
    ```
    """
    if len(unimodal) != 2:
        raise ValueError(f"The synergy subset needs exactly two unimodal predictors, got {sorted(unimodal)}.")
    names = tuple(unimodal)
    slices = _ground_truth_slices(ground_truth)
    aligned = {**{f"unimodal predictions for {name!r}": unimodal[name] for name in names},
               **{f"the ground-truth slice {name!r}": mask for name, mask in slices.items()}}
    for what, values in aligned.items():
        if len(values) != len(references):
            raise ValueError(
                f"{what} cover {len(values)} examples, the evaluation set {len(references)}: they must be aligned "
                "with the evaluation set."
            )
    if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) != num_classes
                                    or num_classes < 2):
        raise ValueError(f"num_classes must be a whole number of classes, at least 2, got {num_classes!r}.")
    scores = load_synergy_metric().compute(
        predictions=predictions, references=references, unimodal_1=unimodal[names[0]], unimodal_2=unimodal[names[1]],
        modality_names=names,
    )
    ordered = {}
    for key, value in scores.items():
        ordered[key] = value
        if key == "synergy_size":  # the references stand beside the subset's own figures
            if num_classes is not None:
                ordered["synergy_chance"] = 1.0 / int(num_classes)
            correct = np.asarray(predictions) == np.asarray(references)
            for name, mask in slices.items():
                ordered[f"ground_truth_{name}_accuracy"] = float(correct[mask].mean()) if mask.any() else float("nan")
                ordered[f"ground_truth_{name}_size"] = int(mask.sum())
    return {f"{prefix}{k}": v for k, v in ordered.items()}


def synergy_compute_metrics(
    unimodal: Mapping[str, np.ndarray], compute_metrics=None, num_classes: Optional[int] = None, ground_truth=None
):
    """A `compute_metrics` for any Trainer: `compute_metrics`'s own metrics (if given) plus the synergy-subset groups
    of the evaluation set (accuracy and size of each group), the subset's chance reference `synergy_chance` (1/C,
    uniform guessing; C is `num_classes`, else the logits' width, 2 for a one-logit head) and, with `ground_truth`
    (a boolean mask aligned with the evaluation set, or `{name: mask}`), the accuracy and size of each ground-truth
    synergy slice (see [`synergy_subset_scores`]).

    The Trainer gathers predictions across processes in the evaluation set's order, so `unimodal` (predictions
    aligned with that set) lines up; the numbers join the evaluation's log line and so reach every `report_to`
    integration.

    Example:

    ```python
    >>> trainer = SynIBTrainer(model, args, train_dataset=train, eval_dataset=test,
    ...                        compute_metrics=synergy_compute_metrics(unimodal, compute_metrics=accuracy,
    ...                                                                ground_truth=np.asarray(test["source"]) == 3))
    ```
    """
    unimodal = {m: np.asarray(p) for m, p in unimodal.items()}
    slices = _ground_truth_slices(ground_truth)

    def metrics(prediction) -> dict:
        scores = {} if compute_metrics is None else dict(compute_metrics(prediction))
        logits = np.asarray(prediction.predictions[0] if isinstance(prediction.predictions, tuple)
                            else prediction.predictions)
        predicted = predicted_classes(logits)
        classes = num_classes if num_classes is not None else max(2, int(logits.shape[-1]))
        scores.update(synergy_subset_scores(predicted, np.asarray(prediction.label_ids), unimodal,
                                            num_classes=classes, ground_truth=slices or None))
        return scores

    return metrics
