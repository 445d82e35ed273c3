"""What a `synib-hf train` run needs that this machine lacks — the data, the towers' checkpoints, a GPU for bf16/fp16 —
found before anything runs and reported in ONE message, each problem with the flags that fix it, and the whole
command that runs the recipe here anyway (synthetic data in the same format, tiny random towers, CPU)."""

import os
from pathlib import Path
from typing import Optional


SPLIT_FILES = ("train.jsonl", "dev_seen.jsonl", "test_seen.jsonl")  # the Hateful Memes layout (synib_hf.data)
FIXTURE_DIR = "runs/memes-fixture"


def _hub_available(name: str) -> Optional[str]:
    """None when the checkpoint `name` can be loaded here (a local folder, an installed packaged copy, the Hub cache,
    or a reachable Hub); else why not."""
    from synib_hf.models.packaged import PACKAGED_CHECKPOINTS, resolve_checkpoint

    if name in PACKAGED_CHECKPOINTS:
        try:
            resolve_checkpoint(name)
        except ImportError as error:
            return str(error)
        return None
    if os.path.isdir(name):
        return None
    if os.path.isabs(name) or name.startswith(".") or name.count("/") > 1:
        return f"the folder {name} does not exist"
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return None
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return f"{name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    import huggingface_hub

    try:
        huggingface_hub.model_info(name, timeout=5)
    except huggingface_hub.errors.RepositoryNotFoundError:
        return f"{name} is not a model on the Hub"
    except Exception as error:  # noqa: BLE001  DNS, proxy, timeout: the Hub cannot be reached from here
        return f"{name} is not in the Hugging Face cache and the Hub cannot be reached ({type(error).__name__})"
    return None


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def missing_for_run(options: dict) -> list:
    """The problems that would stop a `synib-hf train` run with these (parsed, not yet validated) options, as
    `(what is missing, the flags that fix it)` pairs; empty when the run can start.

    Example:

    ```python
    >>> missing_for_run({"dataset": "hateful_memes", "data_dir": None, "bf16": True, "use_cpu": False, ...})
    [('dataset hateful_memes needs data_dir: ...', ['--data_dir', 'runs/memes-fixture', '--make_fixture', 'true'])]
    ```
    """
    problems = []
    if (options.get("bf16") or options.get("fp16")) and not options.get("use_cpu") and not _has_gpu():
        precision = "bf16" if options.get("bf16") else "fp16"
        problems.append((f"{precision} mixed precision needs a GPU, and this machine has none",
                         ["--use_cpu", "true", f"--{precision}", "false"]))
    if options.get("dataset") == "hateful_memes" and not options.get("make_fixture"):
        data_dir = options.get("data_dir")
        fixture = ["--data_dir", FIXTURE_DIR, "--make_fixture", "true"]
        if data_dir is None:
            problems.append(("dataset hateful_memes needs data_dir: the folder with img/ and the three .jsonl files",
                             fixture))
        else:
            absent = [name for name in SPLIT_FILES if not (Path(data_dir) / name).is_file()]
            if absent:
                problems.append((
                    f"the Hateful Memes data is not in {Path(data_dir).absolute()} ({', '.join(absent)} missing). "
                    "Accept the data set's licence, download it and unpack img/ and the .jsonl files there; or train "
                    "on a synthetic data set in its format",
                    fixture,
                ))
    if options.get("dataset") == "hateful_memes" and not options.get("tiny_towers"):
        towers = [options.get("text_model_name_or_path")]
        if not options.get("vision_config"):
            towers.insert(0, options.get("vision_model_name_or_path"))
        unavailable = [reason for name in towers if name and (reason := _hub_available(name))]
        if unavailable:
            problems.append(("the towers cannot be loaded: " + "; ".join(unavailable) + ". Run once with network "
                             "(the Hub cache keeps them), or build tiny random towers", ["--tiny_towers", "true"]))
    return problems


def report(problems: list, argv: list) -> str:
    """One message: each problem with its fix, then the command with every fix applied."""
    lines = [f"this run cannot start here ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"]
    fixes = []
    for number, (problem, flags) in enumerate(problems, start=1):
        lines.append(f"  {number}. {problem} -> {' '.join(flags)}")
        fixes += flags
    command = " ".join(["synib-hf train", *argv, *fixes])
    lines += ["To run it here anyway, with every fix above:", f"  {command}",
              "(or `synib-hf train tiny`, the same model family on synthetic data in about 10 s)."]
    return "\n".join(lines)
