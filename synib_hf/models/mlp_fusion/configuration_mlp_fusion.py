"""`MLPFusionConfig`: per-modality MLP encoders over vector inputs, a fusion MLP and SynIB's extra heads."""

from typing import Optional

from transformers import PretrainedConfig


class MLPFusionConfig(PretrainedConfig):
    r"""
    Configuration of [`MLPFusionForClassification`].

    Args:
        modality_dims (`dict[str, int]`): input name → vector width; each input is one modality.
        hidden_size (`int`): width of each modality encoder (and of the fusion head unless `fusion_hidden_sizes`).
        num_labels (`int`): number of classes: 1 for a single-logit binary head (sigmoid/BCE), or C >= 2 (softmax).
        normalize_features (`bool`): layer-normalise each pooled feature without affine parameters before fusion.
        encoder_output_activation (`bool`): end each encoder with a ReLU, so features are non-negative (the
            authors' Gaussian-XOR model; see `MLPFusionConfig.authors_xor`).
        fusion_hidden_sizes (`list[int]`, *optional*): widths of the fusion MLP's hidden layers; default
            `[hidden_size]`.
        unimodal_heads (`bool`): one linear head per modality (learned masks, `unimodal_anchor`, synergy subsets).
        detach_unimodal_heads (`bool`): train the unimodal heads on detached features (False: "multiloss").
        logvar_head (`bool`): a linear log-variance head on the fused feature (the `gaussian` penalty).

    Example:

    ```python
    >>> config = MLPFusionConfig(modality_dims={"x1": 32, "x2": 32}, hidden_size=64)
    >>> model = MLPFusionForClassification(config)
    >>> MLPFusionConfig.authors_xor().fusion_hidden_sizes  # the paper's XOR model
    [128, 128]
    ```
    """

    model_type = "synib_mlp_fusion"

    def __init__(
        self,
        modality_dims: Optional[dict] = None,
        hidden_size: int = 256,
        normalize_features: bool = True,
        encoder_output_activation: bool = False,
        fusion_hidden_sizes: Optional[list] = None,
        unimodal_heads: bool = True,
        detach_unimodal_heads: bool = True,
        logvar_head: bool = False,
        **kwargs,
    ):
        if "num_labels" not in kwargs and "id2label" not in kwargs:  # a saved config brings its id2label
            kwargs["num_labels"] = 2
        self.modality_dims = dict(modality_dims or {"x1": 32, "x2": 32})
        self.hidden_size = hidden_size
        self.normalize_features = normalize_features
        self.encoder_output_activation = encoder_output_activation
        self.fusion_hidden_sizes = list(fusion_hidden_sizes) if fusion_hidden_sizes else [hidden_size]
        if any(int(width) < 1 for width in self.fusion_hidden_sizes):
            raise ValueError(f"fusion_hidden_sizes must be positive widths, got {self.fusion_hidden_sizes}.")
        self.unimodal_heads = unimodal_heads
        self.detach_unimodal_heads = detach_unimodal_heads
        self.logvar_head = logvar_head
        super().__init__(**kwargs)
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be 1 (binary, one logit) or >= 2, got {self.num_labels}.")

    @classmethod
    def authors_xor(cls, modality_dims: Optional[dict] = None, **kwargs) -> "MLPFusionConfig":
        """The authors' Gaussian-XOR model (`AUTHORS_XOR_MODEL`): encoders `Linear-ReLU-Linear-ReLU` (256), no
        feature normalisation, a fusion MLP `2·256 → 128 → 128 → 1` and a single-logit BCE head."""
        return cls(modality_dims=modality_dims or {"x1": 32, "x2": 32}, **{**AUTHORS_XOR_MODEL, **kwargs})


# The architecture of the authors' XOR script. With it, plain cross-entropy stays at chance on rare synergy as the
# paper reports; with layer-normalised, un-rectified features (this config's defaults) it learns the XOR.
AUTHORS_XOR_MODEL = dict(
    hidden_size=256, normalize_features=False, encoder_output_activation=True, fusion_hidden_sizes=[128, 128],
    num_labels=1,
)
