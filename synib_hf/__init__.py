"""synib-hf: SynIB (Synergistic Information Bottleneck) for the Hugging Face stack.

The core (masking, penalties, models, metrics, data) imports without `datasets` or `evaluate`; `SynIBConfig` and
`SynIBTrainer` live in `synib_hf.trainers` and are re-exported here lazily, so `import synib_hf` stays light and the
core never imports the trainers.
"""

__version__ = "0.1.0"

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoProcessor

from .configuration_fusion import FusionConfig
from .lora import lora_config_for
from .masking import FeatureMasker, InputMasker, MaskRandomness, MaskSpec, TokenIds
from .modeling_fusion import FusionForSequenceClassification
from .modeling_mlp_fusion import MLPFusionConfig, MLPFusionForClassification
from .native import SynIBModelOutput, SynIBNativeMixin
from .penalties import entropy, gaussian, kl_uniform, max_probability, predicted_classes, unimodal_anchor
from .processing_fusion import FusionProcessor, ImageTextCollator


# After `import synib_hf`, the Auto classes load SynIB checkpoints.
AutoConfig.register(MLPFusionConfig.model_type, MLPFusionConfig)
AutoModelForSequenceClassification.register(MLPFusionConfig, MLPFusionForClassification)
AutoConfig.register(FusionConfig.model_type, FusionConfig)
AutoModelForSequenceClassification.register(FusionConfig, FusionForSequenceClassification)
AutoProcessor.register(FusionConfig, FusionProcessor)


_LAZY = {
    name: "synib_hf.trainers" for name in ("SynIBConfig", "SynIBTrainer", "ModalityDropoutTrainer", "MultilossTrainer")
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synib_hf' has no attribute {name!r}")


__all__ = [
    "FeatureMasker",
    "FusionConfig",
    "FusionForSequenceClassification",
    "FusionProcessor",
    "ImageTextCollator",
    "lora_config_for",
    "InputMasker",
    "MaskRandomness",
    "MaskSpec",
    "ModalityDropoutTrainer",
    "MultilossTrainer",
    "MLPFusionConfig",
    "MLPFusionForClassification",
    "SynIBConfig",
    "SynIBModelOutput",
    "SynIBNativeMixin",
    "SynIBTrainer",
    "TokenIds",
    "entropy",
    "gaussian",
    "kl_uniform",
    "max_probability",
    "predicted_classes",
    "unimodal_anchor",
]
