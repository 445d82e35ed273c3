"""Which view builder a model trains with, from `SynIBConfig` and the model: native (`SynIBNativeMixin`), embedding
(a supported vision-language model) or generic (any model returning scores), with the options each path refuses."""

from dataclasses import fields

from synib_hf.generative import candidate_token_ids
from synib_hf.masking import MaskSpec, TokenIds
from synib_hf.models.vlm import embedding_views, is_vision_language_model, prompt_layout
from synib_hf.native import implements_native_protocol
from synib_hf.view_builders import InputViews, NativeViews


# SynIB fields that one path reads (or some paths): set on a model of another path they would be ignored.
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
    "share_view_prefix": ("embedding",),
    "drop_masked_image": ("embedding",),
}


def choose_path(core, args) -> str:
    """`args.synib_path`, with 'auto' resolved from the model: native, embedding or generic.

    Raises:
        ValueError: a path the model cannot take.
    """
    native, vlm = implements_native_protocol(core), is_vision_language_model(core)
    name = type(core).__name__
    if args.synib_path == "native" and not native:
        raise ValueError(
            f"synib_path='native' but {name} does not implement the native protocol (synib_hf.SynIBNativeMixin: "
            "per-modality features + a fusion head). Use synib_path='generic' or 'auto' to mask its inputs instead."
        )
    if args.synib_path == "embedding" and not vlm:
        raise ValueError(
            f"synib_path='embedding' masks a vision-language model's input embeddings, but {name} is not one of the "
            "supported families (synib_hf.models.vlm.VLM_FAMILIES) nor a VLMForSequenceClassification. Use "
            "synib_path='auto'."
        )
    if args.synib_path != "auto":
        return args.synib_path
    return "native" if native else "embedding" if vlm else "generic"


def build_view_builder(core, args, processing_class, randomness, view_loss: str, compute_loss_func=None,
                       deepspeed: bool = False):
    """The view builder of `core` (the unwrapped model) under `args`, checked against the model and the options."""
    path = choose_path(core, args)
    builder = _view_builder(path, core, args, processing_class, randomness, view_loss, compute_loss_func, deepspeed)
    check_path_fields(args, path, type(core).__name__)
    return builder


def _view_builder(path, core, args, processing_class, randomness, view_loss, compute_loss_func, deepspeed):
    name = type(core).__name__
    spec = MaskSpec(**{f.name: getattr(args, f.name) for f in fields(MaskSpec)} | {"mask_fill": mask_fill(args, path)})
    if path == "native":
        refuse_other_task_loss(args, compute_loss_func, "native", "the task loss is the model's own, fused and "
                               "unimodal heads")
        return NativeViews(core, spec, randomness, args.masked_modalities, view_loss)
    if args.detach_masked_features:
        masks_what = "inputs" if path == "generic" else "the language model's input embeddings"
        raise ValueError(
            f"detach_masked_features=True detaches encoder features, which only the native path has; the {path} path "
            f"masks {masks_what}. Set it to False" + (" or use a native model." if path == "generic" else ".")
        )
    if args.view_batching == "sequential" and deepspeed:
        raise ValueError("view_batching='sequential' back-propagates each view itself; it does not support DeepSpeed.")
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    if path == "embedding":
        classifier = hasattr(core, "readout_positions")  # a VLMForSequenceClassification: no answer candidates
        refuse_other_task_loss(args, compute_loss_func, "embedding",
                               "the task loss is the model's own LM or classification loss")
        candidates = args.answer_candidates
        if not classifier:
            if not candidates:
                raise ValueError(
                    f"{name} answers in tokens: set answer_candidates to its possible answers as they appear in the "
                    "labels (e.g. ['yes', 'no']); SynIB reads their first tokens at the answer position."
                )
            candidates = candidate_token_ids(processing_class, candidates)
        return embedding_views(
            core, spec, randomness, tuple(getattr(tokenizer, "all_special_ids", None) or ()),
            candidate_ids=candidates, share_vision=args.share_vision_encoder, lean_logits=args.lean_logits,
            view_batching=args.view_batching, masked_modalities=args.masked_modalities, view_loss=view_loss,
            share_prefix=args.share_view_prefix, drop_image=args.drop_masked_image,
            prompt_layout=prompt_layout(processing_class),
        )
    token_ids = None
    if tokenizer is not None and hasattr(tokenizer, "all_special_ids"):
        token_ids = TokenIds.from_tokenizer(tokenizer)
    return InputViews(
        spec, randomness, token_ids, modality_keys=args.modality_keys, input_kinds=args.input_kinds,
        masked_modalities=args.masked_modalities, logits_key=args.logits_key, logvar_key=args.logvar_key,
        view_loss=view_loss, problem_type=args.problem_type, view_batching=args.view_batching,
        compute_loss_func=compute_loss_func, label_smoothing=args.label_smoothing_factor,
        model_config=getattr(core, "config", None), model_name=name,
    )


def refuse_other_task_loss(args, compute_loss_func, path: str, why: str) -> None:
    """A path whose task loss is the model's own cannot honour `compute_loss_func` or `label_smoothing_factor` the
    same way in every view batching: an error, not a silently different objective (λ = 0 is `Trainer` and takes
    both)."""
    if args.synib_weight == 0 and not args.eval_masked_views:
        return
    for option, value in (("compute_loss_func", compute_loss_func),
                          ("label_smoothing_factor", args.label_smoothing_factor)):
        if value:
            raise ValueError(
                f"{option} is not used on the {path} path ({why}); remove it, or use synib_weight=0 for plain "
                "training."
            )


def check_path_fields(args, path: str, model_name: str) -> None:
    """A clear error for a field set away from its default on a path that does not read it."""
    defaults = {f.name: f.default for f in fields(type(args)) if f.name in PATH_FIELDS}
    for name, paths in PATH_FIELDS.items():
        if path not in paths and getattr(args, name) != defaults[name]:
            raise ValueError(
                f"{name}={getattr(args, name)!r} is read by the {' and '.join(paths)} path(s), but {model_name} "
                f"trains on the {path} path, which would ignore it; remove {name}."
            )


def mask_fill(args, path: str) -> str:
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
