"""Generative vision-language models under SynIB: per-family facts (what the embedding view builder needs), the
classification-head variant, LoRA presets, and where the user's content sits in a chat template."""

from .chat_template import prompt_layout
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
    "prompt_layout",
    "vlm_lora_config",
]
