"""Baselines behind the same Trainer API, sharing SynIB's masked views (not copies of them).

* CE-only: `SynIBTrainer` with `synib_weight=0` (exactly `transformers.Trainer`).
* [`ModalityDropoutTrainer`]: the masked views trained as augmentation with the label ("MainMask").
* [`MultilossTrainer`]: fused CE plus unimodal-head CE, the heads training the encoders too.
"""

import torch

from .synib_trainer import SynIBTrainer


class ModalityDropoutTrainer(SynIBTrainer):
    """Modality dropout: `loss = CE(f(x), y) + synib_weight · Σ_m CE(f(M_m(x)), y)`.

    The same masked views as SynIB (same `mask_type`, `mask_ratio`, `mask_fill`), but each is trained to predict the
    label instead of being penalised for confidence. Logged under the same keys (`synib/penalty_<m>` is the masked
    view's CE).

    Example:

    ```python
    >>> trainer = ModalityDropoutTrainer(model=model, args=SynIBConfig(output_dir="out", synib_weight=1.0,
    ...                                                                 mask_type="full"), train_dataset=train)
    ```
    """

    _tag_names = ["modality-dropout", "multimodal"]

    def view_losses(self, masked, labels, logvar=None, unimodal=None) -> torch.Tensor:
        # Why: the view is augmentation with the label, not a confidence penalty.
        return torch.stack([self.task.losses(view, labels) for view in masked])


class MultilossTrainer(SynIBTrainer):
    """Multiloss: fused CE plus each unimodal head's CE, with the unimodal heads' gradient reaching the encoders.

    Needs a native model with unimodal heads; trains without the SynIB penalty (`synib_weight` must be 0).
    """

    _tag_names = ["multiloss", "multimodal"]

    def __init__(self, *args, **kwargs):
        # Why: the unimodal heads must train the encoders, which native models prevent by default.
        super().__init__(*args, **kwargs)
        core = self.core_model()
        if not self.is_native or any(core.synib_unimodal_head(m) is None for m in core.synib_modalities):
            raise ValueError(
                f"MultilossTrainer needs a native model with unimodal heads; {type(core).__name__} has none. Enable "
                "`unimodal_heads` in its config."
            )
        if self.args.synib_weight != 0:
            raise ValueError(
                f"MultilossTrainer trains without the SynIB penalty, but synib_weight={self.args.synib_weight}; set "
                "it "
                "to 0 (or use SynIBTrainer)."
            )
        core.synib_detach_unimodal_heads = False
        core.config.detach_unimodal_heads = False
