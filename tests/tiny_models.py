"""Tiny models, tokenizers and data sets built in code (no downloads), shared by the tests."""

import functools

import numpy as np
import torch
from torch import nn
from transformers import (
    CLIPConfig,
    CLIPModel,
    LayoutLMv3Config,
    LayoutLMv3ForSequenceClassification,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from synib_hf.models.mlp_fusion import MLPFusionConfig, MLPFusionForClassification
from synib_hf.native import SynIBNativeMixin


SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"w{i}" for i in range(59)]
IMAGE_SIZE, SEQ_LEN = 30, 8


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `w0 … w58` with BERT-style special tokens, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def mlp_fusion(seed: int = 0, **overrides) -> MLPFusionForClassification:
    torch.manual_seed(seed)
    config = dict(modality_dims={"x1": 6, "x2": 6}, hidden_size=16)
    config.update(overrides)
    return MLPFusionForClassification(MLPFusionConfig(**config))


def vector_xor(n: int = 64, dim: int = 6, seed: int = 0) -> dict:
    """Two vector modalities; the label is the XOR of their first coordinates' signs (pure synergy)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(n, dim)).astype(np.float32), rng.normal(size=(n, dim)).astype(np.float32)
    labels = ((x1[:, 0] > 0) ^ (x2[:, 0] > 0)).astype(np.int64)
    return {"x1": x1, "x2": x2, "labels": labels}


class CLIPWithHead(nn.Module):
    """`CLIPModel` plus a linear head on the concatenated image and text embeddings."""

    def __init__(self, num_labels: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        config = CLIPConfig(
            text_config=dict(vocab_size=64, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=SEQ_LEN + 2, eos_token_id=3,
                             pad_token_id=0, bos_token_id=2),
            vision_config=dict(image_size=IMAGE_SIZE, patch_size=2, hidden_size=32, intermediate_size=37,
                               num_hidden_layers=2, num_attention_heads=4),
            projection_dim=16,
        )
        self.clip = CLIPModel(config)
        self.classifier = nn.Linear(32, num_labels)

    def forward(self, pixel_values=None, input_ids=None, attention_mask=None, labels=None):
        out = self.clip(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask)
        logits = self.classifier(torch.cat([out.image_embeds, out.text_embeds], dim=-1))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def layoutlmv3(num_labels: int = 2, seed: int = 0) -> LayoutLMv3ForSequenceClassification:
    """A stock transformers multimodal classifier (text + layout + image) we did not write."""
    torch.manual_seed(seed)
    config = LayoutLMv3Config(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=SEQ_LEN + 4, input_size=IMAGE_SIZE - 2, patch_size=4, num_channels=3,
        max_2d_position_embeddings=64, coordinate_size=6, shape_size=4, num_labels=num_labels,
        pad_token_id=0, has_relative_attention_bias=False, has_spatial_attention_bias=False,
    )
    return LayoutLMv3ForSequenceClassification(config)


def image_text_rows(n: int = 16, seed: int = 0, image_size: int = IMAGE_SIZE, bbox: bool = False) -> dict:
    """Columns `pixel_values`, `input_ids`, `attention_mask` (and `bbox`), `labels` from the tiny tokenizer."""
    rng = np.random.default_rng(seed)
    tokenizer = tiny_tokenizer()
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 59, size=rng.integers(2, SEQ_LEN - 2))) for _ in range(n)]
    encoded = tokenizer(texts, padding="max_length", max_length=SEQ_LEN, truncation=True)
    rows = {
        "pixel_values": rng.normal(size=(n, 3, image_size, image_size)).astype(np.float32),
        "input_ids": np.asarray(encoded["input_ids"], dtype=np.int64),
        "attention_mask": np.asarray(encoded["attention_mask"], dtype=np.int64),
        "labels": rng.integers(0, 2, size=n).astype(np.int64),
    }
    if bbox:
        rows["bbox"] = np.tile(np.array([1, 2, 10, 12], dtype=np.int64), (n, SEQ_LEN, 1))
    return rows


def as_dataset(columns: dict):
    from datasets import Dataset

    return Dataset.from_dict({k: list(v) for k, v in columns.items()}).with_format("torch")


def tiny_fusion_config(**overrides):
    """CLIP-vision (ModelTester sizes: image 30, patch 2, hidden 32, 2 layers, 4 heads) + DeBERTa-v2, tiny."""
    from transformers import CLIPVisionConfig, DebertaV2Config

    from synib_hf.models.fusion import FusionConfig

    config = dict(
        vision_config=CLIPVisionConfig(image_size=IMAGE_SIZE, patch_size=2, hidden_size=32, intermediate_size=37,
                                       num_hidden_layers=2, num_attention_heads=4),
        text_config=DebertaV2Config(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=37, max_position_embeddings=64, pad_token_id=0,
                                    relative_attention=True, position_buckets=8, pos_att_type=["p2c", "c2p"]),
        projection_dim=16,
        fusion_hidden_size=24,
        fusion_dropout=0.0,
    )
    config.update(overrides)
    return FusionConfig(**config)


def tiny_fusion(seed: int = 0, **overrides):
    from synib_hf.models.fusion import FusionForSequenceClassification

    torch.manual_seed(seed)
    return FusionForSequenceClassification(tiny_fusion_config(**overrides))


CORPUS = ["a cat on a mat", "the dog is happy", "this meme is funny", "look at that sad face", "love it"]


@functools.lru_cache(maxsize=None)
def tiny_deberta_tokenizer():
    """A DeBERTa-v2 tokenizer trained offline on a few sentences (ids stay below the tiny vocab of 64).

    Training breaks ties between equally frequent pieces arbitrarily, so it is trained once per process and shared.
    """
    from transformers import DebertaV2Tokenizer

    return DebertaV2Tokenizer().train_new_from_iterator(CORPUS * 20, vocab_size=60)


def tiny_fusion_processor():
    from transformers import CLIPImageProcessorPil

    from synib_hf.models.fusion import FusionProcessor

    image_processor = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return FusionProcessor(image_processor=image_processor, tokenizer=tiny_deberta_tokenizer())


def fusion_rows(n: int = 16, seed: int = 0) -> dict:
    """Model-ready columns for the tiny fusion model, made by the tiny processor from random images and texts."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = [Image.fromarray(rng.integers(0, 255, size=(36, 40, 3), dtype=np.uint8)) for _ in range(n)]
    texts = [CORPUS[i] for i in rng.integers(0, len(CORPUS), size=n)]
    encoded = tiny_fusion_processor()(images=images, text=texts, padding="max_length", max_length=SEQ_LEN,
                                      truncation=True, return_tensors="np")
    return {**{k: np.asarray(v) for k, v in encoded.items()}, "labels": rng.integers(0, 2, size=n).astype(np.int64)}


class LinearFusion(SynIBNativeMixin, nn.Module):
    """A native model small enough to reason about: linear encoders, a linear fusion head over the concatenated
    features and linear unimodal heads, so tests can set weights that make the modalities' gradients conflict."""

    synib_modalities = ("x1", "x2")
    synib_input_keys = {"x1": ("x1",), "x2": ("x2",)}

    def __init__(self, dim: int = 6, hidden: int = 4, num_labels: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoders = nn.ModuleDict({m: nn.Linear(dim, hidden) for m in self.synib_modalities})
        self.fusion = nn.Linear(2 * hidden, num_labels)
        self.unimodal = nn.ModuleDict({m: nn.Linear(hidden, num_labels) for m in self.synib_modalities})

    def synib_encode(self, modality, inputs):
        return self.encoders[modality](inputs[modality])

    def synib_fuse(self, features):
        hidden = torch.cat([features["x1"], features["x2"]], dim=-1)
        return self.fusion(hidden), hidden

    def synib_unimodal_head(self, modality):
        return self.unimodal[modality]

    def synib_logvar_head(self):
        return None

    def synib_encoder_parameters(self, modality):
        return list(self.encoders[modality].parameters())

    def forward(self, x1=None, x2=None, labels=None, synib_views=None, output_unimodal_logits=None):
        return self.synib_forward({"x1": x1, "x2": x2}, labels, synib_views, output_unimodal_logits)
