"""`synib-hf push`: push a SynIB checkpoint to the Hub (or any Hub-compatible endpoint) in ONE commit, with its card
re-rendered for the repo.

    synib-hf push runs/synergy-demo --repo-id your-org/xor-synib [--private] [--create-pr] [--dry-run]

Steps: list the checkpoint's files (training state left out) → render the model card for the repo id → verify that
what will be uploaded loads (every weights file parses, is complete and holds finite values, every config loads, the
weights fit the model their config describes) → create the repo (exist_ok) → one `create_commit`. A LoRA checkpoint
(adapter_config.json) may name the repo of its base model with `--base-model`, so that `from_pretrained(repo_id)` loads
base and adapters in one call.

Nothing is copied: the files are uploaded from the checkpoint folder itself, and the two files a push rewrites (the
card, and adapter_config.json with `--base-model`) travel as bytes. So a push stopped at any point (Ctrl-C, SIGTERM,
even SIGKILL) leaves nothing behind in the temporary folder.

Exit status: 0 pushed (or, with --dry-run, pushable); 2 the checkpoint is missing or does not load, and nothing was
uploaded; 1 the Hub refused or could not be reached, and nothing was committed.
"""

import argparse
import fnmatch
import json
import os
import sys


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synib-hf push", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a folder written by SynIBTrainer.save_model / synib-hf train")
    parser.add_argument("--repo-id", required=True, help="namespace/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    parser.add_argument("--dry-run", action="store_true", help="show what would be pushed; contact nothing")
    parser.add_argument("--base-model", default=None, help="LoRA checkpoints: the repo id of the base model")
    parser.add_argument("--endpoint", default=None, help="a Hub-compatible endpoint (default: HF_ENDPOINT or the Hub)")
    parser.add_argument("--commit-message", default="Upload SynIB checkpoint")
    return parser


# training state a checkpoint folder holds beside the model (Trainer's and SynIB's): never uploaded
SKIPPED = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "synib_state*.pt",
           "trainer_state.json")
SKIPPED_FOLDERS = ("checkpoint-*",)  # the intermediate checkpoints of a run's output folder


def _skipped(relative_path: str) -> bool:
    parts = relative_path.split("/")
    return any(fnmatch.fnmatch(part, pattern) for part in parts[:-1] for pattern in SKIPPED_FOLDERS) or any(
        fnmatch.fnmatch(parts[-1], pattern) for pattern in SKIPPED
    )


def plan_upload(checkpoint: str, repo_id: str, base_model=None) -> dict:
    """What a push uploads, without copying anything: `{path in the repo: local file path, or bytes}`.

    Training state is left out; the card is rendered for `repo_id` (as bytes), and with `base_model` the adapter
    config names it (as bytes). Every other file is read from the checkpoint folder at upload time.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: the folder holds no model (no config.json / adapter_config.json, or no weights).

    Example:

    ```python
    >>> sorted(plan_upload("runs/synergy-demo", "org/xor-synib"))
    ['README.md', 'config.json', 'model.safetensors', 'synib_card.json']
    ```
    """
    from synib_hf.model_card import render_card_for_repo

    if not os.path.isdir(checkpoint):
        raise FileNotFoundError(f"checkpoint folder {checkpoint!r} does not exist.")
    names = os.listdir(checkpoint)
    has_weights = any(name.endswith((".safetensors", ".bin")) and name != "training_args.bin" for name in names)
    if not has_weights or not any(n in names for n in ("config.json", "adapter_config.json")):
        raise ValueError(f"{checkpoint!r} holds no model: expected config.json (or adapter_config.json) and weights.")
    files = {}
    for root, folders, filenames in os.walk(checkpoint):
        folders.sort()
        for name in sorted(filenames):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, checkpoint).replace(os.sep, "/")
            if not _skipped(relative):
                files[relative] = path
    if base_model and "adapter_config.json" in files:
        with open(files["adapter_config.json"]) as f:
            adapter_config = json.load(f)
        adapter_config["base_model_name_or_path"] = base_model
        files["adapter_config.json"] = (json.dumps(adapter_config, indent=2) + "\n").encode()
    card = render_card_for_repo(checkpoint, repo_id)
    if card is not None:
        files["README.md"] = str(card).encode()
    return files


def load_problem(folder: str):
    """Why the weights do not load into the model their `config.json` describes (a missing, unexpected or misshapen
    weight), or None. Adapter-only checkpoints (no config.json) and architectures that neither transformers nor
    synib_hf defines are not loaded; their files are still checked by `checkpoint_problems`."""
    if not os.path.exists(os.path.join(folder, "config.json")):
        return None
    import transformers
    from transformers import AutoConfig

    import synib_hf

    names = AutoConfig.from_pretrained(folder).architectures or []
    model_class = next((getattr(m, n) for n in names for m in (synib_hf, transformers) if hasattr(m, n)), None)
    if model_class is None:
        return None
    try:
        _, info = model_class.from_pretrained(folder, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        return f"the weights do not load into {model_class.__name__}: {error}"
    wrong = {kind: sorted(info.get(kind) or []) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    wrong = {kind: keys for kind, keys in wrong.items() if keys}
    if wrong:
        listed = "; ".join(
            f"{kind.replace('_', ' ')}: {', '.join(map(str, keys[:5]))}" for kind, keys in wrong.items()
        )
        return f"the weights do not fit {model_class.__name__} as config.json describes it ({listed})"
    return None


def verify(checkpoint: str) -> None:
    """Raise `CheckpointError` when what is about to be uploaded would not load (see `load_problem`); the files left
    out of the upload (training state, `checkpoint-*/`) are not judged."""
    from transformers.utils import logging

    from synib_hf.checkpoints import CheckpointError, checkpoint_problems

    problems = [line for line in checkpoint_problems(checkpoint) if not _skipped(line.split(": ", 1)[0])]
    if not problems:
        verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
        logging.set_verbosity_error()  # the load report and its progress bar would repeat what `load_problem` says
        logging.disable_progress_bar()
        try:
            problem = load_problem(checkpoint)
        finally:
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()
        problems = [f"config.json + weights: {problem}"] if problem else []
    if problems:
        raise CheckpointError(
            f"checkpoint {checkpoint} does not load, so nothing was uploaded:\n  " + "\n  ".join(problems)
        )


def commit(api, repo_id: str, files: dict, commit_message: str, create_pr: bool = False):
    """One commit of `files` (see [`plan_upload`]) to `repo_id`; returns the `CommitInfo`."""
    from huggingface_hub import CommitOperationAdd

    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=source) for name, source in files.items()]
    return api.create_commit(repo_id=repo_id, operations=operations, commit_message=commit_message,
                             create_pr=create_pr)


def main(argv=None) -> int:
    from .arguments import exit_on_user_error

    args = make_parser().parse_args(argv)
    with exit_on_user_error("synib-hf push"):
        files = plan_upload(args.checkpoint, args.repo_id, args.base_model)
        verify(args.checkpoint)
    if args.dry_run:
        print(f"would push to {args.repo_id} in one commit: {', '.join(sorted(files))}")
        return 0
    from huggingface_hub import HfApi

    api = HfApi(endpoint=args.endpoint)
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        info = commit(api, args.repo_id, files, args.commit_message, args.create_pr)
    except Exception as error:  # noqa: BLE001  HTTP, connection and LFS-upload errors alike: the commit never ran
        cause = f" ({error.__cause__})" if error.__cause__ and str(error.__cause__) not in str(error) else ""
        print(f"push to {args.repo_id} failed: {type(error).__name__}: {error}{cause}\nNothing was committed: the "
              "Hub applies a commit all at once, so the repo's files are as they were. Fix the cause and run the "
              "same command again.", file=sys.stderr)
        return 1
    print(f"pushed {len(files)} files to {args.repo_id} in commit {info.oid}"
          + (f" ({info.pr_url})" if args.create_pr else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
