import subprocess
import sys

import pytest
from transformers import HfArgumentParser

from synib_hf import SynIBConfig


def config(**kwargs):
    return SynIBConfig(output_dir="unused", report_to="none", use_cpu=True, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"synib_weight": -0.1}, "synib_weight must be a finite number >= 0"),
        ({"synib_weight": float("nan")}, "synib_weight must be a finite number >= 0"),
        ({"mask_ratio": 0.0}, r"mask_ratio must be in \(0, 1\], got 0.0"),
        ({"mask_ratio": 1.5}, r"mask_ratio must be in \(0, 1\], got 1.5"),
        ({"synib_penalty": "entropy"}, "synib_penalty='entropy' is not a valid choice"),
        ({"mask_type": "dropout"}, "mask_type='dropout' is not a valid choice"),
        ({"mask_fill": "mean"}, "mask_fill='mean' is not a valid choice"),
        ({"synib_path": "fast"}, "synib_path='fast' is not a valid choice"),
        ({"view_batching": "parallel"}, "view_batching='parallel' is not a valid choice"),
        ({"fill_ema_decay": 1.0}, "fill_ema_decay must be in"),
        ({"learned_mask_steps": 0}, "learned_mask_steps must be a finite number > 0"),
        ({"learned_mask_sparsity_weight": -1.0}, "learned_mask_sparsity_weight must be >= 0"),
        ({"synib_start_step": 5, "synib_end_step": 5}, r"synib_end_step \(5\) must be after synib_start_step \(5\)"),
        ({"mask_type": "oracle"}, "mask_type='oracle' needs oracle_coordinates"),
        ({"modality_keys": {"image": ["pixel_values"]}}, "needs at least two"),
        ({"modality_keys": {"image": "pixel_values", "text": ["input_ids"]}}, r"modality_keys\['image'\] must be"),
        ({"modality_keys": {"a": ["x"], "b": ["x"]}}, "maps 'x' to both 'a' and 'b'"),
        ({"modality_keys": "{not json"}, "modality_keys must be a dict or a JSON object string"),
        ({"masked_modalities": []}, "masked_modalities is empty"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)


def test_json_strings_become_dicts():
    args = config(modality_keys='{"a": ["x1"], "b": ["x2"]}', mask_type="oracle", oracle_coordinates='{"x1": [1, 2]}')
    assert args.modality_keys == {"a": ["x1"], "b": ["x2"]} and args.oracle_coordinates == {"x1": [1, 2]}


def test_command_line_parsing():
    (args,) = HfArgumentParser(SynIBConfig).parse_args_into_dataclasses(
        [
            "--output_dir", "out", "--synib_weight", "0.5", "--mask_type", "full", "--masked_modalities", "text",
            "--modality_keys", '{"image": ["pixel_values"], "text": ["input_ids"]}', "--synib_end_step", "10",
            "--report_to", "none",
        ]
    )
    assert (args.synib_weight, args.mask_type, args.masked_modalities, args.synib_end_step) == (0.5, "full", ["text"], 10)
    assert args.modality_keys == {"image": ["pixel_values"], "text": ["input_ids"]}


def test_choices_are_enforced_on_the_command_line():
    with pytest.raises(SystemExit):
        HfArgumentParser(SynIBConfig).parse_args_into_dataclasses(["--output_dir", "o", "--mask_type", "dropout"])


def test_help_lists_every_synib_field():
    script = "from transformers import HfArgumentParser; from synib_hf import SynIBConfig; HfArgumentParser(SynIBConfig).parse_args(['--help'])"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("--synib_weight", "--synib_penalty", "--mask_type", "--mask_ratio", "--mask_fill", "--modality_keys",
                 "--learned_mask_steps", "--view_batching", "--detach_masked_features", "--synib_start_step"):
        assert name in result.stdout


def test_help_texts_are_short_and_the_docstring_lists_every_field():
    from synib_hf import BalancingArguments, SynIBArguments

    for arguments in (SynIBArguments, BalancingArguments):
        for field in arguments.method_fields():
            assert len(field.metadata["help"]) <= 300, (field.name, len(field.metadata["help"]))
            assert "%" not in field.metadata["help"].replace("%%", ""), field.name  # argparse formats help with %
            assert field.name in arguments.__doc__, field.name
