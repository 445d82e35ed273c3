"""Models that implement SynIB's native protocol (`synib_hf.native`), one folder each in transformers' layout
(`configuration_<name>.py`, `modeling_<name>.py`, `processing_<name>.py`), and LoRA presets for them (`fusion_lora.py`); `vlm/` holds what
SynIB knows about generative vision-language model families (their facts for the embedding view builder, the
classification-head variant, LoRA presets). Models
depend on the core (`synib_hf.native`, `synib_hf.penalties`); the core never imports them."""

from .fusion import FusionConfig, FusionForSequenceClassification, FusionProcessor, ImageTextCollator
from .fusion_lora import lora_config_for
from .mlp_fusion import AUTHORS_XOR_MODEL, MLPFusionConfig, MLPFusionForClassification
from .vlm import VLMClassificationConfig, VLMForSequenceClassification, embedding_views, vlm_lora_config


__all__ = [
    "AUTHORS_XOR_MODEL",
    "FusionConfig",
    "FusionForSequenceClassification",
    "FusionProcessor",
    "ImageTextCollator",
    "MLPFusionConfig",
    "MLPFusionForClassification",
    "VLMClassificationConfig",
    "VLMForSequenceClassification",
    "embedding_views",
    "lora_config_for",
    "vlm_lora_config",
]
