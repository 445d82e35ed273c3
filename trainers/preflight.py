"""Before the first step: the first training batch built as the dataloader would (nothing of the run's randomness
drawn), rows that attend to nothing refused, and, under DDP, the parameters one probe step leaves without gradient (so
`find_unused_parameters` is set and a run neither fails nor warns), with every state the probe touches put back."""

import contextlib
import itertools
import math
import random
from typing import Optional

import numpy as np
import torch

from .trainer_compat import first_batch_inputs, model_columns, reads_table_rows


def first_training_batch(trainer) -> dict:
    """The first training batch as the dataloader would build it (columns, collator, device), without a dataloader:
    nothing of the training run's randomness is drawn. Rows the collator cannot batch are named: in the first batch,
    and anywhere in a `datasets.Dataset` for values that are missing (None).

    Raises:
        ValueError: the training set is empty, or the collator fails on its rows (naming the column and rows).
    """
    size = trainer.args.per_device_train_batch_size
    seen = []

    def rows_of(dataset):
        with preserved_rng():  # a data set's __getitem__ or a collator may draw (random crops, MLM masking)
            if isinstance(dataset, torch.utils.data.IterableDataset):
                rows = list(itertools.islice(iter(dataset), size))
            else:
                rows = [dataset[i] for i in range(min(size, len(dataset)))]
        if not rows:
            raise ValueError(
                "The training set has no samples (train_dataset is empty): check the data files and any filtering "
                "before the Trainer."
            )
        seen.extend(rows)
        return rows

    with preserved_rng():
        batch = first_batch_inputs(trainer, rows_of, collation_error)
        check_missing_values(trainer, model_columns(trainer))
    label = next((key for key in ("labels", "label") if isinstance(seen[0], dict) and key in seen[0]), None)
    if label is not None and "labels" not in batch and isinstance(seen[0][label], str):
        raise ValueError(
            f"The training set's column {label!r} holds strings ({seen[0][label]!r}, ...), which the data collator "
            "drops: map them to class ids first, e.g. with model.config.label2id."
        )
    return batch


def collation_error(rows, error: Exception) -> Exception:
    """The error to raise when the collator fails on `rows`: one that names the column and rows, where one is found."""
    problem = rows_problem(rows)
    if problem is None:
        return error
    return ValueError(f"The data collator failed on a training batch ({type(error).__name__}: {error}): {problem}")


@contextlib.contextmanager
def preserved_rng():
    """Python's, NumPy's and torch's (CPU and current GPU) random states, as they were before the block."""
    python, numpy_state = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)


def unused_in_probe(trainer, losses) -> set:
    """The trainable parameters that one backward of each loss (a callable of the model, in training mode) leaves
    without gradient. Random states (Python, NumPy, torch), module buffers (e.g. BatchNorm running statistics),
    gradients, the training mode and the logged training metrics are as they were afterwards."""
    model = trainer.model
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    unused = set()
    was_training = model.training
    model.train()
    try:
        with preserved_rng(), trainer.compute_loss_context_manager():
            for loss in losses:
                loss(model).backward()
                unused |= {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
                model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
        trainer._synib_metrics["train"].clear()
    return unused


def check_attended(inputs: dict) -> None:
    """A clear error for a row whose attention mask attends to nothing (all padding): it would train on garbage."""
    for key, mask in inputs.items():
        if key.endswith("attention_mask") and torch.is_tensor(mask) and mask.dim() == 2:
            empty = ~mask.bool().any(dim=1)
            if bool(empty.any()):
                rows = empty.nonzero().flatten().tolist()[:5]
                raise ValueError(
                    f"rows {rows} of {key!r} attend to no position (all padding): drop empty texts/inputs from the "
                    "data set, or give each at least one token (e.g. the tokenizer's special tokens)."
                )



def config_value(model, name: str, sub_config: str) -> Optional[int]:
    """An integer the model says in its config (or that config's `sub_config`, or a submodule's config), e.g. the
    image channels (`num_channels`, `vision_config`) or the vocabulary (`vocab_size`, `text_config`)."""
    for module in model.modules() if hasattr(model, "modules") else [model]:
        config = getattr(module, "config", None)
        for candidate in (config, getattr(config, sub_config, None)):
            value = getattr(candidate, name, None)
            if isinstance(value, int):
                return value
    return None


def check_plain_batch(batch: dict, model, check_labels: bool = True) -> None:
    """What would fail in the first step anyway, with an error that names the input and the fix: class ids outside a
    transformers head's `num_labels` (`check_labels`), images with another number of channels than the model's
    config, unprocessed (integer) images. Reads the batch and the config only (no forward)."""
    from transformers import PreTrainedModel

    config = getattr(model, "config", None)
    labels = batch.get("labels")
    num_labels = getattr(config, "num_labels", None)
    single_label = getattr(config, "problem_type", None) in (None, "single_label_classification")
    classifier = isinstance(model, PreTrainedModel) and (
        type(model).__name__.endswith("ForSequenceClassification") or hasattr(model, "synib_modalities"))
    if (check_labels and classifier and torch.is_tensor(labels) and labels.dim() == 1 and labels.is_floating_point()
            and getattr(config, "problem_type", None) == "single_label_classification"):
        raise ValueError(
            f"labels are floats ({labels.dtype}), but {type(model).__name__} is a single-label classifier "
            "(problem_type='single_label_classification'), trained with cross-entropy on integer class ids: cast the "
            "label column to integers (e.g. dataset.cast_column('labels', Value('int64')))."
        )
    if (check_labels and classifier and torch.is_tensor(labels) and labels.dim() == 1
            and not labels.is_floating_point() and single_label and isinstance(num_labels, int) and num_labels >= 2):
        from synib_hf.tasks import Task

        Task("single_label_classification", num_labels).check_labels(
            labels, where=f"labels (the model config's num_labels is {num_labels})")
    channels = config_value(model, "num_channels", "vision_config")
    for key, value in batch.items():
        if not torch.is_tensor(value) or value.dim() not in (4, 5) or not key.endswith("pixel_values"):
            continue
        if not value.is_floating_point():
            raise ValueError(
                f"{key!r} holds {value.dtype} values, not floats: the images were not run through the image "
                "processor (rescaled and normalised). Pass them through the model's processor in the collator."
            )
        if channels is not None and value.shape[-3] != channels:
            raise ValueError(
                f"{key!r} has {value.shape[-3]} channels (shape {tuple(value.shape)}), but the model's config expects "
                f"num_channels={channels}: convert the images (e.g. PIL `image.convert('RGB')` for 3 channels) "
                "before the processor, or build the model with the images' number of channels."
            )


@contextlib.contextmanager
def named_input_errors(batch: dict, model):
    """Within the first batch's checking forward, a failure of the model on the inputs becomes an error listing each
    input's shape and dtype beside the model's parameter dtype (a raw shape or dtype error names none of them)."""
    try:
        yield
    except (RuntimeError, IndexError) as error:
        parameter = next(iter(model.parameters()), None)
        shapes = ", ".join(f"{key} {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
                           for key, value in batch.items() if torch.is_tensor(value))
        hint = ""
        floats = {value.dtype for value in batch.values() if torch.is_tensor(value) and value.is_floating_point()}
        if parameter is not None and floats and parameter.dtype not in floats:
            hint = (f" The model's weights are {str(parameter.dtype).removeprefix('torch.')} and the float inputs "
                    f"{', '.join(sorted(str(d).removeprefix('torch.') for d in floats))}: load the model in float32 "
                    "and train with bf16=True (autocast), or cast the inputs in the collator.")
        vocab_size = config_value(model, "vocab_size", "text_config")
        ids = [key for key, value in batch.items() if key.endswith("input_ids") and torch.is_tensor(value)]
        if vocab_size is not None and any(int(batch[key].max()) >= vocab_size for key in ids):
            hint += (f" Some token ids are beyond the model's vocabulary ({vocab_size} tokens): tokenize with the "
                     "model's own tokenizer, or resize its embeddings (model.resize_token_embeddings).")
        raise ValueError(
            f"{type(model).__name__} failed on the first training batch ({shapes}): {error}.{hint} Check each input's "
            "shape against the model's config."
        ) from error



def check_batches(args, train_dataset) -> None:
    """A clear error when `dataloader_drop_last` drops the whole training set (smaller than one batch): the run would
    train no step, silently."""
    if not args.dataloader_drop_last or not hasattr(train_dataset, "__len__"):
        return
    per_step = args.per_device_train_batch_size * max(args.world_size, 1)
    if len(train_dataset) < per_step:
        raise ValueError(
            f"The training set has {len(train_dataset)} rows, fewer than one batch ({per_step}), and "
            "dataloader_drop_last=True drops that incomplete batch: nothing would train. Lower "
            "per_device_train_batch_size, or set dataloader_drop_last=False."
        )


def check_penalty_window(args, train_dataset) -> None:
    """A clear error when `synib_start_step` is at or after the last optimizer step: the penalty would never apply."""
    total = args.max_steps if args.max_steps and args.max_steps > 0 else None
    if total is None and hasattr(train_dataset, "__len__"):
        per_step = args.per_device_train_batch_size * max(args.world_size, 1)
        batches = len(train_dataset) // per_step if args.dataloader_drop_last else math.ceil(len(train_dataset)
                                                                                           / per_step)
        updates = max(batches // args.gradient_accumulation_steps
                      + int(batches % args.gradient_accumulation_steps > 0), 1)
        total = math.ceil(args.num_train_epochs * updates)
    if total is not None and args.synib_start_step >= total:
        raise ValueError(
            f"synib_start_step={args.synib_start_step} is at or after the run's last optimizer step ({total}): the "
            "penalty would never apply and the run would be plain training. Lower synib_start_step, or set "
            "synib_weight=0 for plain training."
        )


def check_missing_values(trainer, columns=None) -> None:
    """A clear error for a `datasets.Dataset` column (of `columns`, default all) that is missing (None) in some rows
    which the data collator cannot batch: found from the Arrow table's null counts (no row is decoded), then one such
    row collated beside a complete one. Without this, the first batch holding one fails mid-run, naming neither the
    column nor the rows."""
    dataset = trainer.train_dataset
    table = getattr(dataset, "data", None)
    if table is None or not hasattr(table, "column") or not hasattr(dataset, "column_names") or not len(dataset):
        return
    for name in dataset.column_names:
        if (columns is not None and name not in columns) or not table.column(name).null_count:
            continue
        if reads_table_rows(dataset):  # rows are the table's: read the nulls without decoding
            import pyarrow.compute

            missing = [i for i, null in enumerate(pyarrow.compute.is_null(table.column(name)).to_pylist()) if null]
        else:
            missing = [i for i, value in enumerate(dataset[name]) if value is None]
        if not missing:
            continue  # the nulls lie outside this view of the table (a selection or a shuffle)
        complete = next((i for i in range(len(dataset)) if i not in set(missing)), missing[0])
        try:
            first_batch_inputs(trainer, lambda data: [data[complete], data[missing[0]]])
        except (TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise ValueError(
                f"The training set's column {name!r} is missing (None) in {len(missing)} rows (e.g. {missing[:10]}), "
                f"and the data collator fails on them ({type(error).__name__}: {error}): drop or fill them first, "
                f"e.g. dataset.filter(lambda row: row[{name!r}] is not None)."
            ) from error


def rows_problem(rows) -> Optional[str]:
    """What in a batch's rows (dicts) a collator cannot stack: a column that is None in some rows, holds values of
    several types, or arrays of several shapes; None if nothing is found."""
    if not rows or not all(isinstance(row, dict) for row in rows):
        return None
    for key in rows[0]:
        values = [row.get(key) for row in rows]
        missing = [i for i, value in enumerate(values) if value is None]
        if missing:
            return (f"column {key!r} is None in rows {missing[:10]} of this batch (of {len(rows)}): drop or fill "
                    f"those examples, e.g. dataset.filter(lambda row: row[{key!r}] is not None).")
        kinds = {type(value).__name__ for value in values}
        if len(kinds) > 1:
            return f"column {key!r} holds values of several types in one batch ({sorted(kinds)}): make them one type."
        if isinstance(values[0], str) and key in ("labels", "label"):
            return (f"column {key!r} holds strings ({values[0]!r}, ...): map them to class ids first, e.g. with "
                    "model.config.label2id.")
        if isinstance(values[0], str):
            return (f"column {key!r} holds text ({values[0][:30]!r}, ...), which the collator cannot make a tensor "
                    "of: tokenize it first (dataset.map with the tokenizer) or use a collator that runs the processor.")
        if not isinstance(values[0], (int, float, bool, list, tuple, np.ndarray, np.generic, torch.Tensor)):
            return (f"column {key!r} holds {type(values[0]).__name__} objects, which the collator cannot make a "
                    "tensor of: run the processor on them first (e.g. synib_hf.ImageTextCollator for images and text).")
        shapes = {}
        for i, value in enumerate(values):
            shape = tuple(np.shape(value)) if not isinstance(value, str) else ()
            shapes.setdefault(shape, []).append(i)
        if len(shapes) > 1:
            listed = "; ".join(f"{shape} in rows {where[:5]}" for shape, where in list(shapes.items())[:3])
            return (f"column {key!r} holds values of several shapes in one batch ({listed}): resize or pad them to "
                    "one shape (e.g. the image processor's size), or use a collator that pads.")
    return None
