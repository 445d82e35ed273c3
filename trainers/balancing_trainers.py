"""The modality-balancing baselines behind the same Trainer API, siblings of `SynIBTrainer` on the shared
[`MultimodalTrainerMixin`] (logging, model cards, checked first batch): OGM-GE, MLB, multi-loss and the unimodal
ensemble (MMPareto is in `mmpareto.py`). Each trains a native model with unimodal heads, without masked views.

* [`OGMGETrainer`] — Peng et al., CVPR 2022: the encoder of the modality ahead is slowed down, plus gradient noise.
* [`MLBTrainer`] — Kontras et al., BMVC 2024: multi-loss objective, every encoder sped up or slowed down.
* [`MultilossTrainer`] — the multi-loss objective alone (MLB's without modulation).
* [`UnimodalEnsembleTrainer`] — the authors' `ens`: one model per modality, predictions summed.
"""

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from transformers import Trainer

from synib_hf.balancing import gradient_noise, mlb_coefficients, ogm_coefficients, true_class_probability
from synib_hf.native import implements_native_protocol
from synib_hf.tasks import classification_loss, classification_task

from .balancing_config import BalancingConfig
from .multimodal_trainer import MultimodalTrainerMixin
from .preflight import first_training_batch, unused_in_probe
from .trainer_compat import ddp_handler


class BalancingTrainer(MultimodalTrainerMixin, Trainer):
    """What the balancing baselines share; subclasses define `training_loss` and `balance_gradients`.

    * One native forward per micro-batch; `training_loss(outputs, labels)` is the method's objective (a per-batch
      mean, divided by the accumulation steps by the Trainer as usual).
    * `balance_gradients()` runs once per optimizer step, after the last micro-batch's backward: the gradients are
      then accumulated over the step's micro-batches and averaged across processes (DDP), and not yet clipped. The
      per-modality scores it reads are summed over the same micro-batches and processes, so a step sees the same
      numbers whatever the accumulation and the number of processes, and every process applies the same change.
    * `attach_unimodal_heads`: the unimodal losses train the encoders too (multi-loss objectives); otherwise the
      heads train on detached features, as instruments that only measure each modality.
    """

    args_class = BalancingConfig
    attach_unimodal_heads = False
    modulates_gradients = True

    def __init__(self, *args, **kwargs):
        # Why: these baselines need a native model with unimodal heads and the parameters of each modality's encoder.
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        core = self.core_model()
        if not implements_native_protocol(core):
            raise ValueError(
                f"{name} needs a native model (synib_hf.SynIBNativeMixin) with unimodal heads, which measure or train "
                f"each modality; {type(core).__name__} is not one."
            )
        if any(core.synib_unimodal_head(m) is None for m in core.synib_modalities):
            raise ValueError(f"{name} needs unimodal heads; enable `unimodal_heads` in {type(core).__name__}'s config.")
        if self.modulates_gradients and (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            raise ValueError(
                f"{name} rewrites each encoder's full gradient between backward and the optimizer step; DeepSpeed and "
                "FSDP shard or fuse those steps. Use DDP (or one process)."
            )
        self.modalities = tuple(core.synib_modalities)
        self.encoder_parameters = self._encoder_parameter_groups(core)
        if self.attach_unimodal_heads:
            core.synib_detach_unimodal_heads = False
            if hasattr(getattr(core, "config", None), "detach_unimodal_heads"):  # saved with the checkpoint
                core.config.detach_unimodal_heads = False
        self._scores = None  # (M,) summed true-class probabilities of the unimodal heads, this optimizer step
        self._gradients = None  # MMPareto: modality → the two flat gradients accumulated this optimizer step

    def _encoder_parameter_groups(self, core) -> dict:
        groups = {m: [p for p in core.synib_encoder_parameters(m) if p.requires_grad] for m in self.modalities}
        empty = [m for m, params in groups.items() if not params]
        if empty:
            raise ValueError(
                f"{type(core).__name__}.synib_encoder_parameters returned no trainable parameters for {empty}: there "
                f"is no encoder gradient for {type(self).__name__} to balance (frozen towers without adapters?)."
            )
        owners = {}
        for modality, params in groups.items():
            for param in params:
                if owners.setdefault(id(param), modality) != modality:
                    raise ValueError(
                        f"{type(core).__name__}.synib_encoder_parameters gives one parameter to both "
                        f"{owners[id(param)]!r} and {modality!r}; each modality's encoder must be its own."
                    )
        return groups

    def _before_training(self) -> None:
        """Under DDP, `find_unused_parameters` says whether this objective leaves a parameter without gradient."""
        handler = ddp_handler(self)
        if self.args.world_size > 1 and self.args.ddp_find_unused_parameters is None and handler is not None:
            handler.find_unused_parameters = bool(self._unused_parameters())

    def _unused_parameters(self) -> set:
        """The trainable parameters one probe step of this objective leaves without gradient (the ensemble's fusion
        head; a logvar head no baseline reads), on the first training batch; nothing of the run is changed (random
        states, buffers, gradients, metrics: `unused_in_probe`)."""
        batch = first_training_batch(self)
        unused = unused_in_probe(self, [lambda model: self.compute_loss(model, batch)])
        self._scores = self._gradients = None
        return unused

    # ---- the loss ------------------------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Why: training uses the method's objective from one native forward; evaluation is the Trainer's own.
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError(
                f"{type(self).__name__} needs `labels` in every training batch, but this batch has only "
                f"{sorted(inputs)}. Name the label column 'labels' (or 'label')."
            )
        outputs = model(**inputs, output_unimodal_logits=True)
        self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it by the accumulation steps
        loss = self.training_loss(outputs, labels)
        return (loss, outputs) if return_outputs else loss

    def training_loss(self, outputs, labels) -> torch.Tensor:
        """Fused CE plus each unimodal head's CE (on detached features unless `attach_unimodal_heads`); records the
        per-modality scores that `balance_gradients` reads."""
        smoothing = self.args.label_smoothing_factor
        task = classification_loss(outputs.logits, labels, smoothing)
        unimodal = [classification_loss(logits, labels, smoothing) for logits in outputs.unimodal_logits]
        self._record_unimodal(outputs.unimodal_logits, labels, unimodal, task)
        return task + sum(unimodal)

    def _record_unimodal(self, unimodal_logits, labels, unimodal_losses, task=None) -> None:
        confidence = torch.stack([true_class_probability(u.detach(), labels) for u in unimodal_logits])  # (M, B)
        scores = confidence.sum(dim=1)  # rows labelled −100 have confidence 0: they count in no score
        self._scores = scores if self._scores is None else self._scores + scores
        valid = classification_task(unimodal_logits[0]).valid_rows(labels)
        metrics = self._synib_metrics["train"]
        if task is not None:
            metrics["task_loss"].append(task.detach().float().expand(labels.shape[0]))
        for modality, loss, column in zip(self.modalities, unimodal_losses, confidence):
            metrics[f"unimodal_loss_{modality}"].append(loss.detach().float().expand(labels.shape[0]))
            metrics[f"unimodal_confidence_{modality}"].append(torch.where(valid, column, torch.nan))  # NaN: not counted

    def step_scores(self) -> torch.Tensor:
        """The unimodal scores `s_m = Σ p_m(y|x)` of this optimizer step, summed over its micro-batches and over the
        processes, `(M,)`; resets them for the next step."""
        scores = self.accelerator.reduce(self._scores, reduction="sum")
        self._scores = None
        return scores

    # ---- the gradients ---------------------------------------------------------------------------------------------

    def training_step(self, model, inputs, num_items_in_batch=None):
        # Why: the balancing rule changes the gradients once they are accumulated and synchronised, before clipping.
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.sync_gradients:
            self.balance_gradients()
        return loss

    def balance_gradients(self) -> None:
        """Change the encoders' accumulated, synchronised gradients (once per optimizer step)."""
        raise NotImplementedError

    def _scale_encoder_gradients(self, coefficients, noise: bool = False) -> None:
        generator = None
        if noise:  # the same seed on every process: each applies the same noise to the same (synchronised) gradient
            generator = torch.Generator(device=self.args.device)
            generator.manual_seed(self.args.seed + 1_000_003 * (self.state.global_step + 1))
        for modality, coefficient in zip(self.modalities, coefficients):
            for param in self.encoder_parameters[modality]:
                if param.grad is None:
                    continue
                extra = gradient_noise(param.grad, generator) if noise else None
                param.grad.mul_(coefficient.to(param.grad.dtype))
                if extra is not None:
                    param.grad.add_(extra)
            self._synib_metrics["train"][f"coefficient_{modality}"].append(coefficient.detach().float().reshape(1))


class OGMGETrainer(BalancingTrainer):
    """OGM-GE (Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022).

    Per optimizer step, each modality's score `s_u = Σ_i p_u(y_i | x_i)` (Eq. 9) comes from its unimodal head (the
    paper reads it off its linear fusion layer's share of the logits; a fusion MLP has no such share, so the heads,
    trained on detached features, measure each modality). With `ρ_u = s_u / s_other`, the encoder of the modality
    ahead has its gradient scaled by `k_u = 1 − tanh(α·ρ_u)` (Eq. 10) and the other's is left alone; GE then adds
    `N(0, σ²)` noise, σ the standard deviation of each encoder parameter's gradient, to both encoders' gradients
    (`ogm_gradient_noise`, as in the authors' code). `α` is `BalancingConfig.ogm_alpha`. Two modalities only; the
    modulation runs at every step (the authors' default stops it at epoch 50 of 100; their SynIB baselines never stop).

    Logs `synib/coefficient_<m>`, `synib/unimodal_confidence_<m>`, `synib/unimodal_loss_<m>` and `synib/task_loss`.

    Example:

    ```python
    >>> trainer = OGMGETrainer(model=model, args=BalancingConfig(output_dir="out", ogm_alpha=0.8), train_dataset=train)
    ```
    """

    _tag_names = ["ogm-ge", "modality-balancing", "multimodal"]

    def __init__(self, *args, **kwargs):
        # Why: the discrepancy ratio of Eq. 10 compares exactly two modalities.
        super().__init__(*args, **kwargs)
        if len(self.modalities) != 2:
            raise ValueError(f"OGM-GE compares two modalities; the model has {list(self.modalities)}.")

    def balance_gradients(self) -> None:
        coefficients = ogm_coefficients(self.step_scores(), self.args.ogm_alpha)
        self._scale_encoder_gradients(coefficients, noise=self.args.ogm_gradient_noise)


class MLBTrainer(BalancingTrainer):
    """MLB (Kontras, Chatzichristos, Blaschko, De Vos, "Improving Multimodal Learning with Multi-Loss Gradient
    Modulation", BMVC 2024).

    The multi-loss objective `CE(f(x), y) + Σ_m CE(h_m(z_m), y)`, the unimodal heads `h_m` training the encoders too,
    with each encoder's gradient scaled by `k_m = 1 + tanh(α·(r_m − 1))`, `r_m = mean_{j≠m} s_j / s_m` and
    `s_m = Σ_i p_m(y_i | x_i)` from the unimodal heads: the modality behind is sped up (`k > 1`), the one ahead slowed
    down (`k < 1`), and the modulation fades as they converge (`r → 1`). `α` is `BalancingConfig.mlb_alpha`.

    Example:

    ```python
    >>> trainer = MLBTrainer(model=model, args=BalancingConfig(output_dir="out", mlb_alpha=1.5), train_dataset=train)
    ```
    """

    _tag_names = ["mlb", "modality-balancing", "multimodal"]
    attach_unimodal_heads = True

    def balance_gradients(self) -> None:
        self._scale_encoder_gradients(mlb_coefficients(self.step_scores(), self.args.mlb_alpha))


class MultilossTrainer(BalancingTrainer):
    """Multi-loss: `CE(f(x), y) + Σ_m CE(h_m(z_m), y)`, the unimodal heads `h_m` training the encoders too.

    MLB's objective without its modulation: the family's setting with nothing to balance.

    Example:

    ```python
    >>> trainer = MultilossTrainer(model=model, args=BalancingConfig(output_dir="out"), train_dataset=train)
    ```
    """

    _tag_names = ["multiloss", "multimodal"]
    attach_unimodal_heads = True
    modulates_gradients = False

    def balance_gradients(self) -> None:
        self._scores = None  # the plain multi-loss gradients: nothing to balance


class UnimodalEnsembleTrainer(BalancingTrainer):
    """The unimodal ensemble (the SynIB authors' `ens` baseline): one model per modality, predictions summed.

    Training: `Σ_m CE(h_m(z_m), y)` — each encoder learns with its own unimodal head only, so the modalities train as
    independent unimodal models (the fusion head gets a zero gradient: it is not trained, but weight decay, if set,
    still shrinks it). Evaluation and prediction: the logits are the sum
    of the unimodal heads' logits, `Σ_m h_m(z_m)` (the authors' `Base_Ensemble_Model` without normalisation). It can
    combine what each modality predicts alone, never what only their combination predicts: a reference for how much
    of a task needs no fusion at all.

    Example:

    ```python
    >>> trainer = UnimodalEnsembleTrainer(model=model, args=BalancingConfig(output_dir="out"), train_dataset=train)
    >>> trainer.predict(test).predictions  # Σ_m unimodal logits
    ```
    """

    _tag_names = ["unimodal-ensemble", "multimodal"]
    attach_unimodal_heads = True
    modulates_gradients = False

    def training_loss(self, outputs, labels) -> torch.Tensor:
        smoothing = self.args.label_smoothing_factor
        unimodal = [classification_loss(logits, labels, smoothing) for logits in outputs.unimodal_logits]
        self._record_unimodal(outputs.unimodal_logits, labels, unimodal)
        self._scores = None  # no balancing reads them
        # The fusion head takes no part; its zero-weighted loss keeps it in the backward graph (zero gradient), so DDP
        # needs no search for unused parameters.
        return sum(unimodal) + 0.0 * classification_loss(outputs.logits, labels)

    def balance_gradients(self) -> None:
        pass  # the modalities train independently; nothing to balance

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # Why: the ensemble predicts with the sum of the unimodal heads' logits, not with the fusion head.
        return super().prediction_step(SummedUnimodalLogits(model), inputs, prediction_loss_only, ignore_keys)


class SummedUnimodalLogits(nn.Module):
    """A native model seen as the ensemble of its unimodal heads: `logits = Σ_m h_m(z_m)`, `(B, C)`, and their task
    loss (what [`UnimodalEnsembleTrainer`] evaluates and predicts with)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, labels=None, **inputs) -> SequenceClassifierOutput:
        outputs = self.model(**inputs, output_unimodal_logits=True)
        logits = outputs.unimodal_logits.sum(dim=0)  # (B, C)
        return SequenceClassifierOutput(loss=None if labels is None else classification_loss(logits, labels),
                                        logits=logits)
