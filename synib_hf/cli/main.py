"""`synib-hf COMMAND [...]`: one console command in front of the subcommands, each a module of `synib_hf.cli` with a
`main(argv) -> exit status`, imported only when it runs.

This module imports nothing from `synib_hf` at the top: the console script (`synib_hf_launcher`) runs it without
importing the package, so that `synib-hf --help` answers without loading torch (`python scripts/bench_cli_help.py`)."""

import importlib
import sys


COMMANDS = {
    "train": ("train", "fine-tune a vision + text fusion model with SynIB from a recipe"),
    "demo": ("demo", "the main job: plain vs SynIB on Gaussian-XOR, side by side"),
    "push": ("push", "push a checkpoint to the Hub in one commit, its card re-rendered for the repo"),
    "release": ("release", "train, evaluate and push the reference checkpoints (--no-push: build them locally)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return (
        "usage: synib-hf COMMAND [options]   (synib-hf COMMAND --help for a command's options)\n\n"
        "SynIB (Synergistic Information Bottleneck) for Hugging Face transformers.\n\ncommands:\n" + "\n".join(lines)
    )


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"synib-hf {version('synib-hf')}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"synib-hf: error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"synib_hf.cli.{COMMANDS[argv[0]][0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
