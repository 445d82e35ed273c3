"""The `synib-hf` console script: runs `synib_hf/cli/main.py` without importing the `synib_hf` package (whose import
loads torch and transformers, seconds), so that `synib-hf --help` and `--version` answer at once. A command's module
imports the package when it runs.

    python scripts/bench_cli_help.py     # how long `synib-hf --help` takes, and whether it imported torch
"""

import importlib.util
import os


def main(argv=None) -> int:
    package = importlib.util.find_spec("synib_hf")  # finds the package without running its __init__
    path = os.path.join(package.submodule_search_locations[0], "cli", "main.py")
    spec = importlib.util.spec_from_file_location("synib_hf_launcher_dispatch", path)
    dispatch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dispatch)
    return dispatch.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
