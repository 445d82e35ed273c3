"""The forwards behind [`EmbeddingViews`]: a vision-language model's clean view and masked views in one call of the
model's own forward (so DDP sees one forward), in one of two layouts.

* **Blocks**: every text-side input repeated on the batch axis, one block of `B` rows per entry of a layout (`None`
  for the clean block, else the modality it masks); the vision tower runs once on the clean pixels and its output is
  repeated for the blocks (`share_vision`); [`EmbeddingMasker`] overwrites each masked block's positions in the merged
  input embeddings. Any family, any attention.
* **Packed rows** (`share_prefix`, `drop_image`): the clean batch as it is (`B` rows; the vision tower once), and a
  hook on the language model turns each example into one row — its clean sequence, then each masked view's suffix
  from its first masked position on, sharing the causal prefix (system prompt, image block) with the clean view; an
  image view that *drops* the image skips those positions (positions ids kept). See `synib_hf.masking.view_packing`.
  Exact where attention over the prefix is causal; [`packing_refusal`] says where it is not.

Ids and attention masks of the batch are never edited; `use_cache` is off.
"""

from contextlib import ExitStack, contextmanager
from copy import copy
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ..masking import EmbeddingMasker, MaskRandomness, MaskSpec, modality_positions
from ..masking.embedding_masking import PromptLayout
from ..masking.view_packing import PACKED_ATTENTION, pack_views


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


def attention_implementation(language_model: nn.Module) -> str:
    """The attention implementation the language model runs with (`"sdpa"`, `"eager"`, `"flash_attention_2"`, ...)."""
    return getattr(language_model.config, "_attn_implementation", None) or "eager"


def packing_refusal(family, language_model: nn.Module, is_classifier: bool = False) -> Optional[str]:
    """Why the packed rows (shared prefix, dropped image) cannot be exact for this model, or None where they are."""
    if is_classifier:
        return ("a VLMForSequenceClassification reads its head at positions of the unpacked sequence, so its views "
                "run as blocks")
    if family.noncausal_prefix:
        return family.noncausal_prefix
    layer_types = getattr(language_model.config, "layer_types", None) or ()
    if "sliding_attention" in layer_types:
        return ("its language model has sliding-window layers, and the packed rows' 4-D mask would replace their "
                "window")
    implementation = attention_implementation(language_model)
    if implementation not in PACKED_ATTENTION:
        return (f"its {implementation!r} attention takes no 4-D mask (load the model with attn_implementation='sdpa' "
                "or 'eager')")
    return None


class EmbeddingForward:
    """One forward of a batch's views on a vision-language model's merged input embeddings (the part of
    [`EmbeddingViews`] that calls the model).

    Args:
        inner (`nn.Module`): the module that merges image features into the embeddings (`LlavaModel`, ...); hooks go
            on it and on its language model.
        family: the family's facts (a `synib_hf.models.vlm.VLMFamily`).
        spec ([`MaskSpec`]): mask type (`full` or `random`), ratio and fill.
        randomness ([`MaskRandomness`]): the masks' private generators.
        special_ids (`Sequence[int]`): token ids the default text mask leaves alone (`tokenizer.all_special_ids`).
        share_vision (`bool`): blocks: run the vision tower once per forward and repeat its output.
        prompt_layout ([`PromptLayout`]): the chat template's words around the user's content (default text mask).
        share_prefix (`bool`): pack the views so that each masked view computes only its suffix after the clean view's
            prefix (exact under causal attention; see [`packing_refusal`]).
        drop_image (`bool`): the image view leaves the image positions out (full masks) instead of filling them.
    """

    def __init__(self, inner: nn.Module, family, spec: MaskSpec, randomness: MaskRandomness,
                 special_ids: Sequence[int] = (), share_vision: bool = True,
                 prompt_layout: Optional[PromptLayout] = None, share_prefix: bool = False, drop_image: bool = False):
        self.inner = inner
        self.family = family
        self.language_model = inner.get_decoder()
        self.masker = EmbeddingMasker(spec, randomness, family.packed_features)
        self.special_ids = tuple(special_ids)
        self.share_vision = share_vision
        self.prompt_layout = prompt_layout or PromptLayout()
        self.share_prefix = share_prefix
        self.drop_image = drop_image

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
            prompt_layout=self.prompt_layout,
        )

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

    # ---- packed rows --------------------------------------------------------------------------------------------

    def packs(self, layout: Sequence[Optional[str]]) -> bool:
        """Whether a forward of `layout` runs as packed rows: a dropped image view, or a clean view whose prefix the
        masked views share."""
        return (self.drop_image and "image" in layout) or (self.share_prefix and None in layout and len(layout) > 1)

    def pack(self, batch: Mapping, layout: Sequence[Optional[str]], positions: Mapping) -> tuple:
        """`(rows, replaced, dropped)`: the packed rows of `layout`, the positions each masked view replaces (drawn
        here), and those it leaves out."""
        masked = [m for m in layout if m is not None]
        replaced = self.masker.replaced_positions(positions, masked)
        dropped = {"image": replaced["image"]} if self.drop_image and "image" in masked else {}
        rows = pack_views(batch.get("attention_mask"), layout, replaced, dropped, share_prefix=self.share_prefix)
        return rows, replaced, dropped

    def forward_packed(self, model, batch: Mapping, layout: Sequence[Optional[str]], positions: Mapping,
                       packed: tuple, training: bool, **model_kwargs):
        """One forward of the clean batch whose language model sees the packed rows `packed` (from [`pack`]); the
        model's outputs are per packed element (`logits_to_keep` is a `(B, L')` mask). Returns the outputs."""
        self.check_inputs(batch)
        rows, replaced, dropped = packed
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "synib_text_mask") and v is not None}
        if self.family.caches_rope_deltas:
            self.inner.rope_deltas = None  # positions of a previous batch (another size) must not be reused
        implementation = attention_implementation(self.language_model)
        with self.masker.packed_views(self.language_model, positions, replaced, layout, rows, dropped, training,
                                      implementation):
            return model(**inputs, use_cache=False, **model_kwargs)
