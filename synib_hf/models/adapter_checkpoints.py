"""LoRA adapter folders that reload on their own, also when the base model is not a Hub checkpoint.

PEFT records the base model of an adapter as the name it was loaded from (`base_model_name_or_path`). A model built
in code — a fusion model assembled from two towers, a tower built from a config — has no such name, so PEFT writes
`null` and nothing can reload the adapter. [`save_base_reference`] writes, beside the adapter, what rebuilds the base:
its `config.json` (for a fusion model, the checkpoints its towers came from), and the base weights themselves
(`model.safetensors`, LoRA taken out) when some of them came from no checkpoint and the adapter does not hold them.
[`load_adapter_folder`] reads such a folder back into the model class, adapters merged.
"""

import copy
import json
import os
import re
import warnings
from typing import Optional


ADAPTER_CONFIG = "adapter_config.json"
BASE_WEIGHTS = "model.safetensors"  # transformers loads a folder's base weights and then its adapter from this name


def is_adapter_folder(name_or_path) -> bool:
    """Whether `name_or_path` is a local folder holding a PEFT adapter (`adapter_config.json`)."""
    return isinstance(name_or_path, (str, os.PathLike)) and os.path.isfile(os.path.join(name_or_path, ADAPTER_CONFIG))


def base_state_dict(peft_model) -> dict:
    """The base model's weights as they were before adapters were added: LoRA matrices left out, the wrapped layers'
    (`base_layer`) and the modules-to-save's originals (`original_module`) under their own names."""
    state = {}
    for name, tensor in peft_model.get_base_model().state_dict().items():
        if re.search(r"\.lora_(A|B|embedding_A|embedding_B|magnitude_vector)\.", name) or ".modules_to_save." in name:
            continue
        state[name.replace(".base_layer.", ".").replace(".original_module.", ".")] = tensor
    return state


def _covered_by_adapter(name: str, modules_to_save) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules_to_save or ())


def unreproducible_weights(base_model, modules_to_save) -> list:
    """Names of the base weights that come from no checkpoint (built from a config) and that the adapter does not
    hold (not in `modules_to_save`): what a reload could not rebuild from the config alone."""
    config = base_model.config
    named = {"vision_model": getattr(config, "vision_name_or_path", None),
             "text_model": getattr(config, "text_name_or_path", None)}
    if not hasattr(config, "vision_config") or not hasattr(config, "text_config"):
        return [name for name, _ in base_model.named_parameters() if not _covered_by_adapter(name, modules_to_save)]
    missing = []
    for name, _ in base_model.named_parameters():
        name = name.replace(".base_layer.", ".").replace(".original_module.", ".")
        if re.search(r"\.lora_|\.modules_to_save\.", name) or _covered_by_adapter(name, modules_to_save):
            continue
        tower = name.split(".", 1)[0]
        if not named.get(tower):
            missing.append(name)
    return missing


def save_base_reference(model, output_dir: str) -> Optional[str]:
    """Make the adapter saved in `output_dir` reload by itself; call it after `model.save_pretrained(output_dir)`.

    Nothing is written when `model` is not a `PeftModel`, or when PEFT recorded the base model's name. Otherwise the
    base model's `config.json` is written beside the adapter (a fusion model's config names the checkpoints of its
    towers), and, when some base weights come from no checkpoint and are not saved with the adapter (a tower built
    from a config with adapters on it), the base weights (`model.safetensors`, without LoRA). Then
    `FusionForSequenceClassification.from_pretrained(output_dir)` (or `AutoModelForSequenceClassification` after
    `import synib_hf`, and for other transformers models their class's `from_pretrained`) loads base + adapters.

    Returns:
        what was written: `"config"`, `"config+weights"`, or None.

    Example:

    ```python
    >>> trainer.model.save_pretrained("out")          # adapter_config.json: base_model_name_or_path null
    >>> save_base_reference(trainer.model, "out")     # + config.json (+ model.safetensors)
    >>> FusionForSequenceClassification.from_pretrained("out")
    ```
    """
    from peft import PeftModel

    if not isinstance(model, PeftModel) or not os.path.isfile(os.path.join(output_dir, ADAPTER_CONFIG)):
        return None
    with open(os.path.join(output_dir, ADAPTER_CONFIG)) as f:
        adapter_config = json.load(f)
    if adapter_config.get("base_model_name_or_path"):
        return None
    base = model.get_base_model()
    config = copy.deepcopy(base.config)
    config.architectures = [type(base).__name__]
    for sub_config in (getattr(config, "vision_config", None), getattr(config, "text_config", None)):
        if sub_config is not None and os.path.isabs(getattr(sub_config, "_name_or_path", "") or ""):
            sub_config._name_or_path = ""  # a local folder (a packaged copy): the config names the Hub id instead
    config.save_pretrained(output_dir)
    if not unreproducible_weights(base, adapter_config.get("modules_to_save")):
        return "config"
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous().cpu() for name, tensor in base_state_dict(model).items()}
    save_file(state, os.path.join(output_dir, BASE_WEIGHTS), metadata={"format": "pt"})
    return "config+weights"


def load_adapter_folder(model_class, folder, build_base, output_loading_info: bool = False):
    """`model_class` with the adapter of `folder` merged in: the base from `folder/model.safetensors` when it is there,
    else from `build_base(config)` (which loads the parts a config names from their checkpoints).

    Raises:
        CheckpointError: adapter weights that do not fit the base, or weights a reload cannot rebuild.
    """
    from peft import PeftConfig, PeftModel

    from ..checkpoints import CheckpointError, weights_file_problem

    config = model_class.config_class.from_pretrained(folder)
    if os.path.isfile(os.path.join(folder, BASE_WEIGHTS)):
        from safetensors.torch import load_file

        base = model_class(config)
        result = base.load_state_dict(load_file(os.path.join(folder, BASE_WEIGHTS)), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{os.path.join(folder, BASE_WEIGHTS)} does not fit {model_class.__name__} as config.json describes "
                f"it (missing: {result.missing_keys[:5]}, unexpected: {result.unexpected_keys[:5]})."
            )
    else:
        adapter = PeftConfig.from_pretrained(folder)
        base = build_base(config)
        missing = unreproducible_weights(base, adapter.modules_to_save)
        if missing:
            raise CheckpointError(
                f"{folder} holds an adapter whose base cannot be rebuilt: the weights {', '.join(missing[:5])} come "
                "from no checkpoint its config.json names and are not saved with the adapter. Save the adapter with "
                "synib_hf.models.adapter_checkpoints.save_base_reference (it writes the base weights too)."
            )
    peft_config = PeftConfig.from_pretrained(folder)
    peft_config.inference_mode = True
    with warnings.catch_warnings():  # peft 0.21 reads a property transformers 5 deprecated; nothing to act on
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        peft_model = PeftModel(base, peft_config)
    for name in sorted(os.listdir(folder)):
        problem = name.startswith("adapter_model") and weights_file_problem(os.path.join(folder, name))
        if problem:
            raise CheckpointError(f"checkpoint does not load:\n  {os.path.join(folder, name)}: {problem}")
    result = peft_model.load_adapter(folder, adapter_name="default")
    wrong = [key for key in result.missing_keys if ".lora_" in key or ".modules_to_save." in key]
    if wrong or result.unexpected_keys:
        raise CheckpointError(
            f"the adapter in {folder} does not fit {model_class.__name__} as config.json describes it (missing: "
            f"{wrong[:5]}, unexpected: {list(result.unexpected_keys)[:5]})."
        )
    model = peft_model.merge_and_unload().eval()
    if output_loading_info:
        return model, {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    return model
