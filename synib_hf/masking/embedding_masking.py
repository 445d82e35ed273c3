"""Embedding-level masking: masked views built inside one forward of a generative vision-language model.

Input-level masking cannot work for VLMs: editing token ids breaks the count of image tokens against image features,
a zero image is dropped as padding by some families (Idefics3, SmolVLM), and switching attention off moves Qwen's
M-RoPE positions. So ids and attention masks are never edited. Instead the batch is repeated on the batch axis (one
block of `B` rows per view: `(1 + M)·B` rows) and a forward pre-hook on the language model overwrites one modality's
positions in the merged `inputs_embeds` of each masked block, after the image features have been scattered in. The
fill is attended like any token (as the SynIB authors do).

* [`modality_positions`] says where each modality sits in a sequence: image positions from the image token id, text
  positions from an explicit per-example mask or a documented default.
* [`EmbeddingMasker`] draws the positions each view overwrites (`full` or `random`) and fills them (`zero`,
  `ema_noise`, or `shuffle` where the masked positions align across the batch); [`PackedFeatures`] names extra
  per-position inputs of the language model that carry the same modality and are masked with it (Qwen3-VL's
  "deepstack" visual features, which otherwise leak the image).

This module knows no model family; `synib_hf.models.vlm` supplies the per-family facts.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ..tasks import IGNORE_INDEX
from .fills import FillStatistics
from .mask_spec import MaskSpec
from .randomness import MaskRandomness
from .view_packing import PackedRows, packed_language_inputs


EMBEDDING_MASK_TYPES = ("full", "random")
EMBEDDING_MODALITIES = ("image", "text")


@dataclass(frozen=True)
class PackedFeatures:
    """Per-position features passed to the language model beside `inputs_embeds`, packed over the True positions of a
    boolean position mask, that belong to one modality and must be masked with it.

    Args:
        features_key (`str`): the language model's keyword holding a tensor `(N, D)` or a list of them (one per layer).
        positions_key (`str`): the keyword holding the `(rows, T)` boolean mask whose True positions, in row-major
            order, the `N` packed rows belong to.
        modality (`str`): the modality whose masked positions these features follow.

    Example:

    ```python
    >>> deepstack = PackedFeatures("deepstack_visual_embeds", "visual_pos_masks", "image")  # Qwen3-VL
    ```
    """

    features_key: str
    positions_key: str
    modality: str = "image"


def modality_positions(
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    image_token_ids: Sequence[int],
    special_ids: Sequence[int] = (),
    text_mask: Optional[torch.Tensor] = None,
    labels: Optional[torch.Tensor] = None,
    readout_positions: Optional[torch.Tensor] = None,
    prompt_layout: Optional["PromptLayout"] = None,
) -> dict:
    """Where each modality sits: `{"image": (B, T) bool, "text": (B, T) bool}`.

    Image positions are the image tokens. Text positions are `text_mask` when given (a `synib_text_mask` column); by
    default the user's content: the attended tokens after the example's last image token that are not special, not
    supervised (`labels == -100`, so the answer is never masked), not the chat template's words right after the image
    (`prompt_layout.image_trailer`) and not the template's words before the answer (`prompt_layout.answer_header`
    tokens ending at the read-out position). So the system prompt, the role words and the image block stay as they
    are, and a text view shares everything up to the question with the clean view. Text before the image is not
    masked by default; pass `text_mask` for other layouts.

    Raises:
        ValueError: `text_mask` has the wrong shape or overlaps image tokens, or an example has no position of a
            modality (its masked view would equal the clean one, and the penalty would push the clean prediction to
            uniform).

    Example:

    ```python
    >>> ids = torch.tensor([[2, 9, 4, 4, 11, 12, 3]])  # bos, a role word, two image tokens, two words, eos
    >>> positions = modality_positions(ids, torch.ones_like(ids), image_token_ids=[4], special_ids=[2, 3])
    >>> positions["image"].int().tolist(), positions["text"].int().tolist()
    ([[0, 0, 1, 1, 0, 0, 0]], [[0, 0, 0, 0, 1, 1, 0]])
    ```
    """
    image = torch.isin(input_ids, torch.tensor(list(image_token_ids), device=input_ids.device))
    if text_mask is not None:
        if text_mask.shape != input_ids.shape:
            raise ValueError(
                f"synib_text_mask has shape {tuple(text_mask.shape)} but input_ids has {tuple(input_ids.shape)}: it "
                "must mark, per example and position, the text tokens a text view overwrites (1) or keeps (0)."
            )
        text = text_mask.bool()
        if bool((text & image).any()):
            raise ValueError(
                "synib_text_mask marks image-token positions as text; the image view masks those. Set it to 0 on "
                "image tokens."
            )
    else:
        layout = prompt_layout or PromptLayout()
        text = ~image & ~torch.isin(input_ids, torch.tensor(list(special_ids), device=input_ids.device))
        if attention_mask is not None:
            text &= attention_mask.bool()
        if labels is not None:
            text &= labels == IGNORE_INDEX
        text &= image.int().cumsum(dim=1) == image.sum(dim=1, keepdim=True)  # after the last image token
        if layout.image_trailer:
            text &= text.int().cumsum(dim=1) > layout.image_trailer
        if readout_positions is not None:
            text[torch.arange(text.shape[0], device=text.device), readout_positions] = False
            before_header = readout_positions[:, None] - layout.answer_header  # (B, 1) last content position
            text &= torch.arange(text.shape[1], device=text.device)[None, :] <= before_header
    positions = {"image": image, "text": text}
    for modality, where in positions.items():
        empty = (~where.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            hint = (
                "every example needs its image tokens (check the processor and image_token_id)"
                if modality == "image"
                else "give those examples prompt text, or pass a synib_text_mask column"
            )
            raise ValueError(
                f"Examples {empty} of the batch have no {modality} position to mask, so their masked {modality} view "
                f"would equal the clean one: {hint}, or leave {modality!r} out of masked_modalities."
            )
    return positions


@dataclass(frozen=True)
class PromptLayout:
    """Where the user's content sits around the chat template's own words (found once per processor from its chat
    template: `synib_hf.models.vlm.prompt_layout`).

    Args:
        image_trailer (`int`): ordinary (non-special) template tokens between the image and the user's text (LLaVA's
            newline after `<image>`).
        answer_header (`int`): template tokens between the user's text and the answer, the last one at the read-out
            position (Qwen's `<|im_end|>`, newline, `<|im_start|>`, `assistant`, newline: 5).
    """

    image_trailer: int = 0
    answer_header: int = 0


def _row_major_index(where: torch.Tensor) -> torch.Tensor:
    """`(B, K)` positions of the True entries of a `(B, T)` mask with the same count K in every row."""
    counts = where.sum(dim=1)
    if bool((counts != counts[0]).any()):
        raise ValueError(
            "mask_fill='shuffle' fills each masked position from the same place among another example's positions of "
            f"that modality, so every example needs the same number of them; the counts here are {counts.tolist()}. "
            "Use mask_fill='ema_noise' or 'zero', or pass a synib_text_mask with equal counts."
        )
    return where.nonzero()[:, 1].view(where.shape[0], -1)


@dataclass
class _Donors:
    """For `shuffle`: the row and position each modality position of a block takes its fill from."""

    rows: torch.Tensor  # (B, K) receiving row
    positions: torch.Tensor  # (B, K) receiving position
    donor_rows: torch.Tensor  # (B, K)
    donor_positions: torch.Tensor  # (B, K)


class EmbeddingMasker:
    """Masks one modality's positions in the merged input embeddings of a language model, per block of repeated rows.

    Use [`EmbeddingMasker.views`] around one forward of a batch whose text inputs are repeated on the batch axis, one
    block of `B` rows per entry of `layout` (`None` for the clean block, else the modality that block masks):

    Example:

    ```python
    >>> masker = EmbeddingMasker(MaskSpec(mask_type="full", mask_fill="zero"), MaskRandomness(seed=0))
    >>> positions = modality_positions(input_ids, attention_mask, image_token_ids=[model.config.image_token_id])
    >>> with masker.views(model.get_decoder(), positions, layout=(None, "image", "text"), training=True):
    ...     outputs = model(**stacked_inputs)  # stacked_inputs: every text input repeated 3 times on the batch axis
    ```
    """

    def __init__(self, spec: MaskSpec, randomness: MaskRandomness, packed_features: Sequence[PackedFeatures] = ()):
        if spec.mask_type not in EMBEDDING_MASK_TYPES:
            raise ValueError(
                f"mask_type={spec.mask_type!r} is not available for embedding-level masking (vision-language models); "
                f"use one of {EMBEDDING_MASK_TYPES}."
            )
        self.spec = spec
        self.randomness = randomness
        self.packed_features = tuple(packed_features)
        self.statistics = FillStatistics(decay=spec.fill_ema_decay)

    def replaced_positions(self, positions: Mapping[str, torch.Tensor], modalities: Sequence[str]) -> dict:
        """Positions each view overwrites, `(B, T)` bool per modality: all of them (`full`) or each with probability
        `mask_ratio` (`random`), drawn from the masks' private generator."""
        replaced = {}
        for modality in modalities:
            where = positions[modality]
            if self.spec.mask_type == "random":
                where = where & (self.randomness.rand(where.shape, where) < self.spec.mask_ratio)
            replaced[modality] = where
        return replaced

    @contextmanager
    def views(
        self,
        language_model: nn.Module,
        positions: Mapping[str, torch.Tensor],
        layout: Sequence[Optional[str]],
        training: bool,
    ):
        """Install the masking hook on `language_model` for the forwards inside the block; yields the replaced
        positions `{modality: (B, T) bool}` of the masked blocks."""
        unknown = sorted({m for m in layout if m is not None} - set(positions))
        if unknown:
            raise ValueError(f"layout names {unknown}, but positions are given for {sorted(positions)} only.")
        replaced = self.replaced_positions(positions, [m for m in layout if m is not None])

        def hook(module, args, kwargs):
            return args, self._overwrite(kwargs, positions, replaced, tuple(layout), training)

        handle = language_model.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield replaced
        finally:
            handle.remove()

    @contextmanager
    def packed_views(self, language_model: nn.Module, positions: Mapping[str, torch.Tensor],
                     replaced: Mapping[str, torch.Tensor], layout: Sequence[Optional[str]], rows: PackedRows,
                     dropped: Mapping[str, torch.Tensor], training: bool, implementation: str):
        """Install the hook that turns the language model's clean batch `(B, T)` into the packed rows `rows` of
        `layout` (each view's suffix after the shared prefix; `dropped` modalities left out of their view, the others
        filled at `replaced`), for the forwards inside the block (`synib_hf.masking.view_packing`)."""

        def hook(module, args, kwargs):
            return args, packed_language_inputs(self, kwargs, rows, positions, replaced, layout, dropped, training,
                                                implementation)

        handle = language_model.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def state_dict(self) -> dict:
        """The fill statistics (the randomness is saved by its owner, the trainer)."""
        return {"fill": self.statistics.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.statistics.load_state_dict(state["fill"])

    # ---- inside the hook --------------------------------------------------------------------------------------------

    def _overwrite(self, kwargs: dict, positions, replaced, layout, training: bool) -> dict:
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            raise ValueError(
                "Embedding-level masking hooks the language model, which was called without `inputs_embeds`; the "
                "model must merge the image features into the embeddings before calling it (every supported VLM does)."
            )
        batch_size = next(iter(positions.values())).shape[0]
        if embeds.shape[0] != len(layout) * batch_size:
            raise ValueError(
                f"The language model got {embeds.shape[0]} rows, but the views expect {len(layout)} blocks of "
                f"{batch_size}: repeat every text input {len(layout)} times on the batch axis."
            )
        blocks = list(embeds.split(batch_size))  # one (B, T, D) block per view
        kwargs = dict(kwargs)
        for index, modality in enumerate(layout):
            if modality is None:
                continue
            block, where = blocks[index], replaced[modality]
            donors = self.donors(positions[modality], block) if self.spec.mask_fill == "shuffle" else None
            fill = self.fill(modality, block, positions[modality], donors, training)
            blocks[index] = torch.where(where[..., None], fill, block)
            for packed in self.packed_features:
                if packed.modality == modality and kwargs.get(packed.features_key) is not None:
                    self._overwrite_packed(kwargs, packed, index, batch_size, where, donors, training)
        kwargs["inputs_embeds"] = torch.cat(blocks)  # ((1 + M)·B, T, D)
        return kwargs

    def donors(self, where: torch.Tensor, block: torch.Tensor) -> _Donors:
        if where.shape[0] < 2:
            raise ValueError(
                "mask_fill='shuffle' on the embedding path fills each example's masked positions from another example "
                "of its batch, and this batch has one example (the last of an epoch or of an evaluation set?): set "
                "dataloader_drop_last=True and an evaluation set whose size the evaluation batch divides, or use "
                "mask_fill='ema_noise' (this path's default)."
            )
        index = _row_major_index(where)  # (B, K)
        permutation = self.randomness.derangement(where.shape[0], block)  # (B,)
        rows = torch.arange(where.shape[0], device=where.device)[:, None].expand_as(index)
        return _Donors(rows=rows, positions=index, donor_rows=permutation[:, None].expand_as(index),
                       donor_positions=index[permutation])

    def fill(self, name: str, block: torch.Tensor, where: torch.Tensor, donors: Optional[_Donors], training: bool):
        """A `(B, T, D)` fill for `block` (used only at the replaced positions), carrying no gradient."""
        kind = self.spec.mask_fill
        if kind == "zero":
            return torch.zeros_like(block)
        if kind == "shuffle":
            source = block.detach()
            fill = source.clone()
            fill[donors.rows, donors.positions] = source[donors.donor_rows, donors.donor_positions]
            return fill
        return self._noise(name, block.detach()[where], block.shape, training)

    def _noise(self, name: str, clean: torch.Tensor, shape, training: bool) -> torch.Tensor:
        """N(μ, σ²) per hidden unit from the EMA of this modality's clean values `(N, D)` (updated in training)."""
        if training:
            self.statistics.update(name, clean)
        mean, var = self.statistics.moments(name, clean)  # (1, D) each
        noise = self.randomness.randn(shape, clean)
        return (mean + var.sqrt() * noise).to(clean.dtype)

    def _overwrite_packed(self, kwargs, packed: PackedFeatures, index, batch_size, where, donors, training) -> None:
        """Mask the packed features at the replaced positions of block `index` (same fill kind, same donors)."""
        mask = kwargs.get(packed.positions_key)
        if mask is None:
            raise ValueError(f"The language model got {packed.features_key!r} without {packed.positions_key!r}.")
        mask = mask.bool()
        block_rows = slice(index * batch_size, (index + 1) * batch_size)
        replaced_full = torch.zeros_like(mask)
        replaced_full[block_rows] = where & mask[block_rows]
        selected = replaced_full[mask]  # (N,) packed rows to fill
        packed_index = (mask.flatten().long().cumsum(0) - 1).view(mask.shape)  # (rows, T) -> packed row
        features = kwargs[packed.features_key]
        is_list = isinstance(features, (list, tuple))
        levels = list(features) if is_list else [features]
        filled = []
        for level, values in enumerate(levels):  # (N, D)
            if self.spec.mask_fill == "zero":
                fill = torch.zeros_like(values)
            elif self.spec.mask_fill == "shuffle":
                fill = values.detach().clone()
                receivers = packed_index[donors.rows + index * batch_size, donors.positions]
                givers = packed_index[donors.donor_rows + index * batch_size, donors.donor_positions]
                fill[receivers] = values.detach()[givers]
            else:
                in_block = torch.zeros_like(mask)
                in_block[block_rows] = mask[block_rows]
                block_values = values.detach()[in_block[mask]]  # this block's packed rows: clean copies
                fill = self._noise(f"{packed.modality}:{packed.features_key}[{level}]", block_values, values.shape,
                                   training)
            filled.append(torch.where(selected[:, None], fill, values))
        kwargs[packed.features_key] = filled if is_list else filled[0]
