"""The generic path's rule for masking each input by its structure: every input named in `modality_keys` gets a kind,
from its name, dtype and shape (or from `SynIBConfig.input_kinds`), and the kind says what a masked view changes.

| kind          | default for                                   | shape           | a `random` mask replaces           |
|---------------|-----------------------------------------------|-----------------|------------------------------------|
| `tokens`      | `*input_ids` (integers)                       | `(B, T)`        | a content token (specials kept)    |
| `image`       | 4-D floats (`pixel_values`)                   | `(B, C, H, W)`  | a pixel or patch, all channels     |
| `images`      | 5-D floats (multi-image `pixel_values`)       | `(B, N, C, H, W)` | a pixel or patch of each image independently, all channels |
| `sequence`    | 3-D floats (`visual_embeds`, `visual_feats`)  | `(B, T, D)`     | a position (region, frame), all features |
| `spectrogram` | 3-D `input_features`                          | `(B, F, T)`     | a time step, all frequency bins    |
| `vector`      | 2-D floats (pooled features, `input_values`)  | `(B, D)`        | a coordinate (a sample of a waveform) |
| `attention`   | `*attention_mask` (integers or floats)        | `(B, T)`        | companion: 0 where its partner's position is masked, never noise |
| `boxes`       | `bbox`, `*_pos`                               | `(B, T, 4)`     | companion: the zero box where its partner's position is masked |
| `unchanged`   | `*token_type_ids`, `pixel_mask`, `pixel_attention_mask` | any   | companion: carries no content, passed through |

`full` masks replace every content value (tokens: every non-special token); fills (`ema_noise`, `shuffle`, `zero`)
apply to float kinds, token ids become the tokenizer's mask (else pad) id. A companion's partner is the content input
of the same modality whose positions it indexes (`attention:visual_embeds` names it explicitly). Any other integer
input (categorical ids, `visual_token_type_ids` declared otherwise…) has no rule: it is rejected before training,
with the fix.
"""

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch


CONTENT_KINDS = ("tokens", "image", "images", "sequence", "spectrogram", "vector")
COMPANION_KINDS = ("attention", "boxes", "unchanged")
KINDS = CONTENT_KINDS + COMPANION_KINDS
NDIM = {"tokens": 2, "image": 4, "images": 5, "sequence": 3, "spectrogram": 3, "vector": 2}
FEATURE_AXIS = {"image": 1, "images": 2, "sequence": 2, "spectrogram": 1, "vector": 1}  # per-feature fill statistics
POSITION_AXIS = {"tokens": 1, "sequence": 1, "spectrogram": 2}  # kinds whose positions companions can follow
UNCHANGED_NAMES = ("pixel_mask", "pixel_attention_mask")


@dataclass(frozen=True)
class InputKind:
    """How one input is masked: its kind and, for a companion that follows positions, its partner input."""

    kind: str
    partner: Optional[str] = None

    @property
    def is_content(self) -> bool:
        return self.kind in CONTENT_KINDS


def default_kind(key: str, value: torch.Tensor) -> str:
    """The documented default kind of an input, from its name, dtype and number of dimensions.

    Raises:
        ValueError: an integer input that is neither token ids nor a mask nor boxes, or a float input of a shape no
            kind has.
    """
    if key.endswith("input_ids"):
        return "tokens"
    if key in UNCHANGED_NAMES or key.endswith("token_type_ids"):
        return "unchanged"
    if key.endswith("attention_mask"):
        return "attention"
    if key == "bbox" or key.endswith(("_bbox", "_pos")):
        return "boxes"
    if not torch.is_floating_point(value):
        raise ValueError(
            f"input {key!r} holds integers ({value.dtype}, shape {tuple(value.shape)}) that are neither token ids "
            "(*input_ids) nor an attention mask nor boxes, so no masking rule applies to it. Declare it in "
            f"SynIBConfig.input_kinds (e.g. {{'{key}': 'unchanged'}} if it carries no content of its modality, "
            f"'tokens' if it holds ids with a mask/pad id), or leave it out of modality_keys."
        )
    if key == "input_features" and value.dim() == 3:
        return "spectrogram"
    kind = {2: "vector", 3: "sequence", 4: "image", 5: "images"}.get(value.dim())
    if kind is None:
        raise ValueError(
            f"input {key!r} has shape {tuple(value.shape)}: no masking rule for {value.dim()}-D floats (vectors "
            "(B, D), sequences (B, T, D), images (B, C, H, W), multi-image (B, N, C, H, W)). Declare its kind in "
            "SynIBConfig.input_kinds."
        )
    return kind


def parse_declared(value: str) -> InputKind:
    """`"kind"` or `"kind:partner"` from `SynIBConfig.input_kinds`."""
    kind, _, partner = value.partition(":")
    if kind not in KINDS:
        raise ValueError(f"input_kinds: {value!r} names no kind; the kinds are {', '.join(KINDS)} (companions may "
                         "name their partner as 'attention:visual_embeds').")
    if partner and kind not in ("attention", "boxes"):
        raise ValueError(f"input_kinds: only 'attention' and 'boxes' companions name a partner, got {value!r}.")
    return InputKind(kind, partner or None)


def positions(kind: str, value: torch.Tensor) -> Optional[int]:
    """Number of positions a companion can follow in a content input of this kind, or None."""
    axis = POSITION_AXIS.get(kind)
    return None if axis is None else value.shape[axis]


def resolve_input_kinds(
    batch: Mapping[str, torch.Tensor],
    modality_keys: Mapping[str, Sequence[str]],
    declared: Optional[Mapping[str, str]] = None,
) -> dict:
    """Input key → [`InputKind`] for every key of `modality_keys`, checked against the batch.

    Raises:
        ValueError: a key with no rule, a shape that does not fit its kind, a companion with no (or an ambiguous)
            partner, or a modality with nothing to mask.
    """
    declared = dict(declared or {})
    unknown = sorted(set(declared) - {k for keys in modality_keys.values() for k in keys})
    if unknown:
        raise ValueError(f"input_kinds names {unknown}, which modality_keys does not map to any modality.")
    kinds = {}
    for modality, keys in modality_keys.items():
        resolved = {
            key: parse_declared(declared[key]) if key in declared else InputKind(default_kind(key, batch[key]))
            for key in keys
        }
        content = {k: v for k, v in resolved.items() if v.is_content}
        if not content:
            described = ", ".join(f"{k}: {v.kind}" for k, v in resolved.items())
            raise ValueError(
                f"modality {modality!r} has no input SynIB can mask ({described}): "
                "its masked view would equal the clean view and the penalty would push the clean prediction to "
                "'unsure'. Add its content input to modality_keys, or declare its kind in input_kinds."
            )
        for key, kind in content.items():
            value = batch[key]
            integer = not torch.is_floating_point(value)
            if value.dim() != NDIM[kind.kind] or integer != (kind.kind == "tokens"):
                raise ValueError(
                    f"input {key!r} is masked as {kind.kind!r}, which needs {NDIM[kind.kind]}-D "
                    f"{'integers' if kind.kind == 'tokens' else 'floats'}, but it is {value.dim()}-D {value.dtype} "
                    f"{tuple(value.shape)}. Declare its kind in SynIBConfig.input_kinds."
                )
        for key, kind in resolved.items():
            if kind.kind in ("attention", "boxes"):
                resolved[key] = InputKind(kind.kind, _partner(key, kind.partner, batch, content))
        kinds.update(resolved)
    return kinds


def _partner(key: str, named: Optional[str], batch, content: Mapping[str, InputKind]) -> str:
    """The content input whose positions the companion `key` indexes: `(B, T)` leading shape, same modality."""
    leading = tuple(batch[key].shape[:2])
    candidates = [k for k, kind in content.items() if (batch[k].shape[0], positions(kind.kind, batch[k])) == leading]
    if named is not None:
        if named not in content:
            raise ValueError(f"input_kinds: {key!r} follows {named!r}, which is not a content input of its modality "
                             f"({sorted(content)}).")
        if named not in candidates:
            raise ValueError(f"input {key!r} has leading shape {leading}, but its partner {named!r} has no matching "
                             "positions (B, T).")
        return named
    prefix = key.removesuffix("attention_mask").removesuffix("bbox").removesuffix("pos")
    preferred = [k for k in candidates if prefix and k.startswith(prefix)] or candidates
    if len(preferred) != 1:
        found = "no input" if not preferred else f"several inputs ({preferred})"
        raise ValueError(
            f"companion {key!r} (leading shape {leading}) must follow the positions of one content input of its "
            f"modality, found {found} with positions (B, T). Name it: input_kinds={{'{key}': "
            f"'{'attention' if key.endswith('attention_mask') else 'boxes'}:<input>'}}, or declare {key!r} "
            "'unchanged'."
        )
    return preferred[0]
