"""[`SynIBMixin`]: SynIB inside any `transformers.Trainer` subclass — `class MyTrainer(SynIBMixin, SomeTrainer)`.

One training step: the view builder turns the batch into views (`synib_hf.view_builders`), the objective turns the
views into the loss and its metrics (`synib_hf.objective`), and this mixin runs them inside the Trainer's
`compute_loss`. With `synib_weight=0` every call goes straight to the Trainer's own methods.
"""

import copy
import os
import warnings

import torch
from transformers.utils import logging

from synib_hf.masking import MaskRandomness
from synib_hf.objective import check_finite, synib_objective, valid_mean, view_losses

from .multimodal_trainer import MultimodalTrainerMixin
from .preflight import (
    check_attended,
    check_batches,
    check_penalty_window,
    check_plain_batch,
    first_training_batch,
    named_input_errors,
    preserved_rng,
    unused_in_probe,
)
from .synib_config import SynIBConfig
from .trainer_compat import checkpoint_folder, ddp_handler, keep_columns
from .training_state import load_synib_state, save_synib_state
from .view_choice import build_view_builder


logger = logging.get_logger(__name__)


class SynIBMixin(MultimodalTrainerMixin):
    """Adds SynIB's masked views and penalty to a `Trainer` subclass: `loss = task + synib_weight · Σ_m Ω_m`.

    Put it first among the bases: `class MyTrainer(SynIBMixin, Trainer)` ([`SynIBTrainer`] is exactly that), or with
    TRL's `SFTTrainer` ([`SynIBSFTTrainer`]). The trainer then takes its base's arguments in its base's order, plus
    `peft_config` where the base has none; `args` must carry SynIB's fields (a plain `TrainingArguments` is converted
    to `args_class` with SynIB's defaults, as TRL converts it to its configs). Everything the base does is kept: its
    own `compute_loss` computes the loss whenever SynIB's views are off (`synib_weight=0`, outside the
    `synib_start_step`/`synib_end_step` window, evaluation without `eval_masked_views`) and the clean view's loss where
    the view builder leaves it to the model's own forward.

    Example:

    ```python
    >>> class MyTrainer(SynIBMixin, MyProjectTrainer):   # a project's own Trainer subclass keeps its behaviour
    ...     pass
    >>> trainer = MyTrainer(model, SynIBConfig(output_dir="out", synib_weight=0.1), collator, train_dataset)
    ```
    """

    args_class = SynIBConfig  # what a plain TrainingArguments is converted to
    view_loss = None  # what a masked view costs; None: `args.synib_penalty`
    _tag_names = ["synib", "multimodal"]

    def __init__(self, *args, **kwargs):
        # Why: SynIB's view builder is set up against the model before any step runs.
        super().__init__(*args, **kwargs)
        if self.view_loss is not None and self.args.synib_penalty != "kl_uniform":
            raise ValueError(
                f"{type(self).__name__} trains its masked views with {self.view_loss}, so synib_penalty "
                f"({self.args.synib_penalty!r}) would be ignored; remove it."
            )
        self._plain_loss_is_scaled_for_ga = self.loss_is_scaled_for_ga
        self._randomness = MaskRandomness(seed=self.args.seed + self.accelerator.process_index)
        core = self.core_model()
        self.view_builder = build_view_builder(
            core, self.args, self.processing_class, self._randomness, self._view_loss(),
            compute_loss_func=self.compute_loss_func, deepspeed=self.is_deepspeed_enabled,
        )
        named = [key for keys in (self.args.modality_keys or {}).values() for key in keys]
        keep_columns(self, [*named, *self.view_builder.own_columns])  # remove_unused_columns keeps them
        self._first_batch_checked = False
        self._warn_if_fsdp_is_unavailable()

    def _warn_if_fsdp_is_unavailable(self) -> None:
        from accelerate.utils import DistributedType

        if self.args.fsdp and self.accelerator.distributed_type != DistributedType.FSDP:
            warnings.warn(
                f"fsdp={self.args.fsdp!r} was requested, but accelerate runs {self.accelerator.distributed_type} "
                "(it never enters FSDP from a multi-CPU state): the model is NOT sharded. FSDP needs GPUs here; on "
                "CPU use DDP (accelerate launch --multi_gpu), or raw torch FSDP2 over gloo outside the Trainer.",
                stacklevel=3,
            )

    # ---- before the first step -----------------------------------------------------------------------------------

    def _before_training(self) -> None:
        """The first batch checked before any step runs. At λ = 0 only what would fail anyway, with a clearer error
        (labels out of range, images with the wrong number of channels); at λ > 0 everything the views need (inputs,
        masking rules, scores, labels, task, the model's own task loss) and, under DDP, `find_unused_parameters` from
        one probe step."""
        check_batches(self.args, self.train_dataset)
        batch = first_training_batch(self)
        if self.args.synib_weight == 0:
            check_plain_batch(batch, self.core_model())
            return
        check_penalty_window(self.args, self.train_dataset)
        self._check_first_batch(batch)
        handler = ddp_handler(self)
        if self.args.world_size > 1 and self.args.ddp_find_unused_parameters is None and handler is not None:
            handler.find_unused_parameters = bool(self._unused_in_probe(batch))

    def _check_first_batch(self, batch: dict) -> None:
        labels = batch.get("labels")
        if labels is None:
            raise ValueError(
                f"{type(self).__name__} needs `labels` in every batch, but the first training batch has only "
                f"{sorted(batch)}. Name the label column 'labels' (or 'label') and check that the data collator keeps "
                "it."
            )
        if labels.dim() == 1 and not labels.is_floating_point() and bool((labels == -100).all()):
            raise ValueError(
                "Every row of the first training batch is labelled -100 (ignored), so it would train on nothing: check "
                "the label column (unlabelled test rows in the training split?) and the data collator."
            )
        check_attended(batch)
        check_plain_batch(batch, self.core_model(), check_labels=False)  # the view builder checks them on the scores
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with self.compute_loss_context_manager(), preserved_rng(), named_input_errors(batch, self.core_model()):
                builder = self.view_builder
                builder.check(model, {k: v for k, v in batch.items() if k != "labels"}, labels)
                if hasattr(builder, "use_model_loss") and self.compute_loss_func is None:  # is it the model's own?
                    rows = {k: v[:2] for k, v in self._model_inputs(batch).items()}
                    notice = builder.use_model_loss(model, rows, self._own_loss(model, rows))
                    if notice:
                        logger.warning(notice)
        finally:
            model.train(was_training)
        self._first_batch_checked = True

    def _own_loss(self, model, rows: dict):
        """What the base Trainer computes as the loss of `rows` at λ = 0 (the model's own loss, `compute_loss_func`
        or label smoothing), or None when the model computes no scalar loss of its own."""
        try:
            with torch.no_grad():
                loss = super().compute_loss(model, dict(rows))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):  # no labels argument, no loss output
            return None
        return loss if torch.is_tensor(loss) and loss.dim() == 0 and loss.is_floating_point() else None

    def _unused_in_probe(self, batch: dict) -> set:
        """Trainable parameters one probe step leaves without gradient (a logvar head the penalty does not read);
        the probe's randomness, masking state and metrics are put back as they were."""
        state = copy.deepcopy(self.synib_state_dict())
        plain_batch = self._model_inputs(batch)
        losses = [lambda model: self._synib_loss(model, batch, "train", self.args.synib_weight)[0]]
        if not (self.args.synib_start_step == 0 and self.args.synib_end_step is None):
            # a warm-up or end window: steps without the views train other parameters
            losses.append(lambda model: super(SynIBMixin, self).compute_loss(model, plain_batch))
        unused = unused_in_probe(self, losses)
        self.load_synib_state_dict(state)
        return unused

    # ---- the loss ------------------------------------------------------------------------------------------------

    def synib_active(self) -> bool:
        """Whether the penalty applies at the current optimizer step (λ > 0 and inside the start/end window)."""
        args, step = self.args, self.state.global_step
        in_window = step >= args.synib_start_step and (args.synib_end_step is None or step < args.synib_end_step)
        return args.synib_weight > 0 and in_window

    def _views_on(self, mode: str) -> bool:
        if mode == "train":
            return self.synib_active()
        on = self.args.eval_masked_views
        return self.args.synib_weight > 0 if on is None else on

    def _model_inputs(self, inputs: dict) -> dict:
        """The batch without SynIB's own columns (e.g. `synib_text_mask`), as the model takes it."""
        own = self.view_builder.own_columns
        return {k: v for k, v in inputs.items() if k not in own} if own else inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Why: the loss is the task loss plus λ times the masked views' penalties (synib_hf.objective).
        mode = "train" if model.training else "eval"
        if not self._views_on(mode):
            self.loss_is_scaled_for_ga = self._plain_loss_is_scaled_for_ga
            return super().compute_loss(model, self._model_inputs(inputs), return_outputs, num_items_in_batch)
        weight = self.args.synib_weight if mode == "eval" or self.synib_active() else 0.0
        loss, outputs = self._synib_loss(model, inputs, mode, weight, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _synib_loss(self, model, inputs, mode: str, weight: float, num_items_in_batch=None):
        """`(task loss + weight · Σ_m mean Ω_m, clean outputs)` of one batch; its metrics recorded under `mode`.

        The penalty is a per-batch mean. Where the task loss is already a share of the whole accumulated batch (a
        token loss divided by `num_items_in_batch`, as the Trainer does for models that take loss kwargs), the
        penalty is divided by the accumulation steps here and the Trainer is told not to scale; otherwise the Trainer
        divides the sum."""
        if inputs.get("labels") is None:
            raise ValueError(
                f"{type(self).__name__} needs `labels` in every {mode} batch, but this batch has only "
                f"{sorted(inputs)}. Name the label column 'labels' (or 'label') and check that the data collator "
                "keeps it."
            )
        if not self._first_batch_checked:  # evaluation before any training
            self._check_first_batch(inputs)
        check_attended(inputs)
        training = model.training
        builder = self.view_builder
        items = num_items_in_batch if self.model_accepts_loss_kwargs else None  # as the Trainer passes it
        views = builder(model, inputs, training, run_view=self._view_runner(model, weight, training),
                        num_items_in_batch=items)
        if views.task_loss is None:  # the clean view is the model's own forward and loss, through the Trainer's
            task_loss, outputs = super().compute_loss(model, builder.clean_inputs(inputs, training), True,
                                                      num_items_in_batch)
            views = builder.complete(views, task_loss, outputs, inputs, items is not None, training)
        elif views.task_scaled_for_ga and self.args.average_tokens_across_devices:
            views.task_loss = views.task_loss * self.accelerator.num_processes  # as the Trainer: a count over all
        steps = getattr(self, "current_gradient_accumulation_steps", 1)
        result = synib_objective(views, weight, self._view_loss(),
                                 penalty_divisor=steps if views.task_scaled_for_ga and mode == "train" else 1,
                                 accuracy=mode == "eval")
        self.loss_is_scaled_for_ga = views.task_scaled_for_ga
        check_finite(views, where=f"at step {self.state.global_step} ({mode})")
        self._record(mode, result.metrics)
        return result.loss, views.outputs

    def _view_loss(self) -> str:
        return self.view_loss or self.args.synib_penalty

    def _view_runner(self, model, weight: float, training: bool):
        """`run_view(compute)` for builders that run their views one at a time: each view is read and its loss
        back-propagated at once, outside DDP's gradient sync, so only one view's activations live at a time."""

        def run_view(compute):
            with self.accelerator.no_sync(model):
                view = compute()
                losses = view_losses(view, self._view_loss())  # (1, B)
                if training and torch.is_grad_enabled() and weight > 0:
                    steps = getattr(self, "current_gradient_accumulation_steps", 1)
                    self.accelerator.backward(weight * valid_mean(losses, view.valid).sum() / steps)
            return view.masked.detach(), losses.detach()

        return run_view

    # ---- evaluation --------------------------------------------------------------------------------------------

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        # Why: the masked views' metrics belong to this loop's output, for `evaluate` and `predict` alike; `evaluate`
        # on data without labels would report neither loss nor metric.
        self._synib_metrics["eval"].clear()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        batches = len(dataloader) if hasattr(dataloader, "__len__") else 1
        if (description == "Evaluation" and output.num_samples and batches
                and f"{metric_key_prefix}_loss" not in output.metrics):
            raise ValueError(
                f"evaluate() needs labels ({self.label_names}) in every batch, but the evaluation set gave none: name "
                "the label column 'labels', or call trainer.predict() on unlabelled data."
            )
        buffered = self._synib_metrics["eval"].get("weight")
        if buffered and not any(bool((~column.isnan()).any()) for column in buffered):
            output.metrics.pop(f"{metric_key_prefix}_loss", None)  # no row had a label: there is no loss to report
        output.metrics.update({f"{metric_key_prefix}_synib/{k}": v for k, v in self._flush("eval").items()})
        return output

    # ---- checkpoints that resume exactly -------------------------------------------------------------------------

    def synib_state_dict(self) -> dict:
        """Mask generators and fill statistics of this process: what a checkpoint needs to resume exactly."""
        return {"randomness": self._randomness.state_dict(), "path": self.view_builder.state_dict()}

    def load_synib_state_dict(self, state: dict) -> None:
        self._randomness.load_state_dict(state["randomness"])
        self.view_builder.load_state_dict(state["path"])

    def _uses_views(self) -> bool:
        return self.args.synib_weight > 0 or bool(self.args.eval_masked_views)

    def _save_checkpoint(self, model, trial):
        # Why (as TRL's trainers override it): SynIB's mask generators and fill statistics go into the checkpoint
        # folder first, so a push of the checkpoint carries them and a resumed run equals an uninterrupted one.
        if self._uses_views():
            save_synib_state(self.synib_state_dict(), checkpoint_folder(self, trial), self.args.process_index,
                             self.args.world_size)
        super()._save_checkpoint(model, trial)

    def _restore_training_state(self, checkpoint: str) -> None:
        if self._uses_views() and os.path.isdir(checkpoint):
            state = load_synib_state(checkpoint, self.args.process_index, self.args.world_size)
            if state is not None:
                self.load_synib_state_dict(state)

