"""`SynIBTrainer` (`SynIBMixin` + `transformers.Trainer`) and its sibling that shares SynIB's views,
`ModalityDropoutTrainer`."""

from transformers import Trainer

from .synib_mixin import SynIBMixin


class SynIBTrainer(SynIBMixin, Trainer):
    """
    [`~transformers.Trainer`] for SynIB: `loss = task(f(x), y) + synib_weight · Σ_m Ω(f(M_m(x)))`.

    A drop-in for `Trainer`: the same arguments in the same order, plus `peft_config` (wrap the model with adapters).
    `args` is a [`SynIBConfig`] (a plain `TrainingArguments` is converted with SynIB's defaults). One training step is
    a view builder (`synib_hf.view_builders`), chosen from the model by `args.synib_path`, then the objective
    (`synib_hf.objective`):

    * **native** — the model implements [`SynIBNativeMixin`]: encoders run once, each masked view re-runs only the
      fusion head on masked features, all inside one `model(...)` call (one DDP forward).
    * **generic** — any model that returns classification scores (`args.logits_key`): masked copies of the inputs
      named by `args.modality_keys`, each input masked by the rule of its kind, run with the clean batch in one forward
      or one after another (`view_batching="sequential"`). The task follows the model (`problem_type`) or
      `compute_loss_func`.
    * **embedding** — a generative vision-language model (LLaVA, Qwen2/2.5/3-VL, Idefics3, SmolVLM, PaliGemma,
      Gemma3) or a `VLMForSequenceClassification`: views masked on the language model's merged input embeddings in one
      forward (the vision tower once, logits only where read); a generative model is read over `answer_candidates`
      at the answer position and keeps its own LM loss.

    With `synib_weight=0` training, evaluation and prediction are exactly `Trainer`'s, and what it writes is
    `Trainer`'s plus the model card (and, beside LoRA adapters, the base model's config that reloads them). The first
    batch is checked before training starts (inputs, masking rules, scores, labels, task), so a misconfigured run fails
    in seconds. Checkpoints carry SynIB's state, so a resumed run equals an uninterrupted one;
    `resume_from_checkpoint=True` skips checkpoints a kill left incomplete.

    Logs `synib/task_loss`, `synib/penalty_<m>`, `synib/masked_max_prob_<m>`, `synib/masked_entropy_<m>`,
    `synib/weight` (and `synib/fused_loss` on native models) in training and evaluation, gathered across processes;
    evaluation adds `eval_synib/masked_accuracy_<m>`. `compute_metrics` receives the clean scores only.

    Example:

    ```python
    >>> from synib_hf import SynIBConfig, SynIBTrainer
    >>> args = SynIBConfig(output_dir="out", synib_weight=0.1,
    ...                    modality_keys={"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]})
    >>> trainer = SynIBTrainer(model, args, train_dataset=train, processing_class=processor)
    >>> trainer.train()
    ```
    """


class ModalityDropoutTrainer(SynIBMixin, Trainer):
    """Modality dropout: `loss = CE(f(x), y) + synib_weight · Σ_m CE(f(M_m(x)), y)`.

    SynIB's views (same `mask_type`, `mask_ratio`, `mask_fill`) trained to predict the label instead of penalised for
    confidence: the same [`SynIBConfig`], with `synib_penalty` unused. Logged under the same keys
    (`synib/penalty_<m>` is the masked view's CE).

    Example:

    ```python
    >>> trainer = ModalityDropoutTrainer(model=model, args=SynIBConfig(output_dir="out", synib_weight=1.0,
    ...                                                                 mask_type="full"), train_dataset=train)
    ```
    """

    view_loss = "cross_entropy"
    _tag_names = ["modality-dropout", "multimodal"]
