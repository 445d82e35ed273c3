"""Gaussian-XOR with PID blocks: two 32-d modalities whose label information is unique, redundant or synergistic.

The paper's controlled test (method page §4). Each example has one active source, drawn with probabilities
`(p_u1, p_u2, p_red, p_syn)`; on a synergy example each modality alone is at chance, so only a model that combines
both can be right.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np


SOURCES = ("unique_1", "unique_2", "redundant", "synergy")
BLOCK = 6  # coordinates per unique / redundant / synergy block
LATENT = 4  # latent width, projected into a block


@dataclass(frozen=True)
class GaussianXOR:
    """Seeded, deterministic generator of the Gaussian-XOR data set.

    Per modality, coordinates `[0, 6)` are the unique block, `[6, 12)` the redundant block, `[12, 18)` the synergy
    block and the remaining 14 are pure noise. A source's latent `|N(0, 9·I_4)|·sign` reaches its block through a
    fixed random projection `R^4 → R^6` (entries N(0, 0.25)) and is written into the block, replacing its N(0, 1)
    base noise (as the authors' generator does); inactive blocks stay noise. Inputs are z-scored with training
    statistics.

    Args:
        mixture: `(p_u1, p_u2, p_red, p_syn)`, summing to 1.
        dim: width of each modality (at least 18).
        seed: fixes the projections and every sample.

    Example:

    ```python
    >>> splits = GaussianXOR(mixture=(0.0, 0.0, 0.8, 0.2), seed=0).splits()
    >>> sorted(splits), splits["train"]["x1"].shape
    (['test', 'train', 'validation'], (1800, 32))
    ```
    """

    mixture: tuple = (0.0, 0.0, 0.8, 0.2)
    dim: int = 32
    seed: int = 0
    n_train: int = 2000
    n_test: int = 4000
    validation_fraction: float = 0.1

    def __post_init__(self):
        if len(self.mixture) != 4 or min(self.mixture) < 0 or abs(sum(self.mixture) - 1.0) > 1e-6:
            raise ValueError(
                f"mixture must be four probabilities (p_u1, p_u2, p_red, p_syn) summing to 1, got {self.mixture}."
            )
        if self.dim < 3 * BLOCK:
            raise ValueError(f"dim must be at least {3 * BLOCK} (three blocks of {BLOCK}), got {self.dim}.")

    @property
    def synergy_coordinates(self) -> dict:
        """Input key → the coordinates that carry synergy (what `mask_type='oracle'` destroys)."""
        block = list(range(2 * BLOCK, 3 * BLOCK))
        return {"x1": block, "x2": list(block)}

    def _projections(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0])
        return rng.normal(0.0, 0.5, size=(2, 3, BLOCK, LATENT))  # (modality, block, 6, 4); std 0.5 = var 0.25

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        """`n` raw (not z-scored) examples: `x1`, `x2` `(n, dim)` float32, `labels` and `source` `(n,)` int64."""
        projections = self._projections()
        labels = rng.integers(0, 2, size=n)
        source = rng.choice(4, size=n, p=np.asarray(self.mixture) / sum(self.mixture))
        x = rng.normal(size=(2, n, self.dim))  # base noise, (modality, n, dim)

        def magnitude():
            return np.abs(rng.normal(0.0, 3.0, size=(n, LATENT)))  # |N(0, 9·I_4)|

        sign = (2.0 * labels - 1.0)[:, None]
        bit_0 = rng.integers(0, 2, size=n)
        synergy_bits = (bit_0, bit_0 ^ labels)  # each bit alone is independent of the label
        redundant = magnitude() * sign  # one latent, written into both modalities
        for modality in range(2):
            latents = (
                (source == modality, magnitude() * sign),
                (source == 2, redundant),
                (source == 3, magnitude() * (2.0 * synergy_bits[modality] - 1.0)[:, None]),
            )
            for block, (active, latent) in enumerate(latents):
                signal = latent[active] @ projections[modality, block].T  # (n_active, 6)
                x[modality, active, block * BLOCK : (block + 1) * BLOCK] = signal
        return {
            "x1": x[0].astype(np.float32),
            "x2": x[1].astype(np.float32),
            "labels": labels.astype(np.int64),
            "source": source.astype(np.int64),
        }

    def splits(self) -> dict:
        """Train / validation / test dicts of arrays, z-scored with the training split's statistics."""
        rng = np.random.default_rng([self.seed, 1])
        train = self.sample(self.n_train, rng)
        test = self.sample(self.n_test, rng)
        n_val = int(round(self.n_train * self.validation_fraction))
        validation = {k: v[:n_val] for k, v in train.items()}
        train = {k: v[n_val:] for k, v in train.items()}
        for key in ("x1", "x2"):
            mean, std = train[key].mean(0), train[key].std(0) + 1e-6
            for split in (train, validation, test):
                split[key] = ((split[key] - mean) / std).astype(np.float32)
        return {"train": train, "validation": validation, "test": test}

    def datasets(self, splits: Optional[dict] = None):
        """The splits as a `datasets.DatasetDict` (columns `x1`, `x2`, `labels`, `source`)."""
        from datasets import Dataset, DatasetDict

        splits = splits or self.splits()
        return DatasetDict({name: Dataset.from_dict(dict(split)) for name, split in splits.items()})
