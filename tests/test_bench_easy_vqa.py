import json

from scripts_loader import load_script


def test_smoke_run_writes_every_method_with_both_fills_and_the_three_slices(tmp_path):
    bench = load_script("bench_easy_vqa")
    rows = bench.main(["--output_dir", str(tmp_path), "--rates", "0.2", "--seeds", "0", "1", "--lambdas", "0.3", "3",
                       "--epochs", "1", "--train_questions", "48", "--validation_questions", "16",
                       "--test_questions", "64", "--swapped_questions", "32",
                       "--methods", *bench.ISSUE_14_METHODS, "ogm_ge"])
    assert [r["method"] for r in rows] == [*bench.ISSUE_14_METHODS, "ogm_ge"] * 2
    for row in rows:
        assert row["train_yes_no"] == round(0.2 * 48)
        assert 0 <= row["yes_no_balanced_acc"] <= 1 and 0 <= row["synergy_chance"] <= 1
        searched = bench.METHODS[row["method"]][2]
        sizes = {None: 1, "synib_weight": 2, "ogm_alpha": 3}  # OGM-GE's α grid from the shared method table
        assert len(row["grid"]) == (sizes[searched] if row["seed"] == 0 else 1)  # chosen at the first seed, kept
        first = next(r for r in rows if r["method"] == row["method"])
        assert row["lambda"] == first["lambda"]
        assert row["val_acc"] == max(run["val_acc"] for run in row["grid"].values())
    assert json.loads((tmp_path / "results.json").read_text())[0]["rate"] == 0.2
    table = (tmp_path / "results.md").read_text()
    assert "prior taken out" in table and "chance" in table and "synib_random_ema_noise" in table
    assert (tmp_path / "results.png").stat().st_size > 1000

