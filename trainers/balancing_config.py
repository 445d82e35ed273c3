"""`BalancingArguments`: the hyperparameters of the modality-balancing baselines, and `BalancingConfig`, the
`TrainingArguments` that carries them."""

from dataclasses import dataclass, field

from transformers import TrainingArguments

from .method_arguments import MethodArguments


@dataclass
class BalancingArguments(MethodArguments):
    r"""
    The balancing baselines' fields, one hyperparameter (or two) per method; each trainer reads only its own.

    Parameters:
        ogm_alpha (`float`, *optional*, defaults to `0.1`):
            α of OGM-GE ([`OGMGETrainer`]).
        ogm_gradient_noise (`bool`, *optional*, defaults to `True`):
            GE: Gaussian noise on the modulated gradients (OGM-GE); False is OGM alone.
        mmpareto_gamma (`float`, *optional*, defaults to `1.5`):
            γ of MMPareto ([`MMParetoTrainer`]).
        mlb_alpha (`float`, *optional*, defaults to `1.5`):
            α of MLB ([`MLBTrainer`]).
    """

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


@dataclass
class BalancingConfig(BalancingArguments, TrainingArguments):
    r"""
    Configuration of the modality-balancing baselines ([`OGMGETrainer`], [`MMParetoTrainer`], [`MLBTrainer`],
    [`UnimodalEnsembleTrainer`], [`MultilossTrainer`]): every [`~transformers.TrainingArguments`] field plus
    [`BalancingArguments`]'. These baselines train without SynIB's masked views, so none of SynIB's fields is here.

    Example:

    ```python
    >>> args = BalancingConfig(output_dir="out", ogm_alpha=0.8)  # OGM-GE with the authors' CREMA-D α
    >>> trainer = OGMGETrainer(model=model, args=args, train_dataset=train)
    ```
    """
