"""The generic path's plumbing: which inputs belong to which modality, stacking views, reading logits."""

from typing import Mapping, Optional, Sequence

import torch


def resolve_modality_keys(
    batch: Mapping, modality_keys: Optional[Mapping[str, Sequence[str]]], default: Mapping[str, Sequence[str]]
) -> dict:
    """Modality → input keys present in `batch`.

    A user-given map is strict (every key it names must be in the batch); the default map keeps the keys present and
    the modalities with content (not only an attention mask).

    Raises:
        ValueError: a mapped key is missing, or fewer than two modalities are found.
    """
    if modality_keys is not None:
        for modality, keys in modality_keys.items():
            missing = [k for k in keys if k not in batch]
            if missing:
                raise ValueError(
                    f"modality_keys maps {modality!r} to {missing}, but the batch has no such key (batch keys: "
                    f"{sorted(batch)}). Fix modality_keys, or the data collator / dataset columns."
                )
        return dict(modality_keys)
    found = {
        modality: [k for k in keys if k in batch]
        for modality, keys in default.items()
        if any(k in batch for k in keys if not k.endswith(("attention_mask", "token_type_ids")))
    }
    if len(found) < 2:
        raise ValueError(
            f"SynIB needs at least two modalities, but the default modality map finds {found or 'none'} in the "
            f"batch keys {sorted(batch)}. Pass modality_keys={{modality: [input keys]}} in SynIBConfig."
        )
    return found


def classification_logits(outputs) -> torch.Tensor:
    """`logits` of a model output (a ModelOutput or a dict), checked to be `(batch, num_labels)`."""
    logits = outputs.get("logits") if isinstance(outputs, dict) else getattr(outputs, "logits", None)
    if logits is None:
        raise ValueError(
            f"SynIB reads `logits` from the model output, but {type(outputs).__name__} has none. Use a model with "
            "a classification head (e.g. *ForSequenceClassification / *ForImageClassification)."
        )
    if logits.dim() != 2:
        raise ValueError(f"SynIB needs classification logits of shape (batch, num_labels), got {tuple(logits.shape)}.")
    return logits


def concatenate_views(batch: Mapping[str, torch.Tensor], views: Sequence[Mapping[str, torch.Tensor]]) -> dict:
    """Clean batch and masked views stacked on the batch axis: every input becomes `((1 + M)·B, ...)`.

    Example:

    ```python
    >>> stacked = concatenate_views({"x": torch.zeros(2, 3)}, [{"x": torch.ones(2, 3)}])
    >>> stacked["x"].shape
    torch.Size([4, 3])
    ```
    """
    batch_size = next(v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.dim() > 0)
    stacked = {}
    for key, value in batch.items():
        if not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] != batch_size:
            raise ValueError(
                f"view_batching='concatenated' stacks views on the batch axis, but input {key!r} is not a tensor "
                f"with batch size {batch_size} first. Use view_batching='sequential' or drop {key!r} from the batch."
            )
        stacked[key] = torch.cat([value] + [view[key] for view in views])
    return stacked
