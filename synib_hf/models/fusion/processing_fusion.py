"""`FusionProcessor` (image processor + tokenizer, saved with the checkpoint) and a collator for image + text data."""

from dataclasses import dataclass
from typing import Optional

import torch
from transformers import ProcessorMixin


class FusionProcessor(ProcessorMixin):
    """An image processor (default CLIP's) and a tokenizer (default DeBERTa-v2's) as one processor.

    Example:

    ```python
    >>> processor = FusionProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer)
    >>> batch = processor(images=images, text=texts, padding=True, return_tensors="pt")
    >>> sorted(batch)
    ['attention_mask', 'input_ids', 'pixel_values', 'token_type_ids']
    ```
    """

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer)

    def __call__(self, images=None, text=None, return_tensors="pt", **text_kwargs):
        if images is None and text is None:
            raise ValueError("FusionProcessor needs `images`, `text`, or both.")
        encoded = {}
        if text is not None:
            encoded.update(self.tokenizer(text, return_tensors=return_tensors, **text_kwargs))
        if images is not None:
            encoded.update(self.image_processor(images=images, return_tensors=return_tensors))
        return encoded

    @property
    def model_input_names(self):
        return ["pixel_values", "input_ids", "attention_mask", "token_type_ids"]


@dataclass
class ImageTextCollator:
    """Collate rows with an image, a text and a label into model inputs.

    Args:
        processor: a [`FusionProcessor`] (or any processor taking `images=` and `text=`).
        max_length: texts are truncated to this many tokens and padded to the longest in the batch.
        image_column, text_column, label_column: the row keys.
    """

    processor: FusionProcessor
    max_length: Optional[int] = 64
    image_column: str = "image"
    text_column: str = "text"
    label_column: str = "label"

    def __call__(self, rows: list) -> dict:
        missing = {self.image_column, self.text_column} - set(rows[0])
        if missing:
            raise ValueError(f"ImageTextCollator: rows have no {sorted(missing)}; they have {sorted(rows[0])}.")
        images = [row[self.image_column].convert("RGB") for row in rows]
        texts = [row[self.text_column] for row in rows]
        batch = dict(
            self.processor(images=images, text=texts, padding=True, truncation=True, max_length=self.max_length)
        )
        if self.label_column in rows[0]:
            batch["labels"] = torch.tensor([row[self.label_column] for row in rows], dtype=torch.long)
        return batch
