"""[`MultimodalTrainerMixin`]: what SynIB's trainers and the balancing baselines share on top of any
`transformers.Trainer` subclass — one metrics channel flushed in `log`, a model card beside every saved model, and a
`train` that resumes from the last *complete* checkpoint and checks the first batch before any step runs."""

import inspect
import os
import warnings
from collections import defaultdict
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from transformers import TrainingArguments
from transformers.utils import logging

from synib_hf.model_card import build_model_card, save_card_inputs
from synib_hf.models.adapter_checkpoints import save_base_reference
from synib_hf.native import implements_native_protocol

from .method_arguments import MethodArguments

from .trainer_compat import held_mismatched_load_warnings, keep_columns
from .training_state import (
    check_resumable,
    check_writable,
    last_complete_checkpoint,
    load_adapter_checkpoint,
    load_converted,
    named_write_failures,
    needs_converted_load,
)


logger = logging.get_logger(__name__)


class MultimodalTrainerMixin:
    """Shared base of [`SynIBMixin`] and the balancing trainers; mix it in before the `Trainer` class.

    The trainer takes its `Trainer` base's arguments in the base's order (`model, args, data_collator,
    train_dataset, ...`), plus `peft_config` where the base has none; `args` is converted to `args_class` when it is
    the plain arguments class that `args_class` extends. Subclasses record per-example metric columns with
    `self._record(mode, columns)` (training columns are reduced across processes when flushed, evaluation columns
    gathered per batch), and may implement `_before_training()` (checks on the first batch) and
    `_restore_training_state(checkpoint)` (their own state saved with checkpoints).
    """

    args_class = None  # the method's arguments class (a MethodArguments + TrainingArguments dataclass)
    _tag_names = ["multimodal"]

    def __init__(self, *args, **kwargs):
        # Why: the Trainer's own positional order, plain TrainingArguments converted, and `peft_config` for any base.
        base_init = super().__init__
        parameters = inspect.signature(base_init).parameters
        peft_config = kwargs.pop("peft_config", None) if "peft_config" not in parameters else None
        bound = inspect.signature(base_init).bind_partial(*args, **kwargs)
        bound.arguments["args"] = self._method_arguments(bound.arguments.get("args"))
        if peft_config is not None:
            bound.arguments["model"] = wrap_with_peft(bound.arguments.get("model"), peft_config)
        base_init(*bound.args, **bound.kwargs)
        self._synib_metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

        core = self.core_model()
        if implements_native_protocol(core):  # a native model's forward may take **inputs: keep what it encodes
            keep_columns(self, [key for keys in core.synib_input_keys.values() for key in keys])

    def _method_arguments(self, args):
        """`args` as the trainer's arguments class: kept if it carries the method's fields, converted from the plain
        arguments class that `args_class` extends (with a one-line notice of the method's defaults), else an error."""
        config_class = self.args_class
        if args is None:
            return config_class(output_dir="trainer_output")
        method = next(b for b in config_class.__mro__ if issubclass(b, MethodArguments)
                      and not issubclass(b, TrainingArguments))  # e.g. SynIBArguments
        base = next(b for b in config_class.__mro__ if issubclass(b, TrainingArguments)
                    and not issubclass(b, MethodArguments))  # e.g. TrainingArguments, trl.SFTConfig
        if isinstance(args, method) and isinstance(args, base):  # the method's fields mixed into a fitting class
            return args
        if type(args) not in (base, TrainingArguments):
            raise TypeError(
                f"{type(self).__name__} needs `args` to carry its method's fields ({config_class.__name__}), got "
                f"{type(args).__name__}, whose own fields a conversion would drop. Mix the method's fields into your "
                f"arguments class, e.g. `@dataclass class MyArguments(synib_hf.{method.__name__}, "
                f"{type(args).__name__})`, or pass a {config_class.__name__}."
            )
        values = args.to_dict()
        values.update({f.name: getattr(args, f.name) for f in fields(args) if f.name.endswith("_token")})
        converted = config_class(**{f.name: values[f.name] for f in fields(args) if f.init and f.name in values})
        defaults = ", ".join(f"{f.name}={getattr(converted, f.name)!r}" for f in config_class.method_fields()[:3])
        logger.info(f"{type(self).__name__}: {type(args).__name__} converted to {config_class.__name__} with the "
                    f"method's defaults ({defaults}, ...; pass a {config_class.__name__} to change them).")
        return converted

    def core_model(self):
        """The model under DDP/PEFT wrappers: what the native protocol and model cards read."""
        model = self.accelerator.unwrap_model(self.model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    # ---- training ----------------------------------------------------------------------------------------------------

    def _before_training(self) -> None:
        """Checks on the first training batch before any step runs (nothing by default)."""

    def _restore_training_state(self, checkpoint: str) -> None:
        """Restore the method's own state saved with `checkpoint` (nothing by default)."""

    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        # Why: resume from the last *complete* checkpoint (a named one is checked first), check the first batch before
        # any step runs, load checkpoints whose weight names the Trainer's state-dict load does not map back
        # (transformers#43701), and name the folder when a checkpoint cannot be written.
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir)
        elif resume_from_checkpoint is False:
            resume_from_checkpoint = None
        core = self.core_model()
        if isinstance(resume_from_checkpoint, (str, os.PathLike)) and os.path.isdir(resume_from_checkpoint):
            check_resumable(resume_from_checkpoint, core)
        check_writable(self.args)
        if not any(parameter.requires_grad for parameter in self.model.parameters()):
            raise ValueError(
                f"No parameter of {type(core).__name__} is trainable (requires_grad is False everywhere): unfreeze "
                "the parts to train, or pass peft_config to add adapters."
            )
        if self.train_dataset is not None:
            self._before_training()
        converted = resume_from_checkpoint is not None and needs_converted_load(core, resume_from_checkpoint)
        if converted:  # the Trainer's own load then leaves these weights as they are
            load_converted(core, resume_from_checkpoint)
        elif resume_from_checkpoint is not None:  # an adapter folder with its base's weights: the Trainer skips them
            converted = load_adapter_checkpoint(self.accelerator.unwrap_model(self.model), resume_from_checkpoint)
        if resume_from_checkpoint is not None:
            self._restore_training_state(resume_from_checkpoint)
        with held_mismatched_load_warnings(converted or self.args.load_best_model_at_end) as held, \
                named_write_failures(self.args.output_dir, lambda: self.state.global_step):
            output = super().train(resume_from_checkpoint, trial, ignore_keys_for_eval, **kwargs)
        best = self.state.best_model_checkpoint
        if self.args.load_best_model_at_end and best and os.path.isdir(best) and needs_converted_load(core, best):
            load_converted(core, best)
            converted = True
        if not converted:  # the Trainer's warnings were about a real mismatch: let them through
            held.release()
        return output

    # ---- metrics: one channel, flushed in `log` ----------------------------------------------------------------------

    def _record(self, mode: str, columns: dict) -> None:
        """Buffer per-example metric columns `(B,)` (NaN: the row does not count); evaluation columns are gathered
        per batch, so the last batch's padding is dropped."""
        table = torch.stack([column.float() for column in columns.values()], dim=1)  # (B, K)
        if mode == "eval":
            table = self.accelerator.gather_for_metrics(table)
        for key, column in zip(columns, table.unbind(1)):
            self._synib_metrics[mode][key].append(column)

    def _flush(self, mode: str) -> dict:
        """Means of the buffered metrics over the rows that count (training buffers are reduced across processes
        here, not per step)."""
        buffered = self._synib_metrics[mode]
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
        # Why: the training metrics join the Trainer's log line (evaluation's are in `evaluation_loop`'s output).
        if self.model.training:
            logs.update({f"synib/{k}": v for k, v in self._flush("train").items()})
        super().log(logs, start_time)

    # ---- model cards ---------------------------------------------------------------------------------------------------

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False) -> None:
        # Why: every saved model (checkpoints included) carries its model card, and adapters their base model's reference.
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            # adapters alone record no base model (base_model_name_or_path: null): write what reloads them
            save_base_reference(self.accelerator.unwrap_model(self.model), output_dir or self.args.output_dir)
            self.create_model_card(output_dir=output_dir or self.args.output_dir)

    def create_model_card(
        self,
        model_name: Optional[str] = None,
        dataset_name: Optional[str] = None,
        tags: Union[str, Sequence[str], None] = None,
        output_dir: Optional[str] = None,
        eval_metrics: Optional[dict] = None,
        **kwargs,
    ) -> None:
        """Write `README.md`: the method's settings, the latest evaluation as a `model-index`, a quick start, versions.

        Args:
            model_name: defaults to the last part of `hub_model_id`, else of `output_dir` (never a local path).
            dataset_name: the data set the evaluation ran on, as shown in the card.
            tags: extra Hub tags.
            output_dir: where to write it; default `args.output_dir`.
            eval_metrics: the metrics to report (`eval_accuracy`, `eval_synergy_accuracy`,
                `eval_synib/masked_accuracy_<m>`); by default the latest evaluation in the log history.
        """
        # Why: the Trainer's default card knows nothing of the method; `push_to_hub` calls this to refresh the card.
        if not self.is_world_process_zero():
            return
        output_dir = output_dir or self.args.output_dir
        repo_id = self.args.hub_model_id
        model_name = model_name or Path(repo_id or os.path.abspath(self.args.output_dir)).name
        if eval_metrics is None:
            evaluations = (h for h in reversed(self.state.log_history) if any(k.startswith("eval_") for k in h))
            eval_metrics = next(evaluations, {})
        config = getattr(self.core_model(), "config", None)
        names = ("_name_or_path", "vision_name_or_path", "text_name_or_path", "vlm_name_or_path")
        base_models = [getattr(config, name, "") for name in names if getattr(config, name, "")]
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        builder = getattr(self, "view_builder", None)
        card_inputs = dict(
            model_name=model_name,
            repo_id=repo_id,
            path=getattr(builder, "name", "native"),
            auto_class=getattr(builder, "auto_class", "AutoModelForSequenceClassification"),
            base_models=[b for b in base_models if not os.path.isabs(b) and not os.path.exists(b)],
            dataset_name=dataset_name or "the evaluation set",
            tags=[*self._tag_names, *tags],
            hyperparameters=self.args.method_changes(),
            eval_metrics=eval_metrics,
        )
        card = build_model_card(**card_inputs)
        os.makedirs(output_dir, exist_ok=True)
        save_card_inputs(card_inputs, output_dir)
        card.save(os.path.join(output_dir, "README.md"))


def wrap_with_peft(model, peft_config):
    """Wrap `model` with adapters for `peft_config`, with the errors TRL gives for the usual mistakes."""
    from peft import PeftConfig, PeftModel, get_peft_model

    if not isinstance(peft_config, PeftConfig):
        raise TypeError(f"peft_config must be a peft.PeftConfig (e.g. LoraConfig), got {type(peft_config).__name__}.")
    if isinstance(model, PeftModel):
        raise ValueError(
            "The model is already a PeftModel and a peft_config was passed too: pass the base model with "
            "peft_config, or the PeftModel without it."
        )
    if model is None or isinstance(model, str):
        raise ValueError("peft_config needs a model object; load it first (e.g. AutoModelForSequenceClassification).")
    with warnings.catch_warnings():  # peft 0.21 reads a transformers attribute that 5.x deprecates: not the user's
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        return get_peft_model(model, peft_config)
