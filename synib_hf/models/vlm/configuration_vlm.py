"""`VLMClassificationConfig`: any generative vision-language model with a classification head on a read-out token."""

from typing import Optional, Union

from transformers import AutoConfig, PretrainedConfig


class VLMClassificationConfig(PretrainedConfig):
    r"""
    Configuration of [`VLMForSequenceClassification`]: a vision-language model (any supported family, its config as
    `vlm_config`) read at one token → LayerNorm → linear head (the SynIB authors' Qwen3-VL classification variant).

    Args:
        vlm_config (`PretrainedConfig` or `dict`): the composite config of the wrapped model (`LlavaConfig`,
            `Qwen2VLConfig`, ...); a dict needs its `model_type`.
        readout_token_id (`int`, *optional*): read the hidden state at the last occurrence of this token (the authors
            append a `<CLS>` token to the prompt). Default: the last attended token.
        logvar_head (`bool`): add a linear log-variance head (for the `gaussian` penalty).
        classifier_dropout (`float`): dropout on the read-out feature before the heads.
        initializer_range (`float`): std of the heads' initial weights.

    Example:

    ```python
    >>> config = VLMClassificationConfig(vlm_config=LlavaConfig(), num_labels=2, logvar_head=True)
    ```
    """

    model_type = "synib_vlm"
    sub_configs = {"vlm_config": AutoConfig}

    def __init__(
        self,
        vlm_config: Union[PretrainedConfig, dict, None] = None,
        readout_token_id: Optional[int] = None,
        logvar_head: bool = False,
        classifier_dropout: float = 0.0,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        if "num_labels" not in kwargs and "id2label" not in kwargs:  # a saved config brings its id2label
            kwargs["num_labels"] = 2
        if isinstance(vlm_config, dict):
            if "model_type" not in vlm_config:
                raise ValueError(f"vlm_config needs a 'model_type' (e.g. 'llava', 'qwen2_vl'), got {vlm_config}.")
            vlm_config = AutoConfig.for_model(**vlm_config)
        if vlm_config is not None and not isinstance(vlm_config, PretrainedConfig):
            raise ValueError(f"vlm_config must be a PretrainedConfig or a dict, got {type(vlm_config).__name__}.")
        if not 0.0 <= classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {classifier_dropout}.")
        self.vlm_config = vlm_config
        self.readout_token_id = readout_token_id
        self.logvar_head = logvar_head
        self.classifier_dropout = classifier_dropout
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        """Width of the language model's hidden states (the read-out feature)."""
        return self.vlm_config.get_text_config().hidden_size
