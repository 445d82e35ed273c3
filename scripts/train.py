"""Thin entry point kept for clones: the same as `synib-hf train` (the code is `synib_hf/cli/train.py`)."""

from synib_hf.cli.train import main


if __name__ == "__main__":
    raise SystemExit(main())
