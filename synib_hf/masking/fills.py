"""What replaces masked values ([`Filler`]): `ema_noise` (with the EMA statistics of [`FillStatistics`]), `shuffle`
and `zero`."""

import warnings
from dataclasses import dataclass, field
from typing import Mapping

import torch

from .mask_spec import MaskSpec
from .randomness import MaskRandomness


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
