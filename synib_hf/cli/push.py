"""`synib-hf push`: push a SynIB checkpoint to the Hub (or any Hub-compatible endpoint) in ONE commit, with its card
re-rendered for the repo.

    synib-hf push runs/synergy-demo --repo-id your-org/xor-synib [--private] [--create-pr] [--dry-run]

Steps: copy the checkpoint to a temporary folder → render the model card for the repo id → verify that what will be
uploaded loads (every weights file parses, is complete and holds finite values, every config loads, the weights fit the
model their config describes) → create the repo (exist_ok) → one `upload_folder` commit. A LoRA checkpoint
(adapter_config.json) may name the repo of its base model with `--base-model`, so that `from_pretrained(repo_id)` loads
base and adapters in one call.

Exit status: 0 pushed (or, with --dry-run, pushable); 2 the checkpoint is missing or does not load, and nothing was
uploaded; 1 the Hub refused or could not be reached, and nothing was committed.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile


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


def stage(checkpoint: str, repo_id: str, base_model=None) -> str:
    """A temporary copy of the checkpoint, ready to upload: card rendered for `repo_id`, training state left out."""
    from synib_hf.model_card import render_card_for_repo

    if not os.path.isdir(checkpoint):
        raise FileNotFoundError(f"checkpoint folder {checkpoint!r} does not exist.")
    has_weights = any(name.endswith((".safetensors", ".bin")) and name != "training_args.bin"
                      for name in os.listdir(checkpoint))
    if not has_weights or not any(n in os.listdir(checkpoint) for n in ("config.json", "adapter_config.json")):
        raise ValueError(f"{checkpoint!r} holds no model: expected config.json (or adapter_config.json) and weights.")
    staging = tempfile.mkdtemp(prefix="synib-push-")
    shutil.copytree(checkpoint, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SKIPPED, "checkpoint-*"))
    adapter_config = os.path.join(staging, "adapter_config.json")
    if os.path.exists(adapter_config) and base_model:
        with open(adapter_config) as f:
            config = json.load(f)
        config["base_model_name_or_path"] = base_model
        with open(adapter_config, "w") as f:
            json.dump(config, f, indent=2)
    card = render_card_for_repo(staging, repo_id)
    if card is not None:
        card.save(os.path.join(staging, "README.md"))
    return staging


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


def verify(staging: str, checkpoint: str) -> None:
    """Raise `CheckpointError` when what is about to be uploaded would not load (see `load_problem`)."""
    from transformers.utils import logging

    from synib_hf.checkpoints import CheckpointError, checkpoint_problems

    problems = checkpoint_problems(staging)
    if not problems:
        verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
        logging.set_verbosity_error()  # the load report and its progress bar would repeat what `load_problem` says
        logging.disable_progress_bar()
        try:
            problem = load_problem(staging)
        finally:
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()
        problems = [f"config.json + weights: {problem}"] if problem else []
    if problems:
        raise CheckpointError(
            f"checkpoint {checkpoint} does not load, so nothing was uploaded:\n  " + "\n  ".join(problems)
        )


def main(argv=None) -> int:
    from .arguments import exit_on_user_error

    args = make_parser().parse_args(argv)
    with exit_on_user_error("synib-hf push"):
        staging = stage(args.checkpoint, args.repo_id, args.base_model)
    try:
        with exit_on_user_error("synib-hf push"):
            verify(staging, args.checkpoint)
        files = sorted(os.path.relpath(os.path.join(root, name), staging)
                       for root, _, names in os.walk(staging) for name in names)
        if args.dry_run:
            print(f"would push to {args.repo_id} in one commit: {', '.join(files)}")
            return 0
        from huggingface_hub import HfApi

        api = HfApi(endpoint=args.endpoint)
        try:
            api.create_repo(args.repo_id, private=args.private, exist_ok=True)
            info = api.upload_folder(repo_id=args.repo_id, folder_path=staging, commit_message=args.commit_message,
                                     create_pr=args.create_pr)
        except Exception as error:  # noqa: BLE001  HTTP, connection and LFS-upload errors alike: the commit never ran
            cause = f" ({error.__cause__})" if error.__cause__ and str(error.__cause__) not in str(error) else ""
            print(f"push to {args.repo_id} failed: {type(error).__name__}: {error}{cause}\nNothing was committed: the "
                  "Hub applies a commit all at once, so the repo's files are as they were. Fix the cause and run the "
                  "same command again.", file=sys.stderr)
            return 1
        print(f"pushed {len(files)} files to {args.repo_id} in commit {info.oid}"
              + (f" ({info.pr_url})" if args.create_pr else ""))
        return 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
