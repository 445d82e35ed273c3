"""Trainer subclasses of synib-hf, installed as `synib_hf.trainers` (one-way: trainers → synib_hf core)."""

from .balancing import MLBTrainer, OGMGETrainer, UnimodalEnsembleTrainer
from .balancing_config import BalancingConfig
from .baselines import ModalityDropoutTrainer, MultilossTrainer
from .mmpareto import MMParetoTrainer
from .synib_config import SynIBConfig
from .synib_trainer import SynIBTrainer


__all__ = [
    "BalancingConfig",
    "MLBTrainer",
    "MMParetoTrainer",
    "ModalityDropoutTrainer",
    "MultilossTrainer",
    "OGMGETrainer",
    "SynIBConfig",
    "SynIBTrainer",
    "UnimodalEnsembleTrainer",
]
