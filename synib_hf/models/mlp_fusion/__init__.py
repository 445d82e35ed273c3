"""The late-fusion MLP over vector modalities (the Gaussian-XOR and irony benchmarks' model)."""

from .configuration_mlp_fusion import AUTHORS_XOR_MODEL, MLPFusionConfig
from .modeling_mlp_fusion import MLPFusionForClassification


__all__ = ["AUTHORS_XOR_MODEL", "MLPFusionConfig", "MLPFusionForClassification"]
