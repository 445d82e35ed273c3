"""[`InputViews`]: the view builder of any model that returns classification scores (the generic path).

Each masked view is a copy of the batch whose modality's inputs are masked by the rule of their kind
(`synib_hf.masking.input_kinds`). The clean batch and the views run in one forward, stacked on the batch axis
(`view_batching="concatenated"`), or one after another (`"sequential"`: each view is back-propagated as soon as it is
read, so only one view's activations live at a time).

The clean view's task loss is the one the model is trained with at `synib_weight=0`: the head's task from its scores
(`problem_type`: cross-entropy, BCE, MSE, or the user's `compute_loss_func`) when that equals the model's own loss on
the first batch ([`InputViews.use_model_loss`]); otherwise (a model whose own loss is scaled, smoothed, weighted or has
an auxiliary term, e.g. ViLT's BCE × num_labels) the model's own forward with the labels, run by the trainer beside
the masked views ([`InputViews.complete`]).
"""

from typing import Callable, Mapping, Optional, Sequence

import torch

from ..masking import InputMasker, MaskRandomness, MaskSpec, TokenIds, check_oracle_coordinates, resolve_input_kinds
from ..objective import Views, select_masked_modalities
from ..tasks import Task, resolve_task
from .view_plumbing import (
    check_patch_size,
    classification_scores,
    concatenate_views,
    read_output,
    resolve_modality_keys,
    slice_outputs,
)


VIEW_BATCHING = ("concatenated", "sequential")
# Common Hugging Face input names per modality. Absent keys are skipped; pass `modality_keys` to be strict.
DEFAULT_MODALITY_KEYS = {
    "image": ["pixel_values"],
    "text": ["input_ids", "attention_mask", "token_type_ids"],
    "audio": ["input_features", "input_values"],
}


class InputViews:
    """`(model, inputs) → Views` for any model that returns classification scores `(B, C)`.

    Args:
        spec ([`MaskSpec`]): how inputs are masked (`learned` needs a native model and is refused).
        randomness ([`MaskRandomness`]): the masks' private generators.
        token_ids ([`TokenIds`], *optional*): the tokenizer's fill and special ids, to mask token inputs.
        modality_keys: modality → input keys (strict); default: [`DEFAULT_MODALITY_KEYS`], the keys present.
        input_kinds: input key → declared kind, overriding the default rule.
        masked_modalities: the modalities that get a masked view (default: all).
        logits_key / logvar_key: the output fields of the scores and (`gaussian`) their log-variances.
        view_loss: what a masked view costs (`synib_hf.objective.VIEW_LOSSES`).
        problem_type: the head's task, or "auto" (the model config's, else transformers' rule).
        view_batching: "concatenated" or "sequential".
        compute_loss_func: the user's task loss `(outputs, labels, num_items_in_batch) → loss`, on the clean rows.
        label_smoothing: the task loss's label smoothing (single-label heads).
        model_config: the model's config, whose `problem_type` decides the task under "auto".
        model_name: the model's class name, for messages.

    Example:

    ```python
    >>> builder = InputViews(MaskSpec(mask_type="full", mask_fill="zero"), MaskRandomness(seed=0),
    ...                      TokenIds.from_tokenizer(tokenizer), modality_keys={"image": ["pixel_values"],
    ...                      "text": ["input_ids", "attention_mask"]})
    >>> task = builder.check(model, {k: v for k, v in batch.items() if k != "labels"}, batch["labels"])
    >>> views = builder(model, batch, training=True)   # clean + 2 masked views in one forward
    ```
    """

    name = "generic"
    own_columns = ()
    auto_class = "AutoModelForSequenceClassification"

    def __init__(
        self,
        spec: MaskSpec,
        randomness: MaskRandomness,
        token_ids: Optional[TokenIds] = None,
        *,
        modality_keys: Optional[Mapping[str, Sequence[str]]] = None,
        input_kinds: Optional[Mapping[str, str]] = None,
        masked_modalities: Optional[Sequence[str]] = None,
        logits_key: str = "logits",
        logvar_key: Optional[str] = None,
        view_loss: str = "kl_uniform",
        problem_type: str = "auto",
        view_batching: str = "concatenated",
        compute_loss_func: Optional[Callable] = None,
        label_smoothing: float = 0.0,
        model_config=None,
        model_name: str = "The model",
    ):
        if view_loss == "unimodal_anchor":
            raise ValueError(
                "synib_penalty='unimodal_anchor' needs unimodal heads, which only native models have "
                "(synib_hf.SynIBNativeMixin); on the generic path use 'kl_uniform' (or 'gaussian' with logvar_key)."
            )
        if view_loss == "gaussian" and logvar_key is None:
            raise ValueError(
                "synib_penalty='gaussian' on the generic path reads log-variances from an output field: set "
                "logvar_key to it, or use synib_penalty='kl_uniform'."
            )
        if view_batching not in VIEW_BATCHING:
            raise ValueError(f"view_batching={view_batching!r} is not one of {VIEW_BATCHING}.")
        if modality_keys is not None:
            select_masked_modalities(masked_modalities, tuple(modality_keys))
        self.masker = InputMasker(spec, randomness, token_ids)
        self.spec = spec
        self.modality_keys_given = modality_keys
        self.input_kinds = input_kinds
        self.requested_modalities = masked_modalities
        self.logits_key, self.logvar_key = logits_key, logvar_key
        self.view_loss = view_loss
        self.problem_type = problem_type
        self.view_batching = view_batching
        self.compute_loss_func = compute_loss_func
        self.label_smoothing = label_smoothing
        self.model_config, self.model_name = model_config, model_name
        self.task = None  # the head's task, known once a batch was checked
        self.clean_from_model = False  # the clean view is the model's own labelled forward (use_model_loss)
        self._kinds = {}  # batch signature → resolved kinds

    # ---- the batch's modalities --------------------------------------------------------------------------------------

    def modality_keys(self, batch: Mapping) -> dict:
        """Modality → input keys for this batch; every key of a user-given map must be present."""
        return resolve_modality_keys(batch, self.modality_keys_given, DEFAULT_MODALITY_KEYS)

    def masked_modalities(self, batch: Mapping) -> tuple:
        return select_masked_modalities(self.requested_modalities, tuple(self.modality_keys(batch)))

    def kinds(self, batch: Mapping, keys: Mapping) -> dict:
        """Each mapped input's [`InputKind`], resolved once per batch layout (names, dtypes, numbers of dims)."""
        signature = tuple((k, batch[k].dtype, batch[k].dim()) for ks in keys.values() for k in ks)
        if signature not in self._kinds:
            self._kinds[signature] = resolve_input_kinds(batch, keys, self.input_kinds)
        return self._kinds[signature]

    # ---- the first batch ---------------------------------------------------------------------------------------------

    def check(self, model, batch: Mapping, labels: torch.Tensor) -> Task:
        """The modality map and masking rules, the scores' field and shape, the task and its labels, on one batch
        (one no-grad forward of two rows)."""
        keys = self.modality_keys(batch)
        self.masked_modalities(batch)
        kinds = self.kinds(batch, keys)
        if any(k.kind == "tokens" for k in kinds.values()) and self.masker.token_ids is None:
            raise ValueError(
                "Masking token ids needs the tokenizer's mask/pad and special-token ids: pass "
                "`processing_class=tokenizer` (or a processor with a `.tokenizer`) to SynIBTrainer."
            )
        if self.spec.mask_type == "oracle":
            unknown = sorted(set(self.spec.oracle_coordinates or {}) - {k for ks in keys.values() for k in ks})
            if unknown:
                raise ValueError(
                    f"oracle_coordinates names {unknown}, which no modality maps (modality_keys: {keys}): an oracle "
                    "mask of a misspelt key would destroy nothing. Name the inputs as in the batch."
                )
            for key, coordinates in (self.spec.oracle_coordinates or {}).items():
                check_oracle_coordinates(key, coordinates, batch[key].shape[-1])
        for key, kind in kinds.items():
            if kind.kind == "tokens" and self.masker.token_ids is not None:
                special = torch.tensor(self.masker.token_ids.special_ids, device=batch[key].device)
                content = ~torch.isin(batch[key], special)
                attention = next((batch[k] for k, c in kinds.items() if c.kind == "attention" and c.partner == key),
                                 None)
                if attention is not None:
                    content &= attention.bool()
                empty = (~content.any(dim=1)).nonzero().flatten().tolist()
                if empty:
                    raise ValueError(
                        f"rows {empty[:10]} of {key!r} hold only special tokens (no word to mask), so their masked "
                        "view would equal the clean one and the penalty would push their clean prediction to uniform: "
                        "drop empty texts from the data set, or leave their modality out of masked_modalities."
                    )
        if self.spec.mask_type == "random":
            for key, kind in kinds.items():
                if kind.kind in ("image", "images"):
                    check_patch_size(key, batch[key].shape[-2:], self.spec.mask_patch_size, self.spec.mask_ratio)
        with torch.no_grad():
            outputs = model(**{k: v[:2] for k, v in batch.items()})
        scores = classification_scores(outputs, self.logits_key)
        config, model_name = self.model_config, self.model_name
        if self.compute_loss_func is not None:
            loss = self.compute_loss_func(slice_outputs(outputs, 2), labels[:2], num_items_in_batch=None)
            if not (torch.is_tensor(loss) and loss.dim() == 0):
                raise ValueError(
                    f"compute_loss_func must return the batch's loss as a scalar tensor, got "
                    f"{tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__}: reduce it (e.g. .mean())."
                )
        task = resolve_task(config, labels, scores.shape[-1], self.problem_type)
        task.check_labels(labels, where=f"labels (a {task.problem_type} head with {task.num_labels} outputs)")
        if task.problem_type == "regression" and self.view_loss != "gaussian":
            raise ValueError(
                f"{model_name} is a regression head ({scores.shape[-1]} output(s) and "
                f"problem_type={getattr(config, 'problem_type', None)!r}; transformers trains it with MSE), which has "
                "no confidence for kl_uniform to penalise. Use synib_penalty='gaussian' with logvar_key, or, for a "
                "binary classifier, problem_type='multi_label_classification' with float 0/1 labels (one logit, "
                "BCE) or num_labels=2."
            )
        logvar = read_output(outputs, self.logvar_key, "logvar_key") if self.view_loss == "gaussian" else None
        if logvar is not None and logvar.shape != scores.shape:
            raise ValueError(f"the output field {self.logvar_key!r} (logvar_key) must have the scores' shape "
                             f"{tuple(scores.shape)}.")
        if self.label_smoothing and task.problem_type not in ("single_label_classification",):
            raise ValueError(
                f"label_smoothing_factor applies to single-label heads; this head is {task.problem_type}."
            )
        self.task = task
        return task

    # ---- one batch ---------------------------------------------------------------------------------------------------

    def __call__(self, model, inputs: Mapping, training: bool, run_view=None, num_items_in_batch=None) -> Views:
        """The clean view and one masked view per modality; `inputs` holds `labels`.

        Args:
            run_view: with `view_batching="sequential"`, `run_view(compute)` runs `compute()` (one masked view's
                [`Views`]), back-propagates its loss and returns `(scores, losses)` detached: the trainer's part.
        """
        task = self.task
        labels = inputs["labels"]
        task.check_labels(labels)
        batch = {k: v for k, v in inputs.items() if k != "labels"}
        keys = self.modality_keys(batch)
        kinds = self.kinds(batch, keys)
        modalities = self.masked_modalities(batch)
        views = [self.masker(batch, keys[m], training, kinds) for m in modalities]
        valid = task.valid_rows(labels)
        size = labels.shape[0]
        if self.clean_from_model:
            return self._masked_views_only(model, views, modalities, labels, valid, run_view)
        if self.view_batching == "concatenated":
            outputs = model(**concatenate_views(batch, views))
            scores = classification_scores(outputs, self.logits_key).unflatten(0, (len(views) + 1, -1))  # (1+M, B, C)
            logvar = self._logvar(outputs, len(views) + 1)
            return Views(
                task=task, modalities=modalities, masked=scores[1:], valid=valid, targets=labels,
                task_loss=self._task_loss(outputs, scores[0], labels, size), scores=scores[0],
                outputs={"logits": scores[0]}, masked_logvar=None if logvar is None else logvar[1:],
            )

        def one_view(modality, view):
            outputs = model(**view)
            logvar = self._logvar(outputs, 1)
            return Views(task=task, modalities=(modality,), masked=classification_scores(outputs, self.logits_key)[None],
                         valid=valid, targets=labels, masked_logvar=logvar)

        read = [run_view(lambda m=m, v=v: one_view(m, v)) for m, v in zip(modalities, views)]
        outputs = model(**batch)
        logits = classification_scores(outputs, self.logits_key)
        return Views(
            task=task, modalities=modalities, masked=torch.cat([scores for scores, _ in read]), valid=valid,
            targets=labels, task_loss=self._task_loss(outputs, logits, labels, size), scores=logits,
            outputs={"logits": logits}, penalties=torch.cat([losses for _, losses in read]),
        )

    def _masked_views_only(self, model, views, modalities, labels, valid, run_view) -> Views:
        """The masked views alone (the trainer adds the model's own clean forward): in one forward of `M·B` rows, or
        one view at a time, each read and back-propagated through `run_view`."""
        task = self.task

        def read(modalities, views):
            outputs = model(**concatenate_views(views[0], views[1:]))
            scores = classification_scores(outputs, self.logits_key).unflatten(0, (len(views), -1))  # (M, B, C)
            return Views(task=task, modalities=tuple(modalities), masked=scores, valid=valid, targets=labels,
                         masked_logvar=self._logvar(outputs, len(views)))

        if self.view_batching == "concatenated":
            read_views = [run_view(lambda: read(modalities, views))]
        else:
            read_views = [run_view(lambda m=m, v=v: read([m], [v])) for m, v in zip(modalities, views)]
        return Views(task=task, modalities=modalities, masked=torch.cat([s for s, _ in read_views]), valid=valid,
                     targets=labels, penalties=torch.cat([losses for _, losses in read_views]))

    def use_model_loss(self, model, rows: Mapping, own_loss) -> Optional[str]:
        """Compare the task loss the views would compute from the scores with `own_loss`, what the model is trained
        with at `synib_weight=0` on the same rows (labels included); when they differ, the clean view becomes the
        model's own forward from then on. Returns a notice saying so, or None. `own_loss` None: the model computes no
        loss of its own (then the task's is the only one)."""
        if own_loss is None or self.compute_loss_func is not None:
            return None
        labels = rows["labels"]
        with torch.no_grad():
            outputs = model(**{k: v for k, v in rows.items() if k != "labels"})
            ours = self._task_loss(outputs, classification_scores(outputs, self.logits_key), labels, len(labels))
        own_loss = own_loss.detach().float()
        if own_loss.dim() == 0 and torch.isclose(ours.float(), own_loss, rtol=1e-5, atol=1e-7):
            return None
        self.clean_from_model = True
        return (
            f"{self.model_name} computes its own task loss differently from the {self.task.problem_type} loss of its "
            f"scores ({own_loss.flatten()[0].item():.4g} vs {ours.item():.4g} on the first batch): SynIB keeps the "
            "model's own loss, from a forward of the clean batch beside the masked views (one more forward per "
            "step). To train with the loss of the scores instead, pass compute_loss_func."
        )

    def clean_inputs(self, inputs: Mapping, training: bool) -> dict:
        """The clean batch for the model's own forward: every input and the labels."""
        return dict(inputs)

    def complete(self, views: Views, task_loss, outputs, inputs: Mapping, scaled_for_ga: bool, training: bool) -> Views:
        """The masked views completed with the model's own clean forward: its loss and its scores."""
        scores = classification_scores(outputs, self.logits_key)
        return views.with_clean(task_loss, scores, {"logits": scores}, scaled_for_ga)

    def _logvar(self, outputs, views: int):
        if self.view_loss != "gaussian":
            return None
        return read_output(outputs, self.logvar_key, "logvar_key").unflatten(0, (views, -1))

    def _task_loss(self, outputs, logits, labels, size) -> torch.Tensor:
        """The clean view's task loss: the user's `compute_loss_func` on the clean rows, else the task's own."""
        if self.compute_loss_func is not None:
            # a per-batch mean: SynIB never passes num_items_in_batch (its loss is not scaled for accumulation)
            return self.compute_loss_func(slice_outputs(outputs, size), labels, num_items_in_batch=None)
        return self.task.loss(logits, labels, self.label_smoothing)

    def state_dict(self) -> dict:
        return self.masker.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.masker.load_state_dict(state)
