"""The native protocol: models whose masked views re-run only a fusion head on pooled per-modality features.

A model opts in by inheriting [`SynIBNativeMixin`] and implementing five small hooks (a sixth,
`synib_encoder_parameters`, for the gradient-balancing baselines). Its `forward` then accepts a
`synib_views` argument (a [`FeatureMasker`], passed by [`SynIBTrainer`]) and returns the masked views' logits in the
same call, so the encoders run once per step and DDP sees a single forward.
"""

from dataclasses import dataclass
from typing import Mapping, Optional

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from .tasks import classification_loss, classification_task


@dataclass
class SynIBModelOutput(SequenceClassifierOutput):
    """[`SequenceClassifierOutput`] plus what SynIB reads.

    Args:
        masked_logits (`torch.Tensor` of shape `(M, B, C)`, *optional*):
            Logits of each masked view, in the order of `synib_views.masked_modalities`.
        masked_logvar (`torch.Tensor` of shape `(M, B, C)`, *optional*):
            Log-variances from the logvar head on each masked view (the `gaussian` penalty).
        unimodal_logits (`torch.Tensor` of shape `(N, B, C)`, *optional*):
            Logits of the unimodal heads, in the order of `synib_modalities` (returned with masked views only, so a
            plain forward's output is `(loss, logits)` and `Trainer.predict` gives one array).
        fused_loss (`torch.Tensor`, *optional*):
            The fused head's task loss alone; `loss` adds the unimodal heads' losses to it.
    """

    masked_logits: Optional[torch.Tensor] = None
    masked_logvar: Optional[torch.Tensor] = None
    unimodal_logits: Optional[torch.Tensor] = None
    fused_loss: Optional[torch.Tensor] = None


class SynIBNativeMixin:
    """Mixin for models that support feature-level SynIB.

    Implement:

    * `synib_modalities` — tuple of modality names, e.g. `("image", "text")`;
    * `synib_input_keys` — mapping modality → the forward arguments that feed it;
    * `synib_encode(modality, inputs) -> (B, D_m)` — that modality's pooled (normalised) feature;
    * `synib_fuse(features) -> (logits (B, C), fused_hidden (B, H))` — the fusion head;
    * `synib_unimodal_head(modality) -> nn.Module | None` and `synib_logvar_head() -> nn.Module | None`;
    * optionally `synib_encoder_parameters(modality) -> list[nn.Parameter]` — the parameters that encode that modality
      alone, which the gradient-balancing baselines (OGM-GE, MMPareto, MLB) rescale or recombine.

    and call `self.synib_forward(inputs, labels, synib_views)` from `forward`. Unimodal heads train with CE on detached
    features (they are instruments for learned masks, `unimodal_anchor` and synergy-subset evaluation, and must not
    steer the encoders) unless `synib_detach_unimodal_heads` is False (the "multiloss" baseline).

    Example:

    ```python
    >>> outputs = model(**batch, synib_views=masker)  # one call: clean and masked views
    >>> outputs.logits.shape, outputs.masked_logits.shape
    (torch.Size([8, 2]), torch.Size([2, 8, 2]))
    ```
    """

    synib_detach_unimodal_heads: bool = True

    def synib_encoder_parameters(self, modality: str) -> list:
        """The parameters that encode `modality` alone (its tower up to the pooled feature), not the fusion or unimodal
        heads. The gradient-balancing trainers rescale or recombine exactly these gradients."""
        raise NotImplementedError(
            f"{type(self).__name__} does not say which parameters encode {modality!r}, which the gradient-balancing "
            "trainers (OGM-GE, MMPareto, MLB) need: implement synib_encoder_parameters(modality) to return that "
            "modality's encoder parameters (see synib_hf.SynIBNativeMixin)."
        )

    def synib_forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        labels: Optional[torch.Tensor] = None,
        synib_views=None,
        output_unimodal_logits: Optional[bool] = None,
    ) -> SynIBModelOutput:
        """The clean view (and, given `synib_views`, every masked view) in one call. `unimodal_logits` and
        `fused_loss` are returned with masked views or when `output_unimodal_logits=True`."""
        extras = synib_views is not None if output_unimodal_logits is None else output_unimodal_logits
        features = {m: self.synib_encode(m, inputs) for m in self.synib_modalities}

        unimodal = []
        for modality in self.synib_modalities:
            head = self.synib_unimodal_head(modality)
            if head is not None:
                feature = features[modality]
                unimodal.append(head(feature.detach() if self.synib_detach_unimodal_heads else feature))
        unimodal_logits = torch.stack(unimodal) if unimodal else None  # (N, B, C)

        views = [features]
        if synib_views is not None:
            masked = synib_views(self, inputs, features, labels)
            # Detached views: Ω then trains only the fusion head, never the encoders (the authors' MultiBench setting).
            visible = {m: f.detach() for m, f in features.items()} if synib_views.detach_features else features
            views += [{**visible, m: masked[m]} for m in synib_views.masked_modalities]
        # All views through the fusion head in one call: (V·B, D_m) per modality.
        stacked = {m: torch.cat([view[m] for view in views]) for m in self.synib_modalities}
        all_logits, hidden = self.synib_fuse(stacked)
        batch_size = features[self.synib_modalities[0]].shape[0]
        logits = all_logits[:batch_size]
        masked_logits = masked_logvar = None
        if synib_views is not None:
            masked_logits = all_logits[batch_size:].unflatten(0, (-1, batch_size))  # (M, B, C)
            logvar_head = self.synib_logvar_head()
            if logvar_head is not None:
                masked_logvar = logvar_head(hidden[batch_size:]).unflatten(0, (-1, batch_size))

        loss = fused_loss = None
        if labels is not None:
            loss = fused_loss = classification_loss(logits, labels)  # checks the labels once
            if unimodal_logits is not None:
                loss = loss + sum(classification_task(u).loss(u, labels) for u in unimodal_logits)
        return SynIBModelOutput(
            loss=loss,
            logits=logits,
            masked_logits=masked_logits,
            masked_logvar=masked_logvar,
            unimodal_logits=unimodal_logits if extras else None,
            fused_loss=fused_loss if extras else None,
        )


def implements_native_protocol(model: nn.Module) -> bool:
    """Whether `model` (already unwrapped from DDP/PEFT) implements [`SynIBNativeMixin`]'s protocol."""
    return isinstance(model, SynIBNativeMixin)
