"""The rules of the modality-balancing baselines, as pure functions of tensors.

Each baseline estimates how far each modality's encoder is ahead from per-modality predictions, then changes that
encoder's gradient before the optimizer step. The trainers in `synib_hf.trainers` (`OGMGETrainer`, `MLBTrainer`,
`MMParetoTrainer`) apply these functions to the gradients; nothing here touches a model.

* **OGM-GE** — Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR
  2022, Eq. 10 (coefficient) and Sec. 3.3 (generalisation enhancement: Gaussian noise on the gradient).
* **MLB** — Kontras, Chatzichristos, Blaschko, De Vos, "Improving Multimodal Learning with Multi-Loss Gradient
  Modulation", BMVC 2024, the coefficient `k_i = 1 + tanh(α·(r_i − 1))`.
* **MMPareto** — Wei, Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance", ICML 2024:
  the multimodal and unimodal gradients on an encoder combined by the min-norm (Pareto) rule when they conflict.
"""

import torch
import torch.nn.functional as F

from .tasks import classification_task


def true_class_probability(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The probability each example's prediction gives its true class, `(B,)`: `exp(−CE)`, softmax or one-logit heads;
    0 for rows labelled −100 (they count in no score).

    Summed over a batch it is the "score" `s_m = Σ_i p_m(y_i | x_i)` of OGM-GE (Eq. 9) and MLB.

    Example:

    ```python
    >>> true_class_probability(torch.tensor([[0.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]))
    tensor([0.5000, 0.8808])
    ```
    """
    task = classification_task(logits)
    task.check_labels(labels)
    return torch.exp(-task.losses(logits, labels)) * task.valid_rows(labels)


def ogm_coefficients(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """OGM's gradient coefficients of two modalities, Eq. 10 of Peng et al. (CVPR 2022), `(2,)`.

    With the discrepancy ratio `ρ_u = s_u / s_other` of the scores `s` (summed true-class probabilities),
    `k_u = 1 − tanh(α·ρ_u)` if `ρ_u > 1` (the modality ahead) and `k_u = 1` otherwise. At a tie both stay 1, as the
    equation says (the authors' code damps the second modality there).

    Example:

    ```python
    >>> ogm_coefficients(torch.tensor([30.0, 10.0]), alpha=0.5)  # modality 0 is ahead: 1 − tanh(0.5 · 3)
    tensor([0.0949, 1.0000])
    ```
    """
    if scores.shape != (2,):
        raise ValueError(f"OGM-GE compares exactly two modalities, got scores of shape {tuple(scores.shape)}.")
    ratio = scores / scores.flip(0).clamp_min(torch.finfo(scores.dtype).tiny)  # (2,) ρ_u = s_u / s_other
    return torch.where(ratio > 1, 1 - torch.tanh(alpha * ratio), torch.ones_like(ratio))


def mlb_coefficients(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """MLB's gradient coefficients, `(M,)`: `k_i = 1 + tanh(α·(r_i − 1))` with `r_i = mean_{m≠i} s_m / s_i`
    (Kontras et al., BMVC 2024).

    A modality behind the others (`r_i > 1`) is sped up (`1 < k_i < 2`), one ahead is slowed down (`0 < k_i < 1`),
    and balanced modalities (`r_i = 1`) train as usual — the modulation fades out as the modalities converge.

    Example:

    ```python
    >>> mlb_coefficients(torch.tensor([20.0, 10.0]), alpha=1.0)  # r = (0.5, 2)
    tensor([0.5379, 1.7616])
    ```
    """
    if scores.dim() != 1 or scores.shape[0] < 2:
        raise ValueError(f"MLB needs the scores of at least two modalities, got shape {tuple(scores.shape)}.")
    others = (scores.sum() - scores) / (scores.shape[0] - 1)  # (M,) mean score of the other modalities
    ratio = others / scores.clamp_min(torch.finfo(scores.dtype).tiny)
    return 1 + torch.tanh(alpha * (ratio - 1))


def gradient_noise(gradient: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """GE's noise for one parameter's gradient: `N(0, σ²)` with σ the standard deviation of that gradient's entries.

    The authors' code draws `normal_(0, grad.std() + 1e-8)` per parameter tensor; the population standard deviation
    is used here so a one-element parameter gets σ = 0 instead of NaN.
    """
    std = gradient.float().std(correction=0) + 1e-8
    noise = torch.randn(gradient.shape, generator=generator, device=gradient.device, dtype=torch.float32)
    return (noise * std).to(gradient.dtype)


def pareto_combination(multimodal: torch.Tensor, unimodal: torch.Tensor, gamma: float = 1.0):
    """MMPareto's gradient for one modality's encoder from the flat gradients of the multimodal loss `g_mm` and of
    that modality's unimodal loss `g_u` (Wei & Hu, ICML 2024).

    * No conflict (`cos(g_mm, g_u) > 0`): weights ½, ½.
    * Conflict: the min-norm weights `w = argmin_{w ∈ [0,1]} ‖w·g_mm + (1−w)·g_u‖`, in closed form for two vectors
      `w = (‖g_u‖² − g_mm·g_u) / ‖g_mm − g_u‖²`. The result `d` then has `d·g_mm = d·g_u = ‖d‖² ≥ 0`: a step along it
      does not increase either loss to first order.
    * Magnitude: `d = 2·(w·g_mm + (1−w)·g_u)` is scaled up to the norm of the plain sum `‖g_mm + g_u‖` if shorter,
      then by `gamma` (the authors' code uses 1.5). Their code rescales each parameter tensor separately; here the
      modality's whole gradient is rescaled by one factor, which keeps the min-norm direction and its guarantee.

    Returns:
        `(gradient, w, cosine)`: the combined flat gradient, the weight on the multimodal gradient, and the cosine.

    Example:

    ```python
    >>> g, w, cos = pareto_combination(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]))
    >>> float(w), g @ torch.tensor([1.0, 0.0]) >= 0, g @ torch.tensor([-1.0, 1.0]) >= 0
    (0.6, tensor(True), tensor(True))
    ```
    """
    if multimodal.shape != unimodal.shape or multimodal.dim() != 1:
        raise ValueError(
            f"pareto_combination needs two flat gradients of the same length, got {tuple(multimodal.shape)} and "
            f"{tuple(unimodal.shape)}."
        )
    multimodal, unimodal = multimodal.float(), unimodal.float()
    cosine = F.cosine_similarity(multimodal, unimodal, dim=0)
    if cosine > 0:
        weight = torch.tensor(0.5, device=multimodal.device)
    else:
        difference = (multimodal - unimodal).pow(2).sum()
        weight = ((unimodal.pow(2).sum() - multimodal @ unimodal) / difference.clamp_min(1e-30)).clamp(0.0, 1.0)
    direction = 2 * (weight * multimodal + (1 - weight) * unimodal)
    norm = direction.norm()
    scale = (multimodal + unimodal).norm() / norm if norm > 0 else torch.ones_like(norm)
    return gamma * scale.clamp_min(1.0) * direction, weight, cosine
