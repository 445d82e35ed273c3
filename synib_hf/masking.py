"""Masking operators M_m: build a view of a batch in which one modality's information is (partly) destroyed.

Two levels, one vocabulary (`mask_type` × `mask_fill`):

* [`InputMasker`] works on a dict of model inputs (any Hugging Face model): float tensors (`pixel_values`,
  `input_features`, `input_values`, vectors) are overwritten with a fill; token ids are replaced by the tokenizer's
  mask (or pad) id and their attention is switched off, except on special tokens.
* [`FeatureMasker`] works on pooled per-modality features `(B, D_m)` of a model that implements the native protocol
  ([`SynIBNativeMixin`]); it is what makes SynIB nearly free there, since encoders run once.

Only the masked modality is touched; every other key or feature is passed through unchanged (the same tensor object).
"""

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import torch

from .learned_mask import learn_keep_gates


MASK_TYPES = ("full", "random", "learned", "oracle")
MASK_FILLS = ("ema_noise", "shuffle", "zero")


@dataclass(frozen=True)
class MaskSpec:
    """How masked views are built. Field names match [`SynIBConfig`]'s, so the trainer fills it from its arguments."""

    mask_type: str = "random"
    mask_ratio: float = 0.5
    mask_fill: str = "ema_noise"
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


class MaskRandomness:
    """Seeded generators, one per device, private to masking.

    Masks never draw from the global RNG, so turning SynIB on or off (or evaluating in the middle of training) does
    not change dropout masks or data order: λ = 0 reproduces plain training bit for bit.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def rand(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator(like.device), device=like.device)

    def randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator(like.device), device=like.device)

    def derangement(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        """A permutation of the batch with no fixed point (a random cyclic shift): every row gets another row."""
        if batch_size < 2:
            raise ValueError(
                "mask_fill='shuffle' takes each fill from another example of the batch, so it needs a batch of at "
                "least 2 examples; use a larger per-device batch size or mask_fill='ema_noise'."
            )
        shift = torch.randint(1, batch_size, (1,), generator=self.generator(like.device), device=like.device)
        return (torch.arange(batch_size, device=like.device) + shift) % batch_size


def _feature_shape(x: torch.Tensor) -> tuple[int, ...]:
    """Shape of the per-feature statistics of `x`: dim 1 is the feature/channel axis, the rest is broadcast."""
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


@dataclass
class FillStatistics:
    """EMA of the clean mean and variance of each named tensor along its feature axis (dim 1), kept without gradient."""

    decay: float = 0.99
    mean: dict = field(default_factory=dict)
    var: dict = field(default_factory=dict)

    @torch.no_grad()
    def update(self, name: str, clean: torch.Tensor) -> None:
        batch_mean, batch_var = self._batch_moments(clean)
        if name in self.mean and self.mean[name].shape != batch_mean.shape:
            raise ValueError(
                f"mask_fill='ema_noise' keeps per-feature statistics of {name!r}, whose feature axis (dim 1) had "
                f"size {self.mean[name].shape[1]} and now has {batch_mean.shape[1]}. Pad it to a fixed size or use "
                "mask_fill='shuffle' or 'zero'."
            )
        if name not in self.mean:
            self.mean[name], self.var[name] = batch_mean, batch_var
        else:
            self.mean[name].lerp_(batch_mean, 1.0 - self.decay)
            self.var[name].lerp_(batch_var, 1.0 - self.decay)

    @staticmethod
    def _batch_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().float()
        dims = [d for d in range(x.dim()) if d != 1]
        return x.mean(dim=dims).view(_feature_shape(x)), x.var(dim=dims, unbiased=False).view(_feature_shape(x))

    def moments(self, name: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The running moments; before the first training update (evaluation first), the batch's own."""
        if name in self.mean:
            return self.mean[name], self.var[name]
        return self._batch_moments(like)


class Filler:
    """Draws the fill ε that replaces masked values: `ema_noise`, `shuffle` or `zero`."""

    def __init__(self, spec: MaskSpec, randomness: MaskRandomness):
        self.kind = spec.mask_fill
        self.randomness = randomness
        self.statistics = FillStatistics(decay=spec.fill_ema_decay)

    def observe(self, name: str, clean: torch.Tensor, training: bool) -> None:
        """Feed clean values to the EMA statistics (training steps only)."""
        if self.kind == "ema_noise" and training:
            self.statistics.update(name, clean)

    def __call__(self, name: str, clean: torch.Tensor) -> torch.Tensor:
        """A fill of the shape and dtype of `clean`, carrying no gradient."""
        if self.kind == "zero":
            return torch.zeros_like(clean)
        if self.kind == "shuffle":
            return clean.detach()[self.randomness.derangement(clean.shape[0], clean)]
        mean, var = self.statistics.moments(name, clean)
        noise = self.randomness.randn(clean.shape, clean)
        return (mean + var.sqrt() * noise).to(clean.dtype)


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


def is_token_key(key: str) -> bool:
    return key.endswith("input_ids")


def attention_key(key: str) -> str:
    return key[: -len("input_ids")] + "attention_mask"


class InputMasker:
    """Input-level masking over a dict of model inputs (the generic path: any Hugging Face model).

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

    def __call__(self, batch: Mapping[str, torch.Tensor], keys: Sequence[str], training: bool) -> dict:
        """A shallow copy of `batch` in which the tensors under `keys` (one modality) are masked."""
        view = dict(batch)
        for key in keys:
            value = batch[key]
            if is_token_key(key):
                view.update(self._mask_tokens(key, batch))
            elif torch.is_floating_point(value):
                self.fill.observe(key, value, training)
                view[key] = torch.where(self._replaced(key, value), self.fill(key, value), value)
            # Other integer tensors (attention masks, token_type_ids) follow their ids or carry no content.
        return view

    def _replaced(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Boolean tensor broadcastable to `value`: True where the value is destroyed."""
        spec = self.spec
        if spec.mask_type == "full":
            return torch.ones((), dtype=torch.bool, device=value.device)
        if spec.mask_type == "random":
            # One draw per example and position, shared along the feature/channel axis (a pixel, a frame).
            shape = (value.shape[0],) + ((1,) + tuple(value.shape[2:]) if value.dim() > 2 else (value.shape[1],))
            return self.randomness.rand(shape, value) < spec.mask_ratio
        coordinates = (spec.oracle_coordinates or {}).get(key)
        if coordinates is None:
            raise ValueError(
                f"mask_type='oracle' needs the coordinates to destroy in {key!r}: set "
                f"oracle_coordinates={{'{key}': [...]}} (for Gaussian-XOR, `GaussianXOR.synergy_coordinates`)."
            )
        replaced = torch.zeros(value.shape[-1], dtype=torch.bool, device=value.device)
        replaced[list(coordinates)] = True
        return replaced  # (D,), broadcast over the leading axes

    def _mask_tokens(self, key: str, batch: Mapping[str, torch.Tensor]) -> dict:
        if self.token_ids is None:
            raise ValueError(
                f"Masking {key!r} needs the tokenizer's mask/pad and special-token ids: pass "
                "`processing_class=tokenizer` (or a processor with a `.tokenizer`) to SynIBTrainer."
            )
        if self.spec.mask_type == "oracle":
            raise ValueError(f"mask_type='oracle' destroys float coordinates; {key!r} holds token ids.")
        ids = batch[key]
        attn_key = attention_key(key)
        attention = batch.get(attn_key)
        special = torch.isin(ids, torch.tensor(self.token_ids.special_ids, device=ids.device))
        content = ~special if attention is None else attention.bool() & ~special
        replaced = content
        if self.spec.mask_type == "random":
            replaced = content & (self.randomness.rand(ids.shape, ids) < self.spec.mask_ratio)
        masked = {key: ids.masked_fill(replaced, self.token_ids.fill_id)}
        if attention is not None:
            kept = attention.bool() & ~replaced
            # A row with no attended token makes attention softmax NaN: keep its first position (now a fill id).
            kept[:, 0] |= ~kept.any(dim=1)
            masked[attn_key] = kept.to(attention.dtype)
        return masked


class FeatureMasker:
    """Feature-level masking on pooled per-modality features: the native path.

    Called inside the model's forward (so one DDP forward covers every view) with the clean features; returns, for
    each modality to mask, its masked feature `(B, D_m)`. `learned` masks optimise their gates on detached features
    against the model's unimodal head for that modality without touching any parameter's gradient; `oracle` masks the
    input coordinates named in `oracle_coordinates` and re-runs only that modality's encoder.
    """

    def __init__(self, spec: MaskSpec, masked_modalities: Sequence[str], randomness: MaskRandomness):
        self.spec = spec
        self.masked_modalities = tuple(masked_modalities)
        self.randomness = randomness
        self.fill = Filler(spec, randomness)
        self._input_masker = InputMasker(spec, randomness) if spec.mask_type == "oracle" else None

    @property
    def detach_features(self) -> bool:
        """Whether the views carry detached features, so the penalty trains only the fusion head."""
        return self.spec.detach_masked_features

    def __call__(self, model, inputs: Mapping, features: Mapping[str, torch.Tensor], labels) -> dict:
        spec = self.spec
        masked = {}
        for modality in self.masked_modalities:
            clean = features[modality]  # (B, D_m)
            source = clean.detach() if spec.detach_masked_features else clean
            if spec.mask_type == "oracle":
                view = self._input_masker(inputs, model.synib_input_keys[modality], training=model.training)
                encoded = model.synib_encode(modality, view)
                masked[modality] = encoded.detach() if spec.detach_masked_features else encoded
                continue
            self.fill.observe(modality, clean, model.training)
            fill = self.fill(modality, clean)
            if spec.mask_type == "full":
                masked[modality] = fill
            elif spec.mask_type == "random":
                keep = self.randomness.rand(clean.shape, clean) >= spec.mask_ratio
                masked[modality] = torch.where(keep, source, fill)
            else:
                gate = self._learned_gate(model, modality, clean, fill, labels)
                masked[modality] = gate * source + (1.0 - gate) * fill
        return masked

    def _learned_gate(self, model, modality, clean, fill, labels) -> torch.Tensor:
        head = model.synib_unimodal_head(modality)
        if head is None:
            raise ValueError(
                f"mask_type='learned' needs a unimodal head for {modality!r}, but "
                f"{type(model).__name__}.synib_unimodal_head({modality!r}) returned None; enable the model's "
                "unimodal heads or use mask_type='random'."
            )
        if labels is None:
            raise ValueError("mask_type='learned' fits its gates to the labels, but the batch has no `labels`.")
        spec = self.spec
        return learn_keep_gates(
            clean.detach(),
            labels,
            head,
            fill,
            steps=spec.learned_mask_steps,
            lr=spec.learned_mask_lr,
            temperature=spec.learned_mask_temperature,
            grad_clip=spec.learned_mask_grad_clip,
            sparsity_weight=spec.learned_mask_sparsity_weight,
        ).to(clean.dtype)
