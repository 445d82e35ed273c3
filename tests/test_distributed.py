"""Real 2-process DDP over gloo on CPU (`accelerate launch --multi_gpu --num_processes 2`) against one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch


SCRIPT = Path(__file__).with_name("ddp_train.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (tmp_path / "output.txt").write_text(result.stdout + result.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    single, double = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    run([sys.executable, str(SCRIPT), str(single)], single)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]  # not the fixed 29500 another run may still hold
    run(launch + [str(SCRIPT), str(double)], double)
    return single, double


def load(directory, name):
    return torch.load(directory / f"{name}.pt"), json.loads((directory / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["native", "generic-concatenated", "generic-sequential", "embedding-llava", "ogm_ge",
                                  "mmpareto", "mlb", "ensemble"])
def test_two_process_ddp_matches_one_process_on_the_same_global_batch(runs, name):
    (one, one_log), (two, two_log) = (load(directory, name) for directory in runs)
    assert one_log["world_size"] == 1 and two_log["world_size"] == 2
    assert two_log["distributed"] == "ParallelMode.DISTRIBUTED"
    assert two_log["rank_spread"] == 0.0  # both processes hold the same parameters after every change to the gradients
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=1e-4, atol=1e-6)
    for a, b in zip(one_log["logs"], two_log["logs"], strict=True):
        # losses and the SynIB metrics gathered across both processes agree with the single process
        for key in [k for k in a if k == "loss" or k.startswith("synib/")]:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key


def test_learned_masks_train_under_ddp(runs):
    """Learned masks draw ema_noise fills per process, so the runs differ by noise only."""
    (one, _), (two, two_log) = (load(directory, "native-learned") for directory in runs)
    assert len(two_log["logs"]) == 3 and all(torch.isfinite(v).all() for v in two.values())
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=0.05)


def test_resume_under_ddp_is_bitwise_an_uninterrupted_run(runs):
    """Each process saves and restores its own mask generator: 3 + resume equals 6 straight, under 2 processes."""
    _, double = runs
    results = torch.load(double / "resume.pt")
    for key, value in results["straight"].items():
        assert torch.equal(value, results["resumed"][key]), key


def test_ddp_runs_without_the_find_unused_parameters_warning(runs):
    """SynIB sets DDP's find_unused_parameters from a probe step, so DDP neither fails on an unused head nor warns
    about a needless search."""
    _, double = runs
    output = (double / "output.txt").read_text()
    assert "find_unused_parameters=True was specified" not in output


def test_synergy_metrics_under_ddp_match_one_process(runs):
    """The synergy-subset groups are computed on predictions gathered across processes (13 examples, uneven)."""
    one, two = (json.loads((directory / "synergy.json").read_text()) for directory in runs)
    sizes = [k for k in one if k.startswith("eval_") and k.endswith("_size")]
    assert sum(two[k] for k in sizes) == 13
    for key in [*sizes, "eval_synergy_accuracy", "eval_accuracy"]:
        assert two[key] == pytest.approx(one[key], nan_ok=True), key
