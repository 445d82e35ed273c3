"""Checkpoints that do not load say so, naming the file and the problem.

Three faults load badly with the stock tools: a truncated or corrupt weights file (safetensors' error names no file),
a config that does not load, and weights overwritten with NaN or inf (they load silently). [`verify_checkpoint`]
checks a folder for all three (`synib-hf push` runs it before uploading anything); [`VerifiedLoadingMixin`] gives a
model's `from_pretrained` the same guarantees, and [`load_checked`] wraps any other `from_pretrained`.
"""

import json
from pathlib import Path
from typing import Callable, Optional

import torch


NAMED_AT_MOST = 5  # tensors named in one message


class CheckpointError(ValueError):
    """A checkpoint that would not load, or would load wrong; the message names the file and the problem."""


def _non_finite(tensor: torch.Tensor) -> bool:
    if not tensor.is_floating_point() or tensor.device.type == "meta":
        return False
    if tensor.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        tensor = tensor.float()  # float8 and friends: isfinite needs a wider type
    return not bool(torch.isfinite(tensor).all())


def _listed(names) -> str:
    names = list(names)
    shown = ", ".join(names[:NAMED_AT_MOST])
    return shown + (f" and {len(names) - NAMED_AT_MOST} more" if len(names) > NAMED_AT_MOST else "")


def weights_file_problem(path, check_values: bool = True) -> Optional[str]:
    """What is wrong with one weights file (`.safetensors`, or a torch `.bin`), or None.

    The file must parse, its data must cover every tensor its header lists (a truncated file does not), and with
    `check_values` its floating-point tensors must be finite (this reads every tensor).
    """
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as handle:
                keys = list(handle.keys())
                bad = [key for key in keys if check_values and _non_finite(handle.get_tensor(key))]
        except SafetensorError as error:
            return f"does not parse as safetensors ({error}): the file is truncated or corrupt; save it again"
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  (a broken pickle or zip fails in many ways; each is reported)
            return f"does not load with torch.load ({type(error).__name__}: {error}); save it again"
        if not isinstance(state, dict):
            return f"holds a {type(state).__name__}, not a state dict"
        bad = [key for key, value in state.items() if check_values and torch.is_tensor(value) and _non_finite(value)]
    if bad:
        return (
            f"the tensors {_listed(bad)} hold NaN or inf: saved from a run that diverged, or overwritten; "
            "use an earlier checkpoint"
        )
    return None


def _is_weights_file(name: str) -> bool:
    # training_args.bin, optimizer.pt and friends are training state, not weights
    return name.endswith(".safetensors") or (name.endswith(".bin") and name.startswith(("pytorch_model", "adapter_")))


def _config_problem(folder: Path, name: str) -> Optional[str]:
    try:
        json.loads((folder / name).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"is not valid JSON ({error})"
    try:
        if name == "config.json":
            from transformers import AutoConfig

            AutoConfig.from_pretrained(folder)
        else:
            from peft import PeftConfig

            PeftConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"does not load ({type(error).__name__}: {error})"
    return None


def checkpoint_problems(folder, check_values: bool = True) -> list:
    """Everything wrong with a checkpoint folder (and its subfolders, e.g. `adapter/`), as `"relative/path: problem"`
    lines; empty when every weights file parses and is complete (and finite, with `check_values`), every shard an
    index names exists, and every `config.json` / `adapter_config.json` loads.

    Example:

    ```python
    >>> checkpoint_problems("runs/tiny-synib")
    []
    ```
    """
    folder = Path(folder)
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name, where = path.name, path.relative_to(folder).as_posix()
        problem = None
        if _is_weights_file(name):
            problem = weights_file_problem(path, check_values)
        elif name.endswith(".index.json") and _is_weights_file(name.removesuffix(".index.json")):
            try:
                shards = set(json.loads(path.read_text())["weight_map"].values())
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as error:
                problem = f"is not a weights index ({type(error).__name__}: {error})"
            else:
                missing = sorted(shard for shard in shards if not (path.parent / shard).is_file())
                problem = f"names shards that are missing: {_listed(missing)}" if missing else None
        elif name in ("config.json", "adapter_config.json"):
            problem = _config_problem(path.parent, name)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def verify_checkpoint(folder, check_values: bool = True) -> None:
    """Raise [`CheckpointError`] listing what is wrong with a checkpoint folder (see [`checkpoint_problems`])."""
    problems = checkpoint_problems(folder, check_values)
    if problems:
        raise CheckpointError(f"checkpoint {folder} does not load:\n  " + "\n  ".join(problems))


def _weight_files(name_or_path, kwargs) -> list:
    """The weights files a `from_pretrained(name_or_path, **kwargs)` call read: a local folder's, or the cached
    files of a Hub repo."""
    subfolder = kwargs.get("subfolder") or ""
    folder = Path(name_or_path) / subfolder
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.is_file() and _is_weights_file(p.name))
    from huggingface_hub import try_to_load_from_cache

    found = []
    for name in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(
            str(name_or_path), f"{subfolder}/{name}" if subfolder else name, cache_dir=kwargs.get("cache_dir"),
            revision=kwargs.get("revision"),
        )
        if isinstance(cached, str):
            found.append(Path(cached))
    return found


def _name_the_files(name_or_path, kwargs, check_values: bool, fallback: str) -> str:
    problems = [f"{path}: {problem}" for path in _weight_files(name_or_path, kwargs)
                if (problem := weights_file_problem(path, check_values))]
    return "\n  ".join(problems) if problems else f"{name_or_path}: {fallback}"


def load_checked(from_pretrained: Callable, name_or_path, *args, **kwargs):
    """`from_pretrained(name_or_path, *args, **kwargs)`, except that a weights file that does not parse raises a
    [`CheckpointError`] naming the file, and so do weights that hold NaN or inf (they would load silently).

    Example:

    ```python
    >>> tower = load_checked(AutoModel.from_pretrained, "microsoft/deberta-v3-base")
    ```
    """
    from safetensors import SafetensorError

    try:
        loaded = from_pretrained(name_or_path, *args, **kwargs)
    except SafetensorError as error:
        where = _name_the_files(name_or_path, kwargs, check_values=False,
                                fallback=f"a weights file does not parse ({error})")
        raise CheckpointError(f"checkpoint does not load:\n  {where}") from None
    model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
    bad = [name for name, parameter in model.named_parameters() if _non_finite(parameter)]
    if bad:
        where = _name_the_files(name_or_path, kwargs, check_values=True,
                                fallback=f"the weights {_listed(bad)} hold NaN or inf")
        raise CheckpointError(f"checkpoint loads NaN or inf weights, refusing it:\n  {where}")
    return loaded


class VerifiedLoadingMixin:
    """Gives a `PreTrainedModel` a `from_pretrained` (the Auto classes' too) that names a weights file that does not
    parse and refuses weights that hold NaN or inf (see [`load_checked`])."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        # Why: safetensors' errors name no file, and NaN weights load silently.
        return load_checked(super().from_pretrained, pretrained_model_name_or_path, *args, **kwargs)

