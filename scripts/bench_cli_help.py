"""How long `synib-hf --help` takes, and whether it imports torch (it must not: the launcher is a top-level module).

    python scripts/bench_cli_help.py     # e.g. "synib-hf --help: 0.05 s (median of 5), torch imported: False"
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PROBE = "import sys, synib_hf_launcher; synib_hf_launcher.main(['--help']); print('torch' in sys.modules)"


def main() -> None:
    times, imported = [], None
    for _ in range(5):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - started)
        imported = result.stdout.strip().splitlines()[-1]
    print(f"synib-hf --help: {statistics.median(times):.2f} s (median of 5), torch imported: {imported}")


if __name__ == "__main__":
    main()
