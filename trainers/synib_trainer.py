"""`SynIBTrainer`: `transformers.Trainer` whose loss adds SynIB's masked-view confidence penalty."""

import contextlib
import warnings
from collections import defaultdict
from dataclasses import fields
from typing import Optional

import torch
from transformers import Trainer

from synib_hf.input_masking import TokenIds
from synib_hf.masking import MaskRandomness, MaskSpec
from synib_hf.native import implements_native_protocol
from synib_hf.penalties import gaussian, unimodal_anchor

from .card import SynIBCardMixin
from .checkpoints import last_complete_checkpoint, load_converted, load_synib_state, save_synib_state, tied_keys
from .embedding_path import EmbeddingPath, is_vision_language_model
from .paths import GenericPath, NativePath, valid_mean
from .preflight import check_attended, check_first_batch, first_training_batch, set_find_unused_parameters
from .synib_config import SynIBConfig, check_path_fields, resolved_mask_fill


class SynIBTrainer(SynIBCardMixin, Trainer):
    """
    [`~transformers.Trainer`] for SynIB: `loss = task(f(x), y) + synib_weight · Σ_m Ω(f(M_m(x)))`.

    Three paths behind one class, chosen by `args.synib_path` (see `trainers/paths.py`, `trainers/embedding_path.py`):

    * **native** — the model implements [`SynIBNativeMixin`]: encoders run once, each masked view re-runs only the
      fusion head on masked features, all inside one `model(...)` call (one DDP forward).
    * **generic** — any model that returns classification scores (`args.logits_key`): masked copies of the inputs
      named by `args.modality_keys`, each input masked by the rule of its kind, run with the clean batch in one forward
      (concatenated on the batch axis) or one after another (`view_batching="sequential"`, lower peak memory). The
      task follows the model (`problem_type`: single-label, multi-label / soft targets, regression) or
      `compute_loss_func`.
    * **embedding** — a generative vision-language model (LLaVA, Qwen2/2.5/3-VL, Idefics3, SmolVLM, PaliGemma,
      Gemma3) or a `VLMForSequenceClassification`: views masked on the language model's merged input embeddings in one
      forward (the vision tower once, logits only where read); a generative model is read over `answer_candidates`
      at the answer position and keeps its own LM loss.

    With `synib_weight=0` training and evaluation are exactly `Trainer`'s. The first batch is checked before training
    starts (inputs, masking rules, scores, labels, task), so a misconfigured run fails in seconds; every batch's labels
    are checked too. Checkpoints carry SynIB's state, so a resumed run equals an uninterrupted one;
    `resume_from_checkpoint=True` skips checkpoints a kill left incomplete.

    Logs `synib/task_loss`, `synib/penalty_<m>`, `synib/masked_max_prob_<m>`, `synib/masked_entropy_<m>`,
    `synib/weight` (and `synib/fused_loss` on native models) in training and evaluation, gathered across processes;
    evaluation adds `eval_synib/masked_accuracy_<m>`. `compute_metrics` receives the clean scores only.

    Args:
        model: a [`~transformers.PreTrainedModel`] (or any `nn.Module`) returning classification scores.
        args ([`SynIBConfig`]): training arguments with the SynIB fields.
        processing_class: tokenizer or processor; the generic path needs its mask/pad and special-token ids to mask
            token inputs.
        peft_config (`peft.PeftConfig`, *optional*): wrap `model` with these adapters before training.
        **kwargs: every other [`~transformers.Trainer`] argument (`compute_loss_func` included).

    Example:

    ```python
    >>> from synib_hf import SynIBConfig, SynIBTrainer
    >>> args = SynIBConfig(output_dir="out", synib_weight=0.1,
    ...                    modality_keys={"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]})
    >>> trainer = SynIBTrainer(model=model, args=args, train_dataset=train, processing_class=processor)
    >>> trainer.train()
    ```
    """

    _tag_names = ["synib", "multimodal"]
    args_class = SynIBConfig  # the arguments it takes (the balancing trainers take BalancingConfig)

    def __init__(
        self, model=None, args: Optional[SynIBConfig] = None, processing_class=None, peft_config=None, **kwargs
    ):
        # Why: validate SynIB's arguments against the model before any step runs, and set up the masking state.
        if args is None:
            args = SynIBConfig(output_dir="synib-output")
        if not isinstance(args, SynIBConfig):
            raise TypeError(
                f"SynIBTrainer needs `args` to be a SynIBConfig, got {type(args).__name__}. SynIBConfig is a "
                "TrainingArguments subclass: rename TrainingArguments to SynIBConfig and add the SynIB fields."
            )
        if peft_config is not None:
            from synib_hf.models.lora import wrap_with_peft

            model = wrap_with_peft(model, peft_config)
        super().__init__(model=model, args=args, processing_class=processing_class, **kwargs)
        self._plain_loss_is_scaled_for_ga = self.loss_is_scaled_for_ga
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._randomness = MaskRandomness(seed=args.seed + self.accelerator.process_index)
        core = self.core_model()
        self.is_native = self._choose_path(core)
        path = "native" if self.is_native else "embedding" if self._uses_embedding_path(core) else "generic"
        self.mask_fill = resolved_mask_fill(args, path)
        spec = MaskSpec(**{f.name: getattr(args, f.name) for f in fields(MaskSpec)} | {"mask_fill": self.mask_fill})
        if path == "native":
            self._path = NativePath(self, core, spec, self._randomness)
            self.masked_modalities = self._path.masked_modalities
        elif path == "embedding":
            self._path = EmbeddingPath(self, core, spec, self._randomness, processing_class)
            self.masked_modalities = self._path.masked_modalities
        else:
            self._path = GenericPath(self, spec, self._randomness, self._token_ids(processing_class))
        check_path_fields(args, self._path.name, type(core).__name__)
        self.task = None  # the head's Task, known once the first batch was checked
        self._first_batch_checked = False
        self._evaluating = False
        self._install_synergy_metrics()
        self._warn_if_fsdp_is_unavailable()

    # ---- setup helpers -------------------------------------------------------------------------------------------

    def core_model(self):
        """The model under DDP/PEFT wrappers: what the native protocol and model cards read."""
        model = self.accelerator.unwrap_model(self.model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    _core_model = core_model  # the name subclasses of 0.1 used

    def _choose_path(self, core) -> bool:
        native = implements_native_protocol(core)
        if self.args.synib_path == "native" and not native:
            raise ValueError(
                f"synib_path='native' but {type(core).__name__} does not implement the native protocol "
                "(synib_hf.SynIBNativeMixin: per-modality features + a fusion head). Use synib_path='generic' or "
                "'auto' to mask its inputs instead."
            )
        return native and self.args.synib_path not in ("generic", "embedding")

    def _uses_embedding_path(self, core) -> bool:
        vlm = is_vision_language_model(core)
        if self.args.synib_path == "embedding" and not vlm:
            raise ValueError(
                f"synib_path='embedding' masks a vision-language model's input embeddings, but {type(core).__name__} "
                "is not one of the supported families (synib_hf.models.vlm.VLM_FAMILIES) nor a "
                "VLMForSequenceClassification. Use synib_path='auto'."
            )
        return self.args.synib_path == "embedding" or (self.args.synib_path == "auto" and vlm)

    def check_masked_modalities(self, modalities) -> tuple:
        """The modalities that get a masked view: `masked_modalities`, checked against `modalities`, else all."""
        requested = self.args.masked_modalities
        unknown = sorted(set(requested or ()) - set(modalities))
        if unknown:
            raise ValueError(
                f"masked_modalities names {unknown}, but the modalities are {list(modalities)}; fix masked_modalities "
                "(or modality_keys)."
            )
        return tuple(requested) if requested else tuple(modalities)

    @staticmethod
    def _token_ids(processing_class) -> Optional[TokenIds]:
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if tokenizer is None or not hasattr(tokenizer, "all_special_ids"):
            return None
        return TokenIds.from_tokenizer(tokenizer)

    def _warn_if_fsdp_is_unavailable(self) -> None:
        from accelerate.utils import DistributedType

        if self.args.fsdp and self.accelerator.distributed_type != DistributedType.FSDP:
            warnings.warn(
                f"fsdp={self.args.fsdp!r} was requested, but accelerate runs {self.accelerator.distributed_type} "
                "(it never enters FSDP from a multi-CPU state): the model is NOT sharded. FSDP needs GPUs here; on "
                "CPU use DDP (accelerate launch --multi_gpu), or raw torch FSDP2 over gloo outside the Trainer.",
                stacklevel=2,
            )

    def _set_signature_columns_if_needed(self):
        # Why: `remove_unused_columns` must keep every column the modality map names, even if forward does not.
        super()._set_signature_columns_if_needed()
        named = [k for keys in (self.args.modality_keys or {}).values() for k in keys]
        core = self.core_model()
        if implements_native_protocol(core):
            named += [k for keys in core.synib_input_keys.values() for k in keys]
        named += list(getattr(self._path, "extra_columns", ()))
        self._signature_columns = list(dict.fromkeys(self._signature_columns + named))

    # ---- the first batch, checked before training ----------------------------------------------------------------

    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        # Why: resume from the last *complete* checkpoint, and check the first batch before any step runs.
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir)
        if self.train_dataset is not None and self.args.synib_weight > 0:
            batch = first_training_batch(self)
            check_first_batch(self, batch)
            if self.args.world_size > 1 and self.args.ddp_find_unused_parameters is None:
                set_find_unused_parameters(self, batch)
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval, **kwargs)

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

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Why: the SynIB loss is the task loss plus λ times the summed masked-view penalties.
        mode = "train" if model.training else "eval"
        if not self._views_on(mode):
            self.loss_is_scaled_for_ga = self._plain_loss_is_scaled_for_ga
            own = getattr(self._path, "extra_columns", ())  # SynIB's own columns (synib_text_mask) are not inputs
            inputs = {k: v for k, v in inputs.items() if k not in own} if own else inputs
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        weight = self.args.synib_weight if mode == "eval" or self.synib_active() else 0.0
        loss, outputs = self.synib_loss(model, inputs, mode, weight, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def synib_loss(self, model, inputs, mode: str, weight: float, num_items_in_batch=None):
        """`(task loss + weight · Σ_m mean Ω_m, clean outputs)` of one batch; metrics recorded under `mode`.

        The penalty is a per-batch mean. When the path's task loss is already a share of the whole accumulated batch
        (a token-level loss divided by `num_items_in_batch`, as `Trainer` does for models that accept loss kwargs),
        the penalty is divided by the accumulation steps here and the Trainer is told not to scale; otherwise the
        Trainer divides the sum."""
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError(
                f"SynIBTrainer needs `labels` in every {mode} batch, but this batch has only {sorted(inputs)}. Name "
                "the label column 'labels' (or 'label') and check that the data collator keeps it."
            )
        if not self._first_batch_checked:  # evaluation before any training
            check_first_batch(self, inputs)
        check_attended(inputs)
        names = self._path.modality_names(inputs)
        result = self._path.run(model, inputs, labels, weight, num_items_in_batch)
        penalty = weight * valid_mean(result.penalties, result.valid).sum()
        self.loss_is_scaled_for_ga = result.task_scaled_for_ga
        if result.task_scaled_for_ga and mode == "train":
            penalty = penalty / self.current_gradient_accumulation_steps
        loss = result.task_loss + penalty
        self._check_finite(result, names, mode)
        self._record(mode, names, result, weight)
        return loss, result.outputs

    def view_losses(self, masked, labels, logvar=None, unimodal=None) -> torch.Tensor:
        """Ω of each masked view per example, `(M, B)`, for masked scores `(M, B, C)`.

        The one place a trainer says what a masked view costs: baselines that share SynIB's views override it.
        """
        penalty = self.args.synib_penalty
        if penalty == "kl_uniform":
            return torch.stack([self.task.penalty(view) for view in masked])
        if penalty == "gaussian":
            return torch.stack([gaussian(view, var) for view, var in zip(masked, logvar)])
        modalities = self.core_model().synib_modalities
        other = {m: unimodal[1 - modalities.index(m)] for m in modalities}  # the modality left visible
        return torch.stack([unimodal_anchor(view, other[m]) for view, m in zip(masked, self.masked_modalities)])

    def _check_finite(self, result, names, mode) -> None:
        # each view alone: a generative model's clean logits (B, T, V) and its views' candidate logits differ in shape
        finite = torch.stack([torch.isfinite(view).all() for view in (result.outputs["logits"], *result.masked)])
        if not bool(finite.all()):
            views = ["clean", *(f"masked-{m}" for m in names)]
            bad = [view for view, ok in zip(views, finite.tolist()) if not ok]
            raise ValueError(
                f"Non-finite logits at step {self.state.global_step} ({mode}) in the {', '.join(bad)} view(s). Check "
                "the inputs for NaN/inf, lower the learning rate, or prefer bf16 to fp16."
            )

    # ---- metrics: one channel, flushed in `log` ----------------------------------------------------------------

    def _record(self, mode, names, result, weight) -> None:
        """Per-example metric columns; rows that do not count (ignore-index labels) are NaN and left out of means."""
        size = result.valid.shape[0]
        task = self.task
        columns = {"task_loss": result.task_loss.detach().float().expand(size)}
        columns.update({k: v.detach().float() for k, v in result.columns.items()})
        for name, view, penalty in zip(names, result.masked.detach(), result.penalties.detach()):
            columns[f"penalty_{name}"] = penalty.float()
            if task.has_accuracy:
                columns[f"masked_max_prob_{name}"] = task.confidence(view)
                columns[f"masked_entropy_{name}"] = task.entropy(view)
                if mode == "eval" and result.targets is not None:
                    columns[f"masked_accuracy_{name}"] = task.correct(view, result.targets)
        columns["weight"] = torch.full((size,), float(weight), device=result.valid.device)
        table = torch.stack(list(columns.values()), dim=1)  # (B, K)
        table = torch.where(result.valid[:, None], table, torch.nan)
        if mode == "eval":  # gathered per batch so the last batch's padding is dropped
            table = self.accelerator.gather_for_metrics(table)
        for key, column in zip(columns, table.unbind(1)):
            self._metrics[mode][key].append(column)

    def _flush(self, mode: str) -> dict:
        """Means of the buffered metrics over the rows that count (training buffers are reduced across processes
        here, not per step)."""
        buffered = self._metrics[mode]
        if not buffered:
            return {}
        keys = list(buffered)
        values = [torch.cat(buffered[k]).float() for k in keys]
        sums = torch.stack([v.nansum() for v in values])
        counts = torch.stack([(~v.isnan()).sum().float() for v in values])
        if mode == "train":
            sums = self.accelerator.reduce(sums, reduction="sum")
            counts = self.accelerator.reduce(counts, reduction="sum")
        buffered.clear()
        return {k: s / c for k, s, c in zip(keys, sums.tolist(), counts.tolist()) if c > 0}

    def log(self, logs: dict, start_time: Optional[float] = None) -> None:
        # Why: training metrics join the Trainer's log line (evaluation's are in `evaluation_loop`'s output).
        if self.model.training:
            logs.update({f"synib/{k}": v for k, v in self._flush("train").items()})
        super().log(logs, start_time)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        # Why: masked-view metrics belong to this loop's output, for `evaluate` and `predict` alike.
        self._install_synergy_metrics()  # callbacks added after construction too
        self._metrics["eval"].clear()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        output.metrics.update({f"{metric_key_prefix}_synib/{k}": v for k, v in self._flush("eval").items()})
        return output

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        # Why: `evaluate` on data without labels would report no loss and no metric, silently; `predict` may.
        self._install_synergy_metrics()  # before Trainer decides whether predictions are collected
        self._evaluating = True
        try:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        finally:
            self._evaluating = False

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # Why: an evaluation batch without labels is a mistake (`predict` is for unlabelled data).
        if self._evaluating and self.label_names and any(inputs.get(k) is None for k in self.label_names):
            raise ValueError(
                f"evaluate() needs labels ({self.label_names}) in every batch, but this evaluation batch has only "
                f"{sorted(inputs)}: name the label column 'labels', or call trainer.predict() on unlabelled data."
            )
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    # ---- checkpoints that resume exactly ---------------------------------------------------------------------------

    def synib_state_dict(self) -> dict:
        """Mask generators and fill statistics of this process: what a checkpoint needs to resume exactly."""
        return {"randomness": self._randomness.state_dict(), "path": self._path.state_dict()}

    def load_synib_state_dict(self, state: dict) -> None:
        self._randomness.load_state_dict(state["randomness"])
        self._path.load_state_dict(state["path"])

    def _save_rng_state(self, output_dir: str) -> None:
        # Why: SynIB's own randomness and fill statistics are part of the RNG state a checkpoint restores.
        super()._save_rng_state(output_dir)
        save_synib_state(self.synib_state_dict(), output_dir, self.args.process_index, self.args.world_size)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        # Why: transformers 5.24 saves some models (its VLMs) under legacy key names that this state-dict load does not
        # map back (huggingface/transformers#43701), and would resume from the initial weights with a warning.
        with self._converting_mismatched_loads(model if model is not None else self.model, resume_from_checkpoint):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        # Why: the same for `load_best_model_at_end`, which would keep the last weights with a warning.
        with self._converting_mismatched_loads(self.model, self.state.best_model_checkpoint):
            super()._load_best_model()

    @contextlib.contextmanager
    def _converting_mismatched_loads(self, model, checkpoint):
        self._mismatched_load = False
        self._converting = True
        try:
            yield
        finally:
            self._converting = False
        if self._mismatched_load:
            load_converted(model, checkpoint)

    def _issue_warnings_after_load(self, load_result) -> None:
        # Why: keys that do not match are a failed load, not a warning: the loads above load them converted.
        model = self.accelerator.unwrap_model(self.model)
        ignorable = set(getattr(model, "_keys_to_ignore_on_save", None) or ()) | tied_keys(model)
        if getattr(self, "_converting", False) and (load_result.unexpected_keys
                                                    or set(load_result.missing_keys) - ignorable):
            self._mismatched_load = True
            return
        super()._issue_warnings_after_load(load_result)

    def _load_rng_state(self, checkpoint: Optional[str]) -> None:
        # Why: restore them with the Trainer's RNG state, so masks continue where the checkpoint left them.
        super()._load_rng_state(checkpoint)
        if checkpoint is not None:
            state = load_synib_state(checkpoint, self.args.process_index, self.args.world_size)
            if state is not None:
                self.load_synib_state_dict(state)

    # ---- synergy-subset metrics through compute_metrics ------------------------------------------------------------

    def _install_synergy_metrics(self) -> None:
        """A `SynergySubsetCallback` among the callbacks adds its groups through `compute_metrics`, so they are
        gathered across processes and reach every `report_to` integration."""
        from synib_hf.synergy import SynergySubsetCallback, with_synergy_metrics

        installed = self.__dict__.setdefault("_synergy_installed", set())  # per trainer: a callback may be shared
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, SynergySubsetCallback) and id(callback) not in installed:
                self.compute_metrics = with_synergy_metrics(self.compute_metrics, callback.unimodal)
                callback.attached = True
                installed.add(id(callback))
