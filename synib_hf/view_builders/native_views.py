"""[`NativeViews`]: the view builder of models implementing the native protocol ([`SynIBNativeMixin`]).

The encoders run once; every masked view re-runs only the fusion head on masked pooled features, inside the model's
own `forward` (one call, so one DDP forward). The clean view's task loss is the model's own (fused and unimodal heads).
"""

from typing import Mapping, Optional, Sequence

import torch

from ..masking import FeatureMasker, MaskRandomness, MaskSpec
from ..objective import Views, select_masked_modalities
from ..tasks import Task, classification_task


class NativeViews:
    """`(model, inputs) → Views` for a model implementing the native protocol.

    Args:
        model: the unwrapped model (no DDP/PEFT wrapper), for its modalities and heads.
        spec ([`MaskSpec`]): how features are masked.
        randomness ([`MaskRandomness`]): the masks' private generators.
        masked_modalities: the modalities that get a masked view (default: all of `model.synib_modalities`).
        view_loss: what a masked view costs (`synib_hf.objective.VIEW_LOSSES`), checked against the model's heads.

    Example:

    ```python
    >>> builder = NativeViews(model, MaskSpec(mask_type="random", mask_fill="shuffle"), MaskRandomness(seed=0))
    >>> views = builder(model, batch, training=True)
    >>> views.task_loss, views.masked.shape   # the model's own loss; (M, B, C)
    ```
    """

    name = "native"
    own_columns = ()  # batch columns that are not model inputs
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, model, spec: MaskSpec, randomness: MaskRandomness,
                 masked_modalities: Optional[Sequence[str]] = None, view_loss: str = "kl_uniform"):
        modalities = tuple(model.synib_modalities)
        if len(modalities) < 2:
            raise ValueError(
                f"{type(model).__name__} declares {len(modalities)} modality ({list(modalities)}); SynIB masks one "
                "modality while keeping the others, so it needs at least two (synib_modalities)."
            )
        if view_loss == "gaussian" and model.synib_logvar_head() is None:
            raise ValueError(
                f"synib_penalty='gaussian' needs a logvar head, but {type(model).__name__}.synib_logvar_head() "
                "returned None; enable it in the model config or use synib_penalty='kl_uniform'."
            )
        if view_loss == "unimodal_anchor" and (
            len(modalities) != 2 or any(model.synib_unimodal_head(m) is None for m in modalities)
        ):
            raise ValueError(
                "synib_penalty='unimodal_anchor' anchors each masked view to the unimodal head of the other "
                f"modality: it needs exactly two modalities with unimodal heads; {type(model).__name__} has "
                f"{list(modalities)}. Use synib_penalty='kl_uniform'."
            )
        self.model_name = type(model).__name__
        self.modalities = modalities
        self.masked_modalities = select_masked_modalities(masked_modalities, modalities)
        self.view_loss = view_loss
        self.masker = FeatureMasker(spec, self.masked_modalities, randomness)

    def check(self, model, batch: Mapping, labels: torch.Tensor) -> Task:
        """One plain forward of two rows (no gradient): the head's width decides its task; the labels must fit it."""
        with torch.no_grad():
            logits = model(**{k: v[:2] for k, v in batch.items()}).logits
        task = classification_task(logits)
        task.check_labels(labels)
        return task

    def __call__(self, model, inputs: Mapping, training: bool, run_view=None, num_items_in_batch=None) -> Views:
        """Clean and masked views from one `model(...)` call; `inputs` holds `labels`."""
        labels = inputs["labels"]
        outputs = model(**inputs, synib_views=self.masker)
        if getattr(outputs, "masked_logits", None) is None:
            raise ValueError(
                f"{self.model_name}.forward did not return `masked_logits`; its forward must pass `synib_views` to "
                "`self.synib_forward(...)` (see synib_hf.SynIBNativeMixin)."
            )
        task = classification_task(outputs.logits)
        anchors = None
        if self.view_loss == "unimodal_anchor":  # the unimodal head of the modality each view leaves visible
            visible = {m: outputs.unimodal_logits[1 - self.modalities.index(m)] for m in self.modalities}
            anchors = torch.stack([visible[m] for m in self.masked_modalities])
        columns = {} if outputs.fused_loss is None else {"fused_loss": outputs.fused_loss.detach().expand(len(labels))}
        return Views(
            task=task, modalities=self.masked_modalities, masked=outputs.masked_logits, valid=task.valid_rows(labels),
            targets=labels, task_loss=outputs.loss, scores=outputs.logits, outputs={"logits": outputs.logits},
            masked_logvar=outputs.masked_logvar, anchors=anchors, columns=columns,
        )

    def state_dict(self) -> dict:
        return self.masker.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.masker.load_state_dict(state)
