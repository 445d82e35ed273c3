"""LoRA presets for vision-language models: adapters on the language model only by default."""

from typing import Sequence

from torch import nn

from .families import family_of, inner_model, language_model_name, lora_target_pattern, vision_module_names


# The classification variant's heads: trained in full and saved with the adapters.
HEAD_MODULES = ("readout_norm", "classifier", "logvar")


def vlm_lora_config(
    model: nn.Module,
    r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
    include_vision: bool = False,
    **kwargs,
):
    """A `peft.LoraConfig` for a vision-language model (a `*ForConditionalGeneration` or a
    [`VLMForSequenceClassification`]) with adapters on the language model's `target_modules` only.

    A bare `target_modules=["q_proj", "v_proj"]` also hits the vision tower of LLaVA, Idefics3, SmolVLM, PaliGemma and
    Gemma3 (their towers name their projections the same way); the preset anchors the pattern at the language model.
    `include_vision=True` adds the vision tower's attention projections. Defaults follow the SynIB authors' Qwen3-VL
    setup (r 16, α 32, q/v). The classification heads go to `modules_to_save`.

    Example:

    ```python
    >>> config = vlm_lora_config(model)  # language model q_proj/v_proj, vision tower frozen
    >>> trainer = SynIBTrainer(model=model, args=args, peft_config=config, processing_class=processor)
    ```
    """
    from peft import LoraConfig

    if isinstance(target_modules, str) or not target_modules:
        raise ValueError(f"target_modules must be a non-empty list of projection names, got {target_modules!r}.")
    family = family_of(inner_model(model).config)
    patterns = [lora_target_pattern([language_model_name(model)], target_modules)]
    if include_vision:
        towers = [name for name in vision_module_names(model) if not name.endswith(("projector", "connector"))]
        patterns.append(lora_target_pattern(towers, family.vision_lora_targets))
    heads = [name for name in HEAD_MODULES if getattr(model, name, None) is not None]
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules="|".join(f"(?:{p})" for p in patterns),
        modules_to_save=heads or None,
        **kwargs,
    )
