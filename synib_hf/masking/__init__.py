"""Masking operators M_m: build a view of a batch in which one modality's information is (partly) destroyed.

One vocabulary (`mask_type` × `mask_fill`, [`MaskSpec`]), three levels:

* [`FeatureMasker`] (`feature_masking`) — pooled per-modality features `(B, D_m)` of a model implementing the native
  protocol; `learned` gates (`learned_mask`) and `oracle` coordinates too.
* [`InputMasker`] (`input_masking`) — a dict of model inputs (any Hugging Face model), each input masked by the rule
  of its kind (`input_kinds`).
* [`EmbeddingMasker`] (`embedding_masking`) — the merged input embeddings of a vision-language model, inside one
  forward.

What all three share: the private seeded randomness ([`MaskRandomness`], `randomness`) and the fills ([`Filler`] with
the EMA statistics behind `ema_noise`, `fills`). Their state is saved with every checkpoint, so a resumed run draws
the masks an uninterrupted run would. Only the masked modality is touched; every other input or feature is passed
through unchanged (the same tensor object).
"""

from .embedding_masking import (
    EMBEDDING_MASK_TYPES,
    EMBEDDING_MODALITIES,
    EmbeddingMasker,
    PackedFeatures,
    modality_positions,
)
from .feature_masking import FeatureMasker
from .fills import Filler, FillStatistics
from .input_kinds import KINDS, InputKind, parse_declared, resolve_input_kinds
from .input_masking import InputMasker, TokenIds, check_oracle_coordinates
from .learned_mask import learn_keep_gates
from .mask_spec import MASK_FILLS, MASK_TYPES, MaskSpec
from .randomness import MaskRandomness


__all__ = [
    "EMBEDDING_MASK_TYPES",
    "EMBEDDING_MODALITIES",
    "KINDS",
    "MASK_FILLS",
    "MASK_TYPES",
    "EmbeddingMasker",
    "FeatureMasker",
    "FillStatistics",
    "Filler",
    "InputKind",
    "InputMasker",
    "MaskRandomness",
    "MaskSpec",
    "PackedFeatures",
    "TokenIds",
    "check_oracle_coordinates",
    "learn_keep_gates",
    "modality_positions",
    "parse_declared",
    "resolve_input_kinds",
]
