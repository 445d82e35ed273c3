"""The package as a user installs it: a wheel built from the tracked files, its data and metadata, and the `synib-hf`
command run from outside the clone against the wheel's files alone (not the editable checkout).

A full fresh-venv install (`pip install .` with its dependencies resolved) takes minutes; these checks take seconds
and cover what breaks such an install: missing package data, an import of an undeclared package, metadata.
"""

import ast
import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent

# import name → distribution, for the modules the package imports under another name
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn"}
OPTIONAL = {"sklearn": "sklearn", "trl": "trl"}  # imported only through synib_hf.extras.require, which names the extra


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the tracked files (the build writes build/ and *.egg-info beside its source)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                            str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    return next(out.glob("synib_hf-*.whl"))


def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def test_wheel_ships_templates_recipes_metric_license_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for needed in ("synib_hf/model_cards/synib_model_card.md", "synib_hf/cli/recipes/tiny.yaml",
                   "synib_hf/cli/recipes/hateful_memes_clip_deberta_lora.yaml",
                   "synib_hf/metrics/synergy_subset/synergy_subset.py", "synib_hf/trainers/synib_trainer.py"):
        assert needed in names, needed
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "synib-hf = synib_hf_launcher:main" in entry_points and "synib_hf_launcher.py" in names
    assert not any(n.startswith(("tests/", "scripts/", "docs/")) for n in names)


def test_metadata_license_urls_classifiers_and_extras(wheel):
    meta = metadata(wheel)
    assert meta["License"] == "Apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()
    assert any(url.startswith("Paper, https://arxiv.org/abs/2606.09853") for url in meta.get_all("Project-URL"))
    assert "Programming Language :: Python :: 3.11" in meta.get_all("Classifier")
    requires = meta.get_all("Requires-Dist")
    assert not any(r.startswith("scikit-learn") and "extra" not in r for r in requires)  # optional
    test_extra = {r.split(">")[0].split("=")[0] for r in requires if 'extra == "test"' in r}
    assert {"pytest", "scikit-learn", "matplotlib"} <= test_extra  # `.[test]` installs what the suite imports


def third_party_imports(folder: Path) -> set:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("synib_hf", "trainers",
                                                                              "synib_hf_launcher")}


def test_every_imported_package_is_a_declared_dependency(wheel):
    requires = metadata(wheel).get_all("Requires-Dist")
    required = {r.split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requires if "extra" not in r}
    for module in third_party_imports(ROOT / "synib_hf") | third_party_imports(ROOT / "trainers"):
        distribution = DISTRIBUTIONS.get(module, module).lower()
        if module in OPTIONAL:
            assert any(f'extra == "{OPTIONAL[module]}"' in r for r in requires if r.startswith(distribution)), module
        else:
            assert distribution.replace("-", "_") in {r.replace("-", "_") for r in required}, module


def test_command_runs_from_outside_the_clone_on_the_wheel_alone(wheel, tmp_path):
    site, outside = tmp_path / "site", tmp_path / "elsewhere"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # what `pip install` puts in site-packages
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import synib_hf, synib_hf.trainers; print(synib_hf.__file__)"],
                           cwd=outside, env=env, capture_output=True, text=True, timeout=300)
    assert where.stdout.strip() == str(site / "synib_hf" / "__init__.py"), where.stderr[-2000:]
    train = subprocess.run(
        [sys.executable, "-m", "synib_hf", "train", "tiny", "--num_train_epochs", "1", "--fixture_rows", "16",
         "--disable_tqdm", "true"], cwd=outside, env=env, capture_output=True, text=True, timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    written = outside / "runs" / "tiny-synib"  # the shipped recipe's relative folders, under the working directory
    expected = {"README.md", "config.json", "model.safetensors", "test_results.json"}
    assert expected <= {p.name for p in written.iterdir()}


def test_the_command_answers_help_without_importing_torch(wheel, tmp_path):
    """The console script's module runs the dispatch without importing `synib_hf` (torch, transformers: seconds);
    `python scripts/bench_cli_help.py` times it."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = ("import sys, synib_hf_launcher; status = synib_hf_launcher.main(['--help']); "
             "print('torch imported' if 'torch' in sys.modules else 'no torch', status)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: synib-hf COMMAND" in result.stdout and result.stdout.strip().endswith("no torch 0")
