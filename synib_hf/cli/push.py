"""`synib-hf push`: push a SynIB checkpoint to the Hub (or any Hub-compatible endpoint) in ONE commit, with its card
re-rendered for the repo.

    synib-hf push runs/synergy-demo --repo-id your-org/xor-synib [--private] [--create-pr] [--dry-run]

Steps: create the repo (exist_ok) → copy the checkpoint to a temporary folder → render the model card for the repo id
→ one `upload_folder` commit. A LoRA checkpoint (adapter_config.json) may name the repo of its base model with
`--base-model`, so that `from_pretrained(repo_id)` loads base and adapters in one call.
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


SKIPPED = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")


def stage(checkpoint: str, repo_id: str, base_model=None) -> str:
    """A temporary copy of the checkpoint, ready to upload: card rendered for `repo_id`, training state left out."""
    from synib_hf.model_card import render_card_for_repo

    if not os.path.isdir(checkpoint):
        raise FileNotFoundError(f"checkpoint folder {checkpoint!r} does not exist.")
    has_weights = any(name.endswith((".safetensors", ".bin")) for name in os.listdir(checkpoint))
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


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    staging = stage(args.checkpoint, args.repo_id, args.base_model)
    try:
        files = sorted(os.path.relpath(os.path.join(root, name), staging)
                       for root, _, names in os.walk(staging) for name in names)
        if args.dry_run:
            print(f"would push to {args.repo_id} in one commit: {', '.join(files)}")
            return 0
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        api = HfApi(endpoint=args.endpoint)
        try:
            api.create_repo(args.repo_id, private=args.private, exist_ok=True)
            info = api.upload_folder(repo_id=args.repo_id, folder_path=staging, commit_message=args.commit_message,
                                     create_pr=args.create_pr)
        except HfHubHTTPError as error:
            print(f"push to {args.repo_id} failed: {error}\nNothing was committed: the Hub applies a commit all at "
                  "once, so the repo is as it was. Fix the cause and run the same command again.", file=sys.stderr)
            return 1
        print(f"pushed {len(files)} files to {args.repo_id} in commit {info.oid}"
              + (f" ({info.pr_url})" if args.create_pr else ""))
        return 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
