"""`MMParetoTrainer`: the multimodal and unimodal gradients on each encoder combined by the Pareto rule."""

import torch

from synib_hf.balancing import pareto_combination
from synib_hf.tasks import classification_loss

from .balancing_trainers import BalancingTrainer


class MMParetoTrainer(BalancingTrainer):
    """MMPareto (Wei & Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance", ICML 2024).

    The multi-loss objective `L_mm + Σ_m L_m` (`L_mm = CE(f(x), y)`, `L_m = CE(h_m(z_m), y)`, the unimodal heads
    training the encoders). On each modality's encoder parameters θ_m the two gradients `g_mm = ∂L_mm/∂θ_m` and
    `g_m = ∂L_m/∂θ_m` are combined: summed when they agree (`cos > 0`), otherwise by the min-norm weights of the
    Pareto rule, so the step does not increase either loss to first order; the result is rescaled to at least the
    norm of `g_mm + g_m` and multiplied by γ (`BalancingConfig.mmpareto_gamma`; see
    [`synib_hf.balancing.pareto_combination`]). Fusion and unimodal heads keep their plain gradients.

    The two gradients come from `torch.autograd.grad` in each micro-batch (which bypasses DDP's reducer), are
    accumulated over the optimizer step's micro-batches and averaged across processes here, then combined: the rule
    sees the whole step's batch, identically on every process. Costs about two extra backward passes through the
    encoders per micro-batch. Not with fp16 loss scaling (the combined gradient would bypass the scaler): use bf16.

    Logs `synib/pareto_cosine_<m>` and `synib/pareto_weight_<m>` (the weight on `g_mm`; 0.5 when not in conflict).

    Example:

    ```python
    >>> trainer = MMParetoTrainer(model=model, args=BalancingConfig(output_dir="out"), train_dataset=train)
    ```
    """

    _tag_names = ["mmpareto", "modality-balancing", "multimodal"]
    attach_unimodal_heads = True

    def __init__(self, *args, **kwargs):
        # Why: the combined gradient is written into `.grad` unscaled, which fp16's gradient scaler cannot follow.
        super().__init__(*args, **kwargs)
        if self.args.fp16:
            raise ValueError("MMParetoTrainer writes unscaled gradients, which fp16 loss scaling breaks; use bf16.")

    def training_loss(self, outputs, labels) -> torch.Tensor:
        smoothing = self.args.label_smoothing_factor
        multimodal = classification_loss(outputs.logits, labels, smoothing)
        unimodal = [classification_loss(logits, labels, smoothing) for logits in outputs.unimodal_logits]
        self._record_unimodal(outputs.unimodal_logits, labels, unimodal, multimodal)
        self._scores = None  # the Pareto rule reads gradients, not scores
        if torch.is_grad_enabled():
            self._accumulate(multimodal, unimodal)
        return multimodal + sum(unimodal)

    def _accumulate(self, multimodal, unimodal) -> None:
        scale = 1.0 / getattr(self, "current_gradient_accumulation_steps", 1)  # as the Trainer scales the loss (1: a probe)
        every = [p for m in self.modalities for p in self.encoder_parameters[m]]
        from_multimodal = self._flat(torch.autograd.grad(multimodal, every, retain_graph=True, allow_unused=True), every)
        if self._gradients is None:
            self._gradients = {m: [0.0, 0.0] for m in self.modalities}
        offset = 0
        for modality, loss in zip(self.modalities, unimodal):
            params = self.encoder_parameters[modality]
            size = sum(p.numel() for p in params)
            own = self._flat(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True), params)
            pair = self._gradients[modality]
            pair[0] = pair[0] + scale * from_multimodal[offset : offset + size]
            pair[1] = pair[1] + scale * own
            offset += size

    @staticmethod
    def _flat(gradients, params) -> torch.Tensor:
        return torch.cat([
            (g if g is not None else torch.zeros_like(p)).detach().float().flatten() for g, p in zip(gradients, params)
        ])

    def balance_gradients(self) -> None:
        gradients, self._gradients = self._gradients, None
        for modality in self.modalities:
            multimodal, unimodal = (self.accelerator.reduce(g, reduction="mean") for g in gradients[modality])
            combined, weight, cosine = pareto_combination(multimodal, unimodal, self.args.mmpareto_gamma)
            offset = 0
            for param in self.encoder_parameters[modality]:
                value = combined[offset : offset + param.numel()].view_as(param).to(param.dtype)
                if param.grad is None:
                    param.grad = value.clone()
                else:
                    param.grad.copy_(value)
                offset += param.numel()
            self._synib_metrics["train"][f"pareto_cosine_{modality}"].append(cosine.detach().float().reshape(1))
            self._synib_metrics["train"][f"pareto_weight_{modality}"].append(weight.detach().float().reshape(1))
