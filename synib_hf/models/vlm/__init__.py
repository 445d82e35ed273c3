"""Generative vision-language models under SynIB: per-family facts, embedding-level views in one forward, the
classification-head variant and LoRA presets."""

from .configuration_vlm import VLMClassificationConfig
from .families import VLM_FAMILIES, VLMFamily, family_of
from .lora import vlm_lora_config
from .modeling_vlm import VLMClassifierOutput, VLMForSequenceClassification
from .views import ViewReadout, VLMViews


__all__ = [
    "VLM_FAMILIES",
    "VLMClassificationConfig",
    "VLMClassifierOutput",
    "VLMFamily",
    "VLMForSequenceClassification",
    "VLMViews",
    "ViewReadout",
    "family_of",
    "vlm_lora_config",
]
