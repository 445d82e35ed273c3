"""Thin entry point kept for clones: the same as `synib-hf push` (the code is `synib_hf/cli/push.py`)."""

from synib_hf.cli.push import main


if __name__ == "__main__":
    raise SystemExit(main())
