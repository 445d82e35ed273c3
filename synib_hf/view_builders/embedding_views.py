"""[`EmbeddingViews`]: the view builder of generative vision-language models and [`VLMForSequenceClassification`].

A batch's clean view and its masked views (image, text) run in one call of the model's own forward (so DDP sees one
forward), on the language model's merged input embeddings: as blocks of rows, or packed so that the masked views share
the clean view's causal prefix and an image view may drop the image (`embedding_forward`). Ids and attention masks of
the batch are never edited.

Two read-outs:

* generative (`*ForConditionalGeneration`): the model's causal-LM loss on the clean view and the verbalizer
  (candidate answers' first tokens at the answer position) in every view; with `lean_logits` only those positions'
  logits are computed (`logits_to_keep` as a boolean mask);
* classification ([`VLMForSequenceClassification`]): the head's `(rows, C)` logits (and log-variances).

Training runs the clean view and the masked views in one forward, or each masked view alone and then the clean batch
as the model computes it (`view_batching="sequential"`). Evaluation runs the clean batch exactly as the model computes
it (its own loss; its logits are the predictions) and the masked views in a second forward: in both cases the
builder returns the masked views only and the trainer adds the model's own clean forward ([`EmbeddingViews.complete`]).

This module knows no model family: the trainer passes the family's facts (`synib_hf.models.vlm.VLM_FAMILIES`).
"""

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ..generative import (
    answer_classes,
    answer_positions,
    candidate_logits,
    causal_lm_loss,
    lean_logits_mask,
    packed_logits_mask,
    split_lean_logits,
    split_packed_logits,
    supervised_positions,
)
from ..masking import EMBEDDING_MODALITIES, MaskRandomness, MaskSpec
from ..masking.embedding_masking import PromptLayout
from ..objective import Views, select_masked_modalities
from ..tasks import Task, classification_loss, classification_task
from .embedding_forward import EmbeddingForward, packing_refusal, repeat_encoder_output  # noqa: F401 (re-exported)


@dataclass
class ViewReadout:
    """What SynIB reads from one forward of the views.

    Args:
        task_loss: the clean block's loss (causal-LM or cross-entropy); None without a clean block.
        logits (`(B, C)`): clean candidate (or class) logits; None without a clean block.
        masked_logits (`(M, B, C)`): each masked block's candidate (or class) logits.
        masked_logvar (`(M, B, C)`): log-variances of a classification model's logvar head, if it has one.
        classes (`(B,)`): the class of each example (the candidate its answer starts with, or the label).
        replaced: `{modality: (B, T) bool}` positions each masked block overwrote.
    """

    task_loss: Optional[torch.Tensor]
    logits: Optional[torch.Tensor]
    masked_logits: Optional[torch.Tensor]
    masked_logvar: Optional[torch.Tensor]
    classes: torch.Tensor
    replaced: dict


class EmbeddingViews(EmbeddingForward):
    """`(model, inputs) → Views` for a generative VLM (read over `answer_candidates`) or a
    [`VLMForSequenceClassification`] (read by its head).

    Args:
        model (`nn.Module`): the unwrapped model (no DDP/PEFT wrapper).
        inner (`nn.Module`): its module that merges image features into the embeddings (`LlavaModel`, ...); hooks go
            on it and on its language model.
        family: the family's facts (a `synib_hf.models.vlm.VLMFamily`).
        spec ([`MaskSpec`]): mask type (`full` or `random`), ratio and fill.
        randomness ([`MaskRandomness`]): the masks' private generators.
        special_ids (`Sequence[int]`): token ids the default text mask leaves alone (`tokenizer.all_special_ids`).
        candidate_ids: the first token ids of the answer candidates (generative models; None for a classifier).
        share_vision (`bool`): run the vision tower once per forward and repeat its output for the blocks (the packed
            rows run it once anyway).
        lean_logits (`bool`): compute logits only where the loss and the read-out read them.
        view_batching: "concatenated" or "sequential" (training).
        masked_modalities: the modalities that get a masked view (default: image and text).
        share_prefix (`bool` or None): pack the clean view and the masked views so that each masked view computes only
            its suffix after the clean view's causal prefix; None: wherever that is exact (see `packing_refusal`) and
            the views run together (`view_batching="concatenated"`).
        drop_image (`bool`): with full masks, the image view leaves the image positions out (positions ids kept)
            instead of filling them: a text-only pass.
        prompt_layout ([`PromptLayout`]): the chat template's words around the user's content, for the default text
            mask (`synib_hf.models.vlm.prompt_layout(processor)`).
        view_loss: what a masked view costs (`kl_uniform`; `gaussian` for a classifier with a logvar head).

    Example:

    ```python
    >>> from synib_hf.models.vlm import embedding_views
    >>> builder = embedding_views(model, MaskSpec(mask_type="full"), MaskRandomness(seed=0),
    ...                           tokenizer.all_special_ids, candidate_ids=(40, 41))
    >>> views = builder(model, batch, training=True)   # clean block + image and text views, one forward
    >>> views.task_loss, views.masked.shape            # the LM loss of the clean rows; (M, B, C)
    ```
    """

    name = "embedding"
    own_columns = ("synib_text_mask",)  # a batch column SynIB reads; not a model input

    def __init__(self, model: nn.Module, inner: nn.Module, family, spec: MaskSpec, randomness: MaskRandomness,
                 special_ids: Sequence[int] = (), *, candidate_ids: Optional[Sequence[int]] = None,
                 share_vision: bool = True, lean_logits: bool = True, view_batching: str = "concatenated",
                 masked_modalities: Optional[Sequence[str]] = None, view_loss: str = "kl_uniform",
                 share_prefix: Optional[bool] = None, drop_image: bool = False,
                 prompt_layout: Optional[PromptLayout] = None):
        self.is_classifier = hasattr(model, "readout_positions")
        model_name = type(model).__name__
        penalties = ("kl_uniform", "gaussian") if self.is_classifier else ("kl_uniform",)
        if view_loss not in (*penalties, "cross_entropy"):  # cross_entropy: modality dropout
            raise ValueError(
                f"synib_penalty={view_loss!r} is not available for {model_name}; use one of {penalties} "
                "('gaussian' needs a VLMForSequenceClassification with logvar_head=True)."
            )
        if view_loss == "gaussian" and model.logvar is None:
            raise ValueError("synib_penalty='gaussian' needs a logvar head: build the model with logvar_head=True.")
        if self.is_classifier and candidate_ids:
            raise ValueError(
                f"answer_candidates is for models that answer in tokens; {model_name} has a classification head "
                "whose labels are class ids. Remove answer_candidates."
            )
        masked_modalities = select_masked_modalities(masked_modalities, EMBEDDING_MODALITIES)
        refusal = packing_refusal(family, inner.get_decoder(), self.is_classifier)
        if drop_image:
            why = ("mask_type='random' keeps part of the image" if spec.mask_type != "full"
                   else "'image' is not in masked_modalities" if "image" not in masked_modalities
                   else f"{model_name}: {refusal}" if refusal else None)
            if why:
                raise ValueError(f"drop_masked_image=True drops the whole image from its view, but {why}; set "
                                 "drop_masked_image=False.")
        if share_prefix and (refusal or view_batching != "concatenated"):
            why = refusal or "view_batching='sequential' runs each view alone, without the clean view to share with"
            raise ValueError(f"share_view_prefix=True, but {model_name} cannot share it: {why}. Set "
                             "share_view_prefix=None (shared wherever exact) or False.")
        if share_prefix is None:
            share_prefix = refusal is None and view_batching == "concatenated"
        super().__init__(inner, family, spec, randomness, special_ids, share_vision=share_vision,
                         prompt_layout=prompt_layout, share_prefix=share_prefix, drop_image=drop_image)
        self.candidate_ids = tuple(candidate_ids) if candidate_ids else None
        self.lean_logits = lean_logits
        self.view_batching = view_batching
        self.masked_modalities = masked_modalities
        self.model_name = model_name
        self.auto_class = "AutoModelForSequenceClassification" if self.is_classifier else "AutoModelForImageTextToText"
        self._readout_model = model if self.is_classifier else None

    # ---- the first batch ---------------------------------------------------------------------------------------------

    @property
    def num_labels(self) -> int:
        """The classes the views are read over: the head's labels, or the answer candidates."""
        if self.is_classifier:
            return self._readout_model.config.num_labels
        if not self.candidate_ids:
            raise ValueError(
                f"{self.model_name} answers in tokens: set answer_candidates to its possible answers as they appear "
                "in the labels (e.g. ['yes', 'no']); SynIB reads their first tokens at the answer position."
            )
        return len(self.candidate_ids)

    def check(self, model, batch: Mapping, labels: torch.Tensor) -> Task:
        """Inputs of the family, positions of each modality, the answers (or class labels), on one batch."""
        self.check_inputs(batch)
        task = classification_task(torch.zeros(1, self.num_labels))  # no forward: Qwen's pixel rows are not per row
        if self.is_classifier:
            task.check_labels(labels)
            self.positions(batch, readout_positions=self.readout_positions(batch))
        else:
            answers = answer_positions(labels)
            answer_classes(labels, answers, self.candidate_ids)
            self.positions(batch, labels=labels, readout_positions=answers)
        return task

    # ---- one batch ---------------------------------------------------------------------------------------------------

    def __call__(self, model, inputs: Mapping, training: bool, run_view=None, num_items_in_batch=None) -> Views:
        """The masked views, and in concatenated training the clean view in the same forward; `inputs` holds labels.

        Args:
            run_view: with `view_batching="sequential"` in training, runs one masked view's `compute()` and
                back-propagates it (the trainer's part); see [`InputViews`].
            num_items_in_batch: divide the clean block's token loss by this (the Trainer's count over the accumulated
                batch, for models that take loss kwargs) instead of averaging.
        """
        task = classification_task(torch.zeros(1, self.num_labels))
        labels = inputs["labels"]
        # every generative row has an answer (answer_positions raises otherwise); class rows labelled -100 do not count
        valid = task.valid_rows(labels) if self.is_classifier else torch.ones_like(labels[:, 0], dtype=torch.bool)
        masked_layout = self.masked_modalities
        if not training:  # the masked blocks here, the clean batch as the model computes it (the trainer's part)
            readout = self._read(model, inputs, masked_layout, training=False)
            return Views(task=task, modalities=masked_layout, masked=readout.masked_logits, valid=valid,
                         targets=readout.classes, masked_logvar=readout.masked_logvar)
        if self.view_batching == "concatenated":
            readout = self._read(model, inputs, (None, *masked_layout), training=True,
                                 num_items_in_batch=num_items_in_batch)
            return Views(task=task, modalities=masked_layout, masked=readout.masked_logits, valid=valid,
                         targets=readout.classes, task_loss=readout.task_loss, scores=readout.logits,
                         outputs={"logits": readout.logits}, masked_logvar=readout.masked_logvar,
                         task_scaled_for_ga=num_items_in_batch is not None)

        def one_view(modality):
            readout = self._read(model, inputs, (modality,), training=True)
            return Views(task=task, modalities=(modality,), masked=readout.masked_logits, valid=valid,
                         targets=readout.classes, masked_logvar=readout.masked_logvar)

        read = [run_view(lambda m=m: one_view(m)) for m in masked_layout]
        classes = labels if self.is_classifier else answer_classes(labels, answer_positions(labels), self.candidate_ids)
        return Views(task=task, modalities=masked_layout, masked=torch.cat([s for s, _ in read]), valid=valid,
                     targets=classes, penalties=torch.cat([losses for _, losses in read]))

    def clean_inputs(self, inputs: Mapping, training: bool) -> dict:
        """The batch as the model takes it for the clean forward (SynIB's own columns left out)."""
        clean = {k: v for k, v in inputs.items() if k not in self.own_columns}
        return {**clean, "use_cache": False} if training else clean

    def complete(self, views: Views, task_loss, outputs, inputs: Mapping, scaled_for_ga: bool, training: bool) -> Views:
        """The masked views completed with the model's own clean forward: its loss, and its scores at the read-out
        (the head's logits, or the candidates' at the answer position). Evaluation keeps the model's whole output (the
        predictions `compute_metrics` receives) and logs the clean accuracy."""
        logits = outputs["logits"]
        if not self.is_classifier:
            labels = inputs["labels"]
            rows = torch.arange(labels.shape[0], device=labels.device)
            logits = candidate_logits(logits[rows, answer_positions(labels)], self.candidate_ids)
        completed = views.with_clean(task_loss, logits, {"logits": logits} if training else outputs, scaled_for_ga)
        if not training:
            completed.columns = {**views.columns, "clean_accuracy": views.task.correct(logits, views.targets)}
        return completed

    def state_dict(self) -> dict:
        return self.masker.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.masker.load_state_dict(state)

    def _read(self, model, inputs, layout, training: bool, num_items_in_batch=None) -> ViewReadout:
        if self.is_classifier:
            return self.classification(model, inputs, layout, training)
        return self.generative(model, inputs, self.candidate_ids, layout, training, lean_logits=self.lean_logits,
                               num_items_in_batch=num_items_in_batch)

    # ---- inputs -----------------------------------------------------------------------------------------------------

    def readout_positions(self, batch: Mapping) -> torch.Tensor:
        """The classification variant's read-out position per example, `(B,)`."""
        return self._readout_model.readout_positions(batch["input_ids"], batch.get("attention_mask"))


    # ---- read-outs --------------------------------------------------------------------------------------------------

    def generative(self, model, batch: Mapping, candidate_ids: Sequence[int], layout: Sequence[Optional[str]],
                   training: bool, lean_logits: bool = True, num_items_in_batch=None) -> ViewReadout:
        """The verbalizer read-out of a `*ForConditionalGeneration` model (labels `(B, T)`, −100 on the prompt)."""
        labels = batch["labels"]
        answers = answer_positions(labels)  # (B,)
        classes = answer_classes(labels, answers, candidate_ids)
        positions = self.positions(batch, labels=labels, readout_positions=answers)
        if self.packs(layout):
            packed = self.pack(batch, layout, positions)
            keep = packed_logits_mask(packed[0], labels, layout)  # (B, L')
            extra = {"logits_to_keep": keep} if lean_logits else {}
            outputs = self.forward_packed(model, batch, layout, positions, packed, training, **extra)
            kept = outputs.logits if lean_logits else outputs.logits[keep]
            clean, clean_answer, masked = split_packed_logits(kept, packed[0], labels, layout)
            replaced = packed[1]
        elif lean_logits:
            extra = {"logits_to_keep": lean_logits_mask(labels, layout)}
            outputs, replaced = self.forward(model, batch, layout, positions, training, **extra)
            clean, clean_answer, masked = split_lean_logits(outputs.logits, labels, layout)
        else:
            outputs, replaced = self.forward(model, batch, layout, positions, training)
            logits = outputs.logits.unflatten(0, (len(layout), -1))  # (blocks, B, T, V)
            rows = torch.arange(labels.shape[0], device=labels.device)
            blocks = dict(zip(layout, logits))
            clean = blocks[None][supervised_positions(labels)] if None in blocks else None
            clean_answer = blocks[None][rows, answers] if None in blocks else None
            masked_blocks = [block[rows, answers] for modality, block in blocks.items() if modality is not None]
            masked = torch.stack(masked_blocks) if masked_blocks else None
        loss = causal_lm_loss(clean, labels, num_items_in_batch) if clean is not None else None
        return ViewReadout(
            task_loss=loss,
            logits=candidate_logits(clean_answer, candidate_ids) if clean_answer is not None else None,
            masked_logits=candidate_logits(masked, candidate_ids) if masked is not None else None,
            masked_logvar=None,
            classes=classes,
            replaced=replaced,
        )

    def classification(self, model, batch: Mapping, layout: Sequence[Optional[str]], training: bool) -> ViewReadout:
        """The head read-out of a [`VLMForSequenceClassification`] (labels: one class index per example)."""
        labels = batch["labels"]
        positions = self.positions(batch, readout_positions=self.readout_positions(batch))
        outputs, replaced = self.forward(model, batch, layout, positions, training)
        logits = outputs.logits.unflatten(0, (len(layout), -1))  # (blocks, B, C)
        logvar = outputs.logvar.unflatten(0, (len(layout), -1)) if outputs.logvar is not None else None
        masked = [i for i, modality in enumerate(layout) if modality is not None]
        clean = logits[0] if layout[0] is None else None
        return ViewReadout(
            task_loss=classification_loss(clean, labels) if clean is not None else None,
            logits=clean,
            masked_logits=logits[masked] if masked else None,
            masked_logvar=logvar[masked] if logvar is not None and masked else None,
            classes=labels,
            replaced=replaced,
        )
