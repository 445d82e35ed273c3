"""Models that implement SynIB's native protocol (`synib_hf.native`), one folder each in transformers' layout
(`configuration_<name>.py`, `modeling_<name>.py`, `processing_<name>.py`), and LoRA presets for them; `vlm/` holds what
SynIB knows about generative vision-language models (embedding-level views, the classification-head variant). Models
depend on the core (`synib_hf.native`, `synib_hf.penalties`); the core never imports them."""

from .fusion import FusionConfig, FusionForSequenceClassification, FusionProcessor, ImageTextCollator
from .lora import lora_config_for
from .mlp_fusion import AUTHORS_XOR_MODEL, MLPFusionConfig, MLPFusionForClassification
from .vlm import VLMClassificationConfig, VLMForSequenceClassification, VLMViews, vlm_lora_config


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
    "VLMViews",
    "lora_config_for",
    "vlm_lora_config",
]
