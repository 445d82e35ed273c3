"""The plumbing of SynIB's views: which inputs belong to which modality, stacking views on the batch axis, reading
scores from a model output, and [`ViewResult`], what every path hands the trainer for one batch."""

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import torch


@dataclass
class ViewResult:
    """One batch's clean and masked views, as a path (native, generic, generative) returns them to the trainer.

    Args:
        task_loss: the clean view's task loss, a scalar (a per-batch mean over the rows that count).
        outputs: what `Trainer.prediction_step` returns as predictions, e.g. `{"logits": clean scores}`.
        masked: `(M, B, K)` the masked views' scores that the penalty reads (classes, labels or answer candidates).
        penalties: `(M, B)` Ω of each masked view and example.
        targets: what masked accuracy compares `masked` with (class ids `(B,)`, or targets `(B, K)`); None: no
            accuracy.
        valid: `(B,)` bool, the rows that count in the penalty and the logged means (ignore-index rows do not).
        penalty_applied: True when each view's penalty was back-propagated already (sequential views); the trainer
            then adds it to the returned loss detached, for logging only.
        columns: extra per-example values to log, e.g. `{"fused_loss": (B,)}`.
    """

    task_loss: torch.Tensor
    outputs: dict
    masked: torch.Tensor
    penalties: torch.Tensor
    targets: Optional[torch.Tensor]
    valid: torch.Tensor
    penalty_applied: bool = False
    columns: dict = field(default_factory=dict)


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


def read_output(outputs, key: str, what: str = "logits_key") -> torch.Tensor:
    """The tensor `outputs[key]` of a ModelOutput or dict; an error listing the fields when there is none."""
    value = outputs.get(key) if isinstance(outputs, Mapping) else getattr(outputs, key, None)
    if value is None:
        fields = list(outputs.keys()) if isinstance(outputs, Mapping) else [type(outputs).__name__]
        raise ValueError(
            f"SynIB reads the scores from the output field {key!r} ({what}), but the model's output has "
            f"{fields}. Set SynIBConfig.{what} to the field that holds them."
        )
    return value


def classification_scores(outputs, key: str = "logits") -> torch.Tensor:
    """Classification scores `(batch, num_labels)` from a model output, checked for shape."""
    scores = read_output(outputs, key)
    if scores.dim() != 2:
        hint = (" Logits (B, T, V) with labels (B, T) are a generative model's: for a vision-language model of a "
                "supported family (LLaVA, Qwen2/2.5/3-VL, Idefics3, SmolVLM, PaliGemma, Gemma3) use "
                "synib_path='embedding' (or 'auto') with answer_candidates." if scores.dim() == 3 else "")
        raise ValueError(
            f"SynIB's generic path needs classification scores of shape (batch, num_labels) in {key!r}, got "
            f"{tuple(scores.shape)}.{hint}"
        )
    return scores


def slice_outputs(outputs, batch_size: int) -> dict:
    """The first `batch_size` rows (the clean view) of every tensor in a concatenated forward's output."""
    items = outputs.items() if isinstance(outputs, Mapping) else vars(outputs).items()
    return {
        key: value[:batch_size] if torch.is_tensor(value) and value.dim() > 0 else value
        for key, value in items
        if key != "loss"
    }


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
