"""Thin entry point kept for clones: the same as `synib-hf release` (the code is `synib_hf/cli/release.py`)."""

from synib_hf.cli.release import main


if __name__ == "__main__":
    raise SystemExit(main())
