import json

from scripts_loader import load_script


def test_smoke_run_writes_rows_table_and_plot_with_the_fill(tmp_path):
    bench = load_script("bench_irony")
    rows = bench.main(["--output_dir", str(tmp_path), "--datasets", "breast_cancer", "--rates", "0.3", "--seeds", "0",
                       "--epochs", "1", "--lambdas", "0.1", "--mask_fill", "shuffle"])
    assert [r["method"] for r in rows] == ["ce", "dropout", "synib_random", "synib_learned"]
    assert {r["mask_fill"] for r in rows} == {"shuffle"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {"dataset", "rate", "method", "seed", "lambda", "overall_acc", "synergy_acc", "synergy_size"} <= set(saved[0])
    assert "mask fill shuffle" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 1000
