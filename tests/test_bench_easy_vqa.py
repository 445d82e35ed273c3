import json

from scripts_loader import load_script


def test_smoke_run_writes_every_method_with_both_fills_and_the_three_slices(tmp_path):
    bench = load_script("bench_easy_vqa")
    rows = bench.main(["--output_dir", str(tmp_path), "--rates", "0.2", "--seeds", "0", "1", "--lambdas", "0.3", "3",
                       "--epochs", "1", "--train_questions", "48", "--validation_questions", "16",
                       "--test_questions", "64", "--swapped_questions", "32"])
    assert [r["method"] for r in rows] == list(bench.METHODS) * 2
    for row in rows:
        assert row["train_yes_no"] == round(0.2 * 48)
        assert 0 <= row["yes_no_balanced_acc"] <= 1 and 0 <= row["synergy_chance"] <= 1
        searched = "synib_weight" not in bench.METHODS[row["method"]][1] and row["seed"] == 0
        assert len(row["grid"]) == (2 if searched else 1)  # λ chosen at the first seed, kept for the others
        first = next(r for r in rows if r["method"] == row["method"])
        assert row["lambda"] == first["lambda"] and first["lambda"] in (0.3, 3.0, 0.0, 1.0)
        assert row["val_acc"] == max(run["val_acc"] for run in row["grid"].values())
    assert json.loads((tmp_path / "results.json").read_text())[0]["rate"] == 0.2
    table = (tmp_path / "results.md").read_text()
    assert "prior taken out" in table and "chance" in table and "synib_random_ema_noise" in table
    assert (tmp_path / "results.png").stat().st_size > 1000

