"""Clean and masked views of a vision-language model in one forward: embedding-level SynIB for VLMs.

The batch's text-side inputs are repeated on the batch axis, one block of `B` rows per entry of a layout (`None` for
the clean block, else the modality that block masks). Two forward pre-hooks do the rest inside the model's own forward
(so DDP sees one forward): the vision tower runs once on the clean pixels and its output is repeated for the blocks
(`share_vision`), and [`EmbeddingMasker`] overwrites the masked modality's positions of each masked block in the
merged input embeddings. Ids and attention masks are never edited; `use_cache` is off.

Two read-outs:

* generative (`*ForConditionalGeneration`): the model's causal-LM loss on the clean block and the verbalizer
  (candidate answers' first tokens at the answer position) in every block; with `lean_logits` only those positions'
  logits are computed (`logits_to_keep` as a boolean mask);
* classification ([`VLMForSequenceClassification`]): the head's `(rows, C)` logits (and log-variances).
"""

from contextlib import ExitStack, contextmanager
from copy import copy
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ...embedding_masking import EmbeddingMasker, modality_positions
from ...masking import MaskRandomness, MaskSpec
from ...generative import (
    answer_classes,
    answer_positions,
    candidate_logits,
    causal_lm_loss,
    lean_logits_mask,
    split_lean_logits,
    supervised_positions,
)
from ...tasks import classification_loss
from .families import family_of, inner_model


@dataclass
class ViewReadout:
    """What SynIB reads from one forward of the views.

    Args:
        task_loss: the clean block's loss (causal-LM or cross-entropy); None without a clean block.
        logits (`(B, C)`): clean candidate (or class) logits; None without a clean block.
        masked_logits (`(M, B, C)`): each masked block's candidate (or class) logits.
        masked_logvar (`(M, B, C)`): log-variances of a classification model's logvar head, if it has one.
        classes (`(B,)`): the class of each example (the candidate its answer starts with, or the label).
        replaced: `{modality: (B, T) bool}` positions each masked block overwrote.
    """

    task_loss: Optional[torch.Tensor]
    logits: Optional[torch.Tensor]
    masked_logits: Optional[torch.Tensor]
    masked_logvar: Optional[torch.Tensor]
    classes: torch.Tensor
    replaced: dict


def repeat_encoder_output(encoded, copies: int, fields: Sequence[str]):
    """A shallow copy of a vision encoder output whose `fields` hold every image `copies` times, in block order."""

    def repeat(value):
        if torch.is_tensor(value):
            return torch.cat([value] * copies)  # (copies·N_images, ...)
        if value and not torch.is_tensor(value[0]):
            return [repeat(level) for level in value]  # e.g. deepstack: one list of images per layer
        return list(value) * copies

    repeated = copy(encoded)
    for name in fields:
        repeated[name] = repeat(encoded[name])
    return repeated


class VLMViews:
    """Runs a batch's clean block and masked blocks through a generative VLM or a [`VLMForSequenceClassification`].

    Args:
        model (`nn.Module`): the unwrapped model (no DDP/PEFT wrapper); hooks go on its inner modules.
        spec ([`MaskSpec`]): mask type (`full` or `random`), ratio and fill.
        randomness ([`MaskRandomness`]): the masks' private generators.
        special_ids (`Sequence[int]`): token ids the default text mask leaves alone (`tokenizer.all_special_ids`).
        share_vision (`bool`): run the vision tower once per forward and repeat its output for the blocks.

    Example:

    ```python
    >>> views = VLMViews(model, MaskSpec(mask_type="full"), MaskRandomness(seed=0), tokenizer.all_special_ids)
    >>> readout = views.generative(model, batch, candidate_ids=(40, 41), layout=(None, "image", "text"), training=True)
    >>> readout.task_loss, readout.masked_logits.shape  # LM loss of the clean rows; (M, B, C)
    ```
    """

    def __init__(self, model: nn.Module, spec: MaskSpec, randomness: MaskRandomness, special_ids: Sequence[int] = (),
                 share_vision: bool = True):
        self.inner = inner_model(model)
        self.family = family_of(self.inner.config)
        self.language_model = self.inner.get_decoder()
        self.masker = EmbeddingMasker(spec, randomness, self.family.packed_features)
        self.special_ids = tuple(special_ids)
        self.share_vision = share_vision
        self.is_classifier = hasattr(model, "readout_positions")
        self._readout_model = model if self.is_classifier else None

    # ---- inputs -----------------------------------------------------------------------------------------------------

    def check_inputs(self, batch: Mapping) -> None:
        """Raise a clear error when an input the family needs is missing, or a video is passed."""
        if batch.get("pixel_values_videos") is not None:
            raise ValueError(
                "The batch has `pixel_values_videos`: video positions are neither masked as image nor as text, so "
                "they would leak into both views. SynIB's vision-language path supports images only; drop the videos."
            )
        needed = ("input_ids", self.family.vision_inputs[0], *self.family.required_inputs)
        missing = [key for key in needed if batch.get(key) is None]
        if missing:
            raise ValueError(
                f"A {self.inner.config.model_type} batch needs {list(dict.fromkeys(needed))}, but {missing} "
                f"{'is' if len(missing) == 1 else 'are'} missing (batch keys: {sorted(batch)}). The model's processor "
                "returns them; make the data collator keep them (and set remove_unused_columns=False if a column is "
                "dropped)."
            )

    def positions(self, batch: Mapping, labels=None, readout_positions=None) -> dict:
        """`{modality: (B, T) bool}`: image tokens and text positions (`synib_text_mask` or the default)."""
        return modality_positions(
            batch["input_ids"],
            batch.get("attention_mask"),
            image_token_ids=[self.inner.config.image_token_id],
            special_ids=self.special_ids,
            text_mask=batch.get("synib_text_mask"),
            labels=labels,
            readout_positions=readout_positions,
        )

    def readout_positions(self, batch: Mapping) -> torch.Tensor:
        """The classification variant's read-out position per example, `(B,)`."""
        return self._readout_model.readout_positions(batch["input_ids"], batch.get("attention_mask"))

    def stack(self, batch: Mapping, copies: int) -> dict:
        """Model inputs for `copies` blocks: every per-example input repeated on the batch axis; the vision tower's own
        inputs once when the vision is shared; labels and `synib_text_mask` left out (read here, not by the model)."""
        batch_size = batch["input_ids"].shape[0]
        own_vision = set(self.family.vision_inputs) - set(self.family.row_vision_inputs)
        stacked = {}
        for key, value in batch.items():
            if key in ("labels", "synib_text_mask") or value is None:
                continue
            shared = self.share_vision and key in own_vision
            repeat = copies > 1 and not shared and torch.is_tensor(value) and value.dim() > 0
            if repeat and key not in self.family.vision_inputs and value.shape[0] != batch_size:
                raise ValueError(
                    f"Input {key!r} has {value.shape[0]} rows for a batch of {batch_size}; the views repeat "
                    "per-example inputs on the batch axis. Drop it from the batch or make it batch-first."
                )
            stacked[key] = torch.cat([value] * copies) if repeat else value
        stacked["use_cache"] = False  # a cache for every row would be built otherwise
        return stacked

    # ---- one forward ------------------------------------------------------------------------------------------------

    @contextmanager
    def _shared_vision(self, copies: int):
        """Run the vision tower once on the clean images and hand its output, repeated, to the inner model."""
        family = self.family

        def hook(module, args, kwargs):
            kwargs = dict(kwargs)
            vision = {}
            for key in family.vision_inputs:
                if kwargs.get(key) is None:
                    continue
                if key in family.row_vision_inputs:  # repeated for the language side; the tower needs one copy
                    vision[key] = kwargs[key][: kwargs[key].shape[0] // copies]
                else:
                    vision[key] = kwargs.pop(key)
            encoded = module.get_image_features(**vision, return_dict=True)
            repeated = repeat_encoder_output(encoded, copies, family.encoder_output_fields)
            kwargs["mm_encoder_outputs"] = {"image": repeated}
            return args, kwargs

        handle = self.inner.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def forward(self, model, batch: Mapping, layout: Sequence[Optional[str]], positions: Mapping, training: bool,
                **model_kwargs):
        """One forward of `len(layout)` blocks. Returns `(outputs, replaced)`."""
        self.check_inputs(batch)
        if None in layout and layout[0] is not None:
            raise ValueError(f"The clean block must come first in the layout, got {tuple(layout)}.")
        copies = len(layout)
        inputs = {**self.stack(batch, copies), **model_kwargs}
        if self.family.caches_rope_deltas:
            self.inner.rope_deltas = None  # positions of a previous batch (another size) must not be reused
        with ExitStack() as stack:
            if self.share_vision and copies > 1:
                stack.enter_context(self._shared_vision(copies))
            replaced = stack.enter_context(self.masker.views(self.language_model, positions, layout, training))
            outputs = model(**inputs)
        return outputs, replaced

    # ---- read-outs --------------------------------------------------------------------------------------------------

    def generative(self, model, batch: Mapping, candidate_ids: Sequence[int], layout: Sequence[Optional[str]],
                   training: bool, lean_logits: bool = True, num_items_in_batch=None) -> ViewReadout:
        """The verbalizer read-out of a `*ForConditionalGeneration` model (labels `(B, T)`, −100 on the prompt)."""
        labels = batch["labels"]
        answers = answer_positions(labels)  # (B,)
        classes = answer_classes(labels, answers, candidate_ids)
        positions = self.positions(batch, labels=labels, readout_positions=answers)
        extra = {"logits_to_keep": lean_logits_mask(labels, layout)} if lean_logits else {}
        outputs, replaced = self.forward(model, batch, layout, positions, training, **extra)
        if lean_logits:
            clean, clean_answer, masked = split_lean_logits(outputs.logits, labels, layout)
        else:
            logits = outputs.logits.unflatten(0, (len(layout), -1))  # (blocks, B, T, V)
            rows = torch.arange(labels.shape[0], device=labels.device)
            blocks = dict(zip(layout, logits))
            clean = blocks[None][supervised_positions(labels)] if None in blocks else None
            clean_answer = blocks[None][rows, answers] if None in blocks else None
            masked_blocks = [block[rows, answers] for modality, block in blocks.items() if modality is not None]
            masked = torch.stack(masked_blocks) if masked_blocks else None
        loss = causal_lm_loss(clean, labels, num_items_in_batch) if clean is not None else None
        return ViewReadout(
            task_loss=loss,
            logits=candidate_logits(clean_answer, candidate_ids) if clean_answer is not None else None,
            masked_logits=candidate_logits(masked, candidate_ids) if masked is not None else None,
            masked_logvar=None,
            classes=classes,
            replaced=replaced,
        )

    def classification(self, model, batch: Mapping, layout: Sequence[Optional[str]], training: bool) -> ViewReadout:
        """The head read-out of a [`VLMForSequenceClassification`] (labels: one class index per example)."""
        labels = batch["labels"]
        positions = self.positions(batch, readout_positions=self.readout_positions(batch))
        outputs, replaced = self.forward(model, batch, layout, positions, training)
        logits = outputs.logits.unflatten(0, (len(layout), -1))  # (blocks, B, C)
        logvar = outputs.logvar.unflatten(0, (len(layout), -1)) if outputs.logvar is not None else None
        masked = [i for i, modality in enumerate(layout) if modality is not None]
        clean = logits[0] if layout[0] is None else None
        return ViewReadout(
            task_loss=classification_loss(clean, labels) if clean is not None else None,
            logits=clean,
            masked_logits=logits[masked] if masked else None,
            masked_logvar=logvar[masked] if logvar is not None and masked else None,
            classes=labels,
            replaced=replaced,
        )
