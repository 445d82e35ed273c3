"""[`MaskSpec`]: how masked views are built (type, ratio, fill and the learned mask's settings), shared by every
masking operator."""

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence


MASK_TYPES = ("full", "random", "learned", "oracle")
MASK_FILLS = ("ema_noise", "shuffle", "zero")


@dataclass(frozen=True)
class MaskSpec:
    """How masked views are built. Field names match [`SynIBConfig`]'s, so the trainer fills it from its arguments.

    `mask_fill` takes a concrete fill here (no 'auto'): the trainer passes the one its path resolved (`SynIBConfig`'s
    'auto' is 'shuffle' on the native and generic paths, 'ema_noise' on the embedding path); built by hand, the
    operator defaults to 'ema_noise', which runs on any batch size and any path.
    """

    mask_type: str = "random"
    mask_ratio: float = 0.5
    mask_fill: str = "ema_noise"
    mask_patch_size: int = 1
    fill_ema_decay: float = 0.99
    learned_mask_steps: int = 20
    learned_mask_lr: float = 0.1
    learned_mask_temperature: float = 1.0
    learned_mask_grad_clip: float = 1.0
    learned_mask_sparsity_weight: float = 1.0
    oracle_coordinates: Optional[Mapping[str, Sequence[int]]] = None
    detach_masked_features: bool = False

    def __post_init__(self):
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type={self.mask_type!r} is not one of {MASK_TYPES}.")
        if self.mask_fill not in MASK_FILLS:
            raise ValueError(f"mask_fill={self.mask_fill!r} is not one of {MASK_FILLS}.")
