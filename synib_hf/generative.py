"""The generative read-out: what SynIB reads from a model that answers in tokens (a verbalizer).

SFT-style data supervise the answer with `labels` `(B, T)` that are −100 on the prompt. The read-out is the answer
position — the position whose next-token distribution predicts the first supervised token, i.e. the position before
it — restricted to the first tokens of the candidate answers (`answer_candidates`, e.g. `["yes", "no"]`): candidate
logits `(B, C)`, so every classification penalty and metric applies. Penalising the whole vocabulary at every label
token instead put almost all of the masked mass outside the answers and penalised EOS, which depends on neither
modality (issue 11).

The task loss stays the model's own causal-LM loss on the labels. [`lean_logits_mask`] names the only positions whose
logits anyone reads (the supervised ones in the clean rows, the answer position in the masked rows), for
`logits_to_keep`, so the `(rows, T, V)` logits of a 32k–150k vocabulary are never built.
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .tasks import IGNORE_INDEX




def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """The answer position per example, `(B,)`: the position before the first supervised label token.

    Raises:
        ValueError: an example has no supervised token, or its first supervised token is at position 0 (nothing
            precedes it to read).

    Example:

    ```python
    >>> answer_positions(torch.tensor([[-100, -100, 7, 3], [-100, 9, 3, -100]]))
    tensor([1, 0])
    ```
    """
    supervised = labels != IGNORE_INDEX
    if labels.dim() != 2:
        raise ValueError(f"The generative read-out needs token labels (batch, sequence), got {tuple(labels.shape)}.")
    missing = (~supervised.any(dim=1)).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"Examples {missing} have no supervised label token (all -100), so there is no answer to read. SFT-style "
            "labels keep the answer's token ids and set the prompt to -100."
        )
    first = supervised.int().argmax(dim=1)  # (B,) first supervised position
    if bool((first == 0).any()):
        raise ValueError(
            "An example's first supervised label token is at position 0, so no position predicts it; set the "
            "prompt's labels to -100 (the answer follows the prompt)."
        )
    return first - 1


def candidate_token_ids(tokenizer, candidates: Sequence[str]) -> tuple:
    """The first token id of each candidate answer, through the tokenizer (or a processor's `.tokenizer`).

    Candidates are written as they appear in the labels: a BPE tokenizer tells `"yes"` from `" yes"`.

    Raises:
        ValueError: fewer than two candidates, a candidate encodes to no token, or two share their first token (the
            read-out could not tell them apart).

    Example:

    ```python
    >>> candidate_token_ids(tokenizer, ["yes", "no"])
    (40, 41)
    ```
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if tokenizer is None:
        raise ValueError(
            "answer_candidates are resolved to token ids through the processing class: pass processing_class="
            "your processor (or tokenizer) to the trainer."
        )
    if isinstance(candidates, str) or len(candidates) < 2:
        raise ValueError(f"answer_candidates needs at least two candidate strings, got {candidates!r}.")
    first = {}
    for candidate in candidates:
        ids = tokenizer(candidate, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"answer_candidates: {candidate!r} encodes to no token.")
        if ids[0] in first:
            raise ValueError(
                f"answer_candidates {first[ids[0]]!r} and {candidate!r} share their first token (id {ids[0]}, "
                f"{tokenizer.convert_ids_to_tokens(ids[0])!r}), so the answer position cannot tell them apart. Use "
                "candidates that differ in their first token, e.g. 'A'/'B' or 'yes'/'no'."
            )
        first[ids[0]] = candidate
    return tuple(first)


def answer_classes(labels: torch.Tensor, positions: torch.Tensor, candidate_ids: Sequence[int]) -> torch.Tensor:
    """The index of each example's answer among the candidates, `(B,)`, from its first supervised label token.

    Raises:
        ValueError: an answer's first token is not a candidate's first token.
    """
    rows = torch.arange(labels.shape[0], device=labels.device)
    answers = labels[rows, positions + 1]  # (B,) first supervised token
    candidates = torch.tensor(list(candidate_ids), device=labels.device)
    matches = answers[:, None] == candidates[None, :]  # (B, C)
    unmatched = (~matches.any(dim=1)).nonzero().flatten().tolist()
    if unmatched:
        found = sorted(set(answers[unmatched].tolist()))
        raise ValueError(
            f"The answers of examples {unmatched} start with token ids {found}, which are not the first token of any "
            f"of answer_candidates (ids {list(candidate_ids)}). List every answer in answer_candidates, written as in "
            "the labels (mind a leading space)."
        )
    return matches.int().argmax(dim=1)


def candidate_logits(logits: torch.Tensor, candidate_ids: Sequence[int]) -> torch.Tensor:
    """Logits `(..., V)` restricted to the candidates' first tokens: `(..., C)` (the verbalizer)."""
    return logits[..., list(candidate_ids)]


def supervised_positions(labels: torch.Tensor) -> torch.Tensor:
    """`(B, T)` bool: positions whose logits the causal-LM loss reads (the next label is supervised)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep


def lean_logits_mask(labels: torch.Tensor, layout: Sequence[Optional[str]]) -> torch.Tensor:
    """The `logits_to_keep` boolean mask `(len(layout)·B, T)` of a batch repeated in blocks of `B` rows: the supervised
    positions in the clean block (`None` in `layout`), the answer position in each masked block.

    Example:

    ```python
    >>> lean_logits_mask(torch.tensor([[-100, -100, 7, 3]]), layout=(None, "image")).int()
    tensor([[0, 1, 1, 0],
            [0, 1, 0, 0]], dtype=torch.int32)
    ```
    """
    clean = supervised_positions(labels)
    answer = torch.zeros_like(clean)
    answer[torch.arange(labels.shape[0], device=labels.device), answer_positions(labels)] = True
    return torch.cat([clean if modality is None else answer for modality in layout])


def split_lean_logits(kept: torch.Tensor, labels: torch.Tensor, layout: Sequence[Optional[str]]):
    """Split the `(K, V)` logits returned under [`lean_logits_mask`] (row-major over the kept positions).

    Returns:
        `(clean (N, V), clean_answer (B, V), masked_answer (M, B, V))`: the clean block's supervised positions (in the
        order of [`causal_lm_loss`]'s targets) and its answer position (both None without a clean block), and each
        masked block's answer position.
    """
    batch_size = labels.shape[0]
    per_row = supervised_positions(labels).sum(dim=1)  # (B,) kept positions per clean row
    clean = clean_answer = None
    masked, offset = [], 0
    for modality in layout:
        if modality is None:
            clean = kept[offset : offset + int(per_row.sum())]
            clean_answer = clean[per_row.cumsum(0) - per_row]  # the answer position is each row's first kept one
            offset += clean.shape[0]
        else:
            masked.append(kept[offset : offset + batch_size])
            offset += batch_size
    return clean, clean_answer, torch.stack(masked) if masked else None


def packed_logits_mask(rows, labels: torch.Tensor, layout: Sequence[Optional[str]]) -> torch.Tensor:
    """The `logits_to_keep` mask `(B, L')` of packed rows (`synib_hf.masking.view_packing.PackedRows`): the supervised
    positions of the clean view's elements, the answer position of each masked view's."""
    answers = answer_positions(labels)  # (B,)
    clean = layout.index(None) if None in layout else None
    supervised = supervised_positions(labels).gather(1, rows.source)  # (B, L')
    keep = (rows.source == answers[:, None]) & (rows.segment >= 0)
    if clean is not None:
        keep = torch.where(rows.segment == clean, supervised, keep)
    return keep


def split_packed_logits(kept: torch.Tensor, rows, labels: torch.Tensor, layout: Sequence[Optional[str]]):
    """Split the `(K, V)` logits kept under [`packed_logits_mask`] (row-major over the packed rows), as
    [`split_lean_logits`] does: `(clean (N, V), clean_answer (B, V), masked_answer (M, B, V))`.

    Raises:
        ValueError: a masked view without exactly one answer element per example (its answer position was dropped).
    """
    keep = packed_logits_mask(rows, labels, layout)
    segment, source = rows.segment[keep], rows.source[keep]  # (K,)
    answers = answer_positions(labels)[torch.arange(labels.shape[0], device=labels.device)[:, None]
                                       .expand_as(keep)[keep]]  # (K,) each kept element's row's answer position
    clean = clean_answer = None
    masked = []
    for index, modality in enumerate(layout):
        own = segment == index
        if modality is None:
            clean, clean_answer = kept[own], kept[own & (source == answers)]
            continue
        if int(own.sum()) != labels.shape[0]:
            raise ValueError(f"The packed {modality} view has {int(own.sum())} answer positions for "
                             f"{labels.shape[0]} examples; its answer position must stay in the view.")
        masked.append(kept[own])
    return clean, clean_answer, torch.stack(masked) if masked else None


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The causal-LM loss of transformers' `ForCausalLMLoss` from the logits of the supervised positions only.

    Args:
        logits (`torch.Tensor` of shape `(N, V)`): logits at [`supervised_positions`], row-major.
        labels (`torch.Tensor` of shape `(B, T)`): the SFT labels.
        num_items_in_batch: divide the summed loss by this (the Trainer's count across accumulated batches) instead of
            averaging.
    """
    targets = labels[:, 1:][supervised_positions(labels)[:, :-1]]  # (N,)
    if num_items_in_batch is None:
        return F.cross_entropy(logits.float(), targets)
    total = F.cross_entropy(logits.float(), targets, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
