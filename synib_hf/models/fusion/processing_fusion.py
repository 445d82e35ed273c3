"""`FusionProcessor` (image processor + tokenizer, saved with the checkpoint) and a collator for image + text data."""

import os
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
        image_column, text_column, label_column: the row keys. An image is a PIL image or the path of an image file;
            one that does not decode raises an error that names its file.
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
        images = [self._rgb(row) for row in rows]
        texts = [row[self.text_column] for row in rows]
        batch = dict(
            self.processor(images=images, text=texts, padding=True, truncation=True, max_length=self.max_length)
        )
        if self.label_column in rows[0]:
            batch["labels"] = torch.tensor([row[self.label_column] for row in rows], dtype=torch.long)
        return batch

    def _rgb(self, row: dict):
        """The row's image as RGB; a file that does not decode is named (PIL's own errors often name none)."""
        from PIL import Image

        image, row_name = row[self.image_column], f"row {row['id']!r}" if "id" in row else "a row"
        if isinstance(image, (str, os.PathLike)):
            source = os.fspath(image)
            try:
                with Image.open(source) as opened:
                    return opened.convert("RGB")
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                message = f"ImageTextCollator: image {source!r} ({row_name}) does not decode: {error}."
                raise ValueError(message) from None
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"ImageTextCollator: {self.image_column!r} of {row_name} is a {type(image).__name__}; expected a PIL "
                "image or the path of an image file."
            )
        try:
            return image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as error:  # a lazily opened image whose data is broken
            source = getattr(image, "filename", "") or "(an image without a file name)"
            raise ValueError(f"ImageTextCollator: image {source!r} ({row_name}) does not decode: {error}.") from None
