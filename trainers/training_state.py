"""What a checkpoint needs to resume exactly: SynIB's own state (mask generators, fill statistics) saved beside the
Trainer's, the last *complete* checkpoint picked for `resume_from_checkpoint=True` (a folder left half-written by a
kill during a save is skipped, with a warning that says why), and checkpoints whose weight names the Trainer's
state-dict load does not map back (transformers#43701), loaded through `from_pretrained`."""

import contextlib
import errno
import json
import os
import re
import shutil
import warnings
import zipfile
from typing import Optional

import torch

from synib_hf.checkpoints import checkpoint_problems


CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")


def synib_state_file(checkpoint: str, process_index: int, world_size: int) -> str:
    """`synib_state.pt`, or `synib_state_<rank>.pt` when several processes each keep their own generators."""
    name = "synib_state.pt" if world_size <= 1 else f"synib_state_{process_index}.pt"
    return os.path.join(checkpoint, name)


def save_synib_state(state: dict, checkpoint: str, process_index: int, world_size: int) -> None:
    os.makedirs(checkpoint, exist_ok=True)
    torch.save(state, synib_state_file(checkpoint, process_index, world_size))


def load_synib_state(checkpoint: str, process_index: int, world_size: int) -> Optional[dict]:
    """The saved SynIB state of this process, or None (with a warning) if the checkpoint has none."""
    path = synib_state_file(checkpoint, process_index, world_size)
    saved = sorted(name for name in os.listdir(checkpoint) if re.fullmatch(r"synib_state(_\d+)?\.pt", name))
    if not os.path.isfile(path) and saved:
        warnings.warn(
            f"{checkpoint} holds SynIB's state of {len(saved)} process(es) ({', '.join(saved)}) and this run has "
            f"{world_size}: the masks' generators and fill statistics restart from the seed, so the resumed run "
            "differs from an uninterrupted one. Resume with the number of processes that saved it to continue them.",
            stacklevel=2,
        )
        return None
    if not os.path.isfile(path):
        warnings.warn(
            f"{checkpoint} holds no SynIB state ({os.path.basename(path)}): masks and fill statistics restart from "
            "the seed, so the resumed run will differ from an uninterrupted one (checkpoints written by synib-hf "
            "0.1 or a plain Trainer have none).",
            stacklevel=2,
        )
        return None
    return torch.load(path, weights_only=True)


def checkpoint_problem(folder: str) -> Optional[str]:
    """Why a checkpoint folder cannot be resumed from, or None if it looks complete: its trainer state, its weights
    and configs (`synib_hf.checkpoints.checkpoint_problems`, without reading every value) and its training state
    files (optimizer, scheduler, RNG: torch zips, which a cut write leaves without their end record)."""
    state = os.path.join(folder, "trainer_state.json")
    if not os.path.isfile(state):
        return "no trainer_state.json"
    try:
        with open(state) as f:
            json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "trainer_state.json does not parse"
    if not any(name in WEIGHT_FILES or name.endswith(".safetensors.index.json") for name in os.listdir(folder)):
        return "no model weights"
    problems = checkpoint_problems(folder, check_values=False, load_configs=False)
    if problems:
        return problems[0]
    for name in os.listdir(folder):
        if name.endswith((".pt", ".pth")) and not zipfile.is_zipfile(os.path.join(folder, name)):
            return f"{name}: truncated or not a torch file"
    return None


def last_complete_checkpoint(output_dir: str) -> str:
    """The newest `checkpoint-<step>` folder of `output_dir` that is complete; newer incomplete ones are skipped
    with a warning naming the folder and the reason.

    Raises:
        ValueError: no checkpoint folder, or none complete (with each folder's reason).
    """
    folders = []
    if os.path.isdir(output_dir):
        folders = [n for n in os.listdir(output_dir) if CHECKPOINT_PATTERN.match(n)
                   and os.path.isdir(os.path.join(output_dir, n))]
    if not folders:
        raise ValueError(f"No valid checkpoint found in output directory ({output_dir})")
    skipped = []
    for name in sorted(folders, key=lambda n: int(CHECKPOINT_PATTERN.match(n).group(1)), reverse=True):
        folder = os.path.join(output_dir, name)
        problem = checkpoint_problem(folder)
        if problem is None:
            for skipped_folder, reason in skipped:
                warnings.warn(f"Skipping the incomplete checkpoint {skipped_folder} ({reason}); resuming from "
                              f"{folder}.", stacklevel=2)
            return folder
        skipped.append((folder, problem))
    reasons = "; ".join(f"{os.path.basename(f)}: {r}" for f, r in skipped)
    raise ValueError(
        f"No valid checkpoint found in output directory ({output_dir}): every checkpoint is incomplete ({reasons}). A "
        "kill during a save leaves such folders: delete them, or start without resume_from_checkpoint."
    )


def needs_converted_load(model, checkpoint: str) -> bool:
    """Whether the checkpoint's weights are saved under names the model's state dict does not have (some VLMs save
    legacy names), so that the Trainer's state-dict load would leave them unloaded; adapters and sharded or
    non-safetensors checkpoints are left to the Trainer."""
    path = os.path.join(checkpoint, "model.safetensors")
    adapters = os.path.isfile(os.path.join(checkpoint, "adapter_config.json"))  # its model.safetensors is the base's
    if adapters or not os.path.isfile(path) or not hasattr(type(model), "from_pretrained"):
        return False
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        saved = set(f.keys())
    own = set(model.state_dict())
    ignorable = set(getattr(model, "_keys_to_ignore_on_save", None) or ()) | tied_keys(model)
    return bool(saved - own) or bool(own - saved - ignorable)


def load_adapter_checkpoint(model, checkpoint: str) -> bool:
    """Load the adapters of a checkpoint that also holds its base's weights (`save_base_reference` writes them as
    `model.safetensors` so the folder reloads by itself). The Trainer's resume reads that file first and then skips
    the adapters (its state-dict load matches none of a `PeftModel`'s keys, so it changes nothing): without this the
    resumed run would train on from freshly initialised adapters. Returns whether it loaded them."""
    if not (os.path.isfile(os.path.join(checkpoint, "adapter_config.json"))
            and os.path.isfile(os.path.join(checkpoint, "model.safetensors"))
            and hasattr(model, "load_adapter") and hasattr(model, "active_adapters")):
        return False
    active = model.active_adapters[0]
    result = model.load_adapter(checkpoint, active, is_trainable=True)
    missing = [key for key in getattr(result, "missing_keys", ()) if ".lora_" in key or ".modules_to_save." in key]
    if missing or getattr(result, "unexpected_keys", None):
        raise ValueError(
            f"resume_from_checkpoint={checkpoint!r} holds adapters that do not fit this model (missing "
            f"{missing[:5]}, unexpected {list(result.unexpected_keys)[:5]}): resume from a checkpoint of the same "
            "model and adapter configuration."
        )
    return True


def load_converted(model, checkpoint: str) -> None:
    """Load a checkpoint's weights into `model` through `from_pretrained`, which converts the key names a model saves
    under (legacy names for the VLMs of transformers 5.24) back to its own.

    Raises:
        ValueError: the converted weights still do not match the model (naming the keys).
    """
    loaded = type(model).from_pretrained(checkpoint)
    result = model.load_state_dict(loaded.state_dict(), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{checkpoint} does not hold the weights of this {type(model).__name__}: missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}; resume from a checkpoint of the "
            "same model."
        )


def tied_keys(model) -> set:
    """Names of parameters that share their storage with another (tied weights: a checkpoint stores one of them)."""
    seen, tied = {}, set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        pointer = parameter.data_ptr()
        if pointer in seen:
            tied |= {name, seen[pointer]}
        seen.setdefault(pointer, name)
    return tied


def check_resumable(checkpoint: str, model) -> None:
    """A clear error before resuming from a named checkpoint that is incomplete (truncated weights, optimizer or RNG
    state; no trainer state) or that holds another model class's weights (the Trainer would load nothing of them and
    train on from the current weights, with a warning only).

    Raises:
        ValueError: naming the file and the fix.
    """
    problem = checkpoint_problem(checkpoint)
    if problem is not None:
        raise ValueError(
            f"resume_from_checkpoint={checkpoint!r} cannot be resumed from: {problem}. A kill or a full disk during a "
            "save leaves such folders: resume from an earlier checkpoint, or use resume_from_checkpoint=True to take "
            "the last complete one."
        )
    weights = os.path.join(checkpoint, "model.safetensors")
    if os.path.isfile(weights) and not os.path.isfile(os.path.join(checkpoint, "adapter_config.json")):
        from safetensors import safe_open

        with safe_open(weights, framework="pt") as f:
            saved = set(f.keys())
        own = set(model.state_dict())
        if saved and own and not saved & own and not hasattr(type(model), "from_pretrained"):
            raise ValueError(
                f"resume_from_checkpoint={checkpoint!r} holds none of {type(model).__name__}'s weights (it has e.g. "
                f"{sorted(saved)[:3]}): resume from a checkpoint of the same model."
            )
    config_path = os.path.join(checkpoint, "config.json")
    config = getattr(model, "config", None)
    if os.path.isfile(config_path) and getattr(config, "model_type", None):
        with open(config_path) as f:
            saved = json.load(f).get("model_type")
        if saved and saved != config.model_type:
            raise ValueError(
                f"resume_from_checkpoint={checkpoint!r} holds a {saved!r} model, but this trainer trains a "
                f"{config.model_type!r} model ({type(model).__name__}): resume from a checkpoint of the same model."
            )


def check_writable(args) -> None:
    """A clear error before training when the run will save into an `output_dir` it cannot write."""
    if getattr(args, "save_strategy", "no") in ("no", None) or str(args.save_strategy) == "SaveStrategy.NO":
        return
    folder = os.path.abspath(args.output_dir)
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK):
        raise PermissionError(
            f"output_dir={args.output_dir!r} cannot be written ({existing} is read-only for this user), and the run "
            f"saves checkpoints (save_strategy={getattr(args.save_strategy, 'value', args.save_strategy)!r}): choose "
            "a writable output_dir, or save_strategy='no'."
        )


WRITE_FAILURES = ("iostream error", "PytorchStreamWriter failed", "file write failed", "No space left on device",
                  "Disk quota exceeded")


@contextlib.contextmanager
def named_write_failures(output_dir: str, step):
    """Within the block, a failed write (a full disk, a quota, a read-only folder) becomes an `OSError` that names the
    checkpoint folder, the free space and the fix (torch's own message names no file)."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        errno_failure = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO,
                                                                       errno.EROFS, errno.EFBIG)
        if not (errno_failure or any(text in str(error) for text in WRITE_FAILURES)):
            raise
        folder = os.path.join(output_dir, f"checkpoint-{step()}")
        existing = os.path.abspath(output_dir)
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        free = shutil.disk_usage(existing).free / 2**30
        raise OSError(
            f"Writing {folder} failed ({type(error).__name__}: {error}); {free:.2f} GiB are free on its disk. Free "
            "space (or lower save_total_limit, or set save_only_model=True), then resume with "
            "resume_from_checkpoint=True: the incomplete folder is skipped and the last complete checkpoint is kept."
        ) from error
