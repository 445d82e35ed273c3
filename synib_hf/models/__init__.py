"""Models that implement SynIB's native protocol (`synib_hf.native`), one folder each in transformers' layout
(`configuration_<name>.py`, `modeling_<name>.py`, `processing_<name>.py`), and LoRA presets for them. Models depend on
the core (`synib_hf.native`, `synib_hf.penalties`); the core never imports them."""

from .fusion import FusionConfig, FusionForSequenceClassification, FusionProcessor, ImageTextCollator
from .lora import lora_config_for
from .mlp_fusion import AUTHORS_XOR_MODEL, MLPFusionConfig, MLPFusionForClassification


__all__ = [
    "AUTHORS_XOR_MODEL",
    "FusionConfig",
    "FusionForSequenceClassification",
    "FusionProcessor",
    "ImageTextCollator",
    "MLPFusionConfig",
    "MLPFusionForClassification",
    "lora_config_for",
]
