"""The Trainer side of synib-hf, installed as `synib_hf.trainers` (one-way: trainers → synib_hf core).

* [`SynIBMixin`] (`synib_mixin.py`) adds SynIB to any `Trainer` subclass; [`SynIBTrainer`] is `SynIBMixin` +
  `Trainer`, [`ModalityDropoutTrainer`] its sibling that trains the views with the label (`synib_trainer.py`);
  [`SynIBConfig`] / [`SynIBArguments`] (`synib_config.py`).
* The balancing baselines (`balancing_trainers.py`, `mmpareto.py`) with [`BalancingConfig`] (`balancing_config.py`).
* Shared: [`MultimodalTrainerMixin`] (`multimodal_trainer.py`: metrics, model cards, first batch, resume), the view
  builder's choice (`view_choice.py`), checkpoint state (`training_state.py`), first-batch helpers (`preflight.py`),
  and every private Trainer member we touch (`trainer_compat.py`).
"""

from .balancing_config import BalancingArguments, BalancingConfig
from .balancing_trainers import MLBTrainer, MultilossTrainer, OGMGETrainer, UnimodalEnsembleTrainer
from .mmpareto import MMParetoTrainer
from .multimodal_trainer import MultimodalTrainerMixin
from .synib_config import SynIBArguments, SynIBConfig
from .synib_mixin import SynIBMixin
from .synib_trainer import ModalityDropoutTrainer, SynIBTrainer


__all__ = [
    "BalancingArguments",
    "BalancingConfig",
    "MLBTrainer",
    "MMParetoTrainer",
    "ModalityDropoutTrainer",
    "MultilossTrainer",
    "MultimodalTrainerMixin",
    "OGMGETrainer",
    "SynIBArguments",
    "SynIBConfig",
    "SynIBMixin",
    "SynIBTrainer",
    "UnimodalEnsembleTrainer",
]
