"""What a classifier predicts, in transformers' terms (`problem_type`), and everything SynIB derives from it: the clean
view's task loss, the matching confidence penalty of a masked view, the label checks and masked accuracy.

| problem type                 | labels                       | task loss          | penalty Ω of a masked view         |
|------------------------------|------------------------------|--------------------|------------------------------------|
| `single_label_classification`| `(B,)` class ids, −100 ignored | cross-entropy    | KL(softmax ‖ uniform)              |
| `multi_label_classification` | `(B, C)` 0/1 or soft scores  | BCE, mean over C   | per-label KL(σ(z) ‖ ½), mean over C |
| `regression`                 | `(B,)` or `(B, C)` floats    | MSE                | `gaussian` (needs a variance)      |

A one-logit head with integer labels (the native MLP's binary head) is `binary_classification`: BCE on one logit, the
Bernoulli KL to ½ as its penalty (what `kl_uniform` computes for one logit).
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .penalties import bernoulli_kl_half, entropy, kl_uniform, max_probability, predicted_classes


TASK_TYPES = ("single_label_classification", "multi_label_classification", "regression", "binary_classification")
IGNORE_INDEX = -100  # transformers' ignore index: rows labelled so count in no loss, penalty or metric


@dataclass(frozen=True)
class Task:
    """A head's problem type and width.

    Example:

    ```python
    >>> task = Task("single_label_classification", num_labels=3)
    >>> task.losses(torch.zeros(2, 3), torch.tensor([0, -100]))  # the ignored row costs nothing
    tensor([1.0986, 0.0000])
    ```
    """

    problem_type: str
    num_labels: int

    def __post_init__(self):
        if self.problem_type not in TASK_TYPES:
            raise ValueError(f"problem_type={self.problem_type!r} is not one of {TASK_TYPES}.")

    @property
    def has_accuracy(self) -> bool:
        return self.problem_type != "regression"

    def valid_rows(self, labels: torch.Tensor) -> torch.Tensor:
        """`(B,)` bool: the rows that count (single-label and binary rows labelled −100 do not)."""
        if self.problem_type in ("single_label_classification", "binary_classification"):
            return labels != IGNORE_INDEX
        return torch.ones(labels.shape[0], dtype=torch.bool, device=labels.device)

    def losses(self, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """The task loss per example, `(B,)` float32; ignored rows are 0."""
        logits = logits.float()
        valid = self.valid_rows(labels)
        if self.problem_type == "single_label_classification":
            return F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="none",
                                   ignore_index=IGNORE_INDEX)
        if self.problem_type == "binary_classification":
            targets = torch.where(valid, labels, 0).to(logits.dtype)
            if label_smoothing:
                targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
            loss = F.binary_cross_entropy_with_logits(logits.squeeze(-1), targets, reduction="none")
            return loss * valid
        targets = labels.to(logits.dtype).reshape(logits.shape)
        if self.problem_type == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=-1)
        return F.mse_loss(logits, targets, reduction="none").flatten(1).mean(dim=-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """The task loss of a batch: the mean over its valid rows (as transformers' losses reduce; 0 if none)."""
        valid = self.valid_rows(labels)
        return self.losses(logits, labels, label_smoothing).sum() / valid.sum().clamp_min(1)

    def penalty(self, masked_logits: torch.Tensor) -> torch.Tensor:
        """Ω of masked logits `(B, C)`, per example: how far from "unsure" the view stays."""
        if self.problem_type == "multi_label_classification":
            return bernoulli_kl_half(masked_logits)
        if self.problem_type == "regression":
            raise ValueError(
                "A regression head has no confidence to penalise without a variance: use synib_penalty='gaussian' "
                "with a log-variance (a native model's logvar head, or the generic path's logvar_key)."
            )
        return kl_uniform(masked_logits)

    def confidence(self, logits: torch.Tensor) -> torch.Tensor:
        """How sure the head is, per example: the top class's probability; for multi-label heads max(σ, 1 − σ)
        averaged over labels (½ is "unsure" there, 1/C for a softmax)."""
        if self.problem_type == "multi_label_classification":
            return torch.sigmoid(logits.float().abs()).mean(dim=-1)
        return max_probability(logits)

    def entropy(self, logits: torch.Tensor) -> torch.Tensor:
        """Entropy in nats per example; for multi-label heads the Bernoulli entropy averaged over labels."""
        if self.problem_type == "multi_label_classification":
            return math.log(2.0) - bernoulli_kl_half(logits)
        return entropy(logits)

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Accuracy per example, `(B,)` float: the class for single-label and binary heads; for multi-label heads the
        share of labels whose σ(z) > ½ agrees with target > ½."""
        if self.problem_type == "multi_label_classification":
            targets = labels.reshape(logits.shape) > 0.5
            return ((logits > 0) == targets).float().mean(dim=-1)
        if self.problem_type == "regression":
            raise ValueError("A regression head has no accuracy.")
        return (predicted_classes(logits) == labels).float()

    def check_labels(self, labels: torch.Tensor, logits_shape: Optional[tuple] = None, where: str = "labels") -> None:
        """A clear error for labels this head cannot be trained on (checked on every batch).

        Raises:
            ValueError: wrong shape or dtype, class ids outside `[0, C)` other than −100, non-finite targets.
        """
        batch = labels.shape[0]
        if labels.dtype == torch.bool:
            raise ValueError(
                f"{where}: labels are booleans; the loss needs class ids (int64) or float targets: cast the label column "
                "(e.g. dataset.cast_column('labels', Value('int64')))."
            )
        if self.problem_type in ("single_label_classification", "binary_classification"):
            classes = 2 if self.problem_type == "binary_classification" else self.num_labels
            if labels.dim() != 1 or labels.is_floating_point():
                raise ValueError(
                    f"{where}: a {self.problem_type.replace('_', '-')} head needs one integer class id per example, "
                    f"got shape {tuple(labels.shape)} and dtype {labels.dtype}. For multi-label or soft targets set "
                    "the model config's problem_type='multi_label_classification' and pass float labels (B, C)."
                )
            bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= classes))
            if bool(bad.any()):
                values = sorted(set(labels[bad].tolist()))[:5]
                raise ValueError(
                    f"{where}: class ids must be in [0, {classes - 1}] (or {IGNORE_INDEX} to ignore a row), got "
                    f"{values}. Check the label column, or num_labels/id2label of the model config."
                )
            return
        expected = (batch, self.num_labels)
        if self.problem_type == "multi_label_classification" and not labels.is_floating_point():
            raise ValueError(
                f"{where}: multi-label targets must be floats (0/1 or soft scores) of shape {expected}, got dtype "
                f"{labels.dtype}; cast them with `.float()` in the data collator."
            )
        if labels.numel() != batch * self.num_labels:
            raise ValueError(
                f"{where}: a {self.problem_type.replace('_', '-')} head with {self.num_labels} output(s) needs "
                "targets "
                f"of shape {expected}, got {tuple(labels.shape)}."
            )
        if not bool(torch.isfinite(labels.float()).all()):
            raise ValueError(f"{where}: targets hold NaN or inf; clean the label column.")


def resolve_task(config, labels: torch.Tensor, num_logits: int, requested: str = "auto") -> Task:
    """The task of a head from its config's `problem_type` (or `requested`), else transformers' rule.

    transformers' rule (e.g. `BertForSequenceClassification`): one output → regression; integer labels → single-label;
    float labels → multi-label. A `(B, 1)` head with integer labels and no `problem_type` is therefore regression,
    as transformers trains it (MSE).
    """
    problem_type = requested if requested != "auto" else getattr(config, "problem_type", None)
    if problem_type is None:
        if num_logits == 1:
            problem_type = "regression"
        elif labels.is_floating_point():
            problem_type = "multi_label_classification"
        else:
            problem_type = "single_label_classification"
    return Task(problem_type, num_logits)


def classification_task(logits: torch.Tensor) -> Task:
    """The task of a classification head from its width: one logit is binary (sigmoid), `C >= 2` single-label."""
    width = logits.shape[-1]
    return Task("binary_classification", 1) if width == 1 else Task("single_label_classification", width)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy (BCE for one logit) over the rows not labelled −100: the native models' task loss.

    Raises:
        ValueError: if the labels are not one class id per example in range.
    """
    task = classification_task(logits)
    task.check_labels(labels)
    return task.loss(logits, labels, label_smoothing)
