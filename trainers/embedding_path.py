"""The vision-language path of [`SynIBTrainer`] (`synib_path="embedding"`): masked views built on the merged input
embeddings of a generative VLM (the verbalizer read-out over `answer_candidates`) or of a
[`VLMForSequenceClassification`] (the head read-out), by `synib_hf.models.vlm.VLMViews`.

Training runs the clean block and the masked blocks in one forward (the vision tower once, logits only where they are
read), or each masked view alone and then the clean batch (`view_batching="sequential"`). Evaluation runs the clean
batch exactly as `Trainer` does (the model's own loss; its logits are the predictions `compute_metrics` receives) and
the masked blocks in a second forward.
"""

from typing import Mapping

import torch
from transformers import Trainer

from synib_hf.embedding_masking import EMBEDDING_MODALITIES
from synib_hf.generative import answer_classes, answer_positions, candidate_logits, candidate_token_ids
from synib_hf.models.vlm import VLMForSequenceClassification, VLMViews
from synib_hf.models.vlm.families import VLM_FAMILIES
from synib_hf.tasks import classification_task
from synib_hf.views import ViewResult

from .paths import backpropagate_views, refuse_own_task_loss, refuse_view_options



def is_vision_language_model(core) -> bool:
    """Whether `core` (unwrapped) is a supported generative VLM or a [`VLMForSequenceClassification`]."""
    if isinstance(core, VLMForSequenceClassification):
        return True
    return getattr(getattr(core, "config", None), "model_type", None) in VLM_FAMILIES and hasattr(
        core, "get_image_features")


class EmbeddingPath:
    """Embedding-level views of a vision-language model, for `SynIBTrainer`."""

    name = "embedding"
    extra_columns = ("synib_text_mask",)  # kept by remove_unused_columns

    def __init__(self, trainer, core, spec, randomness, processing_class):
        self.trainer = trainer
        args = trainer.args
        self.is_classifier = isinstance(core, VLMForSequenceClassification)
        penalties = ("kl_uniform", "gaussian") if self.is_classifier else ("kl_uniform",)
        if args.synib_penalty not in penalties:
            raise ValueError(
                f"synib_penalty={args.synib_penalty!r} is not available for {type(core).__name__}; use one of "
                f"{penalties} ('gaussian' needs a VLMForSequenceClassification with logvar_head=True)."
            )
        if args.synib_penalty == "gaussian" and core.logvar is None:
            raise ValueError("synib_penalty='gaussian' needs a logvar head: build the model with logvar_head=True.")
        refuse_view_options(trainer, "embedding", "the language model's input embeddings")
        refuse_own_task_loss(trainer, "embedding", "the task loss is the model's own LM or classification loss")
        self.masked_modalities = trainer.check_masked_modalities(EMBEDDING_MODALITIES)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        special_ids = tuple(getattr(tokenizer, "all_special_ids", None) or ())
        self.views = VLMViews(core, spec, randomness, special_ids, share_vision=args.share_vision_encoder)
        self.candidate_ids = None
        if self.is_classifier and args.answer_candidates:
            raise ValueError(
                f"answer_candidates is for models that answer in tokens; {type(core).__name__} has a classification "
                "head whose labels are class ids. Remove answer_candidates."
            )
        self.auto_class = "AutoModelForSequenceClassification" if self.is_classifier else "AutoModelForImageTextToText"
        if not self.is_classifier:
            if not args.answer_candidates:
                raise ValueError(
                    f"{type(core).__name__} answers in tokens: set answer_candidates to its possible answers as they "
                    "appear in the labels (e.g. ['yes', 'no']); SynIB reads their first tokens at the answer position."
                )
            self.candidate_ids = candidate_token_ids(processing_class, args.answer_candidates)

    def modality_names(self, batch) -> tuple:
        return self.masked_modalities

    def validate(self, model, batch: Mapping, labels: torch.Tensor) -> None:
        """Inputs of the family, positions of each modality, the answers (or class labels), on one batch."""
        views, trainer = self.views, self.trainer
        views.check_inputs(batch)
        if self.is_classifier:  # its width is the config's (no forward: Qwen's pixel rows are not per example)
            trainer.task = classification_task(torch.zeros(1, trainer.core_model().config.num_labels))
            trainer.task.check_labels(labels)
            views.positions(batch, readout_positions=views.readout_positions(batch))
        else:
            answers = answer_positions(labels)
            answer_classes(labels, answers, self.candidate_ids)
            views.positions(batch, labels=labels, readout_positions=answers)
            trainer.task = classification_task(torch.zeros(1, len(self.candidate_ids)))

    def run(
        self, model, inputs: Mapping, labels: torch.Tensor, weight: float, num_items_in_batch=None
    ) -> ViewResult:
        trainer, args = self.trainer, self.trainer.args
        # as Trainer: a model that takes loss kwargs divides its token loss by the accumulated batch's token count
        items = num_items_in_batch if trainer.model_accepts_loss_kwargs else None
        masked_layout = self.masked_modalities
        # every generative row has an answer (answer_positions raises otherwise); class rows labelled -100 do not count
        if self.is_classifier:
            valid = trainer.task.valid_rows(labels)
        else:
            valid = torch.ones_like(labels[:, 0], dtype=torch.bool)
        if not model.training:  # the clean batch exactly as Trainer evaluates it, the views in a second forward
            plain_loss, outputs = Trainer.compute_loss(trainer, model, self._model_inputs(inputs), return_outputs=True,
                                                       num_items_in_batch=num_items_in_batch)
            readout = self._read(model, inputs, masked_layout, training=False)
            clean = self._clean_scores(outputs, inputs)
            penalties = trainer.view_losses(readout.masked_logits, readout.classes, readout.masked_logvar)
            return ViewResult(plain_loss, outputs, readout.masked_logits, penalties, readout.classes, valid,
                              columns={"clean_accuracy": trainer.task.correct(clean, readout.classes)})
        if args.view_batching == "concatenated":
            readout = self._read(model, inputs, (None, *masked_layout), training=True, num_items_in_batch=items)
            penalties = trainer.view_losses(readout.masked_logits, readout.classes, readout.masked_logvar)
            task_loss = readout.task_loss
            if items is not None and args.average_tokens_across_devices:
                task_loss = task_loss * trainer.accelerator.num_processes  # as Trainer: the count spans processes
            return ViewResult(task_loss, {"logits": readout.logits}, readout.masked_logits, penalties,
                              readout.classes, valid, task_scaled_for_ga=items is not None)
        last = {}

        def read(modality):
            readout = last["readout"] = self._read(model, inputs, (modality,), training=True)
            return readout.masked_logits[0], trainer.view_losses(readout.masked_logits, readout.classes,
                                                                 readout.masked_logvar)[0]

        masked, penalties = backpropagate_views(trainer, model, masked_layout, read, valid, weight, training=True)
        readout = last["readout"]
        task_loss, outputs = Trainer.compute_loss(trainer, model, self._model_inputs(inputs, use_cache=False),
                                                  return_outputs=True, num_items_in_batch=num_items_in_batch)
        return ViewResult(task_loss, {"logits": self._clean_scores(outputs, inputs)}, masked, penalties,
                          readout.classes, valid, task_scaled_for_ga=items is not None)

    def _model_inputs(self, inputs, **extra) -> dict:
        """The batch as the model takes it (SynIB's own columns left out)."""
        return {**{k: v for k, v in inputs.items() if k not in self.extra_columns}, **extra}

    def _read(self, model, inputs, layout, training: bool, num_items_in_batch=None):
        if self.is_classifier:
            return self.views.classification(model, inputs, layout, training)
        return self.views.generative(model, inputs, self.candidate_ids, layout, training,
                                     lean_logits=self.trainer.args.lean_logits, num_items_in_batch=num_items_in_batch)

    def _clean_scores(self, outputs, inputs) -> torch.Tensor:
        """`(B, C)` clean scores from a plain forward: the head's logits, or the candidates' at the answer position."""
        logits = outputs["logits"]
        if self.is_classifier:
            return logits
        labels = inputs["labels"]
        rows = torch.arange(labels.shape[0], device=labels.device)
        return candidate_logits(logits[rows, answer_positions(labels)], self.candidate_ids)

    def state_dict(self) -> dict:
        return self.views.masker.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.views.masker.load_state_dict(state)
