"""`BalancingConfig`: `SynIBConfig` plus the hyperparameters of the modality-balancing baselines."""

from dataclasses import dataclass, field

from .synib_config import SynIBConfig


@dataclass
class BalancingConfig(SynIBConfig):
    r"""
    Configuration of the modality-balancing baselines ([`OGMGETrainer`], [`MMParetoTrainer`], [`MLBTrainer`],
    [`UnimodalEnsembleTrainer`]): every [`SynIBConfig`] field (the masking fields only matter for the masked-view
    metrics of evaluation), with `synib_weight` fixed at 0 — these baselines train without SynIB's penalty — plus one
    hyperparameter per method. Each trainer reads only its own.

    Example:

    ```python
    >>> args = BalancingConfig(output_dir="out", ogm_alpha=0.8)  # OGM-GE with the authors' CREMA-D α
    >>> trainer = OGMGETrainer(model=model, args=args, train_dataset=train)
    ```
    """

    synib_weight: float = field(
        default=0.0,
        metadata={"help": "Must stay 0: the balancing baselines train without SynIB's masked-view penalty."},
    )

    # OGM-GE (Peng et al., CVPR 2022)
    ogm_alpha: float = field(
        default=0.1,
        metadata={
            "help": "α of OGM-GE: the encoder of the modality ahead (score ratio ρ > 1) has its gradient scaled by "
            "1 − tanh(α·ρ). The authors' default is 0.1; they recommend 0.8 for CREMA-D."
        },
    )
    ogm_gradient_noise: bool = field(
        default=True,
        metadata={
            "help": "GE: add Gaussian noise N(0, σ²), σ = the standard deviation of each encoder parameter's gradient, "
            "to the modulated gradients (OGM-GE); False is OGM alone."
        },
    )

    # MMPareto (Wei & Hu, ICML 2024)
    mmpareto_gamma: float = field(
        default=1.5,
        metadata={
            "help": "γ of MMPareto: the combined encoder gradient (scaled to at least the norm of the plain sum of the "
            "multimodal and unimodal gradients) is multiplied by γ. The authors' code uses 1.5."
        },
    )

    # MLB (Kontras et al., BMVC 2024)
    mlb_alpha: float = field(
        default=1.5,
        metadata={
            "help": "α of MLB: each encoder's gradient is scaled by 1 + tanh(α·(r − 1)), r = the other modalities' "
            "mean score over this modality's; the authors' example uses 1.5."
        },
    )

    def __post_init__(self):
        for name in ("ogm_alpha", "mmpareto_gamma", "mlb_alpha"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):  # also rejects NaN
                raise ValueError(f"{name} must be a positive finite number, got {value}.")
        super().__post_init__()
