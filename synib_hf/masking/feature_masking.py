"""[`FeatureMasker`]: feature-level masking on the pooled per-modality features of a model implementing the native
protocol ([`SynIBNativeMixin`]). It is what makes SynIB nearly free there: encoders run once, only the fusion head
re-runs per masked view."""

from typing import Mapping, Sequence

import torch

from .fills import Filler
from .input_masking import InputMasker
from .learned_mask import learn_keep_gates
from .mask_spec import MaskSpec
from .randomness import MaskRandomness


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
