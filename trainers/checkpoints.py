"""Checkpoints that resume exactly: SynIB's own state (mask generators, fill statistics) saved beside the Trainer's
RNG state, and the last *complete* checkpoint picked for `resume_from_checkpoint=True` (a folder left half-written by
a kill during a save is skipped, with a warning that says why)."""

import json
import os
import re
import struct
import warnings
import zipfile
from typing import Optional

import torch


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
    if not os.path.isfile(path):
        warnings.warn(
            f"{checkpoint} holds no SynIB state ({os.path.basename(path)}): masks and fill statistics restart from "
            "the seed, so the resumed run will differ from an uninterrupted one (checkpoints written by synib-hf "
            "0.1 or a plain Trainer have none).",
            stacklevel=2,
        )
        return None
    return torch.load(path, weights_only=True)


def safetensors_problem(path: str) -> Optional[str]:
    """Why a safetensors file is unusable (unreadable header, truncated data), or None if it is complete."""
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            header_size = struct.unpack("<Q", f.read(8))[0]
            if header_size + 8 > size:
                return f"truncated header ({size} bytes)"
            header = json.loads(f.read(header_size))
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"unreadable header ({error})"
    end = max((meta["data_offsets"][1] for key, meta in header.items() if key != "__metadata__"), default=0)
    if 8 + header_size + end > size:
        return f"truncated: {size} bytes, its header promises {8 + header_size + end}"
    return None


def checkpoint_problem(folder: str) -> Optional[str]:
    """Why a checkpoint folder cannot be resumed from, or None if it looks complete."""
    state = os.path.join(folder, "trainer_state.json")
    if not os.path.isfile(state):
        return "no trainer_state.json"
    try:
        with open(state) as f:
            json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "trainer_state.json does not parse"
    names = os.listdir(folder)
    index = [n for n in names if n.endswith(".safetensors.index.json")]
    weights = [n for n in names if n in WEIGHT_FILES]
    if index:
        with open(os.path.join(folder, index[0])) as f:
            weights = sorted(set(json.load(f)["weight_map"].values()))
        missing = [n for n in weights if n not in names]
        if missing:
            return f"missing weight shards {missing}"
    if not weights:
        return "no model weights"
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith(".safetensors"):
            problem = safetensors_problem(path)
            if problem:
                return f"{name}: {problem}"
        elif name.endswith((".pt", ".pth", ".bin")) and os.path.getsize(path) > 0:
            if not zipfile.is_zipfile(path):  # torch.save writes a zip; a cut one has no end record
                return f"{name}: truncated or not a torch file"
        elif name.endswith((".pt", ".pth", ".bin")):
            return f"{name}: empty"
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
        raise ValueError(f"resume_from_checkpoint=True, but {output_dir} holds no checkpoint-<step> folder.")
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
        f"resume_from_checkpoint=True, but no checkpoint in {output_dir} is complete ({reasons}). A kill during a "
        "save leaves such folders: delete them, or start without resume_from_checkpoint."
    )
