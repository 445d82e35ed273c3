"""The generic path's plumbing: which inputs belong to which modality, stacking views on the batch axis, reading the
scores from a model output, and the check that random image patches do not leave images whole."""

from typing import Mapping, Optional, Sequence

import torch


def check_patch_size(key: str, size, patch: int, ratio: float, untouched: float = 0.01) -> None:
    """A clear error when random patches are so large that a masked view often leaves an image whole: with `n` patches
    an image is untouched with probability `(1 − ratio)^n`; above `untouched` (1 %) the penalty would push many clean
    predictions to uniform.

    Raises:
        ValueError: naming the patch size, the image size and the largest patch size that would do.
    """
    height, width = int(size[0]), int(size[1])

    def patches(side: int) -> int:
        return -(-height // side) * -(-width // side)

    if (1.0 - ratio) ** patches(patch) <= untouched:
        return
    fitting = [side for side in range(1, patch) if (1.0 - ratio) ** patches(side) <= untouched]
    fix = f"use mask_patch_size <= {fitting[-1]}" if fitting else "use mask_patch_size=1"
    raise ValueError(
        f"mask_patch_size={patch} cuts the {height}×{width} images of {key!r} into {patches(patch)} patch(es), so at "
        f"mask_ratio={ratio} a masked view leaves {(1.0 - ratio) ** patches(patch):.0%} of the images untouched and "
        f"the penalty would push their clean predictions to uniform: {fix}, or raise mask_ratio."
    )


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
    if isinstance(outputs, tuple) and not hasattr(outputs, "keys"):
        raise ValueError(
            f"The model returned a plain tuple ({len(outputs)} items), not named outputs, so SynIB cannot find "
            f"{key!r} ({what}): run it with return_dict=True (e.g. model.config.use_return_dict = True) or return a "
            "dict / ModelOutput."
        )
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
    if not torch.is_tensor(scores):
        raise ValueError(
            f"SynIB reads the classification scores from the output field {key!r}, which holds a "
            f"{type(scores).__name__}, not a (batch, num_labels) tensor: set logits_key to the field of the scores."
        )
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
