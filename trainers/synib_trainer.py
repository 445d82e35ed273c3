"""`SynIBTrainer`: `transformers.Trainer` whose loss adds SynIB's masked-view confidence penalty."""

import os
from collections import defaultdict
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from transformers import Trainer

from synib_hf.masking import FeatureMasker, InputMasker, MaskRandomness, MaskSpec, TokenIds
from synib_hf.model_card import build_model_card, save_card_inputs
from synib_hf.native import implements_native_protocol
from synib_hf.penalties import (
    entropy, gaussian, kl_uniform, max_probability, predicted_classes, task_loss, unimodal_anchor,
)
from synib_hf.views import classification_logits, concatenate_views, resolve_modality_keys

from .synib_config import DEFAULT_MODALITY_KEYS, SynIBConfig, synib_changes



class SynIBTrainer(Trainer):
    """
    [`~transformers.Trainer`] for SynIB: `loss = CE(f(x), y) + synib_weight · Σ_m Ω(f(M_m(x)))`.

    Two paths behind one class, chosen by `args.synib_path`:

    * **native** — the model implements [`SynIBNativeMixin`]: encoders run once, each masked view re-runs only the
      fusion head on masked features, all inside one `model(...)` call (one DDP forward).
    * **generic** — any model that returns `logits`: masked copies of the inputs named by `args.modality_keys`, run
      with the clean batch in one forward (concatenated on the batch axis) or one after another (`view_batching=
      "sequential"`, lower peak memory).

    Logs `synib/task_loss`, `synib/penalty_<m>`, `synib/masked_max_prob_<m>`, `synib/masked_entropy_<m>` and
    `synib/weight` in training and evaluation (gathered across processes); evaluation adds
    `eval_synib/masked_accuracy_<m>`. `compute_metrics` receives the clean logits only.

    Args:
        model: a [`~transformers.PreTrainedModel`] (or any `nn.Module`) returning logits.
        args ([`SynIBConfig`]): training arguments with the SynIB fields.
        processing_class: tokenizer or processor; the generic path needs its mask/pad and special-token ids to mask
            token inputs.
        peft_config (`peft.PeftConfig`, *optional*): wrap `model` with these adapters before training.
        **kwargs: every other [`~transformers.Trainer`] argument.

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

    def __init__(self, model=None, args: Optional[SynIBConfig] = None, processing_class=None, peft_config=None, **kwargs):
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
        if self.compute_loss_func is not None and args.synib_weight > 0:
            raise ValueError(
                "SynIBTrainer computes the task loss itself (cross-entropy) when synib_weight > 0, so "
                "`compute_loss_func` would be ignored; remove it, or set synib_weight=0 for plain training."
            )
        self._plain_loss_is_scaled_for_ga = self.loss_is_scaled_for_ga
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        spec = MaskSpec(**{f.name: getattr(args, f.name) for f in fields(MaskSpec)})
        randomness = MaskRandomness(seed=args.seed + self.accelerator.process_index)
        core = self._core_model()
        self.is_native = self._choose_path(core)
        if self.is_native:
            self.masked_modalities = self._check_masked_modalities(core.synib_modalities)
            self._check_native_penalty(core)
            self._feature_masker = FeatureMasker(spec, self.masked_modalities, randomness)
        else:
            self._check_generic_options()
            if args.modality_keys is not None:
                self._check_masked_modalities(tuple(args.modality_keys))
            self._input_masker = InputMasker(spec, randomness, self._token_ids(processing_class))

    # ---- setup helpers -------------------------------------------------------------------------------------------

    def _core_model(self):
        model = self.accelerator.unwrap_model(self.model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def _choose_path(self, core) -> bool:
        native = implements_native_protocol(core)
        if self.args.synib_path == "native" and not native:
            raise ValueError(
                f"synib_path='native' but {type(core).__name__} does not implement the native protocol "
                "(synib_hf.SynIBNativeMixin: per-modality features + a fusion head). Use synib_path='generic' or "
                "'auto' to mask its inputs instead."
            )
        return native and self.args.synib_path != "generic"

    def _check_masked_modalities(self, modalities) -> tuple:
        requested = self.args.masked_modalities
        unknown = sorted(set(requested or ()) - set(modalities))
        if unknown:
            raise ValueError(
                f"masked_modalities names {unknown}, but the modalities are {list(modalities)}; fix masked_modalities "
                "(or modality_keys)."
            )
        return tuple(requested) if requested else tuple(modalities)

    def _check_native_penalty(self, core) -> None:
        penalty = self.args.synib_penalty
        if penalty == "gaussian" and core.synib_logvar_head() is None:
            raise ValueError(
                f"synib_penalty='gaussian' needs a logvar head, but {type(core).__name__}.synib_logvar_head() "
                "returned None; enable it in the model config or use synib_penalty='kl_uniform'."
            )
        if penalty == "unimodal_anchor":
            if len(core.synib_modalities) != 2 or any(core.synib_unimodal_head(m) is None for m in core.synib_modalities):
                raise ValueError(
                    "synib_penalty='unimodal_anchor' anchors each masked view to the unimodal head of the other "
                    f"modality: it needs exactly two modalities with unimodal heads; {type(core).__name__} has "
                    f"{list(core.synib_modalities)}. Use synib_penalty='kl_uniform'."
                )

    def _check_generic_options(self) -> None:
        args = self.args
        if args.synib_penalty != "kl_uniform":
            raise ValueError(
                f"synib_penalty={args.synib_penalty!r} needs a logvar or unimodal head, which only native models have "
                "(synib_hf.SynIBNativeMixin); on the generic path use synib_penalty='kl_uniform'."
            )
        if args.detach_masked_features:
            raise ValueError(
                "detach_masked_features=True detaches encoder features, which only the native path has; the generic "
                "path masks inputs. Set it to False or use a native model."
            )
        if args.view_batching == "sequential" and self.is_deepspeed_enabled:
            raise ValueError("view_batching='sequential' back-propagates each view itself; it does not support DeepSpeed.")

    @staticmethod
    def _token_ids(processing_class) -> Optional[TokenIds]:
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if tokenizer is None or not hasattr(tokenizer, "all_special_ids"):
            return None
        return TokenIds.from_tokenizer(tokenizer)

    def _set_signature_columns_if_needed(self):
        # Why: `remove_unused_columns` must keep every column the modality map names, even if forward does not.
        super()._set_signature_columns_if_needed()
        named = [k for keys in (self.args.modality_keys or {}).values() for k in keys]
        core = self._core_model()
        if implements_native_protocol(core):
            named += [k for keys in core.synib_input_keys.values() for k in keys]
        self._signature_columns = list(dict.fromkeys(self._signature_columns + named))

    # ---- the loss ------------------------------------------------------------------------------------------------

    def synib_active(self) -> bool:
        """Whether the penalty applies at the current optimizer step (λ > 0 and inside the start/end window)."""
        args, step = self.args, self.state.global_step
        in_window = step >= args.synib_start_step and (args.synib_end_step is None or step < args.synib_end_step)
        return args.synib_weight > 0 and in_window

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Why: the SynIB loss is the task loss plus λ times the summed masked-view penalties.
        mode = "train" if model.training else "eval"
        if mode == "train" and not self.synib_active():
            self.loss_is_scaled_for_ga = self._plain_loss_is_scaled_for_ga
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # A per-batch mean: the Trainer must divide it by the accumulation steps.
        self.loss_is_scaled_for_ga = False
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError(
                f"SynIBTrainer needs `labels` in every {mode} batch, but this batch has only {sorted(inputs)}. Name "
                "the label column 'labels' (or 'label') and check that the data collator keeps it."
            )
        weight = self.args.synib_weight if mode == "eval" or self.synib_active() else 0.0
        if self.is_native:
            names = self.masked_modalities
            task, logits, masked, logvar, unimodal = self._native_views(model, inputs)
            penalties = self.view_losses(masked, labels, logvar, unimodal)  # (M, B)
        else:
            keys = self._modality_keys(inputs)
            names = self._check_masked_modalities(tuple(keys))
            task, logits, masked, penalties = self._generic_views(model, inputs, labels, keys, names, weight)
        loss = task + weight * penalties.mean(dim=1).sum()  # sequential views: penalties detached, already applied
        self._check_finite(logits, masked, names, mode)
        self._record(mode, names, task, masked, penalties, labels, weight)
        return (loss, {"logits": logits}) if return_outputs else loss

    def _native_views(self, model, inputs):
        outputs = model(**inputs, synib_views=self._feature_masker)
        if getattr(outputs, "masked_logits", None) is None:
            raise ValueError(
                f"{type(self._core_model()).__name__}.forward did not return `masked_logits`; its forward must pass "
                "`synib_views` to `self.synib_forward(...)` (see synib_hf.SynIBNativeMixin)."
            )
        return outputs.loss, outputs.logits, outputs.masked_logits, outputs.masked_logvar, outputs.unimodal_logits

    def view_losses(self, masked, labels, logvar=None, unimodal=None) -> torch.Tensor:
        """Ω of each masked view per example, `(M, B)`, for masked logits `(M, B, C)`.

        The one place a trainer says what a masked view costs: baselines that share SynIB's views override it.
        """
        penalty = self.args.synib_penalty
        if penalty == "kl_uniform":
            return torch.stack([kl_uniform(view) for view in masked])
        if penalty == "gaussian":
            return torch.stack([gaussian(view, var) for view, var in zip(masked, logvar)])
        modalities = self._core_model().synib_modalities
        other = {m: unimodal[1 - modalities.index(m)] for m in modalities}  # the modality left visible
        return torch.stack([unimodal_anchor(view, other[m]) for view, m in zip(masked, self.masked_modalities)])

    def _generic_views(self, model, inputs, labels, keys, modalities, weight):
        """Task loss, clean logits `(B, C)`, masked logits `(M, B, C)` and penalties `(M, B)` of the generic path.

        With `view_batching="sequential"` the penalties come back detached: each view was back-propagated here already.
        """
        batch = {k: v for k, v in inputs.items() if k != "labels"}
        training = model.training
        views = [self._input_masker(batch, keys[m], training=training) for m in modalities]
        smoothing = self.args.label_smoothing_factor
        if self.args.view_batching == "concatenated":
            all_logits = classification_logits(model(**concatenate_views(batch, views)))
            all_logits = all_logits.unflatten(0, (len(views) + 1, -1))  # (1 + M, B, C)
            logits, masked = all_logits[0], all_logits[1:]
            penalties = self.view_losses(masked, labels)  # (M, B)
            return task_loss(logits, labels, smoothing), logits, masked, penalties
        # Sequential: each view's penalty is back-propagated here, so only one view's activations live at a time.
        masked, penalties = [], []
        for view in views:
            with self.accelerator.no_sync(model):
                view_logits = classification_logits(model(**view))
                penalty = self.view_losses(view_logits[None], labels)[0]
                if training and torch.is_grad_enabled() and weight > 0:
                    self.accelerator.backward(weight * penalty.mean() / self.current_gradient_accumulation_steps)
            masked.append(view_logits.detach())
            penalties.append(penalty.detach())
        logits = classification_logits(model(**batch))
        return task_loss(logits, labels, smoothing), logits, torch.stack(masked), torch.stack(penalties)

    def _modality_keys(self, batch) -> dict:
        """Modality → input keys for this batch; every key of a user-given map must be present."""
        return resolve_modality_keys(batch, self.args.modality_keys, DEFAULT_MODALITY_KEYS)

    def _check_finite(self, logits, masked, names, mode) -> None:
        finite = torch.isfinite(torch.cat([logits[None], masked])).flatten(1).all(dim=1)  # (1 + M,)
        if not bool(finite.all()):
            views = ["clean", *(f"masked-{m}" for m in names)]
            bad = [view for view, ok in zip(views, finite.tolist()) if not ok]
            raise ValueError(
                f"Non-finite logits at step {self.state.global_step} ({mode}) in the {', '.join(bad)} view(s). Check "
                "the inputs for NaN/inf, lower the learning rate, or prefer bf16 to fp16."
            )

    # ---- metrics: one channel, flushed in `log` ----------------------------------------------------------------

    def _record(self, mode, names, task, masked, penalties, labels, weight) -> None:
        columns = {"task_loss": task.detach().float().expand(labels.shape[0])}
        for name, view, penalty in zip(names, masked.detach(), penalties.detach()):
            columns[f"penalty_{name}"] = penalty
            columns[f"masked_max_prob_{name}"] = max_probability(view)
            columns[f"masked_entropy_{name}"] = entropy(view)
            if mode == "eval":
                columns[f"masked_accuracy_{name}"] = (predicted_classes(view) == labels).float()
        table = torch.stack(list(columns.values()), dim=1)  # (B, K)
        if mode == "eval":  # gathered per batch so the last batch's padding is dropped
            table = self.accelerator.gather_for_metrics(table)
        for key, column in zip(columns, table.unbind(1)):
            self._metrics[mode][key].append(column)
        self._metrics[mode]["weight"].append(torch.full_like(table[:, 0], weight))

    def _flush(self, mode: str) -> dict:
        """Means of the buffered metrics (training buffers are reduced across processes here, not per step)."""
        buffered = self._metrics[mode]
        if not buffered:
            return {}
        keys = list(buffered)
        sums = torch.stack([torch.cat(buffered[k]).float().sum() for k in keys])
        counts = torch.tensor([float(sum(len(v) for v in buffered[k])) for k in keys], device=sums.device)
        if mode == "train":
            sums = self.accelerator.reduce(sums, reduction="sum")
            counts = self.accelerator.reduce(counts, reduction="sum")
        buffered.clear()
        return dict(zip(keys, (sums / counts).tolist()))

    def log(self, logs: dict, start_time: Optional[float] = None) -> None:
        # Why: training metrics join the Trainer's log line (evaluation's are in `evaluation_loop`'s output).
        if self.model.training:
            logs.update({f"synib/{k}": v for k, v in self._flush("train").items()})
        super().log(logs, start_time)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        # Why: masked-view metrics belong to this loop's output, for `evaluate` and `predict` alike.
        self._metrics["eval"].clear()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        output.metrics.update({f"{metric_key_prefix}_synib/{k}": v for k, v in self._flush("eval").items()})
        return output

    # ---- model card ------------------------------------------------------------------------------------------------

    def _save(self, output_dir: Optional[str] = None, state_dict=None):
        # Why: every checkpoint the trainer writes carries its model card.
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            self.create_model_card(output_dir=output_dir)

    def create_model_card(
        self,
        model_name: Optional[str] = None,
        dataset_name: Optional[str] = None,
        tags: Union[str, Sequence[str], None] = None,
        output_dir: Optional[str] = None,
        eval_metrics: Optional[dict] = None,
        **kwargs,
    ) -> None:
        """Write `README.md`: SynIB settings, the latest evaluation as a `model-index`, a quick start, versions.

        Args:
            model_name: defaults to the last part of `hub_model_id`, else of `output_dir` (never a local path).
            dataset_name: the data set the evaluation ran on, as shown in the card.
            tags: extra Hub tags.
            eval_metrics: the metrics to report (`eval_accuracy`, `eval_synergy_accuracy`,
                `eval_synib/masked_accuracy_<m>`); by default the latest evaluation in the log history.
        """
        # Why: the Trainer's default card knows nothing of SynIB; `push_to_hub` calls this to refresh the card.
        if not self.is_world_process_zero():
            return
        output_dir = output_dir or self.args.output_dir
        repo_id = self.args.hub_model_id
        model_name = model_name or Path(repo_id or os.path.abspath(self.args.output_dir)).name
        if eval_metrics is None:
            eval_metrics = next((h for h in reversed(self.state.log_history) if any(k.startswith("eval_") for k in h)), {})
        core = self._core_model()
        config = getattr(core, "config", None)
        names = ("_name_or_path", "vision_name_or_path", "text_name_or_path")
        base_models = [getattr(config, name, "") for name in names if getattr(config, name, "")]
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        card_inputs = dict(
            model_name=model_name,
            repo_id=repo_id,
            path="native" if self.is_native else "generic",
            base_models=[b for b in base_models if not os.path.isabs(b) and not os.path.exists(b)],
            dataset_name=dataset_name or "the evaluation set",
            tags=[*self._tag_names, *tags],
            hyperparameters=synib_changes(self.args),
            eval_metrics=eval_metrics,
        )
        card = build_model_card(**card_inputs)
        save_card_inputs(card_inputs, output_dir)
        card.save(os.path.join(output_dir, "README.md"))
