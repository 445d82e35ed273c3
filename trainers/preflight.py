"""Before the first step: the first training batch built as the dataloader would, checked (inputs, masking rules,
scores, labels, task) with one no-grad forward of two rows, and, under DDP, `find_unused_parameters` decided from
one probe step, so a misconfigured run fails in seconds and a correct one neither fails nor warns."""

import contextlib
import copy
import itertools
import random

import numpy as np
import torch
from transformers import Trainer


def first_training_batch(trainer) -> dict:
    """The first training batch as the dataloader would build it (columns, collator), without a dataloader:
    nothing of the training run's randomness is drawn."""
    try:
        from datasets import Dataset
    except ImportError:  # the GPU check runs without `datasets`
        Dataset = ()

    dataset, collator = trainer.train_dataset, trainer.data_collator
    if isinstance(dataset, Dataset):
        dataset = trainer._remove_unused_columns(dataset, description="training")
    else:
        collator = trainer._get_collator_with_removed_columns(collator, description="training")
    size = trainer.args.per_device_train_batch_size
    with preserved_rng():  # a data set's __getitem__ or a collator may draw (random crops, MLM masking)
        if isinstance(dataset, torch.utils.data.IterableDataset):
            rows = list(itertools.islice(iter(dataset), size))
        else:
            rows = [dataset[i] for i in range(min(size, len(dataset)))]
        return trainer._prepare_inputs(collator(rows))


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


def check_first_batch(trainer, batch: dict) -> None:
    """Inputs, masking rules, scores and labels of one batch, with one no-grad forward of two rows."""
    labels = batch.get("labels")
    if labels is None:
        raise ValueError(
            f"SynIBTrainer needs `labels` in every batch, but the first training batch has only {sorted(batch)}. "
            "Name the label column 'labels' (or 'label') and check that the data collator keeps it."
        )
    check_attended(batch)
    model = trainer.model
    was_training = model.training
    model.eval()
    try:
        with trainer.compute_loss_context_manager(), preserved_rng():
            trainer._path.validate(model, {k: v for k, v in batch.items() if k != "labels"}, labels)
    finally:
        model.train(was_training)
    trainer._first_batch_checked = True


def set_find_unused_parameters(trainer, batch: dict) -> None:
    """DDP's `find_unused_parameters` from one probe step on the first batch: True only if some trainable
    parameter gets no gradient (e.g. a logvar head the penalty does not read), so DDP neither fails nor warns.
    The probe's randomness, masking state and metrics are put back as they were."""
    handler = trainer.accelerator.ddp_handler
    if handler is None:
        return
    state = copy.deepcopy(trainer.synib_state_dict())
    own = getattr(trainer._path, "extra_columns", ())  # SynIB's own columns are not model inputs
    plain_batch = {k: v for k, v in batch.items() if k not in own}
    plain_steps = not (trainer.args.synib_start_step == 0 and trainer.args.synib_end_step is None)
    losses = [lambda model: trainer.synib_loss(model, batch, "train", trainer.args.synib_weight)[0]]
    if plain_steps:  # a warm-up or end window: steps without the views train other parameters
        losses.append(lambda model: Trainer.compute_loss(trainer, model, plain_batch))
    unused = unused_in_probe(trainer, losses)
    trainer.load_synib_state_dict(state)
    handler.find_unused_parameters = bool(unused)


def unused_in_probe(trainer, losses) -> set:
    """The trainable parameters that one backward of each loss (a callable of the model, in training mode) leaves
    without gradient. Random states (Python, NumPy, torch), module buffers (e.g. BatchNorm running statistics),
    gradients, the training mode and the logged training metrics are as they were afterwards."""
    model = trainer.model
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    trainer.current_gradient_accumulation_steps = getattr(trainer, "current_gradient_accumulation_steps", 1)
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
        trainer._metrics["train"].clear()
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

