import json

import pytest

from synib_hf.cli.demo import demo


def test_synergy_demo_prints_both_runs_and_saves_a_checkpoint_with_a_card(tmp_path, capsys):
    results = demo(["--output_dir", str(tmp_path), "--epochs", "1", "--mask_type", "random"])
    printed = capsys.readouterr().out
    assert "plain" in printed and "SynIB" in printed and "synergy slice" in printed
    assert set(results) == {"plain", "synib"} and 0 <= results["synib"]["synergy slice"] <= 1
    for name in ("config.json", "model.safetensors", "README.md", "demo_results.json"):
        assert (tmp_path / name).exists()
    saved = json.loads((tmp_path / "demo_results.json").read_text())
    assert saved["synib"] == pytest.approx(results["synib"]) and saved["plain"] == pytest.approx(results["plain"])
