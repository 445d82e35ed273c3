"""`SynIBConfig`: `TrainingArguments` plus the SynIB objective, its masking operators and where they apply."""

import copy
import json
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Optional, Union

from transformers import TrainingArguments

from synib_hf.input_kinds import parse_declared
from synib_hf.masking import MASK_FILLS, MASK_TYPES
from synib_hf.penalties import PENALTIES
from synib_hf.tasks import TASK_TYPES


SYNIB_PATHS = ("auto", "native", "generic", "embedding")
VIEW_BATCHING = ("concatenated", "sequential")
PROBLEM_TYPES = ("auto",) + tuple(t for t in TASK_TYPES if t != "binary_classification")

# Common Hugging Face input names per modality. Absent keys are skipped; pass `modality_keys` to be strict.
DEFAULT_MODALITY_KEYS = {
    "image": ["pixel_values"],
    "text": ["input_ids", "attention_mask", "token_type_ids"],
    "audio": ["input_features", "input_values"],
}


@dataclass
class SynIBConfig(TrainingArguments):
    r"""
    Configuration for [`SynIBTrainer`]: every [`~transformers.TrainingArguments`] field, plus SynIB's.

    The loss is `CE(f(x), y) + synib_weight · Σ_m Ω(f(M_m(x)))`: one masked view per modality, each penalised for
    staying confident. `synib_weight=0` is plain training, step for step.

    Example:

    ```python
    >>> args = SynIBConfig(output_dir="out", synib_weight=0.1, mask_type="random", mask_ratio=0.5,
    ...                    modality_keys={"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]})
    ```
    """

    # SynIB objective
    synib_weight: float = field(
        default=0.1,
        metadata={
            "help": "λ, the weight of the masked-view confidence penalty. 0 disables SynIB (plain training and plain "
            "evaluation). The paper tunes it per data set on validation accuracy over {1e-3, 1e-2, 0.1, 1, 10}."
        },
    )
    synib_penalty: str = field(
        default="kl_uniform",
        metadata={
            "help": "Ω, the penalty on each masked view: 'kl_uniform' = KL(p ‖ uniform) (for multi-label and "
            "soft-target heads the per-label KL(σ(z) ‖ ½), averaged over labels); 'gaussian' = KL of N(logits, σ²) "
            "to N(0, I) with σ² from a logvar head (native models) or the output field logvar_key (generic path), "
            "the only penalty for regression heads; 'unimodal_anchor' = KL(p_unimodal ‖ p) towards the unimodal "
            "head of the modality left visible (native models, two modalities).",
            "choices": list(PENALTIES),
        },
    )
    problem_type: str = field(
        default="auto",
        metadata={
            "help": "The head's task, as transformers names it: 'auto' reads the model config's problem_type, else "
            "transformers' rule (one output: regression; integer labels: single-label; float labels: multi-label). "
            "It sets the clean view's task loss (cross-entropy, BCE, MSE) unless compute_loss_func is given, the "
            "penalty's form and masked accuracy.",
            "choices": list(PROBLEM_TYPES),
        },
    )
    logits_key: str = field(
        default="logits",
        metadata={"help": "Generic path: the model output field holding the classification scores (B, C), e.g. "
                  "'question_answering_score'."},
    )
    logvar_key: Optional[str] = field(
        default=None,
        metadata={"help": "Generic path, synib_penalty='gaussian': the output field holding log-variances shaped "
                  "like the scores."},
    )
    eval_masked_views: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Run the masked views in evaluation too, adding eval_synib/* metrics (masked accuracy, "
            "confidence) and SynIB's objective as eval_loss. Default: on when synib_weight > 0; off, evaluation is "
            "exactly Trainer's (one forward per batch, the model's own loss)."
        },
    )
    synib_start_step: int = field(
        default=0, metadata={"help": "First optimizer step at which the penalty is applied (a warm-up window)."}
    )
    synib_end_step: Optional[int] = field(
        default=None, metadata={"help": "Optimizer step at which the penalty stops; None keeps it to the end."}
    )

    # Masking operators
    mask_type: str = field(
        default="random",
        metadata={
            "help": "How a modality is masked: 'full' replaces all of it; 'random' each feature/token with "
            "probability mask_ratio; 'learned' fits per-example gates against the unimodal head (native models); "
            "'oracle' destroys the input coordinates in oracle_coordinates (synthetic data).",
            "choices": list(MASK_TYPES),
        },
    )
    mask_ratio: float = field(
        default=0.5,
        metadata={"help": "Probability that a feature/token is replaced, in (0, 1]; for mask_type='random'."},
    )
    mask_patch_size: int = field(
        default=1,
        metadata={"help": "Generic path, random masks on images: the side of the square patch one draw replaces "
                  "(1 = single pixels); all channels of a patch go together."},
    )
    mask_fill: str = field(
        default="auto",
        metadata={
            "help": "What replaces masked float values: 'shuffle' = the same value from another example of the batch "
            "(needs batches of at least 2); 'ema_noise' = N(μ, σ²) from an EMA of clean statistics; 'zero'. 'auto' "
            "(default) is 'shuffle' on the native and generic paths, where it won or tied with random masks on every "
            "benchmark, 5 seeds each (Gaussian-XOR synergy slice 0.92 vs 0.54 at 10 % synergy, irony class 0.47 vs "
            "0.34, easy-VQA 0.727 vs 0.698: noise on rectified or non-Gaussian features is out of distribution, so a "
            "model can learn to spot masked views; docs/benchmarks/README.md), and 'ema_noise' on the embedding "
            "path, whose examples rarely have the same number of positions to shuffle. Token ids are always "
            "replaced by the tokenizer's mask (else pad) id.",
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
        metadata={
            "help": "For mask_type='oracle': input key → coordinates (last axis) to destroy, as a dict or JSON "
            "string, e.g. '{\"x1\": [12, 13]}'."
        },
    )

    # Where masking applies
    synib_path: str = field(
        default="auto",
        metadata={
            "help": "'native': features re-used, only the fusion head re-runs per view (the model must implement "
            "synib_hf.SynIBNativeMixin); 'generic': masked copies of the inputs (any model returning logits); "
            "'embedding': vision-language models (LLaVA, Qwen2/2.5/3-VL, Idefics3, SmolVLM, PaliGemma, Gemma3, or "
            "VLMForSequenceClassification around one), views masked on the language model's input embeddings in "
            "one forward; 'auto': native when the model supports it, embedding for a supported VLM, else generic.",
            "choices": list(SYNIB_PATHS),
        },
    )
    modality_keys: Optional[Union[dict, str]] = field(
        default=None,
        metadata={
            "help": "Generic path: modality → input keys, as a dict or JSON string, e.g. "
            "'{\"image\": [\"pixel_values\"], \"text\": [\"input_ids\", \"attention_mask\"]}'. Every key named "
            "must be in every batch. Default: pixel_values (image); input_ids, attention_mask, token_type_ids "
            "(text); input_features, input_values (audio), each when present."
        },
    )
    input_kinds: Optional[Union[dict, str]] = field(
        default=None,
        metadata={
            "help": "Generic path: input key → how it is masked, overriding the default rule (see "
            "synib_hf.input_kinds): 'tokens', 'image', 'images', 'sequence', 'spectrogram', 'vector', or the "
            "companions 'attention', 'boxes' (optionally ':<partner key>') and 'unchanged'; a dict or JSON string."
        },
    )
    # Vision-language models (synib_path='embedding')
    answer_candidates: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Generative VLMs: the possible answers, written as in the labels (mind a leading space), e.g. "
            "yes no. SynIB reads the answer position's logits of their first tokens (which must differ) as the "
            "class scores its penalty and masked accuracy use; the task loss stays the model's own LM loss."
        },
    )
    lean_logits: bool = field(
        default=True,
        metadata={
            "help": "Generative VLMs: compute logits only where the LM loss and the penalty read them "
            "(logits_to_keep as a position mask): the same loss and gradients without a (3·B, T, vocabulary) tensor."
        },
    )
    share_vision_encoder: bool = field(
        default=True,
        metadata={
            "help": "Vision-language models: run the vision tower once per step and repeat its output for the "
            "masked views (identical logits); False runs it on every view's copy of the images."
        },
    )
    masked_modalities: Optional[list[str]] = field(
        default=None, metadata={"help": "Modalities that get a masked view; default: all of them."}
    )
    view_batching: str = field(
        default="concatenated",
        metadata={
            "help": "Generic path: 'concatenated' runs clean and masked views in one forward on the batch axis; "
            "'sequential' runs and back-propagates each view in turn (lower peak memory).",
            "choices": list(VIEW_BATCHING),
        },
    )
    detach_masked_features: bool = field(
        default=False,
        metadata={
            "help": "Native path: detach encoder features in the masked views, so the penalty trains only the "
            "fusion head (the authors' MultiBench setting)."
        },
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
        if self.answer_candidates is not None:
            candidates = self.answer_candidates
            if (isinstance(candidates, str) or len(candidates) < 2 or len(set(candidates)) != len(candidates)
                    or not all(isinstance(c, str) and c for c in candidates)):
                raise ValueError(
                    f"answer_candidates must list at least two different non-empty answers, got {candidates!r}; "
                    "e.g. ['yes', 'no']."
                )
        super().__post_init__()

    # Why: the Trainer pickles its arguments into training_args.bin (in every checkpoint, and pushed to the Hub);
    # no token may travel with them. Copies made in memory keep it.
    def __getstate__(self):
        state = dict(self.__dict__)
        for name in state:
            if name.endswith("_token"):
                state[name] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __deepcopy__(self, memo):
        copied = copy.copy(self)
        memo[id(self)] = copied
        copied.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        return copied

    def __copy__(self):
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        return copied


# SynIBConfig fields that one path reads (or some paths): set on a model of another path they would be ignored.
PATH_FIELDS = {
    "modality_keys": ("generic",),
    "input_kinds": ("generic",),
    "logits_key": ("generic",),
    "logvar_key": ("generic",),
    "problem_type": ("generic",),
    "mask_patch_size": ("generic",),
    "view_batching": ("generic", "embedding"),
    "answer_candidates": ("embedding",),
    "lean_logits": ("embedding",),
    "share_vision_encoder": ("embedding",),
}


def check_path_fields(args: SynIBConfig, path: str, model_name: str) -> None:
    """A clear error for a field set away from its default on a path that does not read it."""
    defaults = {f.name: f.default for f in fields(SynIBConfig) if f.name in PATH_FIELDS}
    for name, paths in PATH_FIELDS.items():
        if path not in paths and getattr(args, name) != defaults[name]:
            raise ValueError(
                f"{name}={getattr(args, name)!r} is read by the {' and '.join(paths)} path(s), but {model_name} "
                f"trains on the {path} path, which would ignore it; remove {name}."
            )


def resolved_mask_fill(args: SynIBConfig, path: str) -> str:
    """The fill a path uses: `mask_fill`, with 'auto' read as 'shuffle' (native, generic) or 'ema_noise' (embedding).

    Raises:
        ValueError: 'shuffle' with batches of one where views run: training batches while views are trained,
            evaluation batches while they are evaluated.
    """
    fill = args.mask_fill if args.mask_fill != "auto" else ("ema_noise" if path == "embedding" else "shuffle")
    if fill != "shuffle":
        return fill
    eval_views = args.synib_weight > 0 if args.eval_masked_views is None else args.eval_masked_views
    for name, views_run in (("per_device_train_batch_size", args.synib_weight > 0),
                            ("per_device_eval_batch_size", eval_views)):
        if views_run and getattr(args, name) < 2:
            raise ValueError(
                f"mask_fill={args.mask_fill!r} fills each example from another of its batch (shuffle), so {name} "
                f"must be at least 2 (it is {getattr(args, name)}); or set mask_fill='ema_noise'"
                + (", or eval_masked_views=False." if name == "per_device_eval_batch_size" else ".")
            )
    return fill


def synib_changes(args: SynIBConfig) -> dict:
    """The fields of the config's own class (SynIB's, and a subclass's such as the balancing baselines'; not the
    TrainingArguments ones) whose value differs from that class's default, for model cards."""
    inherited = {f.name for f in fields(TrainingArguments)}
    changed = {}
    for f in fields(type(args)):
        if f.name in inherited:
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if getattr(args, f.name) != default:
            changed[f.name] = getattr(args, f.name)
    return changed


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
