import json
import os
import subprocess
import sys

import pytest

from scripts_loader import SCRIPTS, load_script


def test_tiny_cases_print_one_json_line_each(tmp_path, capsys):
    results = load_script("bench_step").main(["--size", "tiny", "--rounds", "1", "--steps", "1", "--batch", "4",
                                              "--output", str(tmp_path / "out.json")])
    assert [r["case"] for r in results] == ["native-random", "native-learned", "generic-concatenated",
                                            "generic-sequential"]
    for result in results:
        assert result["plain_ms_per_step"] > 0 and result["time_ratio"] > 0 and result["device"] == "cpu"
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{\"case")]
    assert printed == results
    assert len((tmp_path / "out.json").read_text().splitlines()) == 4


def test_gpu_script_runs_on_cpu_without_datasets_or_evaluate(tmp_path):
    """The GPU machine has neither datasets nor evaluate: the benchmark must not import them."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    # as if not installed: find_spec() answers None and `import` raises ImportError
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['datasets'] = None\nsys.modules['evaluate'] = None\n")
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "SIZE": "tiny", "BATCH": "4", "ROUNDS": "1", "STEPS": "1",
           "PYTHONPATH": str(blocker)}
    result = subprocess.run(["bash", str(SCRIPTS / "gpu_check.sh")], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "bench_step_tiny.json").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["bf16"] and json.loads(line)["lora"] for line in lines)
    vlm = [json.loads(line) for line in (tmp_path / "bench_step_vlm_tiny.json").read_text().splitlines()]
    assert [r["case"] for r in vlm] == ["vlm-concatenated", "vlm-shared-lean", "vlm-shared-prefix", "vlm-drop",
                                        "vlm-drop-shared"]
    assert all(r["family"] == "smolvlm" and r["bf16"] and r["lora"] and r["time_ratio"] > 0 for r in vlm)


def test_vlm_cases_time_the_views_of_each_bench_family(tmp_path):
    bench = load_script("bench_step")
    for family in ("llava", "qwen2_vl"):
        results = bench.main(["--size", "tiny", "--family", family, "--cases", "vlm-shared-lean", "vlm-drop-shared",
                              "--rounds", "1", "--steps", "1", "--batch", "2", "--seq_len", "4"])
        assert [(r["case"], r["family"]) for r in results] == [("vlm-shared-lean", family),
                                                               ("vlm-drop-shared", family)]
        for result in results:  # against the fair (lean-logits) plain step, the full-logits one beside it
            assert result["plain_ms_per_step"] > 0 and result["synib_ms_per_step"] > 0
            assert result["plain_full_logits_ms_per_step"] > 0 and result["time_ratio_to_full_logits_plain"] > 0
            # the CPU's memory figure: activations saved for the backward pass; dropping the image saves some
            assert result["plain_saved_activations_mib"] > 0 and result["memory_ratio"] > 0
        assert results[1]["synib_saved_activations_mib"] < results[0]["synib_saved_activations_mib"]


def test_the_image_dominant_preset_is_vlm_only_and_image_dominated():
    import torch

    bench, vlm = load_script("bench_step"), load_script("bench_step_vlm")
    rows = vlm.vlm_batch("llava", "image-dominant", 1, 32, torch.Generator().manual_seed(0))
    assert int((rows["input_ids"] == vlm.IMAGE_TOKEN).sum()) == 256 and rows["input_ids"].shape[1] == 256 + 35
    with pytest.raises(ValueError, match="image-dominant is a VLM preset; it has no \\['native-random'\\] case"):
        bench.main(["--size", "image-dominant", "--cases", "native-random"])


def test_vlm_base_presets_have_the_advertised_sizes():
    """The GPU check's VLM case: a SmolVLM-500M-shaped model (~0.5B parameters), built on the meta device."""
    import torch
    from transformers import AutoModelForImageTextToText

    vlm = load_script("bench_step_vlm")
    sizes = {}
    for family in ("smolvlm", "qwen2_vl"):
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(vlm.vlm_config(family, "base"))
        sizes[family] = sum(p.numel() for p in model.parameters()) / 1e9
    assert 0.4 < sizes["smolvlm"] < 0.6 and 1.8 < sizes["qwen2_vl"] < 2.5, sizes


def test_saved_results_are_plotted_with_memory_when_a_gpu_measured_it(tmp_path):
    row = {"case": "native-random", "size": "base", "batch": 128, "bf16": True, "device": "NVIDIA H100",
           "time_ratio": 1.04, "memory_ratio": 1.01}
    saved = tmp_path / "gpu.json"
    saved.write_text(json.dumps(row) + "\n" + json.dumps({**row, "case": "generic-sequential"}) + "\n")
    results = load_script("bench_step").main(["--from", str(saved), "--plot", str(tmp_path / "step.png")])
    assert [r["case"] for r in results] == ["native-random", "generic-sequential"]
    assert (tmp_path / "step.png").stat().st_size > 1000
