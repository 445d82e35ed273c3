"""`FusionForSequenceClassification`: any vision tower + any text tower (default CLIP-ViT + DeBERTa-v2), late fusion.

The paper's Hateful Memes setup. It implements the native SynIB protocol, so masked views re-run only the fusion head.
"""

import os
from typing import Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from .configuration_fusion import FusionConfig
from ...checkpoints import VerifiedLoadingMixin, load_checked
from ...native import SynIBModelOutput, SynIBNativeMixin
from ..adapter_checkpoints import is_adapter_folder, load_adapter_folder
from ..packaged import local_copy


def _pool(outputs, pooling: str, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One vector per example from a tower's outputs, `(B, hidden)`."""
    pooler = getattr(outputs, "pooler_output", None)
    if pooling == "pooler" or (pooling == "auto" and pooler is not None):
        if pooler is None:
            raise ValueError("pooling='pooler' but the tower returns no pooler_output; use 'cls' or 'mean'.")
        return pooler.flatten(1)  # CNN towers (ResNet) pool to (B, C, 1, 1)
    hidden = outputs.last_hidden_state  # (B, T, hidden)
    if pooling == "mean":
        if attention_mask is None:
            return hidden.mean(dim=1)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    return hidden[:, 0]


def _width(config) -> int:
    """A tower's pooled width: `hidden_size`, or the last stage's for CNN towers (ResNet, ConvNeXt)."""
    return getattr(config, "hidden_size", None) or config.hidden_sizes[-1]


def _distinct_rows(text_inputs: dict) -> tuple[dict, torch.Tensor]:
    """The distinct examples of `text_inputs` (rows equal in every tensor count once) and, per example, the index of
    its distinct row: `({key: (U, T)}, (B,))`."""
    rows = torch.cat([text_inputs[k] for k in sorted(text_inputs)], dim=1)  # (B, K·T)
    _, copies = torch.unique(rows, dim=0, return_inverse=True)  # (B,) → 0..U-1
    batch = torch.arange(len(rows), device=rows.device)
    first = torch.full((int(copies.max()) + 1,), len(rows), device=rows.device)
    first = first.scatter_reduce(0, copies, batch, "amin")  # (U,): the first example of each distinct row
    return {k: v[first] for k, v in text_inputs.items()}, copies


class AppendProduct(nn.Module):
    """`[image, text]` → `[image, text, image ⊙ text]`: the first step of the `concat_product` fusion (both features
    have `projection_dim` values)."""

    def forward(self, joint: torch.Tensor) -> torch.Tensor:
        image, text = joint.chunk(2, dim=-1)
        return torch.cat([joint, image * text], dim=-1)  # (B, 3P)


class FusionForSequenceClassification(SynIBNativeMixin, VerifiedLoadingMixin, PreTrainedModel):
    """Vision tower + text tower → projected, normalised pooled features → concatenation MLP → logits.

    With `fusion_type="concat_product"` the MLP also reads the features' elementwise product.

    Unimodal heads (one linear layer per modality) feed learned masks, `unimodal_anchor` and synergy-subset evaluation;
    they train on detached features. Modalities are `"image"` (`pixel_values`) and `"text"` (`input_ids`,
    `attention_mask`, `token_type_ids`).

    Example:

    ```python
    >>> model = FusionForSequenceClassification.from_vision_text_pretrained(
    ...     "openai/clip-vit-base-patch32", "microsoft/deberta-v3-base", num_labels=2)
    >>> outputs = model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask)
    ```
    """

    config_class = FusionConfig
    base_model_prefix = "fusion"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    accepts_loss_kwargs = False
    synib_modalities = ("image", "text")
    synib_input_keys = {"image": ("pixel_values",), "text": ("input_ids", "attention_mask", "token_type_ids")}

    def __init__(
        self,
        config: FusionConfig,
        vision_model: Optional[PreTrainedModel] = None,
        text_model: Optional[PreTrainedModel] = None,
    ):
        super().__init__(config)
        self.vision_model = vision_model if vision_model is not None else AutoModel.from_config(config.vision_config)
        self.text_model = text_model if text_model is not None else AutoModel.from_config(config.text_config)
        # The towers' configs are the ones the model runs with (pretrained towers bring their own).
        self.config.vision_config, self.config.text_config = self.vision_model.config, self.text_model.config
        width, classes = config.projection_dim, config.num_labels
        self.vision_projection = nn.Linear(_width(self.vision_model.config), width)
        self.text_projection = nn.Linear(_width(self.text_model.config), width)
        norm = nn.LayerNorm(width, elementwise_affine=False) if config.normalize_features else nn.Identity()
        self.feature_norm = norm
        product = config.fusion_type == "concat_product"
        self.fusion = nn.Sequential(
            *([AppendProduct()] if product else []),  # 'concat' keeps its layers' names (fusion.1 is the Linear)
            nn.Dropout(config.fusion_dropout),
            nn.Linear((3 if product else 2) * width, config.fusion_hidden_size),
            nn.GELU(),
        )
        self.classifier = nn.Linear(config.fusion_hidden_size, classes)
        self.unimodal = (
            nn.ModuleDict({m: nn.Linear(width, classes) for m in self.synib_modalities})
            if config.unimodal_heads
            else None
        )
        self.logvar = nn.Linear(config.fusion_hidden_size, classes) if config.logvar_head else None
        self.synib_detach_unimodal_heads = config.detach_unimodal_heads
        self.post_init()

    def _init_weights(self, module):
        # Only the fusion-side layers are ours; each tower initialises itself.
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, self.config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, and also a local LoRA folder (`adapter_config.json` beside the base's
        `config.json`, as `save_base_reference` writes it): the base is rebuilt — its towers from the checkpoints
        the config names (a packaged copy when one is installed, so offline), or from the folder's
        `model.safetensors` — and the adapters are merged in.

        Example:

        ```python
        >>> model = FusionForSequenceClassification.from_pretrained("model_cards/released/minilm-easyvqa-synib-adapter")
        >>> model.config.id2label[0]
        ```
        """
        # Why: transformers loads an adapter folder's base from its weights file or from `base_model_name_or_path`;
        # a fusion model built in code has neither, but its config names its towers' checkpoints.
        if not (is_adapter_folder(pretrained_model_name_or_path)
                and os.path.isfile(os.path.join(pretrained_model_name_or_path, "config.json"))):
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return load_adapter_folder(cls, pretrained_model_name_or_path, cls.from_config_with_towers,
                                   output_loading_info=kwargs.get("output_loading_info", False))

    @classmethod
    def from_config_with_towers(cls, config: FusionConfig) -> "FusionForSequenceClassification":
        """The model of `config` with each tower loaded from the checkpoint the config names (`vision_name_or_path`,
        `text_name_or_path`; an installed packaged copy of a Hub checkpoint is used as is, with no network) and
        built from its sub-config, with random weights, where it names none. The fusion head is random."""
        towers = {}
        for tower, sub_config in (("vision", config.vision_config), ("text", config.text_config)):
            name = getattr(config, f"{tower}_name_or_path", None)
            towers[f"{tower}_model"] = (
                load_checked(AutoModel.from_pretrained, local_copy(name), config=sub_config) if name
                else AutoModel.from_config(sub_config)
            )
        return cls(config, **towers)

    @classmethod
    def from_vision_text_pretrained(
        cls, vision_model_name_or_path: str, text_model_name_or_path: str, **kwargs
    ) -> "FusionForSequenceClassification":
        """Build the model from two pretrained checkpoints (Hub ids or local folders).

        A composite checkpoint (e.g. a full CLIP) contributes its vision tower. Keyword arguments starting with
        `vision_` / `text_` go to that tower's `from_pretrained`; the rest to [`FusionConfig`].
        """
        vision_kwargs = {k[len("vision_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("vision_")}
        text_kwargs = {k[len("text_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("text_")}
        vision_config = FusionConfig.vision_sub_config(AutoConfig.from_pretrained(vision_model_name_or_path))
        # load_checked: a tower whose weights file is truncated, or holds NaN, is named rather than loaded
        vision_model = load_checked(AutoModel.from_pretrained, vision_model_name_or_path, config=vision_config,
                                    **vision_kwargs)
        text_model = load_checked(AutoModel.from_pretrained, text_model_name_or_path, **text_kwargs)
        config = FusionConfig(vision_config=vision_model.config, text_config=text_model.config, **kwargs)
        config.vision_name_or_path, config.text_name_or_path = vision_model_name_or_path, text_model_name_or_path
        return cls(config, vision_model=vision_model, text_model=text_model)

    # ---- native protocol -------------------------------------------------------------------------------------------

    def synib_encode(self, modality: str, inputs) -> torch.Tensor:
        if modality == "image":
            if inputs.get("pixel_values") is None:
                raise ValueError(f"{type(self).__name__} needs `pixel_values`; got {sorted(inputs)}.")
            outputs = self.vision_model(pixel_values=inputs["pixel_values"])
            pooled = _pool(outputs, self.config.vision_pooling)
            return self.feature_norm(self.vision_projection(pooled))  # (B, P)
        if inputs.get("input_ids") is None:
            raise ValueError(f"{type(self).__name__} needs `input_ids`; got {sorted(inputs)}.")
        text_inputs = {k: inputs[k] for k in self.synib_input_keys["text"] if inputs.get(k) is not None}
        copies = None
        if self.config.deduplicate_text:
            text_inputs, copies = _distinct_rows(text_inputs)
        outputs = self.text_model(**text_inputs)
        pooled = _pool(outputs, self.config.text_pooling, text_inputs.get("attention_mask"))  # (U, hidden)
        if copies is not None:
            pooled = pooled[copies]  # (B, hidden): each example gets its distinct text's feature
        return self.feature_norm(self.text_projection(pooled))  # (B, P)

    def synib_fuse(self, features):
        hidden = self.fusion(torch.cat([features["image"], features["text"]], dim=-1))  # (B, H)
        return self.classifier(hidden), hidden

    def synib_unimodal_head(self, modality: str):
        return None if self.unimodal is None else self.unimodal[modality]

    def synib_logvar_head(self):
        return self.logvar

    def synib_encoder_parameters(self, modality: str) -> list:
        towers = {"image": (self.vision_model, self.vision_projection), "text": (self.text_model, self.text_projection)}
        if modality not in towers:
            raise ValueError(f"{type(self).__name__} has the modalities {list(towers)}, not {modality!r}.")
        return [p for module in towers[modality] for p in module.parameters()]

    def forward(
        self,
        pixel_values: Optional[torch.Tensor] = None,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        synib_views=None,
        output_unimodal_logits: Optional[bool] = None,
    ) -> SynIBModelOutput:
        inputs = {
            "pixel_values": pixel_values,
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        self._check_inputs(inputs)
        return self.synib_forward(inputs, labels, synib_views, output_unimodal_logits)

    def _check_inputs(self, inputs) -> None:
        """Bad shapes and types named here, in the model's terms, rather than deep inside a tower (a convolution's
        channel count, an embedding's index)."""
        name, pixel_values, input_ids = type(self).__name__, inputs["pixel_values"], inputs["input_ids"]
        if pixel_values is not None:
            channels, shape = getattr(self.vision_model.config, "num_channels", 3), tuple(pixel_values.shape)
            if pixel_values.ndim != 4 or shape[1] != channels:
                hint = ""
                if pixel_values.ndim == 4 and shape[-1] == channels:
                    hint = " It looks channels-last: pass pixel_values.permute(0, 3, 1, 2)."
                elif pixel_values.ndim == 4 and shape[1] == 1:
                    hint = " It has one channel: convert the images to RGB first (image.convert('RGB'))."
                raise ValueError(f"pixel_values has shape {shape}; {name} expects (B, {channels}, H, W).{hint}")
            if not pixel_values.is_floating_point():
                raise ValueError(
                    f"pixel_values are {pixel_values.dtype}; {name} expects floats as the image processor makes them "
                    "(FusionProcessor), not raw pixel values."
                )
        if input_ids is not None:
            if input_ids.ndim != 2:
                raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}; {name} expects (B, T).")
            for key in ("attention_mask", "token_type_ids"):
                if inputs[key] is not None and inputs[key].shape != input_ids.shape:
                    raise ValueError(
                        f"{key} has shape {tuple(inputs[key].shape)} but input_ids {tuple(input_ids.shape)}; "
                        "they must match (tokenize text with its mask in one call)."
                    )
            vocabulary = self.text_model.config.vocab_size
            if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocabulary):
                raise ValueError(
                    f"input_ids hold ids in [{int(input_ids.min())}, {int(input_ids.max())}], but the text tower's "
                    f"vocabulary has {vocabulary} tokens: the tokenizer does not match the text model."
                )
        if pixel_values is not None and input_ids is not None and len(pixel_values) != len(input_ids):
            raise ValueError(
                f"pixel_values hold {len(pixel_values)} examples but input_ids {len(input_ids)}; each example needs "
                "one image and one text."
            )
