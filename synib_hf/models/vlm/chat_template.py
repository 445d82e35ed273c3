"""Where the user's content sits in a processor's chat template, found once per processor.

The default text view masks the user's content (the question), not the chat template's own words: the system prompt
and role words come before the image in most templates, and masking them mostly breaks the format (and leaves no prefix
to share with the clean view). Neither TRL's collator nor a processor's output marks the user's content, so the
template is rendered once on a probe conversation (an image and a sentinel question, then a sentinel answer) and
tokenised with offsets: the template's tokens between the image and the question, and between the question and the
answer, give a [`PromptLayout`]. Every batch is then read from its ids and labels alone (no second tokenisation).
"""

from typing import Optional

from transformers.utils import logging

from ...masking.embedding_masking import PromptLayout


logger = logging.get_logger(__name__)

PROBE_QUESTION = "synib probe question"
PROBE_ANSWER = "synib probe answer"


def probe_conversation() -> list:
    """One user turn with an image and a question, one assistant turn (content lists, as VLM processors take)."""
    return [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROBE_QUESTION}]},
        {"role": "assistant", "content": [{"type": "text", "text": PROBE_ANSWER}]},
    ]


def prompt_layout(processing_class, chat_template: Optional[str] = None) -> PromptLayout:
    """The [`PromptLayout`] of a processor's chat template (or of `chat_template`, e.g. the one TRL's collator uses).

    Returns `PromptLayout()` (content = every ordinary token after the image, up to the read-out position) when there
    is no processor, no chat template, or no fast tokenizer to give offsets; that is logged.

    Raises:
        ValueError: the template renders the probe without the image placeholder, the question or the answer, or
            with the answer before the question.

    Example:

    ```python
    >>> prompt_layout(AutoProcessor.from_pretrained("Qwen/Qwen2-VL-2B-Instruct"))
    PromptLayout(image_trailer=0, answer_header=5)
    ```
    """
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    template = chat_template or getattr(processing_class, "chat_template", None)
    if processing_class is None or template is None or not getattr(tokenizer, "is_fast", False):
        logger.info("No chat template (or no fast tokenizer) to find the user's content in: the default text view "
                    "masks every ordinary token after the image, up to the answer position.")
        return PromptLayout()
    text = processing_class.apply_chat_template(probe_conversation(), chat_template=template, tokenize=False)
    image = getattr(processing_class, "image_token", None) or "<image>"
    question, answer = text.find(PROBE_QUESTION), text.rfind(PROBE_ANSWER)
    image_end = text.rfind(image, 0, max(question, 0)) + len(image)
    if min(question, answer) < 0 or answer < question or image_end < len(image):
        raise ValueError(
            f"The chat template rendered the probe conversation (an image then {PROBE_QUESTION!r} from the user, "
            f"{PROBE_ANSWER!r} from the assistant) as {text!r}, without the image placeholder {image!r} before the "
            "question, or without the question before the answer; pass a synib_text_mask column instead."
        )
    question_end = question + len(PROBE_QUESTION)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    special = set(tokenizer.all_special_ids)
    trailer = header = 0
    for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        if start >= image_end and end <= question and token not in special:
            trailer += 1
        if start >= question_end and end <= answer:
            header += 1
    return PromptLayout(image_trailer=trailer, answer_header=header)
