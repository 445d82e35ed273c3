"""Packed views: the clean view and the masked views of a batch in one row per example, sharing the causal prefix.

Under causal attention every position before the first place where a masked view differs from the clean one is
computed identically in both, so it is computed once. Each example's row holds its clean sequence, then each masked
view's *suffix* (from its first replaced position on), and a 4-D attention mask lets each suffix see the clean prefix
before its start plus its own causal past; every element keeps the position id of the token it copies (M-RoPE's three
axes included). An image view may also *drop* the image positions instead of filling them: its suffix then skips them,
which equals the same sequence with the image attention-masked out (positions kept). Row (example) `b` of a batch
`(B, T)` becomes, e.g. with layout `(None, "image", "text")`:

    [ clean: 0 … T-1 | image view: q_b … T-1 without image tokens | text view: p_b … T-1 ]

with `q_b` the first image position and `p_b` the first masked text position. The language model sees `(B, L')`
instead of `(3·B, T)`; with the image dominating `T` and the text after it, `L' ≈ T + 2·(text after the image)`.

* [`pack_views`] lays out the rows ([`PackedRows`]) from where each view differs from the clean one.
* [`packed_attention`] is the rows' 4-D mask (boolean for SDPA, additive for eager attention).
* [`packed_language_inputs`] rewrites the language model's keyword arguments (embeddings with each view's fill,
  position ids, mask, and per-position features such as Qwen3-VL's deepstack) inside a forward pre-hook.

Exact only where attention over the prefix is causal: a model whose image or prompt tokens attend forward (PaliGemma's
prefix-LM, Gemma3's bidirectional image blocks) or whose layers use sliding windows is refused by the caller.
"""

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch


BASE, PAD = -1, -2  # segment ids of the prefix no view reads (no clean view in the layout) and of row padding
PACKED_ATTENTION = ("sdpa", "eager")  # implementations that take a 4-D mask


@dataclass
class PackedRows:
    """Where every element of the packed rows comes from.

    Args:
        source (`(B, L')` long): the position, in the example's sequence, of the token each element copies.
        segment (`(B, L')` long): the index in the layout of the view each element belongs to; `BASE` for a clean
            prefix that only masked views read (no clean view in the layout), `PAD` for row padding.
        start (`(B, L')` long): the first position of each element's segment; the segment sees the clean prefix
            before it.
        base_segment (`int`): the segment whose prefix the views share (the clean view's index, or `BASE`).
    """

    source: torch.Tensor
    segment: torch.Tensor
    start: torch.Tensor
    base_segment: int

    @property
    def valid(self) -> torch.Tensor:
        """`(B, L')` bool: real elements (not row padding)."""
        return self.segment != PAD

    def elements(self, segment: int) -> torch.Tensor:
        """`(B, L')` bool: the elements of one segment."""
        return self.segment == segment


def pack_views(
    attention_mask: Optional[torch.Tensor],
    layout: Sequence[Optional[str]],
    differs: Mapping[str, torch.Tensor],
    dropped: Mapping[str, torch.Tensor],
    share_prefix: bool = True,
) -> PackedRows:
    """Lay out one packed row per example.

    Args:
        attention_mask (`(B, T)`): attended positions (padding is left out of every segment); None: all attended.
        layout: `None` for the clean view, else the modality each masked view masks, in order.
        differs: `{modality: (B, T) bool}` positions where that view's input differs from the clean one (replaced or
            dropped); the view's suffix starts at the first of them.
        dropped: `{modality: (B, T) bool}` positions left out of that view's suffix (an image view that drops the
            image); modalities not named keep every position.
        share_prefix: start each view's suffix at its first difference (False: every view is a whole sequence).

    Example:

    ```python
    >>> differs = {"text": torch.tensor([[False, False, True, False]])}
    >>> rows = pack_views(None, (None, "text"), differs, {})
    >>> rows.source.tolist(), rows.segment.tolist()          # clean 0..3, then the text view from position 2
    ([[0, 1, 2, 3, 2, 3]], [[0, 0, 0, 0, 1, 1]])
    ```
    """
    some = next(iter(differs.values()))
    size, length = some.shape
    attended = torch.ones_like(some) if attention_mask is None else attention_mask.bool()
    arange = torch.arange(length, device=some.device)
    base_segment = layout.index(None) if None in layout else BASE
    rows = []
    for row in range(size):
        starts = {}
        for index, modality in enumerate(layout):
            if modality is None:
                continue
            where = differs[modality][row].nonzero().flatten()
            starts[index] = int(where[0]) if share_prefix and where.numel() else 0
        base_end = length if base_segment != BASE else max(starts.values(), default=0)
        pieces = [(arange[attended[row] & (arange < base_end)], base_segment, 0)]
        for index, start in starts.items():
            keep = attended[row] & (arange >= start)
            if layout[index] in dropped:
                keep &= ~dropped[layout[index]][row]
            pieces.append((arange[keep], index, start))
        rows.append([(positions, torch.full_like(positions, segment), torch.full_like(positions, start))
                     for positions, segment, start in pieces])
    width = max(sum(piece[0].numel() for piece in row) for row in rows)
    source = torch.zeros(size, width, dtype=torch.long, device=some.device)
    segment = torch.full((size, width), PAD, dtype=torch.long, device=some.device)
    start = torch.zeros(size, width, dtype=torch.long, device=some.device)
    for row, pieces in enumerate(rows):
        for target, index in zip((source, segment, start), range(3)):
            values = torch.cat([piece[index] for piece in pieces])
            target[row, : values.numel()] = values
    return PackedRows(source=source, segment=segment, start=start, base_segment=base_segment)


def packed_attention(rows: PackedRows, implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """The packed rows' mask `(B, 1, L', L')`: an element sees the earlier elements of its own segment and the base
    segment's elements before its segment's start; padding sees only itself (no empty softmax row).

    SDPA takes it boolean (True: attend); eager attention adds it, so it is additive there (0 or the dtype's minimum):
    a boolean mask added as 0/1 would silently attend everywhere.

    Raises:
        ValueError: an attention implementation that takes no 4-D mask (flash attention, flex attention).
    """
    if implementation not in PACKED_ATTENTION:
        raise ValueError(
            f"Packed SynIB views (shared prefix, dropped image) pass a 4-D attention mask, which the "
            f"{implementation!r} attention implementation does not take; load the model with "
            "attn_implementation='sdpa' (or 'eager'), or set share_view_prefix=False and drop_masked_image=False."
        )
    source, segment, start, valid = rows.source, rows.segment, rows.start, rows.valid
    same = segment[:, :, None] == segment[:, None, :]  # (B, L', L')
    shared = (segment[:, None, :] == rows.base_segment) & (source[:, None, :] < start[:, :, None])
    allowed = valid[:, None, :] & (source[:, None, :] <= source[:, :, None]) & (same | shared)
    padding = torch.eye(source.shape[1], dtype=torch.bool, device=source.device) & ~valid[:, :, None]
    allowed = (allowed | padding)[:, None]  # (B, 1, L', L')
    if implementation == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=source.device).masked_fill(~allowed, torch.finfo(dtype).min)


def gather_positions(position_ids: Optional[torch.Tensor], source: torch.Tensor) -> torch.Tensor:
    """Position ids of the packed elements: each copies its token's (`(B, T)`, or `(axes, B, T)` for M-RoPE); None
    (the model's default) is `arange(T)`."""
    if position_ids is None:
        return source
    if position_ids.dim() == 2:
        return position_ids.gather(1, source)
    return position_ids.gather(2, source[None].expand(position_ids.shape[0], -1, -1))  # (axes, B, L')


def gather_views(views: Sequence[torch.Tensor], which: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """`(B, L', D)`: element `(b, k)` is `views[which[b, k]][b, source[b, k]]` (views `(B, T, D)`)."""
    rows = torch.arange(source.shape[0], device=source.device)[:, None].expand_as(source)
    if len(views) == 1:
        return views[0][rows, source]
    return torch.stack(list(views))[which, rows, source]


def view_index(rows: PackedRows, tensor_of: Mapping[int, int]) -> torch.Tensor:
    """`(B, L')`: which of the views' tensors each element copies (`tensor_of`: segment → tensor; others: 0)."""
    which = torch.zeros_like(rows.segment)
    for segment, tensor in tensor_of.items():
        which = torch.where(rows.segment == segment, tensor, which)
    return which


def _levels(values) -> list:
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _dense(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """`(B, T, D)` from features `(N, D)` packed over the True entries of `where (B, T)` (zeros elsewhere)."""
    dense = values.new_zeros(*where.shape, values.shape[-1])
    dense[where] = values
    return dense


def packed_language_inputs(masker, kwargs: dict, rows: PackedRows, positions: Mapping[str, torch.Tensor],
                           replaced: Mapping[str, torch.Tensor], layout: Sequence[Optional[str]], dropped,
                           training: bool, implementation: str) -> dict:
    """The language model's keyword arguments for the packed rows, from those of the clean batch `(B, T)`.

    `masker` (an `EmbeddingMasker`) fills each filled view's replaced positions of the merged embeddings (and of its
    per-position features); dropped views copy the clean embeddings (their dropped positions are not in the rows).

    Raises:
        ValueError: the language model got no `inputs_embeds`, or a batch of another size.
    """
    embeds = kwargs.get("inputs_embeds")
    if embeds is None:
        raise ValueError(
            "Packed views hook the language model, which was called without `inputs_embeds`; the model must merge "
            "the image features into the embeddings before calling it (every supported VLM does)."
        )
    if embeds.shape[0] != rows.source.shape[0]:
        raise ValueError(f"The language model got {embeds.shape[0]} rows for {rows.source.shape[0]} packed rows.")
    kwargs = dict(kwargs)
    filled = [(index, modality) for index, modality in enumerate(layout)
              if modality is not None and modality not in dropped]
    which = view_index(rows, {index: number + 1 for number, (index, _) in enumerate(filled)})
    features = {packed: kwargs.get(packed.features_key) for packed in masker.packed_features
                if kwargs.get(packed.features_key) is not None}
    where = {packed: kwargs[packed.positions_key].bool() for packed in features}
    dense = {packed: [_dense(level, where[packed]) for level in _levels(values)]
             for packed, values in features.items()}
    embed_versions = [embeds]
    feature_versions = {packed: [[level] for level in levels] for packed, levels in dense.items()}
    for _, modality in filled:  # as the block path: each view's donors, then its fills
        donors = masker.donors(positions[modality], embeds) if masker.spec.mask_fill == "shuffle" else None
        where_replaced = replaced[modality][..., None]
        fill = masker.fill(modality, embeds, positions[modality], donors, training)
        embed_versions.append(torch.where(where_replaced, fill, embeds))
        for packed, levels in dense.items():
            for level, (clean, versions) in enumerate(zip(levels, feature_versions[packed])):
                if packed.modality != modality:  # another modality's view keeps these features clean
                    versions.append(clean)
                    continue
                name = f"{packed.modality}:{packed.features_key}[{level}]"
                fill = masker.fill(name, clean, positions[modality], donors, training)
                versions.append(torch.where(where_replaced, fill, clean))
    kwargs["inputs_embeds"] = gather_views(embed_versions, which, rows.source)  # (B, L', D)
    kwargs["position_ids"] = gather_positions(kwargs.get("position_ids"), rows.source)
    kwargs["attention_mask"] = packed_attention(rows, implementation, embeds.dtype)
    for packed, values in features.items():
        new_where = where[packed].gather(1, rows.source) & rows.valid  # (B, L')
        moved = [gather_views(versions, which, rows.source)[new_where] for versions in feature_versions[packed]]
        kwargs[packed.positions_key] = new_where
        kwargs[packed.features_key] = moved if isinstance(values, (list, tuple)) else moved[0]
    return kwargs
