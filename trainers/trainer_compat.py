"""Every private member of `transformers.Trainer` (and accelerate) that the synib-hf trainers touch, in one place.

Each is a point that a transformers release can move. [`PRIVATE_MEMBERS`] records, for each, how we use it, the
signature it had and the versions it was checked against; `tests/test_trainer_compat.py` compares the installed
transformers with it and fails with a message naming the member when a signature moved. Everything else the trainers
use is public API (`compute_loss`, `log`, `evaluation_loop`, `save_model`, `create_model_card`, callbacks,
`loss_is_scaled_for_ga`).
"""

import contextlib
import logging
import os
from dataclasses import dataclass

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


CHECKED_AGAINST = "transformers 5.24.0, 5.25.0; accelerate 1.15.0, 1.16.0; datasets 5.2.0"


@dataclass(frozen=True)
class PrivateMember:
    """A private member we rely on: `owner.name` with `parameters` (None: an attribute, not a method)."""

    owner: str
    name: str
    parameters: tuple
    use: str


PRIVATE_MEMBERS = (
    PrivateMember("Trainer", "_save_checkpoint", ("self", "model", "trial"),
                  "overridden (as TRL's trainers do): SynIB's mask state is written into the checkpoint folder first"),
    PrivateMember("Trainer", "_get_output_dir", ("self", "trial"), "the run folder of the checkpoint being saved"),
    PrivateMember("Trainer", "_set_signature_columns_if_needed", ("self",),
                  "the columns `remove_unused_columns` keeps, extended with SynIB's"),
    PrivateMember("Trainer", "_signature_columns", None, "extended once after the Trainer computed it"),
    PrivateMember("Trainer", "_remove_unused_columns", ("self", "dataset", "description"),
                  "the first training batch, built as the dataloader would"),
    PrivateMember("Trainer", "_get_collator_with_removed_columns", ("self", "data_collator", "description"),
                  "the first training batch of a non-`datasets` data set"),
    PrivateMember("Trainer", "_prepare_inputs", ("self", "inputs"), "the first training batch on the device"),
    PrivateMember("Trainer", "_issue_warnings_after_load", ("self", "load_result"),
                  "its two messages are silenced where SynIB loaded the checkpoint's weights itself (converted)"),
    PrivateMember("Accelerator", "ddp_handler", None, "`find_unused_parameters` decided from a probe step"),
    PrivateMember("Dataset", "_indices", None,
                  "(datasets 5.2) whether a data set's rows are its Arrow table's, to find missing values unread"),
)

# `_issue_warnings_after_load`'s messages for a checkpoint whose keys do not match the model.
MISMATCHED_LOAD_MESSAGES = (
    "There were missing keys in the checkpoint model loaded",
    "There were unexpected keys in the checkpoint model loaded",
)


def checkpoint_folder(trainer, trial) -> str:
    """The folder `Trainer._save_checkpoint` is about to write: `<run dir>/checkpoint-<global step>`."""
    run_dir = trainer._get_output_dir(trial=trial)
    return os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{trainer.state.global_step}")


def keep_columns(trainer, names) -> None:
    """Make `remove_unused_columns` keep `names` beside the model's forward arguments."""
    trainer._set_signature_columns_if_needed()
    trainer._signature_columns = list(dict.fromkeys([*trainer._signature_columns, *names]))


def model_columns(trainer):
    """The data set columns that reach the collator: all of them, or with `remove_unused_columns` those the model's
    forward (and SynIB) takes."""
    if not trainer.args.remove_unused_columns:
        return None
    trainer._set_signature_columns_if_needed()
    return list(trainer._signature_columns)


def first_batch_inputs(trainer, rows_of, collation_error=None) -> dict:
    """The first training batch as the dataloader would build it (columns removed, collated, on the device), from
    `rows_of(dataset) → rows`, without a dataloader; `collation_error(rows, error)` gives the error to raise when the
    collator fails."""
    try:
        from datasets import Dataset
    except ImportError:  # the GPU check runs without `datasets`
        Dataset = ()

    dataset, collator = trainer.train_dataset, trainer.data_collator
    if isinstance(dataset, Dataset):
        dataset = trainer._remove_unused_columns(dataset, description="training")
    else:
        collator = trainer._get_collator_with_removed_columns(collator, description="training")
    rows = rows_of(dataset)
    try:
        batch = collator(rows)
    except (TypeError, ValueError, RuntimeError, AttributeError) as error:
        named = error if collation_error is None else collation_error(rows, error)
        if named is error:
            raise
        raise named from error
    return trainer._prepare_inputs(batch)


def reads_table_rows(dataset) -> bool:
    """Whether a `datasets.Dataset`'s rows are its Arrow table's rows in order (no selection or shuffle on top)."""
    return getattr(dataset, "_indices", None) is None


def ddp_handler(trainer):
    """Accelerate's DDP kwargs handler (None outside DDP): where `find_unused_parameters` is set before wrapping."""
    return trainer.accelerator.ddp_handler


class _HeldWarnings(logging.Filter):
    """Holds back the Trainer's mismatched-load warnings; `release()` logs them after all."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger
        self.records = []

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.getMessage()).startswith(MISMATCHED_LOAD_MESSAGES):
            self.records.append(record)
            return False
        return True

    def release(self) -> None:
        for record in self.records:
            self.logger.handle(record)
        self.records = []


@contextlib.contextmanager
def held_mismatched_load_warnings(active: bool = True):
    """Within the block, hold back the Trainer's warnings about a checkpoint whose keys do not match the model
    (`_issue_warnings_after_load`): where SynIB loads that checkpoint converted itself (transformers#43701) they are
    false alarms; otherwise the caller releases them."""
    logger = logging.getLogger("transformers.trainer")
    held = _HeldWarnings(logger)
    if active:
        logger.addFilter(held)
    try:
        yield held
    finally:
        logger.removeFilter(held)


# ---- TRL (SynIBSFTTrainer) -------------------------------------------------------------------------------------------

TRL_CHECKED_AGAINST = "trl 1.16.0"

# Private members of `trl.SFTTrainer` that `SynIBSFTTrainer` relies on; `tests/test_synib_sft.py` checks them.
TRL_PRIVATE_MEMBERS = (
    PrivateMember("SFTTrainer", "_save_checkpoint", ("self", "model", "trial"),
                  "SynIBMixin's override writes SynIB's state, then TRL's writes its card and the checkpoint"),
    PrivateMember("SFTTrainer", "_set_signature_columns_if_needed", ("self",),
                  "TRL's vision columns (messages, prompt, completion, images), which keep_columns extends"),
    PrivateMember("SFTTrainer", "_metrics", None,
                  "TRL's metric buffers (floats, averaged in TRL's log); SynIB's live apart, in _synib_metrics"),
    PrivateMember("SFTTrainer", "_total_train_tokens", None,
                  "TRL's running token count (num_tokens), kept while SynIB's views compute the clean loss"),
)


def count_sft_tokens(trainer, attention_mask) -> None:
    """Add a training batch's attended tokens (all processes) to TRL's `num_tokens`, as `SFTTrainer.compute_loss`
    does; SynIB's views compute the clean loss themselves, so TRL's count would otherwise stop."""
    tokens = trainer.accelerator.gather_for_metrics(attention_mask.sum()).sum().item()
    trainer._total_train_tokens += tokens
    trainer._metrics["train"]["num_tokens"] = [trainer._total_train_tokens]
