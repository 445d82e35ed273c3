"""Optional dependencies: each one, when missing, is named with the `synib-hf[...]` extra that installs it."""

import importlib


# import name → (distribution, the extra that installs it)
OPTIONAL = {"sklearn": ("scikit-learn", "sklearn"), "easy_vqa": ("easy-vqa", "vqa"), "trl": ("trl", "trl")}


def require(module: str, purpose: str):
    """Import the optional dependency `module`, or raise an `ImportError` saying what needs it and how to install it.

    Example:

    ```python
    >>> require("sklearn", "train_unimodal_predictors")
    <module 'sklearn' ...>
    ```
    """
    distribution, extra = OPTIONAL[module]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{purpose} needs {distribution}, which is not installed: pip install 'synib-hf[{extra}]' "
            f"(or pip install {distribution})."
        ) from None
