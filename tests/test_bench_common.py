"""The benchmarks' shared method table: every entry names a real trainer whose arguments class has the fields the
entry sets and searches, so a benchmark can take any method through one line."""

from dataclasses import fields
from pathlib import Path

import pytest

import synib_hf
from scripts_loader import load_script


common = load_script("bench_common")


@pytest.mark.parametrize("method", list(common.METHODS))
def test_every_method_names_a_trainer_whose_arguments_accept_it(method, tmp_path):
    trainer_name, overrides, searched = common.METHODS[method]
    trainer_class = getattr(synib_hf, trainer_name)
    names = {f.name for f in fields(trainer_class.args_class)}
    assert set(overrides) <= names and (searched is None or searched in names)
    value = common.grid(method, [1.0])[0]
    _, arguments = common.arguments(method, value, "shuffle",
                                    **({"oracle_coordinates": {"x1": [0]}} if method == "synib_oracle" else {}))
    trainer_class.args_class(output_dir=str(tmp_path), report_to="none", **arguments)  # the arguments validate


def test_arguments_set_the_searched_value_and_the_fill_only_where_it_matters():
    assert common.arguments("ogm_ge", 0.3, "shuffle") == ("OGMGETrainer", {"ogm_alpha": 0.3})
    assert common.arguments("synib_random", 10.0, "ema_noise") == (
        "SynIBTrainer", {"mask_type": "random", "mask_ratio": 0.3, "synib_weight": 10.0, "mask_fill": "ema_noise"})
    assert common.grid("ce", [1.0]) == [None] and common.grid("synib_learned", [1.0, 10.0]) == [1.0, 10.0]
    assert common.grid("mlb", [1.0]) == common.GRIDS["mlb_alpha"]
    assert common.label({"method": "dropout", "mask_fill": "shuffle"}) == "dropout (shuffle)"
    assert common.label({"method": "ce", "mask_fill": "shuffle"}) == "ce"
    assert common.mean_std([0.5, 0.7, float("nan")]) == "0.600 ± 0.141"  # NaN left out, sample std


def test_trainer_and_args_builds_the_trainers_own_arguments_class(tmp_path):
    trainer_class, args = common.trainer_and_args("mlb", 3.0, "shuffle", output_dir=str(tmp_path), report_to="none",
                                                  learning_rate=1e-3)
    assert trainer_class is synib_hf.MLBTrainer and isinstance(args, synib_hf.BalancingConfig)
    assert (args.mlb_alpha, args.learning_rate) == (3.0, 1e-3) and not hasattr(args, "synib_weight")
    trainer_class, args = common.trainer_and_args("synib_random", 10.0, "ema_noise", output_dir=str(tmp_path),
                                                  report_to="none")
    assert trainer_class is synib_hf.SynIBTrainer and type(args) is synib_hf.SynIBConfig
    assert (args.synib_weight, args.mask_fill, args.mask_ratio) == (10.0, "ema_noise", 0.3)


def test_mean_std_gives_the_sample_std_by_default_and_the_population_std_with_ddof_0():
    assert common.mean_std([0.5, 0.7]) == "0.600 ± 0.141"  # every committed table: ddof = 1, as papers report it
    assert common.mean_std([0.5, 0.7], ddof=0) == "0.600 ± 0.100"
    assert common.mean_std([0.5, float("nan")], ddof=1) == "0.500"  # one value has no sample std
    assert common.mean_std([float("nan")], ddof=1) == "–"


def test_paired_counts_compare_seed_by_seed():
    assert common.paired_counts({0: 0.9, 1: 0.5, 2: 0.7, 3: 0.6}, {0: 0.8, 1: 0.6, 2: 0.7, 4: 0.1}) == "1↑ 1↓ of 3"
    assert common.paired_counts({0: float("nan"), 1: 0.9}, {0: 0.5, 1: 0.5}) == "1↑ 0↓ of 1"


BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
COMMITTED_TABLES = {  # table folder → (script, the results it is rendered from, extra arguments)
    **{folder: ("bench_xor", folder, []) for folder in ("xor", "xor_ema_noise", "xor_heldout", "xor_layernorm")},
    "xor_select_val_synergy": ("bench_xor", "xor", ["--select", "val_synergy_acc"]),
    **{folder: ("bench_irony", folder, []) for folder in ("irony", "irony_ema_noise")},
    "easy_vqa": ("bench_easy_vqa", "easy_vqa", []),
    "xor_ablation": ("bench_xor_ablation", "xor_ablation", []),
    "easy_vqa_control": ("bench_easy_vqa_control", "easy_vqa_control", []),
    "easy_vqa_control/concat_fusion": ("bench_easy_vqa_control", "easy_vqa_control/concat_fusion", []),
    "easy_vqa_control/ema_noise_fill": ("bench_easy_vqa_control", "easy_vqa_control/ema_noise_fill", []),
}


@pytest.mark.parametrize("folder", list(COMMITTED_TABLES))
def test_committed_tables_render_byte_for_byte(folder, tmp_path):
    pytest.importorskip("matplotlib")
    script, results, extra = COMMITTED_TABLES[folder]
    load_script(script).main(["--render", str(BENCHMARKS / results / "results.json"), *extra,
                              "--output_dir", str(tmp_path)])
    assert (tmp_path / "results.md").read_bytes() == (BENCHMARKS / folder / "results.md").read_bytes()
    assert "sample std" in (BENCHMARKS / folder / "results.md").read_text()  # ddof = 1 everywhere, and said so


def test_sample_std_leaves_nan_out_and_is_zero_below_two_values():
    assert common.sample_std([0.5, 0.7, float("nan")]) == pytest.approx(0.1414213, rel=1e-6)
    assert common.sample_std([0.5]) == common.sample_std([]) == 0.0
