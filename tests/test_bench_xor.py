import json

import numpy as np
import pytest
import torch

from scripts_loader import load_script


def test_quick_mode_writes_rows_table_and_plot(tmp_path):
    bench = load_script("bench_xor")
    rows = bench.main(["--quick", "--output_dir", str(tmp_path), "--mixtures", "red .95 syn .05", "--epochs", "1",
                       "--lambdas", "1", "--methods", "ce", "ogm_ge", "synib_random", "synib_oracle",
                       "--mask_fills", "shuffle", "ema_noise"])
    assert [(r["method"], r["mask_fill"]) for r in rows] == [
        ("ce", None), ("ogm_ge", None), ("synib_random", "shuffle"), ("synib_random", "ema_noise"),
        ("synib_oracle", "shuffle"), ("synib_oracle", "ema_noise")]
    assert {r["model"] for r in rows} == {"authors"}
    ogm = rows[1]
    assert ogm["searched"] == "ogm_alpha" and sorted(ogm["grid"]) == ["0.1", "0.3", "0.8"]  # α chosen on validation
    assert ogm["lambda"] in (0.1, 0.3, 0.8)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {"mixture", "method", "seed", "lambda", "overall_acc", "synergy_acc", "n_synergy_test"} <= set(saved[0])
    assert 150 < saved[0]["n_synergy_test"] < 250  # 5 % of 4000 test examples
    table = (tmp_path / "results.md").read_text()
    assert "| synib_random (ema_noise) |" in table and "| ogm_ge |" in table and "chance = 0.500" in table
    assert "| *paper: CE only (mean of 3 seeds)* | 0.499 |" in table  # the authors' numbers beside ours
    assert f"| *synergy examples: test / train / validation (mean over seeds)* | {saved[0]['n_synergy_test']} /" in table
    random = {r["mask_fill"]: r["synergy_acc"] for r in rows if r["method"] == "synib_random"}
    difference = random["shuffle"] - random["ema_noise"]  # the fill comparison, paired by seed
    assert f"| synib_random | {difference:+.3f} ± 0.000 ({int(difference > 0)}↑ {int(difference < 0)}↓ of 1) |" in table
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_synib_beats_ce_on_the_synergy_slice_by_a_wide_margin():
    """Reduced XOR (the authors' network, red .8 / syn .2, 10 epochs, 2 seeds, shuffle fill): CE-only stays near
    chance on the synergy slice (measured 0.53 / 0.50), SynIB with random masks recovers it (0.97 / 0.96)."""
    bench = load_script("bench_xor")
    gaps = []
    for seed in (0, 1):
        generator, data = bench.xor_data("red .8 syn .2", seed)
        ce = bench.run_one("ce", "red .8 syn .2", seed, None, 10, data, generator)
        synib = bench.run_one("synib_random", "red .8 syn .2", seed, 10.0, 10, data, generator)
        gaps.append(synib["synergy"] - ce["synergy"])
        assert ce["synergy"] <= 0.65  # the paper's failure: plain training does not learn rare synergy
        assert synib["test"] >= ce["test"]  # overall accuracy is not traded away
    assert np.mean(gaps) >= 0.3, gaps


def test_render_merges_saved_runs_without_training(tmp_path):
    bench = load_script("bench_xor")
    row = {"model": "authors", "mask_fill": "shuffle", "mixture": "red .8 syn .2", "method": "ce", "seed": 0, "lambda": 0.0,
           "overall_acc": 0.9, "synergy_acc": 0.5}
    for name, seed in (("a", 0), ("b", 1)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps([{**row, "seed": seed}]))
    rows = bench.main(["--render", str(tmp_path / "a" / "results.json"), str(tmp_path / "b" / "results.json"),
                       "--output_dir", str(tmp_path / "merged")])
    assert [r["seed"] for r in rows] == [0, 1]
    assert rows[0]["mask_fill"] is None and rows[0]["n_synergy_test"] > 0  # old rows: no fill on CE, counts added
    header = "model authors, dim 32, mean ± sample std (ddof = 1) over seeds [0, 1] (2 per cell); λ (SynIB) and α/γ"
    assert header in (tmp_path / "merged" / "results.md").read_text()
    assert "| ce | 0.500 ± 0.000 |" in (tmp_path / "merged" / "results.md").read_text()


def test_merge_keeps_one_copy_of_a_repeated_row_and_refuses_disagreeing_ones():
    bench = load_script("bench_xor")
    row = {"model": "authors", "mixture": "red .8 syn .2", "method": "ce", "seed": 0, "overall_acc": 0.9,
           "synergy_acc": 0.5, "mask_fill": "ema_noise", "dim": 32, "n_synergy_test": 1}
    assert len(bench.merge([row, {**row, "mask_fill": "shuffle"}])) == 1  # CE does not depend on the fill
    assert len(bench.merge([{**row, "method": "dropout"}, {**row, "method": "dropout", "mask_fill": "shuffle"}])) == 2
    with pytest.raises(ValueError, match="disagree"):
        bench.merge([row, {**row, "synergy_acc": 0.6}])


def test_ablation_script_changes_one_thing_at_a_time(tmp_path):
    ablation = load_script("bench_xor_ablation")
    rows = ablation.main(["--output_dir", str(tmp_path), "--seeds", "0", "--epochs", "1", "--variants",
                          "authors' network", "layer-normalised features",
                          "authors' network, no noise coordinates (dim 18)"])
    assert [(r["options"], r["dim"]) for r in rows] == [({}, 32), ({"normalize_features": True}, 32), ({}, 18)]
    assert len({r["overall_acc"] for r in rows}) == 3  # each change reached the model or the data
    table = (tmp_path / "results.md").read_text()
    assert "| layer-normalised features |" in table and "no noise coordinates (dim 18)" in table


def test_benchmark_training_is_deterministic_including_the_initial_weights(tmp_path):
    from synib_hf.data.xor import GaussianXOR

    from synib_hf.cli.vector import train_vector_model

    train = GaussianXOR(mixture=(0.0, 0.0, 0.8, 0.2), seed=0, n_train=200).datasets()["train"].remove_columns("source")
    weights = []
    for _ in range(2):
        trainer = train_vector_model("SynIBTrainer", {"synib_weight": 1.0}, {"x1": 32, "x2": 32}, 1, train, seed=3,
                                     epochs=1, learning_rate=3e-4, hidden_size=16)
        weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_lambda_selection_breaks_ties_to_the_smallest_and_can_use_the_synergy_slice():
    bench = load_script("bench_xor")
    grid = {"0.1": {"val_acc": 0.9, "val_synergy_acc": 0.5, "overall_acc": 0.91, "synergy_acc": 0.52},
            "1.0": {"val_acc": 0.9, "val_synergy_acc": 0.9, "overall_acc": 0.95, "synergy_acc": 0.93},
            "10.0": {"val_acc": 0.8, "val_synergy_acc": float("nan"), "overall_acc": 0.8, "synergy_acc": 0.99}}
    row = {"method": "synib_random", "lambda": 0.1, "grid": grid}
    by_accuracy = bench.select_lambda(row, "val_acc")
    assert (by_accuracy["lambda"], by_accuracy["synergy_acc"]) == (0.1, 0.52)
    by_synergy = bench.select_lambda(row, "val_synergy_acc")
    assert (by_synergy["lambda"], by_synergy["overall_acc"], by_synergy["selected_by"]) == (1.0, 0.95, "val_synergy_acc")
