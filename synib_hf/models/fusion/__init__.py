"""The vision + text late-fusion classifier (any two `AutoModel` towers; default CLIP-vision + DeBERTa-v2)."""

from .configuration_fusion import FusionConfig
from .modeling_fusion import FusionForSequenceClassification
from .processing_fusion import FusionProcessor, ImageTextCollator


__all__ = ["FusionConfig", "FusionForSequenceClassification", "FusionProcessor", "ImageTextCollator"]
