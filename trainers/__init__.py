"""Trainer subclasses of synib-hf, installed as `synib_hf.trainers` (one-way: trainers → synib_hf core)."""

from .baselines import ModalityDropoutTrainer, MultilossTrainer
from .synib_config import SynIBConfig
from .synib_trainer import SynIBTrainer


__all__ = ["ModalityDropoutTrainer", "MultilossTrainer", "SynIBConfig", "SynIBTrainer"]
