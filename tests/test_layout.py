"""Dependencies point one way: scripts and the `synib-hf` command (`synib_hf.cli`) → `synib_hf.trainers` → the core;
models and data depend on the core, never the reverse (checked on the import statements of every module, so a new
upward import fails here)."""

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "synib_hf"


def imported_modules(path: Path, package: str) -> set:
    """Absolute names of the synib_hf modules `path` imports (relative imports resolved against `package`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("synib_hf")}


def package_of(path: Path, root: Path, name: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join([name, *parts[:-1]]) if parts[-1] != "__init__" else ".".join([name, *parts[:-1]])


def modules(root: Path, name: str):
    for path in sorted(root.rglob("*.py")):
        yield path, package_of(path, root, name)


CORE = [p for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]  # the facade and `python -m`
CORE += sorted((PACKAGE / "masking").glob("*.py")) + sorted((PACKAGE / "view_builders").glob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_imports_no_model_data_or_trainer(path):
    upward = {m for m in imported_modules(path, package_of(path, PACKAGE, "synib_hf"))
              if m.startswith(("synib_hf.models", "synib_hf.data", "synib_hf.trainers", "synib_hf.cli"))}
    assert not upward, f"{path.name} imports {sorted(upward)}: the core must not depend on models, data or trainers"


@pytest.mark.parametrize("folder", ["models", "data"])
def test_models_and_data_never_import_trainers_or_the_command(folder):
    for path, package in modules(PACKAGE / folder, f"synib_hf.{folder}"):
        upward = {m for m in imported_modules(path, package) if m.startswith(("synib_hf.trainers", "synib_hf.cli"))}
        assert not upward, f"{path} imports {sorted(upward)}"


def test_trainers_never_import_the_command():
    for path, package in modules(ROOT / "trainers", "synib_hf.trainers"):
        assert not {m for m in imported_modules(path, package) if m.startswith("synib_hf.cli")}, path


def test_data_and_models_do_not_import_each_other():
    for folder, other in (("models", "synib_hf.data"), ("data", "synib_hf.models")):
        for path, package in modules(PACKAGE / folder, f"synib_hf.{folder}"):
            assert not {m for m in imported_modules(path, package) if m.startswith(other)}, path


def test_imports_resolve_relative_paths():
    """The checker itself: a relative import two levels up is seen as the absolute module it names."""
    path = PACKAGE / "models" / "fusion" / "modeling_fusion.py"
    assert "synib_hf.native" in imported_modules(path, "synib_hf.models.fusion")


def test_no_module_name_is_used_twice():
    """One job per file, named for what it holds: a file name says which module it is (transformers' per-model
    `configuration_*` / `modeling_*` / `processing_*` files and `__init__.py` aside)."""
    seen = {}
    for root in (PACKAGE, ROOT / "trainers"):
        for path in root.rglob("*.py"):
            if path.name in ("__init__.py", "__main__.py") or path.name.startswith(
                    ("configuration_", "modeling_", "processing_")):
                continue
            assert path.name not in seen, f"{path} and {seen[path.name]} share a name"
            seen[path.name] = path


def module_graph() -> dict:
    """Each synib_hf module file → the module files it imports, anywhere in it (imports inside functions too: a lazy
    import only hides a cycle). Packages (`__init__.py`) are facades that re-export their modules; importing one is
    not an edge to the modules behind it."""
    files = {}
    for root, name in ((PACKAGE, "synib_hf"), (ROOT / "trainers", "synib_hf.trainers")):
        for path, package in modules(root, name):
            if path.name not in ("__init__.py", "__main__.py"):
                files[f"{package}.{path.stem}"] = (path, package)
    graph = {}
    for module, (path, package) in files.items():
        imported = imported_modules(path, package)
        graph[module] = {target for target in imported if target in files and target != module}
    return graph


def test_no_import_cycle():
    graph = module_graph()
    assert graph["synib_hf.masking.feature_masking"] >= {"synib_hf.masking.input_masking", "synib_hf.masking.fills"}
    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " → ".join([*trail, module])
        state[module] = "open"
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])
