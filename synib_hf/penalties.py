"""Confidence penalties Ω for masked views, and the statistics logged about them.

Every function here is a pure function of tensors: it returns one value per example (shape `(B,)`) and leaves the
reduction to the caller, so the trainer can average, gather and log without re-computing anything.

Logits may have one column (a binary head read through a sigmoid) or `C >= 2` columns (a softmax head). All maths
runs in float32 whatever the autocast dtype, because `log C - H` is a small difference of large numbers in bf16.
"""

import math

import torch
import torch.nn.functional as F


PENALTIES = ("kl_uniform", "gaussian", "unimodal_anchor")


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the classes, `(B, C)` with `C >= 2`; a one-logit head becomes `[log(1-p), log p]`."""
    logits = logits.float()
    if logits.shape[-1] == 1:
        return torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=-1)  # (B, 2)
    return F.log_softmax(logits, dim=-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy H(p) in nats of the predicted distribution, per example.

    Example:

    ```python
    >>> entropy(torch.zeros(1, 4))  # uniform over 4 classes
    tensor([1.3863])
    ```
    """
    log_p = _log_probs(logits)
    return -(log_p.exp() * log_p).sum(dim=-1)


def max_probability(logits: torch.Tensor) -> torch.Tensor:
    """Probability of the predicted class, per example: 1/C for a uniform prediction, 1 for a certain one."""
    return _log_probs(logits).max(dim=-1).values.exp()


def num_classes(logits: torch.Tensor) -> int:
    """Number of classes a head predicts: 2 for a one-logit (sigmoid) head, else the number of logits."""
    return max(2, logits.shape[-1])


def predicted_classes(logits):
    """Predicted class per example from `(B, C)` logits, a torch tensor or a NumPy array (what `Trainer.predict`
    returns): `argmax` over `C >= 2` columns, `logit > 0` for a one-logit (sigmoid) head.

    Example:

    ```python
    >>> predicted_classes(torch.tensor([[2.0], [-1.0]])), predicted_classes(torch.tensor([[0.1, 0.9]]))
    (tensor([1, 0]), tensor([1]))
    ```
    """
    if logits.shape[-1] == 1:
        positive = logits[..., 0] > 0
        return positive.long() if torch.is_tensor(positive) else positive.astype("int64")
    return logits.argmax(-1)


def kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(z) ‖ uniform) = log C − H(softmax(z)), per example.

    Zero for a uniform prediction and `log C` for a certain one. For a one-logit head it is
    `log 2 − H(Bernoulli(σ(z)))`.

    Example:

    ```python
    >>> kl_uniform(torch.tensor([[0.0, 0.0], [30.0, 0.0]]))
    tensor([0.0000, 0.6931])
    ```
    """
    return (math.log(num_classes(logits)) - entropy(logits)).clamp_min(0.0)


def bernoulli_kl_half(logits: torch.Tensor) -> torch.Tensor:
    """Per-label KL(Bernoulli(σ(z)) ‖ Bernoulli(½)) = log 2 − H(σ(z)), averaged over the labels, per example.

    The multi-label (and soft-target) form of `kl_uniform`: each sigmoid is pushed toward "unsure"; the mean over
    labels keeps its scale that of the multi-label BCE (a mean over labels too). Equal to `kl_uniform` for one logit.

    Example:

    ```python
    >>> bernoulli_kl_half(torch.tensor([[0.0, 0.0], [30.0, -30.0]]))
    tensor([0.0000, 0.6931])
    ```
    """
    logits = logits.float()
    p = torch.sigmoid(logits)
    entropy_per_label = -(p * F.logsigmoid(logits) + (1.0 - p) * F.logsigmoid(-logits))
    return (math.log(2.0) - entropy_per_label).clamp_min(0.0).mean(dim=-1)


def gaussian(logits: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) with μ = the masked logits and log σ² from a logvar head, per example.

    `½ Σ_c (σ_c² + μ_c² − 1 − log σ_c²)`: zero when the masked logits are 0 and σ = 1; in effect an L2 pull of the
    masked logits towards 0.
    """
    if logvar.shape != logits.shape:
        raise ValueError(
            f"gaussian penalty: logvar has shape {tuple(logvar.shape)} but the logits have shape "
            f"{tuple(logits.shape)}; the logvar head must predict one log-variance per logit."
        )
    mean, logvar = logits.float(), logvar.float()
    return 0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar).sum(dim=-1)


def unimodal_anchor(logits: torch.Tensor, anchor_logits: torch.Tensor) -> torch.Tensor:
    """KL(stopgrad(p_anchor) ‖ p_masked), per example ("SynIB-U").

    The masked view is pulled towards what the unimodal head of the modalities left visible predicts, never beyond it;
    no gradient reaches the anchor.
    """
    if anchor_logits.shape != logits.shape:
        raise ValueError(
            f"unimodal_anchor penalty: the anchor logits have shape {tuple(anchor_logits.shape)} but the masked "
            f"logits have shape {tuple(logits.shape)}; the unimodal heads must predict the same classes."
        )
    log_anchor = _log_probs(anchor_logits.detach())
    return (log_anchor.exp() * (log_anchor - _log_probs(logits))).sum(dim=-1)
