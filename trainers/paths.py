"""The classifier paths of [`SynIBTrainer`]: each checks a model and its first batch once, then turns every batch into
a [`ViewResult`] (clean task loss, clean scores, masked views' scores and penalties).

* [`NativePath`] — models implementing `SynIBNativeMixin`: encoders run once, every masked view re-runs only the
  fusion head, all inside one `model(...)` call.
* [`GenericPath`] — any model returning classification scores: masked copies of its inputs, each input masked by the
  rule of its kind (`synib_hf.input_kinds`), run with the clean batch in one forward or one after another.
"""

from typing import Mapping

import torch

from synib_hf.input_kinds import resolve_input_kinds
from synib_hf.input_masking import InputMasker, check_oracle_coordinates
from synib_hf.masking import FeatureMasker
from synib_hf.tasks import classification_task, resolve_task
from synib_hf.views import ViewResult, classification_scores, concatenate_views, read_output, resolve_modality_keys

from .synib_config import DEFAULT_MODALITY_KEYS


def valid_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of `values (..., B)` over the rows that count."""
    return (values * valid).sum(dim=-1) / valid.sum().clamp_min(1)


def refuse_own_task_loss(trainer, path: str, why: str) -> None:
    """A path whose task loss is the model's own cannot honour `compute_loss_func` or `label_smoothing_factor` the
    same way in every view batching: an error, not a silently different objective (λ = 0 is `Trainer` and takes
    both)."""
    args = trainer.args
    if args.synib_weight == 0 and not args.eval_masked_views:
        return
    for name, value in (("compute_loss_func", trainer.compute_loss_func),
                        ("label_smoothing_factor", args.label_smoothing_factor)):
        if value:
            raise ValueError(
                f"{name} is not used on the {path} path ({why}); remove it, or use synib_weight=0 for plain training."
            )


def refuse_view_options(trainer, path: str, masks_what: str) -> None:
    """Options only the native path (detached features) or only a non-DeepSpeed run (per-view backward) supports."""
    args = trainer.args
    if args.detach_masked_features:
        raise ValueError(
            f"detach_masked_features=True detaches encoder features, which only the native path has; the {path} path "
            f"masks {masks_what}. Set it to False" + (" or use a native model." if path == "generic" else ".")
        )
    if args.view_batching == "sequential" and trainer.is_deepspeed_enabled:
        raise ValueError("view_batching='sequential' back-propagates each view itself; it does not support DeepSpeed.")


def backpropagate_views(trainer, model, views, read, valid, weight: float, training: bool) -> tuple:
    """Sequential view batching: each view's penalty is back-propagated as soon as it is read (outside DDP's gradient
    sync), so only one view's activations live at a time. `read(view)` gives `(scores (B, C), penalty (B,))`;
    returns the detached `(M, B, C)` scores and `(M, B)` penalties for the metrics."""
    masked, penalties = [], []
    for view in views:
        with trainer.accelerator.no_sync(model):
            scores, penalty = read(view)
            if training and torch.is_grad_enabled() and weight > 0:
                trainer.accelerator.backward(weight * valid_mean(penalty, valid)
                                             / trainer.current_gradient_accumulation_steps)
        masked.append(scores.detach())
        penalties.append(penalty.detach())
    return torch.stack(masked), torch.stack(penalties)


class NativePath:
    """Feature-level views of a model implementing the native protocol."""

    name = "native"

    def __init__(self, trainer, core, spec, randomness):
        self.trainer = trainer
        modalities = tuple(core.synib_modalities)
        if len(modalities) < 2:
            raise ValueError(
                f"{type(core).__name__} declares {len(modalities)} modality ({list(modalities)}); SynIB masks one "
                "modality while keeping the others, so it needs at least two (synib_modalities)."
            )
        self.masked_modalities = trainer.check_masked_modalities(modalities)
        penalty = trainer.args.synib_penalty
        if penalty == "gaussian" and core.synib_logvar_head() is None:
            raise ValueError(
                f"synib_penalty='gaussian' needs a logvar head, but {type(core).__name__}.synib_logvar_head() "
                "returned None; enable it in the model config or use synib_penalty='kl_uniform'."
            )
        if penalty == "unimodal_anchor" and (
            len(modalities) != 2 or any(core.synib_unimodal_head(m) is None for m in modalities)
        ):
            raise ValueError(
                "synib_penalty='unimodal_anchor' anchors each masked view to the unimodal head of the other "
                f"modality: it needs exactly two modalities with unimodal heads; {type(core).__name__} has "
                f"{list(modalities)}. Use synib_penalty='kl_uniform'."
            )
        refuse_own_task_loss(trainer, "native", "the task loss is the model's own, fused and unimodal heads")
        self.masker = FeatureMasker(spec, self.masked_modalities, randomness)

    def modality_names(self, batch) -> tuple:
        return self.masked_modalities

    def validate(self, model, batch: Mapping, labels: torch.Tensor) -> None:
        """One plain forward of two rows: the head's width decides its task; the labels must fit it."""
        with torch.no_grad():
            logits = model(**{k: v[:2] for k, v in batch.items()}).logits
        classification_task(logits).check_labels(labels)

    def run(
        self, model, inputs: Mapping, labels: torch.Tensor, weight: float, num_items_in_batch=None
    ) -> ViewResult:
        outputs = model(**inputs, synib_views=self.masker)
        if getattr(outputs, "masked_logits", None) is None:
            raise ValueError(
                f"{type(self.trainer.core_model()).__name__}.forward did not return `masked_logits`; its forward must "
                "pass `synib_views` to `self.synib_forward(...)` (see synib_hf.SynIBNativeMixin)."
            )
        task = classification_task(outputs.logits)
        self.trainer.task = task
        penalties = self.trainer.view_losses(outputs.masked_logits, labels, outputs.masked_logvar,
                                             outputs.unimodal_logits)  # (M, B)
        columns = {} if outputs.fused_loss is None else {"fused_loss": outputs.fused_loss.detach().expand(len(labels))}
        return ViewResult(outputs.loss, {"logits": outputs.logits}, outputs.masked_logits, penalties, labels,
                          task.valid_rows(labels), columns=columns)

    def state_dict(self) -> dict:
        return self.masker.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.masker.load_state_dict(state)


class GenericPath:
    """Input-level views of any model that returns classification scores."""

    name = "generic"

    def __init__(self, trainer, spec, randomness, token_ids):
        self.trainer = trainer
        args = trainer.args
        if args.synib_penalty == "unimodal_anchor":
            raise ValueError(
                "synib_penalty='unimodal_anchor' needs unimodal heads, which only native models have "
                "(synib_hf.SynIBNativeMixin); on the generic path use 'kl_uniform' (or 'gaussian' with logvar_key)."
            )
        if args.synib_penalty == "gaussian" and args.logvar_key is None:
            raise ValueError(
                "synib_penalty='gaussian' on the generic path reads log-variances from an output field: set "
                "logvar_key to it, or use synib_penalty='kl_uniform'."
            )
        refuse_view_options(trainer, "generic", "inputs")
        if args.modality_keys is not None:
            trainer.check_masked_modalities(tuple(args.modality_keys))
        self.masker = InputMasker(spec, randomness, token_ids)
        self._kinds = {}  # batch signature → resolved kinds

    def modality_keys(self, batch: Mapping) -> dict:
        """Modality → input keys for this batch; every key of a user-given map must be present."""
        return resolve_modality_keys(batch, self.trainer.args.modality_keys, DEFAULT_MODALITY_KEYS)

    def modality_names(self, batch) -> tuple:
        return self.trainer.check_masked_modalities(tuple(self.modality_keys(batch)))

    def kinds(self, batch: Mapping, keys: Mapping) -> dict:
        """Each mapped input's [`InputKind`], resolved once per batch layout (names, dtypes, numbers of dims)."""
        signature = tuple((k, batch[k].dtype, batch[k].dim()) for ks in keys.values() for k in ks)
        if signature not in self._kinds:
            self._kinds[signature] = resolve_input_kinds(batch, keys, self.trainer.args.input_kinds)
        return self._kinds[signature]

    def validate(self, model, batch: Mapping, labels: torch.Tensor) -> None:
        """The modality map and masking rules, the scores' field and shape, the task and its labels, on one batch."""
        args, trainer = self.trainer.args, self.trainer
        keys = self.modality_keys(batch)
        self.modality_names(batch)
        kinds = self.kinds(batch, keys)
        if any(k.kind == "tokens" for k in kinds.values()) and self.masker.token_ids is None:
            raise ValueError(
                "Masking token ids needs the tokenizer's mask/pad and special-token ids: pass "
                "`processing_class=tokenizer` (or a processor with a `.tokenizer`) to SynIBTrainer."
            )
        if args.mask_type == "oracle":
            for key, coordinates in (args.oracle_coordinates or {}).items():
                if key in batch:
                    check_oracle_coordinates(key, coordinates, batch[key].shape[-1])
        with torch.no_grad():
            outputs = model(**{k: v[:2] for k, v in batch.items()})
        scores = classification_scores(outputs, args.logits_key)
        core = trainer.core_model()
        task = resolve_task(getattr(core, "config", None), labels, scores.shape[-1], args.problem_type)
        task.check_labels(labels, where=f"labels (a {task.problem_type} head with {task.num_labels} outputs)")
        if task.problem_type == "regression" and args.synib_penalty != "gaussian":
            raise ValueError(
                f"{type(core).__name__} is a regression head ({scores.shape[-1]} output(s) and "
                f"problem_type={getattr(getattr(core, 'config', None), 'problem_type', None)!r}; transformers trains "
                "it with MSE), which has no confidence for kl_uniform to penalise. Use synib_penalty='gaussian' "
                "with logvar_key, or, for a binary classifier, problem_type='multi_label_classification' with float "
                "0/1 labels (one logit, BCE) or num_labels=2."
            )
        logvar = read_output(outputs, args.logvar_key, "logvar_key") if args.synib_penalty == "gaussian" else None
        if logvar is not None and logvar.shape != scores.shape:
            raise ValueError(f"the output field {args.logvar_key!r} (logvar_key) must have the scores' shape "
                             f"{tuple(scores.shape)}.")
        if args.label_smoothing_factor and task.problem_type not in ("single_label_classification",):
            raise ValueError(
                f"label_smoothing_factor applies to single-label heads; this head is {task.problem_type}."
            )
        trainer.task = task

    def run(
        self, model, inputs: Mapping, labels: torch.Tensor, weight: float, num_items_in_batch=None
    ) -> ViewResult:
        trainer, args = self.trainer, self.trainer.args
        task = trainer.task
        task.check_labels(labels)
        batch = {k: v for k, v in inputs.items() if k != "labels"}
        keys = self.modality_keys(batch)
        kinds = self.kinds(batch, keys)
        training = model.training
        views = [self.masker(batch, keys[m], training, kinds) for m in trainer.check_masked_modalities(tuple(keys))]
        valid = task.valid_rows(labels)
        size = labels.shape[0]
        if args.view_batching == "concatenated":
            outputs = model(**concatenate_views(batch, views))
            scores = classification_scores(outputs, args.logits_key).unflatten(0, (len(views) + 1, -1))  # (1+M, B, C)
            logvar = self._logvar(outputs, len(views) + 1)
            penalties = trainer.view_losses(scores[1:], labels, None if logvar is None else logvar[1:])  # (M, B)
            return ViewResult(self._task_loss(outputs, scores[0], labels, size), {"logits": scores[0]}, scores[1:],
                              penalties, labels, valid)
        def read(view):
            outputs = model(**view)
            scores = classification_scores(outputs, args.logits_key)
            logvar = self._logvar(outputs, 1)
            return scores, trainer.view_losses(scores[None], labels, None if logvar is None else logvar)[0]

        masked, penalties = backpropagate_views(trainer, model, views, read, valid, weight, training)
        outputs = model(**batch)
        logits = classification_scores(outputs, args.logits_key)
        return ViewResult(self._task_loss(outputs, logits, labels, size), {"logits": logits}, masked, penalties,
                          labels, valid)

    def _logvar(self, outputs, views: int):
        key = self.trainer.args.logvar_key
        if self.trainer.args.synib_penalty != "gaussian":
            return None
        return read_output(outputs, key, "logvar_key").unflatten(0, (views, -1))

    def _task_loss(self, outputs, logits, labels, size) -> torch.Tensor:
        """The clean view's task loss: the user's `compute_loss_func` on the clean rows, else the task's own."""
        trainer = self.trainer
        if trainer.compute_loss_func is not None:
            from synib_hf.views import slice_outputs

            # a per-batch mean: SynIB never passes num_items_in_batch (its loss is not scaled for accumulation)
            return trainer.compute_loss_func(slice_outputs(outputs, size), labels, num_items_in_batch=None)
        return trainer.task.loss(logits, labels, trainer.args.label_smoothing_factor)

    def state_dict(self) -> dict:
        return self.masker.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.masker.load_state_dict(state)
