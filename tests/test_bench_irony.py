import json

from scripts_loader import load_script


def test_smoke_run_writes_rows_tables_and_plot_with_both_fills(tmp_path):
    bench = load_script("bench_irony")
    rows = bench.main(["--output_dir", str(tmp_path), "--datasets", "breast_cancer", "--rates", "0.3", "--seeds", "0",
                       "--epochs", "1", "--lambdas", "0.1", "--methods", "ce", "mlb", "synib_random",
                       "--mask_fills", "shuffle", "ema_noise"])
    assert [(r["method"], r["mask_fill"]) for r in rows] == [
        ("ce", None), ("mlb", None), ("synib_random", "shuffle"), ("synib_random", "ema_noise")]
    assert rows[1]["searched"] == "mlb_alpha" and sorted(rows[1]["grid"]) == ["0.5", "1.5", "3.0"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {"dataset", "rate", "method", "seed", "lambda", "overall_acc", "synergy_acc", "synergy_size", "irony_acc",
            "irony_size"} <= set(saved[0])
    assert saved[0]["irony_size"] == 17  # round(0.3 × 114 test examples / 2 classes)
    table = (tmp_path / "results.md").read_text()
    for heading in ("Irony class: the ground-truth synergy slice", "Synergy subset", "Overall test accuracy"):
        assert heading in table
    assert "| *chance (1/C, uniform guessing)* | 0.333 |" in table  # benign, malignant, irony
    assert "| *irony test examples (mean over seeds)* | 17 |" in table and "| synib_random (ema_noise) |" in table
    assert "**The fill: irony class with `shuffle` minus with `ema_noise`**" in table
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_render_merges_old_rows_and_recounts_them(tmp_path):
    bench = load_script("bench_irony")
    old = {"dataset": "breast_cancer", "rate": 0.3, "method": "ce", "seed": 0, "mask_fill": "ema_noise", "lambda": 0.0,
           "overall_acc": 0.9, "synergy_acc": 0.7, "synergy_size": 20, "val_acc": 0.9, "irony_acc": 0.8}
    (tmp_path / "old.json").write_text(json.dumps([old, {**old, "mask_fill": "shuffle"}]))
    rows = bench.main(["--render", str(tmp_path / "old.json"), "--output_dir", str(tmp_path / "out")])
    assert len(rows) == 1 and rows[0]["mask_fill"] is None and rows[0]["irony_size"] == 17
