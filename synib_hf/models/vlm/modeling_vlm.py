"""`VLMForSequenceClassification`: a generative vision-language model read at one token by a classification head.

The SynIB authors' Qwen3-VL variant: the language model's last hidden state at a read-out token → LayerNorm → linear
(plus an optional log-variance head). Its logits are `(B, C)`, so every SynIB penalty (`kl_uniform`, `gaussian`) and
metric applies unchanged; the masked views are built at the embedding level (`synib_hf.view_builders.embedding_views`).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ...tasks import classification_loss
from .configuration_vlm import VLMClassificationConfig


@dataclass
class VLMClassifierOutput(SequenceClassifierOutput):
    """[`SequenceClassifierOutput`] plus `logvar` `(B, C)`, the log-variance head's output (if the model has one)."""

    logvar: Optional[torch.Tensor] = None


class VLMForSequenceClassification(PreTrainedModel):
    """A vision-language model (its base model, without the LM head) with a classification head on a read-out token.

    Example:

    ```python
    >>> model = VLMForSequenceClassification.from_vlm_pretrained("Qwen/Qwen2-VL-2B-Instruct", num_labels=2)
    >>> outputs = model(**processor(images=images, text=prompts, return_tensors="pt", padding=True))
    >>> outputs.logits.shape
    torch.Size([4, 2])
    ```
    """

    config_class = VLMClassificationConfig
    base_model_prefix = "vlm_classifier"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    accepts_loss_kwargs = False  # the loss is a per-batch mean

    def __init__(self, config: VLMClassificationConfig, model: Optional[PreTrainedModel] = None):
        super().__init__(config)
        if config.vlm_config is None and model is None:
            raise ValueError("VLMForSequenceClassification needs config.vlm_config (or a `model`).")
        self.model = model if model is not None else AutoModel.from_config(config.vlm_config)
        self.config.vlm_config = self.model.config
        hidden = config.hidden_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.readout_norm = nn.LayerNorm(hidden)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.logvar = nn.Linear(hidden, config.num_labels) if config.logvar_head else None
        self.post_init()

    def _init_weights(self, module):
        # Only the heads are ours; the wrapped model initialised (or loaded) itself.
        if module in (self.classifier, self.logvar):
            module.weight.data.normal_(0.0, self.config.initializer_range)
            module.bias.data.zero_()
        elif module is self.readout_norm:
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    @classmethod
    def from_vlm_pretrained(cls, model_name_or_path: str, **kwargs) -> "VLMForSequenceClassification":
        """Wrap a pretrained VLM checkpoint (Hub id or folder). Keyword arguments starting with `vlm_` go to its
        `from_pretrained` (e.g. `vlm_dtype=torch.bfloat16`); the rest to [`VLMClassificationConfig`]."""
        vlm_kwargs = {k[len("vlm_"):]: kwargs.pop(k) for k in list(kwargs) if k.startswith("vlm_")}
        model = AutoModel.from_pretrained(model_name_or_path, **vlm_kwargs)
        config = VLMClassificationConfig(vlm_config=model.config, **kwargs)
        config.vlm_name_or_path = model_name_or_path
        return cls(config, model=model)

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def get_decoder(self):
        return self.model.get_decoder()

    def readout_positions(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None):
        """The read-out position per example, `(B,)`: the last `readout_token_id`, else the last attended token.

        Raises:
            ValueError: an example lacks the read-out token.
        """
        token = self.config.readout_token_id
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if token is not None:
            found = input_ids == token
            missing = (~found.any(dim=1)).nonzero().flatten().tolist()
            if missing:
                raise ValueError(
                    f"Examples {missing} lack the read-out token (readout_token_id={token}); append it to every "
                    "prompt (the authors append '<CLS>'), or set readout_token_id=None to read the last token."
                )
            return (found * positions).argmax(dim=1)
        if attention_mask is None:
            return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, device=input_ids.device)
        return (attention_mask.bool() * positions).argmax(dim=1)  # last attended (left or right padding)

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        pixel_values: Optional[torch.Tensor] = None,
        image_grid_thw: Optional[torch.Tensor] = None,
        mm_token_type_ids: Optional[torch.Tensor] = None,
        pixel_attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        image_sizes: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> VLMClassifierOutput:
        inputs = dict(
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            mm_token_type_ids=mm_token_type_ids,
            pixel_attention_mask=pixel_attention_mask,
            token_type_ids=token_type_ids,
            image_sizes=image_sizes,
        )
        kwargs.setdefault("use_cache", False)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **{k: v for k, v in inputs.items() if v is not None},
            **kwargs,
        )
        hidden = outputs.last_hidden_state  # (B, T, H)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        readout = hidden[rows, self.readout_positions(input_ids, attention_mask)]  # (B, H)
        feature = self.dropout(self.readout_norm(readout))
        logits = self.classifier(feature)  # (B, C)
        logvar = self.logvar(feature) if self.logvar is not None else None
        loss = classification_loss(logits, labels) if labels is not None else None
        return VLMClassifierOutput(loss=loss, logits=logits, logvar=logvar)
