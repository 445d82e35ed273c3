"""SynIB's objective as a pure function: from one batch's clean and masked views to the loss and its metrics.

    loss = task_loss + weight · Σ_m mean_b Ω(masked_m[b])

A view builder (`synib_hf.view_builders`) turns `(model, inputs)` into [`Views`]; [`synib_objective`] turns them into
an [`ObjectiveOutput`]; the trainer (`SynIBMixin`) back-propagates the loss and logs the metrics. Nothing here knows
of a model or a trainer, so every number is checkable by hand.

What a masked view costs is chosen in one place, [`view_losses`]:

| `view_loss`       | per example and view                                          | needs                       |
|-------------------|---------------------------------------------------------------|-----------------------------|
| `kl_uniform`      | KL(p ‖ uniform) in the head's form (`Task.penalty`)            | –                           |
| `gaussian`        | KL(N(z, σ²) ‖ N(0, I))                                        | `masked_logvar`             |
| `unimodal_anchor` | KL(stopgrad(p_anchor) ‖ p), anchor = the visible modality's unimodal head | `anchors`     |
| `cross_entropy`   | the task loss of the view against the label (modality dropout) | `targets`                  |
"""

import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import torch

from .penalties import PENALTIES, gaussian, unimodal_anchor
from .tasks import Task


VIEW_LOSSES = (*PENALTIES, "cross_entropy")


@dataclass
class Views:
    """One batch's clean view and masked views, as a view builder returns them.

    Args:
        task: the head's [`Task`] (problem type and width): the penalty's form and masked accuracy follow it.
        modalities: the masked modality of each view, in order (`M` names).
        masked (`(M, B, C)`): each masked view's scores (classes, labels, or a generative model's answer candidates).
        valid (`(B,)` bool): the rows that count in the penalty and the logged means (rows labelled −100 do not).
        targets: what masked accuracy and `cross_entropy` compare the scores with (class ids `(B,)` or targets
            `(B, C)`); None: no accuracy.
        task_loss: the clean view's task loss (a scalar); None when the builder leaves the clean view to the model's
            own forward through the trainer (then [`Views.with_clean`] adds it).
        scores (`(B, C)`): the clean view's scores, in the masked views' space (for the finiteness check).
        outputs: what the trainer returns as the clean outputs (what `prediction_step` turns into predictions).
        masked_logvar (`(M, B, C)`): log-variances of each masked view (`gaussian`).
        anchors (`(M, B, C)`): the unimodal logits of the modality each view leaves visible (`unimodal_anchor`).
        penalties (`(M, B)`): each view's loss, already computed and back-propagated (views run one at a time); the
            objective then adds them to the loss as constants, for the logged value only.
        task_scaled_for_ga: `task_loss` is already a share of the whole accumulated batch (a token loss divided by the
            Trainer's `num_items_in_batch`), so the penalty must be divided by the accumulation steps too.
        columns: extra per-example values to log, e.g. `{"fused_loss": (B,)}`.
    """

    task: Task
    modalities: tuple
    masked: torch.Tensor
    valid: torch.Tensor
    targets: Optional[torch.Tensor] = None
    task_loss: Optional[torch.Tensor] = None
    scores: Optional[torch.Tensor] = None
    outputs: Any = None
    masked_logvar: Optional[torch.Tensor] = None
    anchors: Optional[torch.Tensor] = None
    penalties: Optional[torch.Tensor] = None
    task_scaled_for_ga: bool = False
    columns: dict = field(default_factory=dict)

    def with_clean(self, task_loss: torch.Tensor, scores: torch.Tensor, outputs, scaled_for_ga: bool) -> "Views":
        """These views completed with a clean view computed elsewhere (the model's own forward and loss)."""
        return replace(self, task_loss=task_loss, scores=scores, outputs=outputs, task_scaled_for_ga=scaled_for_ga)


@dataclass
class ObjectiveOutput:
    """What [`synib_objective`] returns.

    Args:
        loss: `task_loss + penalty`, the scalar to back-propagate.
        penalty: `weight · Σ_m mean_b Ω / penalty_divisor`, a scalar.
        view_losses (`(M, B)`): each view's loss per example.
        metrics: per-example columns `(B,)`, NaN on rows that do not count: `task_loss`, `penalty_<m>`,
            `masked_max_prob_<m>`, `masked_entropy_<m>`, `masked_accuracy_<m>` (with `accuracy=True`), `weight`, and
            the views' own `columns`.
    """

    loss: torch.Tensor
    penalty: torch.Tensor
    view_losses: torch.Tensor
    metrics: dict


def select_masked_modalities(requested, modalities) -> tuple:
    """The modalities that get a masked view: `requested` (`masked_modalities`), checked against `modalities`, else
    all of them.

    Raises:
        ValueError: `requested` names a modality the model or batch does not have.
    """
    unknown = sorted(set(requested or ()) - set(modalities))
    if unknown:
        raise ValueError(
            f"masked_modalities names {unknown}, but the modalities are {list(modalities)}; fix masked_modalities "
            "(or modality_keys)."
        )
    return tuple(requested) if requested else tuple(modalities)


def valid_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of `values (..., B)` over the rows that count, `valid (B,)`; 0 when none does.

    Example:

    ```python
    >>> valid_mean(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([True, True, False]))
    tensor([2.])
    ```
    """
    return (values * valid).sum(dim=-1) / valid.sum().clamp_min(1)


def view_losses(views: Views, view_loss: str = "kl_uniform") -> torch.Tensor:
    """Each masked view's loss per example, `(M, B)`: the one place that says what a masked view costs.

    Raises:
        ValueError: an unknown `view_loss`, or one whose inputs the views do not carry.
    """
    if view_loss not in VIEW_LOSSES:
        raise ValueError(f"view_loss={view_loss!r} is not one of {VIEW_LOSSES}.")
    masked, task = views.masked, views.task
    if view_loss == "kl_uniform":
        return torch.stack([task.penalty(view) for view in masked])
    needed = {"gaussian": "masked_logvar", "unimodal_anchor": "anchors", "cross_entropy": "targets"}[view_loss]
    if getattr(views, needed) is None:
        raise ValueError(f"view_loss={view_loss!r} needs the views' {needed}, which this view builder did not return.")
    if view_loss == "gaussian":
        return torch.stack([gaussian(view, logvar) for view, logvar in zip(masked, views.masked_logvar)])
    if view_loss == "unimodal_anchor":
        return torch.stack([unimodal_anchor(view, anchor) for view, anchor in zip(masked, views.anchors)])
    return torch.stack([task.losses(view, views.targets) for view in masked])


def check_finite(views: Views, where: str = "") -> None:
    """A clear error when a view's scores hold NaN or inf (each view alone: shapes may differ between them).

    Raises:
        ValueError: naming the views that are not finite.
    """
    named = [("clean", views.scores), *((f"masked-{m}", view) for m, view in zip(views.modalities, views.masked))]
    bad = [name for name, scores in named if scores is not None and not bool(torch.isfinite(scores).all())]
    if bad:
        raise ValueError(
            f"Non-finite logits{' ' + where if where else ''} in the {', '.join(bad)} view(s). Check the inputs for "
            "NaN/inf, lower the learning rate, or prefer bf16 to fp16."
        )


def synib_objective(
    views: Views, weight: float, view_loss: str = "kl_uniform", penalty_divisor: int = 1, accuracy: bool = False
) -> ObjectiveOutput:
    """`task_loss + weight · Σ_m valid_mean(Ω_m) / penalty_divisor`, and its per-example metric columns.

    Args:
        views: the batch's views, with their clean task loss.
        weight: λ (`synib_weight`); 0 adds nothing to the loss (the views still give metrics).
        view_loss: what a masked view costs (see [`view_losses`]).
        penalty_divisor: divides the penalty, e.g. by the accumulation steps when the task loss is already a share of
            the accumulated batch (`views.task_scaled_for_ga`).
        accuracy: add `masked_accuracy_<m>` columns (needs `views.targets`).

    Example:

    ```python
    >>> views = Views(task=Task("single_label_classification", 2), modalities=("image",),
    ...               masked=torch.tensor([[[0.0, 0.0], [9.0, 0.0]]]), valid=torch.tensor([True, True]),
    ...               task_loss=torch.tensor(0.5))
    >>> out = synib_objective(views, weight=2.0)   # Ω = [0, ≈ log 2]: 0.5 + 2 · mean ≈ 0.5 + 0.693
    >>> round(out.loss.item(), 3)
    1.193
    ```
    """
    if views.task_loss is None:
        raise ValueError("synib_objective needs the clean view's task loss: complete the views with Views.with_clean.")
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight must be a finite number >= 0, got {weight}.")
    losses = views.penalties if views.penalties is not None else view_losses(views, view_loss)  # (M, B)
    penalty = weight * valid_mean(losses, views.valid).sum()
    if penalty_divisor != 1:
        penalty = penalty / penalty_divisor
    loss = views.task_loss + penalty
    return ObjectiveOutput(loss=loss, penalty=penalty, view_losses=losses, metrics=_metric_columns(views, losses,
                                                                                                   weight, accuracy))


def _metric_columns(views: Views, losses: torch.Tensor, weight: float, accuracy: bool) -> dict:
    """Per-example columns `(B,)`, float32, NaN on rows that do not count (left out of every mean)."""
    valid, task = views.valid, views.task
    size = valid.shape[0]
    columns = {"task_loss": views.task_loss.detach().float().expand(size)}
    columns.update({key: value.detach().float() for key, value in views.columns.items()})
    for name, view, loss in zip(views.modalities, views.masked.detach(), losses.detach()):
        columns[f"penalty_{name}"] = loss.float()
        if task.has_accuracy:
            columns[f"masked_max_prob_{name}"] = task.confidence(view)
            columns[f"masked_entropy_{name}"] = task.entropy(view)
            if accuracy and views.targets is not None:
                columns[f"masked_accuracy_{name}"] = task.correct(view, views.targets)
    columns["weight"] = torch.full((size,), float(weight), device=valid.device)
    return {key: torch.where(valid, column.to(valid.device), torch.nan) for key, column in columns.items()}
