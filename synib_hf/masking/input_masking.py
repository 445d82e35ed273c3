"""Input-level masking (the generic path: any Hugging Face model): a masked copy of a batch in which one modality's
inputs are replaced, each by the rule of its kind (`synib_hf.input_kinds`)."""

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch

from .fills import Filler
from .input_kinds import FEATURE_AXIS, InputKind, resolve_input_kinds
from .mask_spec import MaskSpec
from .randomness import MaskRandomness


@dataclass(frozen=True)
class TokenIds:
    """What token masking needs from the tokenizer: the id written over content tokens and the ids never masked."""

    fill_id: int
    special_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "TokenIds":
        fill_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.pad_token_id
        if fill_id is None:
            raise ValueError(
                f"Token masking needs a mask or pad token, but {type(tokenizer).__name__} has neither; set "
                "`tokenizer.pad_token` before building the trainer."
            )
        return cls(fill_id=fill_id, special_ids=tuple(sorted(set(tokenizer.all_special_ids))))


class InputMasker:
    """Input-level masking over a dict of model inputs.

    Content inputs are replaced by the fill (token ids by the mask/pad id) where the mask says; companions follow:
    an attention mask is switched off, boxes zeroed, at the positions masked in their partner (a row always keeps one
    attended position, or attention softmax would be NaN). See `synib_hf.input_kinds` for the rule of each kind.

    Example:

    ```python
    >>> masker = InputMasker(MaskSpec(mask_type="full", mask_fill="zero"), MaskRandomness(seed=0))
    >>> batch = {"pixel_values": torch.ones(2, 3, 4, 4), "input_ids": torch.ones(2, 5, dtype=torch.long)}
    >>> view = masker(batch, ["pixel_values"], training=False)
    >>> view["pixel_values"].abs().sum().item(), view["input_ids"] is batch["input_ids"]
    (0.0, True)
    ```
    """

    def __init__(self, spec: MaskSpec, randomness: MaskRandomness, token_ids: Optional[TokenIds] = None):
        if spec.mask_type == "learned":
            raise ValueError(
                "mask_type='learned' optimises gates against a unimodal head, which only models implementing the "
                "native protocol have (see `synib_hf.SynIBNativeMixin`); use mask_type='random' or 'full' here."
            )
        self.spec = spec
        self.randomness = randomness
        self.fill = Filler(spec, randomness)
        self.token_ids = token_ids
        self._special = {}  # device → special-token ids, made once

    def __call__(
        self,
        batch: Mapping[str, torch.Tensor],
        keys: Sequence[str],
        training: bool,
        kinds: Optional[Mapping[str, InputKind]] = None,
    ) -> dict:
        """A shallow copy of `batch` in which the inputs under `keys` (one modality) are masked.

        Args:
            kinds: input key → [`InputKind`]; by default each key's documented default (`resolve_input_kinds`).
        """
        kinds = kinds if kinds is not None else resolve_input_kinds(batch, {"modality": list(keys)})
        view = dict(batch)
        replaced_positions = {}  # content key → (B, T) bool, for its companions
        content = [k for k in keys if kinds[k].is_content]
        companions = {k: kinds[k] for k in keys if not kinds[k].is_content}
        for key in content:
            kind = kinds[key].kind
            if kind == "tokens":
                attention = next(
                    (batch[k] for k, c in companions.items() if c.kind == "attention" and c.partner == key), None
                )
                view[key], replaced_positions[key] = self._mask_tokens(key, batch[key], attention)
                continue
            value = batch[key]
            axis = FEATURE_AXIS[kind]
            self.fill.observe(key, value, training, axis)
            replaced = self._replaced(key, kind, value)
            view[key] = torch.where(replaced, self.fill(key, value, axis, training), value)
            if kind == "sequence":
                replaced_positions[key] = replaced.expand(value.shape[:2] + (1,))[..., 0]  # (B, T)
            elif kind == "spectrogram":
                replaced_positions[key] = replaced.expand(value.shape[0], 1, value.shape[2])[:, 0]  # (B, T)
        for key, companion in companions.items():
            if companion.kind == "unchanged" or companion.partner not in replaced_positions:
                continue
            masked = replaced_positions[companion.partner]  # (B, T)
            value = batch[key]
            if companion.kind == "boxes":
                view[key] = value.masked_fill(masked.unsqueeze(-1), 0)
            else:
                kept = value.bool() & ~masked
                kept[:, 0] |= ~kept.any(dim=1)  # a row with nothing attended would make attention softmax NaN
                view[key] = kept.to(value.dtype)
        return view

    def _replaced(self, key: str, kind: str, value: torch.Tensor) -> torch.Tensor:
        """Boolean tensor broadcastable to `value`: True where the value is destroyed."""
        spec = self.spec
        if spec.mask_type == "full":
            return torch.ones((), dtype=torch.bool, device=value.device)
        if spec.mask_type == "oracle":
            return self._oracle(key, value)
        batch = value.shape[0]
        if kind == "vector":
            return self.randomness.rand(value.shape, value) < spec.mask_ratio  # (B, D)
        if kind == "sequence":
            return self.randomness.rand((batch, value.shape[1], 1), value) < spec.mask_ratio  # (B, T, 1)
        if kind == "spectrogram":
            return self.randomness.rand((batch, 1, value.shape[2]), value) < spec.mask_ratio  # (B, 1, T)
        # images: one draw per pixel (or patch), shared by the channels; each image of a multi-image input its own
        leading = value.shape[:-3]  # (B,) or (B, N)
        height, width = value.shape[-2:]
        patch = spec.mask_patch_size
        grid = (-(-height // patch), -(-width // patch))
        draws = self.randomness.rand(leading + (1,) + grid, value) < spec.mask_ratio  # (…, 1, h, w)
        if patch > 1:
            draws = draws.repeat_interleave(patch, dim=-2).repeat_interleave(patch, dim=-1)[..., :height, :width]
        return draws

    def _oracle(self, key: str, value: torch.Tensor) -> torch.Tensor:
        coordinates = (self.spec.oracle_coordinates or {}).get(key)
        if coordinates is None:
            raise ValueError(
                f"mask_type='oracle' needs the coordinates to destroy in {key!r}: set "
                f"oracle_coordinates={{'{key}': [...]}} (for Gaussian-XOR, `GaussianXOR.synergy_coordinates`)."
            )
        check_oracle_coordinates(key, coordinates, value.shape[-1])
        replaced = torch.zeros(value.shape[-1], dtype=torch.bool, device=value.device)
        replaced[list(coordinates)] = True
        return replaced  # (D,), broadcast over the leading axes

    def _mask_tokens(self, key: str, ids: torch.Tensor, attention: Optional[torch.Tensor]):
        """Masked ids and the replaced positions `(B, T)`; the attention companion is switched off there later."""
        if self.token_ids is None:
            raise ValueError(
                f"Masking {key!r} needs the tokenizer's mask/pad and special-token ids: pass "
                "`processing_class=tokenizer` (or a processor with a `.tokenizer`) to SynIBTrainer."
            )
        if self.spec.mask_type == "oracle":
            raise ValueError(f"mask_type='oracle' destroys float coordinates; {key!r} holds token ids.")
        if ids.device not in self._special:
            self._special[ids.device] = torch.tensor(self.token_ids.special_ids, device=ids.device)
        special = torch.isin(ids, self._special[ids.device])
        content = ~special if attention is None else attention.bool() & ~special
        replaced = content
        if self.spec.mask_type == "random":
            replaced = content & (self.randomness.rand(ids.shape, ids) < self.spec.mask_ratio)
        return ids.masked_fill(replaced, self.token_ids.fill_id), replaced

    def state_dict(self) -> dict:
        return {"fill": self.fill.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.fill.load_state_dict(state["fill"])


def check_oracle_coordinates(key: str, coordinates: Sequence[int], width: int) -> None:
    """A clear error for oracle coordinates that are not indices of `key`'s last axis."""
    bad = [c for c in coordinates if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < width]
    if bad or not coordinates:
        raise ValueError(
            f"oracle_coordinates[{key!r}] must be indices in [0, {width - 1}] of the input's last axis (width "
            f"{width}), got {list(coordinates) if not bad else bad}; negative indices are not allowed."
        )

