"""Before the first step: the first training batch built as the dataloader would (nothing of the run's randomness
drawn), rows that attend to nothing refused, and, under DDP, the parameters one probe step leaves without gradient (so
`find_unused_parameters` is set and a run neither fails nor warns), with every state the probe touches put back."""

import contextlib
import itertools
import random

import numpy as np
import torch

from .trainer_compat import first_batch_inputs


def first_training_batch(trainer) -> dict:
    """The first training batch as the dataloader would build it (columns, collator, device), without a dataloader:
    nothing of the training run's randomness is drawn.

    Raises:
        ValueError: the training set is empty.
    """
    size = trainer.args.per_device_train_batch_size

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
        return rows

    with preserved_rng():
        return first_batch_inputs(trainer, rows_of)


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

