"""The `learned` mask: per example and feature, a keep-gate that destroys what a modality's own cues predict."""

import torch
from torch import nn
from torch.func import functional_call

from ..tasks import classification_task


def learn_keep_gates(
    features: torch.Tensor,
    labels: torch.Tensor,
    head: nn.Module,
    fill: torch.Tensor,
    *,
    steps: int = 20,
    lr: float = 0.1,
    temperature: float = 1.0,
    grad_clip: float = 1.0,
    sparsity_weight: float = 1.0,
) -> torch.Tensor:
    """Fit keep-gates g = σ(ℓ/τ) (ℓ₀ = 1) with Adam, and return them detached, shape `(B, D)`.

    Minimises `−CE(head(g ⊙ z + (1 − g) ⊙ ε), y) + sparsity_weight · mean(1 − g)`: close the gates where the unimodal
    head finds its evidence, keep the rest open. The head runs through `torch.func.functional_call` with detached
    parameters, so no parameter gets a gradient and DDP sees no extra use of them. Runs with grad enabled even under
    `torch.no_grad()` (evaluation).

    Example:

    ```python
    >>> head = torch.nn.Linear(4, 2)
    >>> gates = learn_keep_gates(torch.randn(8, 4), torch.randint(0, 2, (8,)), head, torch.zeros(8, 4))
    >>> gates.shape, gates.requires_grad
    (torch.Size([8, 4]), False)
    ```
    """
    params = {name: p.detach() for name, p in head.named_parameters()}
    params.update(dict(head.named_buffers()))
    features, fill = features.detach(), fill.detach()
    gate_logits = torch.ones_like(features, dtype=torch.float32, requires_grad=True)  # ℓ, (B, D)
    task = None
    optimizer = torch.optim.Adam([gate_logits], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            gates = torch.sigmoid(gate_logits / temperature)
            mixed = (gates * features + (1.0 - gates) * fill).to(features.dtype)
            logits = functional_call(head, params, (mixed,))
            task = task or classification_task(logits)  # labels were checked by the model's forward
            objective = -task.loss(logits, labels) + sparsity_weight * (1.0 - gates).mean()
            (gate_logits.grad,) = torch.autograd.grad(objective, gate_logits)
            torch.nn.utils.clip_grad_norm_([gate_logits], grad_clip)
            optimizer.step()
    return torch.sigmoid(gate_logits / temperature).detach()
