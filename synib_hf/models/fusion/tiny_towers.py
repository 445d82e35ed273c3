"""Tiny CLIP-vision + DeBERTa-v2 towers and a word-level tokenizer, built in code: the fusion model offline, in seconds,
with no download (smoke runs, tests, the `tiny` recipe, `examples/`).

The tokenizer's vocabulary is the most frequent words of the given texts, ties broken alphabetically: the same texts
give the same tokenizer in every process (a trained subword tokenizer is not reproducible across processes).
"""

import collections
from typing import Iterable, Optional


SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")  # DeBERTa-v2's names, ids 0-4


def word_level_tokenizer(texts: Iterable[str], vocab_size: int = 256, model_max_length: int = 64):
    """A `PreTrainedTokenizerFast` whose vocabulary is the `vocab_size - 5` most frequent lower-cased words and
    punctuation marks of `texts` (ties broken alphabetically) after DeBERTa's five special tokens; other words map to
    `[UNK]`. Each text is encoded as `[CLS] words [SEP]`, as DeBERTa's tokenizer does.

    Deterministic: the same texts give the same ids in every process and on every machine.

    Example:

    ```python
    >>> tokenizer = word_level_tokenizer(["a cat", "not a dog"], vocab_size=16)
    >>> tokenizer("a cat")["input_ids"]
    [1, 5, 6, 2]
    ```
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}.")
    splitter = pre_tokenizers.BertPreTokenizer()  # words and punctuation marks
    counts = collections.Counter(
        word for text in texts for word, _ in splitter.pre_tokenize_str(str(text).lower())
    )
    words = [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    words = [word for word in words if word not in SPECIAL_TOKENS][: vocab_size - len(SPECIAL_TOKENS)]
    vocabulary = {token: index for index, token in enumerate([*SPECIAL_TOKENS, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = splitter
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocabulary["[CLS]"]), ("[SEP]", vocabulary["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", unk_token="[UNK]",
        mask_token="[MASK]", model_max_length=model_max_length,
    )


def tiny_fusion_processor(texts: Iterable[str], image_size: int = 32, vocab_size: int = 256,
                          max_length: int = 64):
    """A [`FusionProcessor`]: CLIP's image processor at `image_size` and a [`word_level_tokenizer`] of `texts`."""
    from transformers import CLIPImageProcessorPil

    from .processing_fusion import FusionProcessor

    return FusionProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                              crop_size={"height": image_size, "width": image_size}),
        tokenizer=word_level_tokenizer(texts, vocab_size=vocab_size, model_max_length=max_length),
    )


def tiny_fusion_config(tokenizer, image_size: int = 32, max_length: int = 64,
                       id2label: Optional[dict] = None, **fusion_options):
    """A [`FusionConfig`] with tiny random towers (CLIP-vision: patch 4, width 32, 2 layers, 4 heads; DeBERTa-v2:
    width 32, 2 layers, 4 heads) sized for `tokenizer` and `image_size`. `fusion_options` go to `FusionConfig`
    (`projection_dim`, `fusion_hidden_size`, ...); mean text pooling keeps every word's signal in random towers.

    Example:

    ```python
    >>> processor = tiny_fusion_processor(captions)
    >>> model = FusionForSequenceClassification(tiny_fusion_config(processor.tokenizer, id2label={0: "no", 1: "yes"}))
    ```
    """
    from transformers import CLIPVisionConfig, DebertaV2Config

    from .configuration_fusion import FusionConfig

    if id2label is not None:
        fusion_options["id2label"] = {int(index): name for index, name in id2label.items()}
        fusion_options["label2id"] = {name: int(index) for index, name in id2label.items()}
    fusion_options.setdefault("text_pooling", "mean")
    return FusionConfig(
        vision_config=CLIPVisionConfig(image_size=image_size, patch_size=4, hidden_size=32, intermediate_size=37,
                                       num_hidden_layers=2, num_attention_heads=4),
        text_config=DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=37, max_position_embeddings=max_length,
                                    pad_token_id=tokenizer.pad_token_id),
        **fusion_options,
    )
