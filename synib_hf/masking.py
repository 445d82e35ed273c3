"""Masking operators M_m: build a view of a batch in which one modality's information is (partly) destroyed.

Two levels, one vocabulary (`mask_type` × `mask_fill`):

* [`InputMasker`] (`synib_hf.input_masking`) works on a dict of model inputs (any Hugging Face model), each input
  masked by the rule of its kind (`synib_hf.input_kinds`).
* [`FeatureMasker`] (here) works on pooled per-modality features `(B, D_m)` of a model that implements the native
  protocol ([`SynIBNativeMixin`]); it is what makes SynIB nearly free there, since encoders run once.

This module also holds what both share: [`MaskSpec`], the private seeded randomness ([`MaskRandomness`]) and the fills
([`Filler`], with the EMA statistics behind `ema_noise`). Their state (generators, statistics) is saved with every
checkpoint and restored on resume (`state_dict` / `load_state_dict`), so a resumed run draws the masks an
uninterrupted run would. Only the masked modality is touched; every other key or feature is passed through unchanged
(the same tensor object).
"""

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import torch

from .learned_mask import learn_keep_gates


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


class MaskRandomness:
    """Seeded generators, one per device, private to masking.

    Masks never draw from the global RNG, so turning SynIB on or off (or evaluating in the middle of training) does
    not change dropout masks or data order: λ = 0 reproduces plain training bit for bit.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}
        self._pending: dict[str, torch.Tensor] = {}  # restored states of generators not created yet

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(torch.device(device))
        if key not in self._generators:
            generator = torch.Generator(device=device).manual_seed(self.seed)
            if key in self._pending:
                generator.set_state(self._pending.pop(key))
            self._generators[key] = generator
        return self._generators[key]

    def rand(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator(like.device), device=like.device)

    def randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator(like.device), device=like.device)

    def derangement(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        """A permutation of the batch with no fixed point (a random cyclic shift): every row gets another row."""
        shift = torch.randint(1, batch_size, (1,), generator=self.generator(like.device), device=like.device)
        return (torch.arange(batch_size, device=like.device) + shift) % batch_size

    def index(self, size: int, like: torch.Tensor) -> torch.Tensor:
        """One random row index in `[0, size)`, shape `(1,)`."""
        return torch.randint(0, size, (1,), generator=self.generator(like.device), device=like.device)

    def state_dict(self) -> dict:
        """The generators' states by device (CPU tensors), for checkpoints."""
        states = {key: generator.get_state() for key, generator in self._generators.items()}
        return {"seed": self.seed, "generators": {**self._pending, **states}}

    def load_state_dict(self, state: Mapping) -> None:
        self.seed = state["seed"]
        self._generators.clear()
        self._pending = dict(state["generators"])


def _feature_shape(x: torch.Tensor, axis: int) -> tuple[int, ...]:
    """Shape of per-feature statistics of `x` along `axis`, broadcastable to `x`."""
    return tuple(x.shape[d] if d == axis else 1 for d in range(x.dim()))


@dataclass
class FillStatistics:
    """EMA of the clean first and second moments of each named tensor along its feature axis, kept without gradient.

    Tracking E[x] and E[x²] (rather than each batch's variance) pools examples across steps, so batches of one still
    build a variance; a non-finite batch leaves the statistics as they were.
    """

    decay: float = 0.99
    mean: dict = field(default_factory=dict)
    second: dict = field(default_factory=dict)  # E[x²]

    @torch.no_grad()
    def update(self, name: str, clean: torch.Tensor, axis: int = 1) -> None:
        batch_mean, batch_second = self._batch_moments(clean, axis)
        if name in self.mean and self.mean[name].shape != batch_mean.shape:
            raise ValueError(
                f"mask_fill='ema_noise' keeps per-feature statistics of {name!r}, whose feature axis ({axis}) had "
                f"size {self.mean[name].shape[axis]} and now has {batch_mean.shape[axis]}. Pad it to a fixed size or "
                "use mask_fill='shuffle' or 'zero'."
            )
        if name not in self.mean:
            finite = torch.isfinite(batch_mean) & torch.isfinite(batch_second)
            self.mean[name] = torch.where(finite, batch_mean, 0.0)
            self.second[name] = torch.where(finite, batch_second, 1.0)
            return
        for store, value in ((self.mean, batch_mean), (self.second, batch_second)):
            old = store[name].to(value.device)
            new = old.lerp(value, 1.0 - self.decay)
            store[name] = torch.where(torch.isfinite(new), new, old)  # a NaN batch raises later; keep the past

    @staticmethod
    def _batch_moments(x: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().float()
        dims = [d for d in range(x.dim()) if d != axis]
        shape = _feature_shape(x, axis)
        return x.mean(dim=dims).view(shape), x.square().mean(dim=dims).view(shape)

    def moments(self, name: str, like: torch.Tensor, axis: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance; before the first training update (evaluation first), the batch's own."""
        if name in self.mean:
            mean, second = self.mean[name].to(like.device), self.second[name].to(like.device)
        else:
            mean, second = self._batch_moments(like, axis)
        return mean, (second - mean.square()).clamp_min(0.0)

    def state_dict(self) -> dict:
        mean, second = ({k: v.cpu() for k, v in store.items()} for store in (self.mean, self.second))
        return {"mean": mean, "second": second}

    def load_state_dict(self, state: Mapping) -> None:
        self.mean, self.second = dict(state["mean"]), dict(state["second"])


class Filler:
    """Draws the fill ε that replaces masked values: `ema_noise`, `shuffle` or `zero`.

    `shuffle` takes each example's fill from another example of its batch; a batch of one (the last of an epoch or
    of an evaluation set) takes it from a random example of the previous batch of the same mode.
    """

    def __init__(self, spec: MaskSpec, randomness: MaskRandomness):
        self.kind = spec.mask_fill
        self.randomness = randomness
        self.statistics = FillStatistics(decay=spec.fill_ema_decay)
        self._warned_constant = set()
        self._previous = {}  # (name, training) → the previous clean batch: donors for a batch of one

    def observe(self, name: str, clean: torch.Tensor, training: bool, axis: int = 1) -> None:
        """Feed clean values to the EMA statistics (training steps only)."""
        if self.kind == "ema_noise" and training:
            first = name not in self.statistics.mean
            self.statistics.update(name, clean, axis)
            if first and clean.numel() == clean.shape[axis] and name not in self._warned_constant:
                self._warned_constant.add(name)
                warnings.warn(
                    f"mask_fill='ema_noise': the first batch holds one value per feature of {name!r}, so its fill has "
                    "no variance yet (it is the running mean); the variance builds up over the next steps. Use "
                    "batches of more than one example, or mask_fill='shuffle'/'zero', to avoid it.",
                    stacklevel=2,
                )

    def __call__(self, name: str, clean: torch.Tensor, axis: int = 1, training: bool = True) -> torch.Tensor:
        """A fill of the shape and dtype of `clean`, carrying no gradient."""
        if self.kind == "zero":
            return torch.zeros_like(clean)
        if self.kind == "shuffle":
            clean = clean.detach()
            previous = self._previous.get((name, training))
            self._previous[(name, training)] = clean
            if clean.shape[0] > 1:
                return clean[self.randomness.derangement(clean.shape[0], clean)]
            if previous is None or previous.shape[1:] != clean.shape[1:]:
                raise ValueError(
                    f"mask_fill='shuffle' fills {name!r} from another example, and this batch has one example and no "
                    "earlier batch of the same shape to take it from (the first batch after a start or resume, or "
                    "inputs padded to another length): use batches of at least 2 examples, pad inputs to a fixed "
                    "length, or set mask_fill='ema_noise'."
                )
            return previous[self.randomness.index(previous.shape[0], clean)].to(clean.dtype)
        mean, var = self.statistics.moments(name, clean, axis)
        noise = self.randomness.randn(clean.shape, clean)
        return (mean + var.sqrt() * noise).to(clean.dtype)

    def state_dict(self) -> dict:
        return self.statistics.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.statistics.load_state_dict(state)


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
        self._input_masker = None
        if spec.mask_type == "oracle":
            from .input_masking import InputMasker

            self._input_masker = InputMasker(spec, randomness)

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
                keys = [k for k in model.synib_input_keys[modality] if inputs.get(k) is not None]
                view = self._input_masker(inputs, keys, training=model.training)
                encoded = model.synib_encode(modality, view)
                masked[modality] = encoded.detach() if spec.detach_masked_features else encoded
                continue
            self.fill.observe(modality, clean, model.training)
            fill = self.fill(modality, clean, training=model.training)
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

    def state_dict(self) -> dict:
        """The fill statistics (the randomness is saved by its owner, the trainer)."""
        state = {"fill": self.fill.state_dict()}
        if self._input_masker is not None:
            state["oracle"] = self._input_masker.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        self.fill.load_state_dict(state["fill"])
        if self._input_masker is not None:
            self._input_masker.load_state_dict(state["oracle"])
