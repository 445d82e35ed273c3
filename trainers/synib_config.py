"""`SynIBArguments`: SynIB's own fields (the objective, its masking operators and where they apply), and
`SynIBConfig`, the `TrainingArguments` that carries them (`SynIBSFTConfig` mixes the same fields into TRL's
`SFTConfig`)."""

import json
import math
from dataclasses import dataclass, field
from typing import Optional, Union

from transformers import TrainingArguments

from synib_hf.masking import MASK_FILLS, MASK_TYPES, parse_declared
from synib_hf.penalties import PENALTIES
from synib_hf.tasks import TASK_TYPES
from synib_hf.view_builders import VIEW_BATCHING

from .method_arguments import MethodArguments


SYNIB_PATHS = ("auto", "native", "generic", "embedding")
PROBLEM_TYPES = ("auto",) + tuple(t for t in TASK_TYPES if t != "binary_classification")


@dataclass
class SynIBArguments(MethodArguments):
    r"""
    SynIB's fields. The loss is `task(f(x), y) + synib_weight · Σ_m Ω(f(M_m(x)))`: one masked view per modality,
    each penalised for staying confident. `synib_weight=0` is plain training and evaluation, step for step.

    Parameters:
        > Objective

        synib_weight (`float`, *optional*, defaults to `0.1`):
            λ, the weight of the masked views' penalty; 0 turns SynIB off.
        synib_penalty (`str`, *optional*, defaults to `"kl_uniform"`):
            Ω: `"kl_uniform"`, `"gaussian"` or `"unimodal_anchor"`.
        synib_start_step (`int`, *optional*, defaults to `0`):
            First optimizer step with the penalty.
        synib_end_step (`int` or `None`, *optional*, defaults to `None`):
            Optimizer step at which the penalty stops.
        eval_masked_views (`bool` or `None`, *optional*, defaults to `None`):
            Run the masked views in evaluation (default: when `synib_weight > 0`).

        > Masking operators

        mask_type (`str`, *optional*, defaults to `"random"`):
            `"full"`, `"random"`, `"learned"` (native models) or `"oracle"` (synthetic data).
        mask_ratio (`float`, *optional*, defaults to `0.5`):
            Share of features/tokens a random mask replaces.
        mask_fill (`str`, *optional*, defaults to `"auto"`):
            What replaces masked values: `"shuffle"`, `"ema_noise"`, `"zero"`, or `"auto"`.
        fill_ema_decay (`float`, *optional*, defaults to `0.99`):
            EMA decay of the statistics behind `"ema_noise"`.
        learned_mask_steps, learned_mask_lr, learned_mask_temperature, learned_mask_grad_clip,
        learned_mask_sparsity_weight:
            The learned mask's inner optimisation (defaults 20, 0.1, 1.0, 1.0, 1.0).
        oracle_coordinates (`dict` or `str`, *optional*):
            Input key → coordinates an `"oracle"` mask destroys.

        > Views

        synib_path (`str`, *optional*, defaults to `"auto"`):
            `"native"`, `"generic"`, `"embedding"` or `"auto"` (chosen from the model).
        masked_modalities (`list[str]`, *optional*):
            Modalities that get a masked view; default: all.
        view_batching (`str`, *optional*, defaults to `"concatenated"`):
            One forward for all views, or `"sequential"` (lower peak memory).
        detach_masked_features (`bool`, *optional*, defaults to `False`):
            Native path: the penalty trains only the fusion head.

        > Inputs and task (generic path)

        modality_keys (`dict` or `str`, *optional*):
            Modality → input keys.
        input_kinds (`dict` or `str`, *optional*):
            Input key → how it is masked.
        mask_patch_size (`int`, *optional*, defaults to `1`):
            Side of the image patch a random mask replaces at once.
        logits_key (`str`, *optional*, defaults to `"logits"`):
            Output field of the classification scores.
        logvar_key (`str`, *optional*):
            Output field of the log-variances (`"gaussian"`).
        problem_type (`str`, *optional*, defaults to `"auto"`):
            The head's task (`"auto"`: as transformers trains it).

        > Vision-language models (embedding path)

        answer_candidates (`list[str]`, *optional*):
            A generative model's possible answers.
        lean_logits (`bool`, *optional*, defaults to `True`):
            Logits only where the loss and the read-out read them.
        share_vision_encoder (`bool`, *optional*, defaults to `True`):
            The vision tower once per step for all views.
        share_view_prefix (`bool` or `None`, *optional*, defaults to `None`):
            Masked views compute only their suffix after the clean view's causal prefix (default: wherever exact).
        drop_masked_image (`bool`, *optional*, defaults to `False`):
            With full masks, the image view leaves the image positions out instead of filling them.
    """

    # > Objective
    synib_weight: float = field(
        default=0.1,
        metadata={"help": "λ, the weight of the masked views' confidence penalty. 0 turns SynIB off: plain training "
                  "and evaluation, step for step. Tune it on validation data (the paper searches 1e-3 to 10)."},
    )
    synib_penalty: str = field(
        default="kl_uniform",
        metadata={
            "help": "Ω, what a masked view costs: 'kl_uniform' = KL(p ‖ uniform) (per label for multi-label heads); "
            "'gaussian' = KL(N(logits, σ²) ‖ N(0, I)) with σ² from a logvar head or logvar_key (regression heads); "
            "'unimodal_anchor' = KL(p_unimodal ‖ p) (native models).",
            "choices": list(PENALTIES),
        },
    )
    synib_start_step: int = field(
        default=0, metadata={"help": "First optimizer step at which the penalty is applied (a warm-up window)."}
    )
    synib_end_step: Optional[int] = field(
        default=None, metadata={"help": "Optimizer step at which the penalty stops; None keeps it to the end."}
    )
    eval_masked_views: Optional[bool] = field(
        default=None,
        metadata={"help": "Run the masked views in evaluation too (eval_synib/* metrics, SynIB's objective as "
                  "eval_loss). Default: on when synib_weight > 0; off, evaluation is exactly Trainer's."},
    )

    # > Masking operators
    mask_type: str = field(
        default="random",
        metadata={
            "help": "How a modality is masked: 'full' replaces all of it; 'random' each feature/token with "
            "probability mask_ratio; 'learned' fits per-example gates against the unimodal head (native models); "
            "'oracle' destroys oracle_coordinates (synthetic data).",
            "choices": list(MASK_TYPES),
        },
    )
    mask_ratio: float = field(
        default=0.5,
        metadata={"help": "Probability that a feature/token is replaced, in (0, 1]; for mask_type='random'."},
    )
    mask_fill: str = field(
        default="auto",
        metadata={
            "help": "What replaces masked float values: 'shuffle' (the same value from another example of the batch), "
            "'ema_noise' (N(μ, σ²) from an EMA of clean values) or 'zero'. 'auto': 'shuffle' on the native and "
            "generic paths, 'ema_noise' on the embedding path (why: docs/benchmarks/README.md).",
            "choices": ["auto", *MASK_FILLS],
        },
    )
    fill_ema_decay: float = field(
        default=0.99, metadata={"help": "EMA decay β of the clean statistics behind mask_fill='ema_noise', in [0, 1)."}
    )
    learned_mask_steps: int = field(default=20, metadata={"help": "Adam steps that fit the learned mask's gates."})
    learned_mask_lr: float = field(default=0.1, metadata={"help": "Adam learning rate of the learned mask's gates."})
    learned_mask_temperature: float = field(
        default=1.0, metadata={"help": "Temperature τ of the learned keep-gate σ(ℓ/τ)."}
    )
    learned_mask_grad_clip: float = field(
        default=1.0, metadata={"help": "Gradient-norm clip of the learned mask's inner optimisation."}
    )
    learned_mask_sparsity_weight: float = field(
        default=1.0, metadata={"help": "λ_s: weight of mean(1 − g), which keeps the learned gates open."}
    )
    oracle_coordinates: Optional[Union[dict, str]] = field(
        default=None,
        metadata={"help": "For mask_type='oracle': input key → coordinates (last axis) to destroy, as a dict or JSON "
                  "string, e.g. '{\"x1\": [12, 13]}'."},
    )

    # > Views
    synib_path: str = field(
        default="auto",
        metadata={
            "help": "Where views are built: 'native' (pooled features, only the fusion head re-runs: "
            "synib_hf.SynIBNativeMixin models), 'generic' (masked copies of the inputs), 'embedding' (a "
            "vision-language model's input embeddings); 'auto' picks from the model.",
            "choices": list(SYNIB_PATHS),
        },
    )
    masked_modalities: Optional[list[str]] = field(
        default=None, metadata={"help": "Modalities that get a masked view; default: all of them."}
    )
    view_batching: str = field(
        default="concatenated",
        metadata={
            "help": "Generic and embedding paths: 'concatenated' runs clean and masked views in one forward on the "
            "batch axis; 'sequential' runs and back-propagates each view in turn (lower peak memory).",
            "choices": list(VIEW_BATCHING),
        },
    )
    detach_masked_features: bool = field(
        default=False,
        metadata={"help": "Native path: detach encoder features in the masked views, so the penalty trains only the "
                  "fusion head (the authors' MultiBench setting)."},
    )

    # > Inputs and task (generic path)
    modality_keys: Optional[Union[dict, str]] = field(
        default=None,
        metadata={"help": "Modality → input keys, as a dict or JSON string, e.g. '{\"image\": [\"pixel_values\"], "
                  "\"text\": [\"input_ids\", \"attention_mask\"]}'. Default: pixel_values; input_ids, "
                  "attention_mask, token_type_ids; input_features, input_values, each when present."},
    )
    input_kinds: Optional[Union[dict, str]] = field(
        default=None,
        metadata={"help": "Input key → how it is masked, overriding the default rule (synib_hf.masking.input_kinds): "
                  "'tokens', 'image', 'images', 'sequence', 'spectrogram', 'vector', or the companions "
                  "'attention', 'boxes' (optionally ':<partner key>') and 'unchanged'."},
    )
    mask_patch_size: int = field(
        default=1,
        metadata={"help": "Random masks on images: the side of the square patch one draw replaces (1 = pixels); all "
                  "channels of a patch go together."},
    )
    logits_key: str = field(
        default="logits",
        metadata={"help": "The model output field holding the classification scores (B, C), e.g. "
                  "'question_answering_score'."},
    )
    logvar_key: Optional[str] = field(
        default=None,
        metadata={"help": "synib_penalty='gaussian': the output field holding log-variances shaped like the scores."},
    )
    problem_type: str = field(
        default="auto",
        metadata={
            "help": "The head's task: 'auto' reads the model config's problem_type, else transformers' rule (one "
            "output: regression; integer labels: single-label; float labels: multi-label). It sets the penalty's form "
            "and masked accuracy.",
            "choices": list(PROBLEM_TYPES),
        },
    )

    # > Vision-language models (embedding path)
    answer_candidates: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Generative VLMs: the possible answers, written as in the labels (mind a leading space), "
                  "e.g. yes no. SynIB reads the logits of their first tokens (which must differ) at the answer "
                  "position; the task loss stays the model's own LM loss."},
    )
    lean_logits: bool = field(
        default=True,
        metadata={"help": "Generative VLMs: compute logits only where the LM loss and the penalty read them (the same "
                  "loss and gradients without a (3·B, T, vocabulary) tensor)."},
    )
    share_vision_encoder: bool = field(
        default=True,
        metadata={"help": "Vision-language models: run the vision tower once per step and repeat its output for the "
                  "masked views (identical logits); False runs it on every view's copy of the images."},
    )
    share_view_prefix: Optional[bool] = field(
        default=None,
        metadata={"help": "Vision-language models: pack each example's views in one row so a masked view computes "
                  "only its suffix after the clean view's causal prefix (same loss and gradients). None: wherever "
                  "exact (causal prefix, SDPA/eager attention); True: required."},
    )
    drop_masked_image: bool = field(
        default=False,
        metadata={"help": "Vision-language models, mask_type='full': the image view leaves the image positions out "
                  "(positions ids kept), a short text-only pass, instead of filling them: the same as attention-"
                  "masking the image."},
    )

    def __post_init__(self):
        self.oracle_coordinates = _parse_json_field("oracle_coordinates", self.oracle_coordinates)
        self.modality_keys = _parse_json_field("modality_keys", self.modality_keys)
        self.input_kinds = _parse_json_field("input_kinds", self.input_kinds)
        _check_choice("problem_type", self.problem_type, PROBLEM_TYPES)
        _check_choice("synib_penalty", self.synib_penalty, PENALTIES)
        _check_choice("mask_type", self.mask_type, MASK_TYPES)
        _check_choice("mask_fill", self.mask_fill, ("auto", *MASK_FILLS))
        _check_choice("synib_path", self.synib_path, SYNIB_PATHS)
        _check_choice("view_batching", self.view_batching, VIEW_BATCHING)
        if not (math.isfinite(self.synib_weight) and self.synib_weight >= 0):
            raise ValueError(f"synib_weight must be a finite number >= 0 (0 disables SynIB), got {self.synib_weight}.")
        if not (isinstance(self.mask_patch_size, int) and self.mask_patch_size >= 1):
            raise ValueError(f"mask_patch_size must be an integer >= 1 (1 = pixels), got {self.mask_patch_size!r}.")
        if self.input_kinds is not None:
            for key, kind in self.input_kinds.items():
                if not isinstance(kind, str):
                    raise ValueError(f"input_kinds[{key!r}] must be a string such as 'sequence', got {kind!r}.")
                parse_declared(kind)
        if not self.logits_key:
            raise ValueError("logits_key must name an output field, e.g. 'logits'.")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}; e.g. 0.5, or 0.3 for XOR.")
        if not 0.0 <= self.fill_ema_decay < 1.0:
            raise ValueError(f"fill_ema_decay must be in [0, 1), got {self.fill_ema_decay}; the default is 0.99.")
        for name in ("learned_mask_steps", "learned_mask_lr", "learned_mask_temperature", "learned_mask_grad_clip"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)}.")
        if self.learned_mask_sparsity_weight < 0:
            raise ValueError(f"learned_mask_sparsity_weight must be >= 0, got {self.learned_mask_sparsity_weight}.")
        if self.synib_start_step < 0:
            raise ValueError(f"synib_start_step must be >= 0, got {self.synib_start_step}.")
        if self.synib_end_step is not None and self.synib_end_step <= self.synib_start_step:
            raise ValueError(
                f"synib_end_step ({self.synib_end_step}) must be after synib_start_step ({self.synib_start_step}), "
                "or None to keep the penalty on to the end."
            )
        if self.mask_type == "oracle" and not self.oracle_coordinates:
            raise ValueError(
                "mask_type='oracle' needs oracle_coordinates (input key → coordinates to destroy); the Gaussian-XOR "
                "data set exposes them as `synergy_coordinates`."
            )
        for key, coordinates in (self.oracle_coordinates or {}).items():
            if (isinstance(coordinates, (str, bytes)) or not hasattr(coordinates, "__iter__")
                    or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in coordinates)):
                raise ValueError(
                    f"oracle_coordinates[{key!r}] must be a list of non-negative coordinate indices of the input's "
                    f"last axis, got {coordinates!r} (negative indices would silently count from the end)."
                )
        if self.modality_keys is not None:
            _check_modality_keys(self.modality_keys)
        if self.masked_modalities is not None and not self.masked_modalities:
            raise ValueError("masked_modalities is empty: list at least one modality, or None for all of them.")
        if self.masked_modalities is not None and len(set(self.masked_modalities)) != len(self.masked_modalities):
            repeated = sorted({m for m in self.masked_modalities if self.masked_modalities.count(m) > 1})
            raise ValueError(
                f"masked_modalities lists {repeated} more than once, which would count their views' penalty twice; "
                "list each modality once."
            )
        if self.answer_candidates is not None:
            candidates = self.answer_candidates
            if (isinstance(candidates, str) or len(candidates) < 2 or len(set(candidates)) != len(candidates)
                    or not all(isinstance(c, str) and c for c in candidates)):
                raise ValueError(
                    f"answer_candidates must list at least two different non-empty answers, got {candidates!r}; "
                    "e.g. ['yes', 'no']."
                )
        super().__post_init__()


@dataclass
class SynIBConfig(SynIBArguments, TrainingArguments):
    r"""
    Configuration for [`SynIBTrainer`]: every [`~transformers.TrainingArguments`] field, plus SynIB's (see
    [`SynIBArguments`], which lists them by group).

    Example:

    ```python
    >>> args = SynIBConfig(output_dir="out", synib_weight=0.1, mask_type="random", mask_ratio=0.5,
    ...                    modality_keys={"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]})
    ```
    """


def _parse_json_field(name: str, value):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name} must be a dict or a JSON object string, got {value!r} ({error}).") from None
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict or a JSON object string, got {type(value).__name__}: {value!r}.")
    return value


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not a valid choice; use one of {', '.join(map(repr, choices))}.")


def _check_modality_keys(modality_keys: dict) -> None:
    for modality, keys in modality_keys.items():
        if isinstance(keys, str) or not keys or not all(isinstance(k, str) for k in keys):
            raise ValueError(
                f"modality_keys[{modality!r}] must be a non-empty list of input names, got {keys!r}; e.g. "
                "{'image': ['pixel_values'], 'text': ['input_ids', 'attention_mask']}."
            )
    seen = {}
    for modality, keys in modality_keys.items():
        for key in keys:
            if key in seen:
                raise ValueError(f"modality_keys maps {key!r} to both {seen[key]!r} and {modality!r}; pick one.")
            seen[key] = modality
    if len(modality_keys) < 2:
        raise ValueError(
            f"modality_keys names {len(modality_keys)} modality; SynIB masks one modality while keeping the others, "
            "so it needs at least two."
        )
