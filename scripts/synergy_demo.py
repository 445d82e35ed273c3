"""Thin entry point kept for clones: the same as `synib-hf demo` (the code is `synib_hf/cli/demo.py`)."""

from synib_hf.cli.demo import main


if __name__ == "__main__":
    raise SystemExit(main())
