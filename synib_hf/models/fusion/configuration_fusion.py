"""`FusionConfig`: a vision tower and a text tower (any `AutoModel`), late fusion, and SynIB's extra heads."""

from typing import Optional, Union

from transformers import AutoConfig, CLIPVisionConfig, DebertaV2Config, PretrainedConfig


POOLINGS = ("auto", "pooler", "cls", "mean")
FUSION_TYPES = ("concat", "concat_product")


def _as_config(value: Union[PretrainedConfig, dict, None], default: PretrainedConfig, name: str) -> PretrainedConfig:
    if value is None:
        return default
    if isinstance(value, PretrainedConfig):
        return value
    if isinstance(value, dict):
        if "model_type" not in value:
            raise ValueError(f"{name} needs a 'model_type' (e.g. 'clip_vision_model', 'deberta-v2'), got {value}.")
        return AutoConfig.for_model(**value)
    raise ValueError(f"{name} must be a PretrainedConfig or a dict, got {type(value).__name__}.")


class FusionConfig(PretrainedConfig):
    r"""
    Configuration of [`FusionForSequenceClassification`]: a vision tower + a text tower + a late-fusion head.

    Args:
        vision_config (`PretrainedConfig` or `dict`): the vision tower; default `CLIPVisionConfig()`.
        text_config (`PretrainedConfig` or `dict`): the text tower; default `DebertaV2Config()`.
        projection_dim (`int`): width each pooled feature is projected to before fusion.
        fusion_hidden_size (`int`): hidden width of the concatenation MLP.
        vision_pooling / text_pooling (`str`): 'pooler' (the tower's `pooler_output`), 'cls' (first token), 'mean'
            (attention-masked mean), or 'auto' (pooler when the tower has one, else cls).
        normalize_features (`bool`): layer-normalise each projected feature without affine parameters.
        unimodal_heads, detach_unimodal_heads, logvar_head (`bool`): SynIB's instruments (see the native protocol).
        fusion_dropout (`float`): dropout before the fusion head.
        fusion_type (`str`): what the fusion MLP reads. 'concat' (default): the concatenated features
            `[image, text]`, so the modalities interact only through sums inside its one hidden layer. 'concat_product':
            `[image, text, image ⊙ text]`, the elementwise product added, a multiplicative interaction that makes
            comparisons between the modalities (easy-VQA's yes/no questions: is the pictured colour the one asked
            about?) quick to learn. The product is formed inside the fusion head from the pooled features, so a masked
            view changes it through either modality.
        deduplicate_text (`bool`): run the text tower once per distinct text of a batch and share its feature among
            the copies. For templated text (easy-VQA has 107 distinct questions) this cuts the text tower's cost
            several times; evaluation is unchanged, and in training the copies share one dropout draw.

    Example:

    ```python
    >>> config = FusionConfig(vision_config=CLIPVisionConfig(image_size=30, patch_size=2), num_labels=2)
    ```
    """

    model_type = "synib_fusion"
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    def __init__(
        self,
        vision_config: Union[PretrainedConfig, dict, None] = None,
        text_config: Union[PretrainedConfig, dict, None] = None,
        projection_dim: int = 256,
        fusion_hidden_size: int = 512,
        vision_pooling: str = "auto",
        text_pooling: str = "auto",
        normalize_features: bool = True,
        unimodal_heads: bool = True,
        detach_unimodal_heads: bool = True,
        logvar_head: bool = False,
        fusion_dropout: float = 0.1,
        initializer_range: float = 0.02,
        deduplicate_text: bool = False,
        fusion_type: str = "concat",
        **kwargs,
    ):
        if "num_labels" not in kwargs and "id2label" not in kwargs:  # a saved config brings its id2label
            kwargs["num_labels"] = 2
        for name, value in (("vision_pooling", vision_pooling), ("text_pooling", text_pooling)):
            if value not in POOLINGS:
                raise ValueError(f"{name}={value!r} is not one of {POOLINGS}.")
        if fusion_type not in FUSION_TYPES:
            raise ValueError(f"fusion_type={fusion_type!r} is not one of {FUSION_TYPES}.")
        self.vision_config = _as_config(vision_config, CLIPVisionConfig(), "vision_config")
        self.text_config = _as_config(text_config, DebertaV2Config(), "text_config")
        self.projection_dim = projection_dim
        self.fusion_hidden_size = fusion_hidden_size
        self.vision_pooling = vision_pooling
        self.text_pooling = text_pooling
        self.normalize_features = normalize_features
        self.unimodal_heads = unimodal_heads
        self.detach_unimodal_heads = detach_unimodal_heads
        self.logvar_head = logvar_head
        self.fusion_dropout = fusion_dropout
        self.initializer_range = initializer_range
        self.deduplicate_text = deduplicate_text
        self.fusion_type = fusion_type
        super().__init__(**kwargs)

    @classmethod
    def from_vision_text_configs(
        cls, vision_config: PretrainedConfig, text_config: PretrainedConfig, **kwargs
    ) -> "FusionConfig":
        return cls(vision_config=vision_config, text_config=text_config, **kwargs)

    def tower_types(self) -> tuple[str, str]:
        return self.vision_config.model_type, self.text_config.model_type

    @staticmethod
    def vision_sub_config(config: PretrainedConfig) -> Optional[PretrainedConfig]:
        """The vision part of a composite checkpoint's config (CLIP, SigLIP…), else the config itself."""
        return getattr(config, "vision_config", None) or config
