"""A small late-fusion MLP over vector modalities, implementing the native SynIB protocol (the Gaussian-XOR model)."""

from typing import Optional

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from .native import SynIBModelOutput, SynIBNativeMixin


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


class MLPFusionForClassification(SynIBNativeMixin, PreTrainedModel):
    """Per-modality MLP encoders, a concatenation MLP fusion head, and optional unimodal and logvar heads.

    Inputs are keyword arguments named as in `config.modality_dims`, each `(B, D_m)` floats.

    Example:

    ```python
    >>> out = model(x1=torch.randn(4, 32), x2=torch.randn(4, 32), labels=torch.tensor([0, 1, 1, 0]))
    >>> out.logits.shape
    torch.Size([4, 2])
    ```
    """

    config_class = MLPFusionConfig
    base_model_prefix = "mlp_fusion"
    main_input_name = "x1"
    # Inputs arrive as **kwargs; that is not a loss-kwargs signature (no num_items_in_batch).
    accepts_loss_kwargs = False

    def __init__(self, config: MLPFusionConfig):
        super().__init__(config)
        hidden, classes = config.hidden_size, config.num_labels
        self.synib_modalities = tuple(config.modality_dims)
        self.synib_input_keys = {m: (m,) for m in self.synib_modalities}
        self.synib_detach_unimodal_heads = config.detach_unimodal_heads
        ending = [nn.ReLU()] if config.encoder_output_activation else []
        self.encoders = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), *ending)
                for m, dim in config.modality_dims.items()
            }
        )
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False) if config.normalize_features else nn.Identity()
        layers, width = [], hidden * len(self.synib_modalities)
        for size in config.fusion_hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.fusion = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, classes)
        self.unimodal = (
            nn.ModuleDict({m: nn.Linear(hidden, classes) for m in self.synib_modalities})
            if config.unimodal_heads
            else None
        )
        self.logvar = nn.Linear(width, classes) if config.logvar_head else None
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=5**0.5)
            bound = 1 / module.in_features**0.5
            nn.init.uniform_(module.bias, -bound, bound)

    # ---- native protocol -------------------------------------------------------------------------------------------

    def synib_encode(self, modality: str, inputs) -> torch.Tensor:
        if inputs.get(modality) is None:
            raise ValueError(f"{type(self).__name__} needs the input {modality!r}; got {sorted(inputs)}.")
        return self.norm(self.encoders[modality](inputs[modality]))  # (B, H)

    def synib_fuse(self, features):
        hidden = self.fusion(torch.cat([features[m] for m in self.synib_modalities], dim=-1))  # (B, H)
        return self.classifier(hidden), hidden

    def synib_unimodal_head(self, modality: str):
        return None if self.unimodal is None else self.unimodal[modality]

    def synib_logvar_head(self):
        return self.logvar

    def forward(self, labels: Optional[torch.Tensor] = None, synib_views=None, **inputs) -> SynIBModelOutput:
        unknown = sorted(set(inputs) - set(self.synib_modalities))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} got unexpected inputs {unknown}; its modalities are {list(self.synib_modalities)}."
            )
        return self.synib_forward(inputs, labels, synib_views)
