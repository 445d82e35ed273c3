"""`SynIBSFTTrainer` (`SynIBMixin` + TRL's `SFTTrainer`) and `SynIBSFTConfig` (SynIB's fields + `trl.SFTConfig`): SynIB
where vision-language fine-tuning already happens, on TRL's own data, collator and options. Needs `synib-hf[trl]`."""

from dataclasses import dataclass

from synib_hf.extras import require

from .synib_config import SynIBArguments
from .synib_mixin import SynIBMixin
from .trainer_compat import count_sft_tokens


trl = require("trl", "SynIBSFTTrainer and SynIBSFTConfig (built on TRL's SFTTrainer)")
SFTConfig, SFTTrainer = trl.SFTConfig, trl.SFTTrainer


@dataclass
class SynIBSFTConfig(SynIBArguments, SFTConfig):
    r"""
    Configuration for [`SynIBSFTTrainer`]: every [`~trl.SFTConfig`] field (TRL's defaults: `bf16` on, gradient
    checkpointing on, `max_length=1024`), plus SynIB's (see [`SynIBArguments`]).

    SynIB reads the answer at the position before the first supervised token, so the prompt must be unsupervised:
    conversational rows need `assistant_only_loss=True` (a chat template with `{% generation %}`), or the data are
    prompt/completion pairs (`completion_only_loss`, TRL's default for them). Options that put several examples in
    one row (`packing`, `padding_free`) cannot carry per-example views and are refused while SynIB's views run.

    Example:

    ```python
    >>> args = SynIBSFTConfig(output_dir="out", synib_weight=0.1, answer_candidates=["yes", "no"],
    ...                       assistant_only_loss=True, max_length=None)
    ```
    """

    def __post_init__(self):
        views = self.synib_weight > 0 or bool(self.eval_masked_views)
        for option in ("packing", "padding_free"):
            if views and getattr(self, option):
                raise ValueError(
                    f"{option}=True puts several examples in one row, so SynIB's masked views (one per example and "
                    f"modality, read at each example's answer position) cannot be built; set {option}=False, or "
                    "synib_weight=0 for plain SFT."
                )
        if views and self.loss_type != "nll":
            raise ValueError(
                f"loss_type={self.loss_type!r}: SynIB computes the clean view's causal-LM loss (NLL) in the forward "
                "it shares with the masked views; set loss_type='nll', or synib_weight=0 for plain SFT."
            )
        super().__post_init__()


class SynIBSFTTrainer(SynIBMixin, SFTTrainer):
    """
    TRL's [`~trl.SFTTrainer`] with SynIB: `loss = SFT loss + synib_weight · Σ_m Ω(masked view m)` on generative
    vision-language models (LLaVA, Qwen2/2.5/3-VL, Idefics3, SmolVLM, PaliGemma, Gemma3).

    It takes `SFTTrainer`'s arguments in its order (`model, args, data_collator, train_dataset, ...,
    processing_class, ..., peft_config`) and TRL's data as they come: conversational rows (`messages` with image
    placeholders, `images`) or prompt/completion rows, collated by TRL's own vision collator with the model's
    processor. From each batch SynIB reads only what TRL computed:

    * the **answer position**: the one before the first supervised label (TRL's assistant or completion mask);
    * the **image positions**: the image tokens;
    * the **text view's positions**: the user's content after the image, before the answer's header. TRL marks no
      user content, so where it sits is found once per processor from its chat template
      (`synib_hf.models.vlm.prompt_layout`); a `synib_text_mask` column overrides it.

    With `synib_weight=0` every step is `SFTTrainer`'s own, bit for bit. With SynIB's views on, the clean view and the
    masked views run in one forward (the vision tower once; packed rows that share the clean view's causal prefix
    where exact) and the clean view's loss is the token-level NLL over the supervised tokens, as TRL's `nll`; TRL's
    `num_tokens` keeps counting, while its `entropy` and `mean_token_accuracy` are logged in evaluation (where
    `SFTTrainer` computes the clean view) but not in training. Evaluation's clean view, and training's with
    `view_batching="sequential"` (each masked view alone, then the clean batch), is `SFTTrainer`'s own loss.

    Example:

    ```python
    >>> from synib_hf import SynIBSFTConfig, SynIBSFTTrainer, vlm_lora_config
    >>> args = SynIBSFTConfig(output_dir="out", synib_weight=0.1, answer_candidates=["yes", "no"],
    ...                       assistant_only_loss=True, mask_type="full", drop_masked_image=True)
    >>> trainer = SynIBSFTTrainer(model, args, train_dataset=dataset, processing_class=processor,
    ...                           peft_config=vlm_lora_config(model))
    >>> trainer.train()
    ```
    """

    args_class = SynIBSFTConfig
    _tag_names = ["trl", "sft", "synib", "multimodal"]

    def __init__(self, *args, **kwargs):
        # Why: SynIB reads the answer after an unsupervised prompt; TRL supervises the whole conversation by default.
        super().__init__(*args, **kwargs)
        views = self.args.synib_weight > 0 or bool(self.args.eval_masked_views)
        if views and not (self.args.assistant_only_loss or self.completion_only_loss):
            raise ValueError(
                "SFTTrainer supervises the whole conversation (prompt, image and answer) unless "
                "assistant_only_loss=True or the data are prompt/completion pairs, so there is no unsupervised prompt "
                "before the answer for SynIB to read the answer after. Set assistant_only_loss=True (the chat "
                "template needs {% generation %} around the assistant's reply; TRL adds one for known families), "
                "or give prompt/completion rows."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Why: where SynIB's views compute the clean loss, SFTTrainer's does not run, so its token count is kept here.
        result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        own_clean_loss = self.args.view_batching == "concatenated"  # sequential: SFTTrainer's loss is the clean view
        if model.training and self.synib_active() and own_clean_loss and inputs.get("attention_mask") is not None:
            count_sft_tokens(self, inputs["attention_mask"])
        return result
