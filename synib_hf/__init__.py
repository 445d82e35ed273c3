"""synib-hf: SynIB (Synergistic Information Bottleneck) for the Hugging Face stack.

Layout (dependencies point one way: scripts → `synib_hf.trainers` → this package's core; models and data depend on
the core, never the reverse):

* the method's core, flat here: `masking` (feature-level masking, fills, randomness), `input_masking` and
  `input_kinds` (input-level masking by each input's structure), `learned_mask`, `penalties` (Ω), `tasks` (problem
  types: task loss, penalty form, label checks), `native` (the protocol of models whose masked views re-run only a
  fusion head), `views` (the generic path's plumbing), `balancing` (the rules of the modality-balancing baselines),
  `embedding_masking` (views inside one forward of a vision-language model) and `generative` (the verbalizer read-out
  of models that answer in tokens);
* `models/` — models implementing the native protocol, in transformers' layout (`fusion/`, `mlp_fusion/`) and their
  LoRA presets (`models/lora.py`); `models/vlm/` — per-family facts of generative vision-language models, their
  embedding-level views, `VLMForSequenceClassification` and LoRA presets;
* `data/` — data sets (`xor`, `irony`, `hateful_memes`);
* evaluation and the Hub: `synergy` (synergy-subset evaluation), `metrics/` (the `evaluate` module), `model_card`.

The core imports without `datasets` or `evaluate`; `SynIBConfig` and the trainers live in `synib_hf.trainers` and are
re-exported here lazily, so `import synib_hf` stays light and the core never imports the trainers.
"""

__version__ = "0.1.0"

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoProcessor

from .embedding_masking import EmbeddingMasker, PackedFeatures, modality_positions
from .generative import answer_positions, candidate_token_ids
from .input_masking import InputMasker, TokenIds
from .masking import FeatureMasker, MaskRandomness, MaskSpec
from .models import (
    FusionConfig,
    FusionForSequenceClassification,
    FusionProcessor,
    ImageTextCollator,
    MLPFusionConfig,
    MLPFusionForClassification,
    VLMClassificationConfig,
    VLMForSequenceClassification,
    VLMViews,
    lora_config_for,
    vlm_lora_config,
)
from .native import SynIBModelOutput, SynIBNativeMixin
from .penalties import entropy, gaussian, kl_uniform, max_probability, predicted_classes, unimodal_anchor


# After `import synib_hf`, the Auto classes load SynIB checkpoints.
AutoConfig.register(MLPFusionConfig.model_type, MLPFusionConfig)
AutoModelForSequenceClassification.register(MLPFusionConfig, MLPFusionForClassification)
AutoConfig.register(FusionConfig.model_type, FusionConfig)
AutoModelForSequenceClassification.register(FusionConfig, FusionForSequenceClassification)
AutoProcessor.register(FusionConfig, FusionProcessor)
AutoConfig.register(VLMClassificationConfig.model_type, VLMClassificationConfig)
AutoModelForSequenceClassification.register(VLMClassificationConfig, VLMForSequenceClassification)


_LAZY = {
    name: "synib_hf.trainers"
    for name in (
        "SynIBConfig", "SynIBTrainer", "ModalityDropoutTrainer", "MultilossTrainer",
        "BalancingConfig", "OGMGETrainer", "MMParetoTrainer", "MLBTrainer", "UnimodalEnsembleTrainer",
    )
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synib_hf' has no attribute {name!r}")


__all__ = [
    "BalancingConfig",
    "EmbeddingMasker",
    "FeatureMasker",
    "FusionConfig",
    "FusionForSequenceClassification",
    "FusionProcessor",
    "ImageTextCollator",
    "lora_config_for",
    "InputMasker",
    "MaskRandomness",
    "MaskSpec",
    "MLBTrainer",
    "MMParetoTrainer",
    "ModalityDropoutTrainer",
    "MultilossTrainer",
    "MLPFusionConfig",
    "MLPFusionForClassification",
    "OGMGETrainer",
    "PackedFeatures",
    "SynIBConfig",
    "SynIBModelOutput",
    "SynIBNativeMixin",
    "SynIBTrainer",
    "TokenIds",
    "UnimodalEnsembleTrainer",
    "VLMClassificationConfig",
    "VLMForSequenceClassification",
    "VLMViews",
    "answer_positions",
    "candidate_token_ids",
    "entropy",
    "gaussian",
    "kl_uniform",
    "max_probability",
    "modality_positions",
    "predicted_classes",
    "unimodal_anchor",
    "vlm_lora_config",
]
