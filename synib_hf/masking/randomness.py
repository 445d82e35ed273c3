"""[`MaskRandomness`]: the masks' private, seeded generators, saved with every checkpoint."""

from typing import Mapping

import torch


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
