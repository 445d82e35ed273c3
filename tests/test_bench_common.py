"""The benchmarks' shared method table: every entry names a real trainer whose arguments class has the fields the
entry sets and searches, so a benchmark can take any method through one line."""

from dataclasses import fields

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
    assert common.mean_std([0.5, 0.7, float("nan")]) == "0.600 ± 0.100"


def test_trainer_and_args_builds_the_trainers_own_arguments_class(tmp_path):
    trainer_class, args = common.trainer_and_args("mlb", 3.0, "shuffle", output_dir=str(tmp_path), report_to="none",
                                                  learning_rate=1e-3)
    assert trainer_class is synib_hf.MLBTrainer and isinstance(args, synib_hf.BalancingConfig)
    assert (args.mlb_alpha, args.learning_rate) == (3.0, 1e-3) and not hasattr(args, "synib_weight")
    trainer_class, args = common.trainer_and_args("synib_random", 10.0, "ema_noise", output_dir=str(tmp_path),
                                                  report_to="none")
    assert trainer_class is synib_hf.SynIBTrainer and type(args) is synib_hf.SynIBConfig
    assert (args.synib_weight, args.mask_fill, args.mask_ratio) == (10.0, "ema_noise", 0.3)
