"""What SynIB needs to know about each generative vision-language model family, in one table.

Every family merges its image features into the language model's input embeddings with `masked_scatter` at the
image-token positions (`config.image_token_id`), and accepts precomputed image features as `mm_encoder_outputs`, so
the views differ only in the facts below. A model of another family is refused with the list of supported ones.
"""

import re
from dataclasses import dataclass
from typing import Optional

from torch import nn

from ...masking import PackedFeatures
from ...view_builders import EmbeddingViews
from .configuration_vlm import VLMClassificationConfig


@dataclass(frozen=True)
class VLMFamily:
    """Per-family facts (`model_type` of the composite config).

    Args:
        vision_inputs: inputs the vision tower consumes (`get_image_features`); shared vision runs them once.
        row_vision_inputs: vision inputs the language side also reads per image row and that are therefore repeated
            with the views (Qwen's `image_grid_thw`, read for M-RoPE positions).
        required_inputs: inputs the family needs beside `input_ids` and the pixels (a clear error names them).
        encoder_output_fields: fields of `get_image_features`' output the language model consumes.
        packed_features: extra per-position language-model inputs of the image (Qwen3-VL's deepstack features).
        caches_rope_deltas: the inner model caches `rope_deltas` between calls (reset before every view forward).
        vision_modules: attributes of the inner model that make up the vision side (tower and projector).
        vision_lora_targets: attention projections of the vision tower, for LoRA presets that include it.
        noncausal_prefix: why attention over the prompt is not causal (None where it is): the masked views can then
            neither share the clean view's prefix nor drop the image (`synib_hf.masking.view_packing`).
    """

    vision_inputs: tuple = ("pixel_values",)
    row_vision_inputs: tuple = ()
    required_inputs: tuple = ()
    encoder_output_fields: tuple = ("pooler_output",)
    packed_features: tuple = ()
    caches_rope_deltas: bool = False
    vision_modules: tuple = ("vision_tower", "multi_modal_projector")
    vision_lora_targets: tuple = ("q_proj", "v_proj")
    noncausal_prefix: Optional[str] = None


_QWEN = dict(
    vision_inputs=("pixel_values", "image_grid_thw"),
    row_vision_inputs=("image_grid_thw",),
    required_inputs=("image_grid_thw", "mm_token_type_ids"),
    caches_rope_deltas=True,
    vision_modules=("visual",),
    vision_lora_targets=("qkv",),
)
_IDEFICS = dict(
    vision_inputs=("pixel_values", "pixel_attention_mask"),
    required_inputs=("pixel_attention_mask",),
    vision_modules=("vision_model", "connector"),
)

VLM_FAMILIES = {
    "llava": VLMFamily(vision_inputs=("pixel_values", "image_sizes")),
    "qwen2_vl": VLMFamily(**_QWEN),
    "qwen2_5_vl": VLMFamily(**_QWEN),
    # Deepstack: visual features of intermediate vision layers are added to early decoder layers at the image
    # positions; unmasked, they leak the image into the masked image view.
    "qwen3_vl": VLMFamily(
        **{**_QWEN, "encoder_output_fields": ("pooler_output", "deepstack_features")},
        packed_features=(PackedFeatures("deepstack_visual_embeds", "visual_pos_masks", "image"),),
    ),
    "idefics3": VLMFamily(**_IDEFICS),
    "smolvlm": VLMFamily(**_IDEFICS),
    "paligemma": VLMFamily(noncausal_prefix="PaliGemma's prefix-LM attention is bidirectional over the image and "
                           "the prompt, so the prompt changes the image tokens' states"),
    "gemma3": VLMFamily(noncausal_prefix="Gemma3's image tokens attend to each other bidirectionally and its "
                        "sliding-window layers need their own mask"),
}


def family_of(config) -> VLMFamily:
    """The [`VLMFamily`] of a composite VLM config.

    Raises:
        ValueError: the family is not supported, or the config has no image token id.
    """
    model_type = getattr(config, "model_type", None)
    if model_type not in VLM_FAMILIES:
        raise ValueError(
            f"Embedding-level SynIB supports the vision-language families {sorted(VLM_FAMILIES)}; got a "
            f"{model_type!r} model. For other models use synib_path='generic' (classifiers) or open an issue."
        )
    if getattr(config, "image_token_id", None) is None:
        raise ValueError(f"The {model_type} config has no image_token_id; set it to the image placeholder's token id.")
    return VLM_FAMILIES[model_type]


def inner_model(model: nn.Module) -> nn.Module:
    """The module that merges image features into the embeddings (`LlavaModel`, `Qwen2VLModel`, ...): `model.model`
    of a `*ForConditionalGeneration` or of a [`VLMForSequenceClassification`], or `model` itself."""
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module) and hasattr(inner, "get_image_features"):
        return inner
    if hasattr(model, "get_image_features"):
        return model
    raise ValueError(
        f"{type(model).__name__} has no `get_image_features`; SynIB's vision-language path needs a transformers "
        "vision-language model (AutoModelForImageTextToText) or a VLMForSequenceClassification."
    )


def is_vision_language_model(model: nn.Module) -> bool:
    """Whether `model` (unwrapped) is a generative VLM of a supported family or a [`VLMForSequenceClassification`]."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type == VLMClassificationConfig.model_type:
        return True
    return model_type in VLM_FAMILIES and hasattr(model, "get_image_features")


def embedding_views(model: nn.Module, spec, randomness, special_ids=(), **options) -> EmbeddingViews:
    """The [`EmbeddingViews`] builder of a VLM of a supported family (or a [`VLMForSequenceClassification`] around
    one), with its family's facts; `options` are the builder's keyword arguments (`candidate_ids`, `share_vision`,
    `lean_logits`, `view_batching`, `masked_modalities`, `view_loss`, `share_prefix`, `drop_image`,
    `prompt_layout`).

    Example:

    ```python
    >>> builder = embedding_views(model, MaskSpec(mask_type="full"), MaskRandomness(seed=0), tokenizer.all_special_ids,
    ...                           candidate_ids=candidate_token_ids(tokenizer, ["yes", "no"]))
    ```
    """
    inner = inner_model(model)
    return EmbeddingViews(model, inner, family_of(inner.config), spec, randomness, special_ids, **options)


def module_name(root: nn.Module, module: nn.Module) -> str:
    """The qualified name of `module` inside `root`."""
    for name, candidate in root.named_modules():
        if candidate is module:
            return name
    raise ValueError(f"{type(module).__name__} is not a submodule of {type(root).__name__}.")


def vision_module_names(model: nn.Module) -> list:
    """Qualified names (inside `model`) of the vision tower and projector of a VLM."""
    inner = inner_model(model)
    family = family_of(inner.config)
    prefix = module_name(model, inner)
    return [f"{prefix}.{name}".lstrip(".") for name in family.vision_modules if hasattr(inner, name)]


def language_model_name(model: nn.Module) -> str:
    """The qualified name (inside `model`) of the language model (`get_decoder()` of the inner model)."""
    return module_name(model, inner_model(model).get_decoder())


def lora_target_pattern(prefixes, projections) -> str:
    """A PEFT `target_modules` regex matching the `projections` anywhere under the module names `prefixes`."""
    roots = "|".join(re.escape(p) for p in prefixes)
    return rf"^({roots})\..*\.({'|'.join(re.escape(p) for p in projections)})$"
