"""What the benchmark scripts share: writing their outputs (training the vector model is `synib_hf.cli.vector`)."""

import json
import os


def write_outputs(rows, output_dir, markdown, plot) -> str:
    """`results.json`, `results.md` (from `markdown(rows)`) and `results.png` (from `plot(rows, path)`)."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = markdown(rows)
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(table)
    plot(rows, os.path.join(output_dir, "results.png"))
    return table
