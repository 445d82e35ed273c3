"""synib-hf: SynIB (Synergistic Information Bottleneck) for the Hugging Face stack.

One training step is three pieces:

* `objective` — SynIB's loss as a pure function of one batch's views (`synib_objective`, `Views`);
* `view_builders` — `(model, inputs) → Views` for each path: `NativeViews` (models implementing `SynIBNativeMixin`),
  `InputViews` (any model returning scores), `EmbeddingViews` (generative vision-language models);
* `SynIBMixin` (in `synib_hf.trainers`) — composes them inside any `transformers.Trainer` subclass; `SynIBTrainer`
  is `SynIBMixin` + `Trainer`.

Around them: `masking/` (the masking operators M_m, one package), `penalties` (Ω), `tasks` (problem types),
`native` (the protocol of fusion models), `generative` (the verbalizer read-out), `balancing` (the balancing
baselines' rules); `models/` (fusion models in transformers' layout, VLM family facts), `data/` (data sets);
`synergy`, `metrics/`, `model_card`, `checkpoints` (evaluation, cards, checked loading); `cli/` (the `synib-hf`
command). Dependencies point one way: the command → `synib_hf.trainers` → the core; models and data → the core.

Everything public is re-exported here; the trainers and data sets are imported on first use, so `import synib_hf`
stays light (no `datasets`, no `evaluate`).
"""

__version__ = "0.1.0"

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoProcessor

from .generative import answer_positions, candidate_token_ids
from .masking import (
    EmbeddingMasker,
    FeatureMasker,
    InputMasker,
    MaskRandomness,
    MaskSpec,
    PackedFeatures,
    TokenIds,
    modality_positions,
)
from .model_card import build_model_card
from .models import (
    FusionConfig,
    FusionForSequenceClassification,
    FusionProcessor,
    ImageTextCollator,
    MLPFusionConfig,
    MLPFusionForClassification,
    VLMClassificationConfig,
    VLMForSequenceClassification,
    embedding_views,
    lora_config_for,
    vlm_lora_config,
)
from .native import SynIBModelOutput, SynIBNativeMixin
from .objective import ObjectiveOutput, Views, synib_objective, view_losses
from .penalties import entropy, gaussian, kl_uniform, max_probability, predicted_classes, unimodal_anchor
from .synergy import synergy_compute_metrics
from .tasks import Task
from .view_builders import EmbeddingViews, InputViews, NativeViews


# After `import synib_hf`, the Auto classes load SynIB checkpoints.
AutoConfig.register(MLPFusionConfig.model_type, MLPFusionConfig)
AutoModelForSequenceClassification.register(MLPFusionConfig, MLPFusionForClassification)
AutoConfig.register(FusionConfig.model_type, FusionConfig)
AutoModelForSequenceClassification.register(FusionConfig, FusionForSequenceClassification)
AutoProcessor.register(FusionConfig, FusionProcessor)
AutoConfig.register(VLMClassificationConfig.model_type, VLMClassificationConfig)
AutoModelForSequenceClassification.register(VLMClassificationConfig, VLMForSequenceClassification)


_TRAINERS = (
    "SynIBArguments", "SynIBConfig", "SynIBMixin", "SynIBTrainer", "ModalityDropoutTrainer", "MultimodalTrainerMixin",
    "BalancingArguments", "BalancingConfig", "MultilossTrainer", "OGMGETrainer", "MMParetoTrainer", "MLBTrainer",
    "UnimodalEnsembleTrainer",
)
_LAZY = {
    **{name: "synib_hf.trainers" for name in _TRAINERS},
    "SynIBSFTConfig": "synib_hf.trainers.synib_sft",  # TRL's SFTTrainer: the `trl` extra
    "SynIBSFTTrainer": "synib_hf.trainers.synib_sft",
    "GaussianXOR": "synib_hf.data.xor",
    "load_hateful_memes": "synib_hf.data.hateful_memes",
    "write_memes_fixture": "synib_hf.data.hateful_memes",
    "load_easy_vqa": "synib_hf.data.easy_vqa",
    "irony_splits": "synib_hf.data.irony",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synib_hf' has no attribute {name!r}")


__all__ = [
    "BalancingArguments",
    "BalancingConfig",
    "EmbeddingMasker",
    "EmbeddingViews",
    "FeatureMasker",
    "FusionConfig",
    "FusionForSequenceClassification",
    "FusionProcessor",
    "GaussianXOR",
    "ImageTextCollator",
    "InputMasker",
    "InputViews",
    "MLBTrainer",
    "MLPFusionConfig",
    "MLPFusionForClassification",
    "MMParetoTrainer",
    "MaskRandomness",
    "MaskSpec",
    "ModalityDropoutTrainer",
    "MultilossTrainer",
    "MultimodalTrainerMixin",
    "NativeViews",
    "OGMGETrainer",
    "ObjectiveOutput",
    "PackedFeatures",
    "SynIBArguments",
    "SynIBConfig",
    "SynIBMixin",
    "SynIBModelOutput",
    "SynIBNativeMixin",
    "SynIBSFTConfig",
    "SynIBSFTTrainer",
    "SynIBTrainer",
    "Task",
    "TokenIds",
    "UnimodalEnsembleTrainer",
    "VLMClassificationConfig",
    "VLMForSequenceClassification",
    "Views",
    "answer_positions",
    "build_model_card",
    "candidate_token_ids",
    "embedding_views",
    "entropy",
    "gaussian",
    "irony_splits",
    "kl_uniform",
    "load_easy_vqa",
    "load_hateful_memes",
    "lora_config_for",
    "max_probability",
    "modality_positions",
    "predicted_classes",
    "synergy_compute_metrics",
    "synib_objective",
    "unimodal_anchor",
    "view_losses",
    "vlm_lora_config",
    "write_memes_fixture",
]
