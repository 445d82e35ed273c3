"""Generative vision-language models under SynIB: per-family facts (what the embedding view builder needs), the
classification-head variant and LoRA presets."""

from .configuration_vlm import VLMClassificationConfig
from .families import VLM_FAMILIES, VLMFamily, embedding_views, family_of, inner_model, is_vision_language_model
from .modeling_vlm import VLMClassifierOutput, VLMForSequenceClassification
from .vlm_lora import vlm_lora_config


__all__ = [
    "VLM_FAMILIES",
    "VLMClassificationConfig",
    "VLMClassifierOutput",
    "VLMFamily",
    "VLMForSequenceClassification",
    "embedding_views",
    "family_of",
    "inner_model",
    "is_vision_language_model",
    "vlm_lora_config",
]
