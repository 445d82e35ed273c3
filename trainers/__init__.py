"""Trainer subclasses of synib-hf, installed as `synib_hf.trainers` (one-way: trainers → synib_hf core)."""

from .synib_config import SynIBConfig
from .synib_trainer import SynIBTrainer


__all__ = ["SynIBConfig", "SynIBTrainer"]
