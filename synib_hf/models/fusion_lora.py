"""LoRA for fusion models: per-tower target presets, heads fully trained, and the trainer's `peft_config` hook."""

from typing import Optional, Sequence

from torch import nn


# Attention projections per tower type (model_type of the tower's config).
LORA_TARGETS = {
    "clip_vision_model": ("q_proj", "k_proj", "v_proj", "out_proj"),
    "clip": ("q_proj", "k_proj", "v_proj", "out_proj"),
    "siglip_vision_model": ("q_proj", "k_proj", "v_proj", "out_proj"),
    "deberta-v2": ("query_proj", "key_proj", "value_proj"),
    "bert": ("query", "key", "value"),
    "roberta": ("query", "key", "value"),
    "vit": ("query", "key", "value"),
}
TOWER_ATTRIBUTES = {"vision": "vision_model", "text": "text_model"}
# Fusion-side modules trained in full (and saved with the adapters).
HEAD_MODULES = ("vision_projection", "text_projection", "fusion", "classifier", "unimodal", "logvar")


def lora_config_for(
    model: nn.Module,
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    towers: Sequence[str] = ("vision", "text"),
    trained_in_full: Sequence[str] = (),
    layers: Optional[Sequence[int]] = None,
    **kwargs,
):
    """A `peft.LoraConfig` with adapters on the attention projections of the chosen towers of a fusion model.

    The projections, fusion head, unimodal heads and logvar head go to `modules_to_save`: trained in full and saved
    with the adapters. So do the towers named in `trained_in_full` (e.g. a small vision tower trained from scratch,
    which adapters on frozen random weights could not train). `layers` keeps the adapters to those transformer layers
    (indices in the towers' `layer.N` / `layers.N` modules): with the top layers only, the frozen layers below need no
    backward pass.

    Example:

    ```python
    >>> config = lora_config_for(model, r=16, towers=("vision", "text"))
    >>> config = lora_config_for(model, towers=("text",), trained_in_full=("vision",))  # easy-VQA recipe
    >>> trainer = SynIBTrainer(model=model, args=args, peft_config=config, ...)
    ```
    """
    from peft import LoraConfig

    patterns = []
    for tower in towers:
        if tower not in TOWER_ATTRIBUTES:
            raise ValueError(f"towers may contain {sorted(TOWER_ATTRIBUTES)}, got {tower!r}.")
        attribute = TOWER_ATTRIBUTES[tower]
        model_type = getattr(model, attribute).config.model_type
        if model_type not in LORA_TARGETS:
            raise ValueError(
                f"No LoRA target preset for a {model_type!r} {tower} tower; known: {sorted(LORA_TARGETS)}. Build a "
                "peft.LoraConfig with target_modules yourself."
            )
        in_layers = "" if layers is None else rf"\.layers?\.({'|'.join(str(int(i)) for i in layers)})\..*"
        patterns.append(rf"{attribute}\..*{in_layers}\.({'|'.join(LORA_TARGETS[model_type])})")
    if not patterns:
        raise ValueError("towers is empty: name at least one of 'vision', 'text'.")
    for tower in trained_in_full:
        if tower not in TOWER_ATTRIBUTES or tower in towers:
            raise ValueError(
                f"trained_in_full may name towers without adapters ({sorted(set(TOWER_ATTRIBUTES) - set(towers))}), "
                f"got {tower!r}."
            )
    heads = [name for name in HEAD_MODULES if getattr(model, name, None) is not None and name != "unimodal"]
    if getattr(model, "unimodal", None) is not None:  # peft wraps modules, not a ModuleDict: name each head
        heads += [f"unimodal.{modality}" for modality in model.unimodal]
    heads += [TOWER_ATTRIBUTES[tower] for tower in trained_in_full]
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=rf"^({'|'.join(patterns)})$",
        modules_to_save=heads,
        **kwargs,
    )
