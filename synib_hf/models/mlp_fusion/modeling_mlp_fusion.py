"""`MLPFusionForClassification`: a small late-fusion MLP over vector modalities, implementing the native SynIB protocol
(the Gaussian-XOR model)."""

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel

from ...checkpoints import VerifiedLoadingMixin
from ...native import SynIBModelOutput, SynIBNativeMixin
from .configuration_mlp_fusion import MLPFusionConfig


class MLPFusionForClassification(SynIBNativeMixin, VerifiedLoadingMixin, PreTrainedModel):
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

    def synib_encoder_parameters(self, modality: str) -> list:
        return list(self.encoders[modality].parameters())

    def forward(
        self, labels: Optional[torch.Tensor] = None, synib_views=None, output_unimodal_logits: Optional[bool] = None,
        **inputs,
    ) -> SynIBModelOutput:
        unknown = sorted(set(inputs) - set(self.synib_modalities))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} got unexpected inputs {unknown}; its modalities are "
                f"{list(self.synib_modalities)}."
            )
        self._check_inputs(inputs)
        return self.synib_forward(inputs, labels, synib_views, output_unimodal_logits)

    def _check_inputs(self, inputs) -> None:
        """Each input a float tensor `(B, modality_dims[m])`, one batch size for all: named here rather than as a
        matrix-product error (and a 1-D or 3-D input would otherwise run, silently, with the wrong meaning)."""
        sizes = {}
        for modality, value in inputs.items():
            if value is None:
                continue
            width = self.config.modality_dims[modality]
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"input {modality!r} is a {type(value).__name__}; expected a torch tensor (B, {width})."
                )
            if value.ndim != 2 or value.shape[1] != width:
                raise ValueError(
                    f"input {modality!r} has shape {tuple(value.shape)}; expected (B, {width}) as "
                    f"config.modality_dims[{modality!r}] = {width} says."
                )
            if not value.is_floating_point():
                raise ValueError(f"input {modality!r} is {value.dtype}; expected floats (e.g. value.float()).")
            sizes[modality] = value.shape[0]
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"inputs hold different numbers of examples: {sizes}; every modality needs one per example."
            )
