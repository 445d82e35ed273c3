"""Tiny random vision-language models of the eight supported families, their tokenizer and SFT-style batches, built
in code from config classes (no downloads). Shared by the VLM tests, the step benchmark and the DDP harness."""

import torch
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
)


# One vocabulary for every family: special tokens first (the image placeholder registered as special), then words.
SPECIAL = ["<pad>", "<unk>", "<bos>", "<eos>", "<image>", "<vision_start>", "<vision_end>", "<boi>", "<eoi>",
           "<video>"]
WORDS = [f"w{i}" for i in range(46)] + ["yes", "no", "red", "blue", "ASSISTANT:", "<cls>", "USER:", "q"]
VOCAB = {token: i for i, token in enumerate(SPECIAL + WORDS)}
PAD, BOS, EOS, IMAGE, VISION_START, VISION_END, BOI, EOI = (VOCAB[t] for t in SPECIAL[:1] + SPECIAL[2:9])
ANSWER_PROMPT = VOCAB["ASSISTANT:"]
CANDIDATES = ("yes", "no")
FAMILIES = ("llava", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics3", "smolvlm", "paligemma", "gemma3")

TEXT = dict(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
VISION = dict(image_size=8, patch_size=2, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
              num_attention_heads=4)
QWEN_ROPE = {"rope_type": "default", "mrope_section": [2, 1, 1]}
QWEN_VISION = dict(depth=2, hidden_size=32, num_heads=4, patch_size=2, spatial_merge_size=2, temporal_patch_size=2)
QWEN_IDS = dict(image_token_id=IMAGE, video_token_id=VOCAB["<video>"], vision_start_token_id=VISION_START,
                vision_end_token_id=VISION_END)


def tiny_vlm_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the shared vocabulary (whitespace-split), built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
                                   eos_token="<eos>", additional_special_tokens=SPECIAL[4:])


def tiny_vlm_config(family: str):
    """The composite config of a tiny `family` model (text: hidden 32, 2 layers; vision: image 8, patch 2)."""
    if family == "llava":
        return LlavaConfig(vision_config=dict(model_type="clip_vision_model", projection_dim=32, **VISION),
                           text_config=dict(model_type="llama", **TEXT), image_token_index=IMAGE, image_seq_length=16,
                           vision_feature_layer=-1)
    if family == "qwen2_vl":
        return Qwen2VLConfig(vision_config=dict(embed_dim=32, **QWEN_VISION),
                             text_config=dict(**TEXT, rope_parameters=QWEN_ROPE), **QWEN_IDS)
    if family == "qwen2_5_vl":
        return Qwen2_5_VLConfig(vision_config=dict(out_hidden_size=32, intermediate_size=37, window_size=8,
                                                   fullatt_block_indexes=[1], **QWEN_VISION),
                                text_config=dict(**TEXT, rope_parameters=QWEN_ROPE), **QWEN_IDS)
    if family == "qwen3_vl":
        return Qwen3VLConfig(vision_config=dict(out_hidden_size=32, intermediate_size=37, num_position_embeddings=16,
                                                deepstack_visual_indexes=[0, 1], **QWEN_VISION),
                             text_config=dict(**TEXT, head_dim=8,
                                              rope_parameters={**QWEN_ROPE, "mrope_interleaved": True}),
                             **QWEN_IDS)
    if family in ("idefics3", "smolvlm"):
        config_class = Idefics3Config if family == "idefics3" else SmolVLMConfig
        return config_class(vision_config=VISION, text_config=dict(model_type="llama", **TEXT), image_token_id=IMAGE,
                            scale_factor=2)
    if family == "paligemma":
        return PaliGemmaConfig(vision_config=dict(model_type="siglip_vision_model", projection_dim=32, **VISION),
                               text_config=dict(model_type="gemma", head_dim=8, **TEXT), image_token_index=IMAGE,
                               projection_dim=32, hidden_size=32, vocab_size=len(VOCAB))
    if family == "gemma3":
        return Gemma3Config(vision_config=dict(model_type="siglip_vision_model", **VISION),
                            text_config=dict(model_type="gemma3_text", head_dim=8, sliding_window=16,
                                             query_pre_attn_scalar=8, **TEXT),
                            image_token_index=IMAGE, mm_tokens_per_image=4, boi_token_index=BOI, eoi_token_index=EOI)
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


MODEL_CLASSES = {
    "llava": LlavaForConditionalGeneration, "qwen2_vl": Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration, "qwen3_vl": Qwen3VLForConditionalGeneration,
    "idefics3": Idefics3ForConditionalGeneration, "smolvlm": SmolVLMForConditionalGeneration,
    "paligemma": PaliGemmaForConditionalGeneration, "gemma3": Gemma3ForConditionalGeneration,
}


def tiny_vlm(family: str, seed: int = 0):
    """A tiny random `*ForConditionalGeneration` of `family`, in eval mode (no dropout in these configs anyway)."""
    torch.manual_seed(seed)
    model = MODEL_CLASSES[family](tiny_vlm_config(family))
    if family == "gemma3":  # its projector starts at zero, so a fresh model would ignore the image
        torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.5)
    return model.eval()


def image_block(family: str) -> list:
    """The image part of a sequence, as the family's processor lays it out."""
    if family in ("llava", "paligemma"):
        return [IMAGE] * 16  # (8 / 2)² patches
    if family.startswith("qwen"):
        return [VISION_START] + [IMAGE] * 4 + [VISION_END]  # 16 patches merged 2×2
    return [BOI] + [IMAGE] * 4 + [EOI]  # Idefics3/SmolVLM (pixel shuffle 2) and Gemma3 (4 tokens per image)


def pixel_inputs(family: str, pixels: torch.Tensor) -> dict:
    """Vision inputs of the family for images `(B, 3, 8, 8)`."""
    batch = pixels.shape[0]
    if family.startswith("qwen"):  # flattened patches (B·16, C·t·p·p) in the processor's order, and their grid
        frames = pixels.repeat_interleave(2, dim=1)  # (B, C·t, H, W): one frame twice
        patches = frames.reshape(batch, 6, 4, 2, 4, 2).permute(0, 2, 4, 1, 3, 5)  # (B, 4, 4, C·t, p, p)
        return {"pixel_values": patches.reshape(batch * 16, 3 * 2 * 2 * 2),
                "image_grid_thw": torch.tensor([[1, 4, 4]] * batch)}
    if family in ("idefics3", "smolvlm"):
        return {"pixel_values": pixels[:, None], "pixel_attention_mask": torch.ones(batch, 1, 8, 8, dtype=torch.bool)}
    return {"pixel_values": pixels}


def sft_batch(family: str, prompts, answers, pixels: torch.Tensor, text_mask: bool = False) -> dict:
    """An SFT-style batch: `<bos> image prompt ASSISTANT: answer <eos>`, labels −100 on everything before the answer.

    `prompts` are lists of word ids (same length), `answers` candidate strings.
    """
    rows, labels = [], []
    for prompt, answer in zip(prompts, answers):
        prefix = [BOS] + image_block(family) + list(prompt) + [ANSWER_PROMPT]
        rows.append(prefix + [VOCAB[answer], EOS])
        labels.append([-100] * len(prefix) + [VOCAB[answer], EOS])
    input_ids = torch.tensor(rows)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": torch.tensor(labels),
             **pixel_inputs(family, pixels)}
    if family.startswith("qwen"):
        batch["mm_token_type_ids"] = (input_ids == IMAGE).int()
    if family == "paligemma":  # prefix-LM: bidirectional over image + prompt, causal over the answer
        batch["token_type_ids"] = (batch["labels"] != -100).long()
    if family == "gemma3":  # image tokens attend to each other bidirectionally
        batch["token_type_ids"] = (input_ids == IMAGE).long()
    if text_mask:
        start = 1 + len(image_block(family))
        mask = torch.zeros_like(input_ids)
        mask[:, start : start + len(prompts[0])] = 1
        batch["synib_text_mask"] = mask
    return batch


def random_batch(family: str, batch_size: int = 3, prompt_length: int = 3, seed: int = 0, **kwargs) -> dict:
    generator = torch.Generator().manual_seed(seed)
    prompts = torch.randint(VOCAB["w0"], VOCAB["w0"] + 40, (batch_size, prompt_length), generator=generator).tolist()
    answers = [CANDIDATES[i % 2] for i in range(batch_size)]
    pixels = torch.randn(batch_size, 3, 8, 8, generator=generator)
    return sft_batch(family, prompts, answers, pixels, **kwargs)


class VLMRows(torch.utils.data.Dataset):
    """The rows of a batch from [`sft_batch`] as a map-style data set (Qwen's patches split per image)."""

    def __init__(self, batch: dict):
        self.batch = batch
        self.size = batch["input_ids"].shape[0]

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        row = {}
        for key, value in self.batch.items():
            if key == "pixel_values" and value.shape[0] != self.size:  # Qwen: (B·patches, D) → this image's patches
                value = value.view(self.size, -1, value.shape[-1])
            row[key] = value[index]
        return row


def vlm_collator(rows):
    """Stacks rows; Qwen's per-image patches and grids are concatenated, as its processor lays them out."""
    batch = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        flat = key == "image_grid_thw" or (key == "pixel_values" and values[0].dim() == 2)
        batch[key] = torch.cat([v.reshape(-1, v.shape[-1]) for v in values]) if flat else torch.stack(values)
    return batch


def synergy_rows(family: str, n: int, seed: int, **kwargs) -> VLMRows:
    """A pure-synergy SFT data set: answer "yes" iff bright image XOR "red" in the prompt; each alone is at chance."""
    generator = torch.Generator().manual_seed(seed)
    bright, red = torch.randint(0, 2, (2, n), generator=generator)
    pixels = (2.0 * bright - 1.0)[:, None, None, None] + 0.3 * torch.randn(n, 3, 8, 8, generator=generator)
    fillers = torch.randint(VOCAB["w0"], VOCAB["w0"] + 40, (n, 2), generator=generator).tolist()
    prompts = [[a, VOCAB["red"] if r else VOCAB["blue"], b] for (a, b), r in zip(fillers, red.tolist())]
    answers = ["yes" if b ^ r else "no" for b, r in zip(bright.tolist(), red.tolist())]
    return VLMRows(sft_batch(family, prompts, answers, pixels, **kwargs))


# ---- chat-template processors: what TRL's collator and the default text view read -----------------------------------

# A second vocabulary with each family's own special tokens, for processors that lay out real chat templates.
CHAT_SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<fake_token_around_image>", "<global-img>",
                "<end_of_utterance>"]
CHAT_WORDS = ["system", "user", "assistant", "You", "are", "a", "helpful", ".", "USER:", "ASSISTANT:", "User:",
              "Assistant:", "nl", "yes", "no", "red", "blue", "synib", "probe", "question", "answer"] + \
             [f"w{i}" for i in range(40)]
CHAT_VOCAB = {token: i for i, token in enumerate(CHAT_SPECIAL + CHAT_WORDS)}
_GENERATED = ("{% generation %}{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}"
              "{% endif %}{% endfor %} {eos}{% endgeneration %}")
_USER = ("{% for p in m['content'] %}{% if p['type'] == 'image' %}{image}{% else %}{{ p['text'] }}{% endif %}"
         "{% endfor %}")
# Word-level versions of the families' real templates ("nl" stands for LLaVA's newline after the image); the
# assistant's answer sits in {% generation %} for TRL's assistant_only_loss.
CHAT_TEMPLATES = {
    "llava": ("{% for m in messages %}{% if m['role'] == 'user' %}USER: " + _USER.replace("{image}", "<image> nl ")
              + " {% else %}ASSISTANT: " + _GENERATED.replace("{eos}", "</s>") + " {% endif %}{% endfor %}"
              "{% if add_generation_prompt %}ASSISTANT: {% endif %}"),
    "qwen2_vl": ("<|im_start|> system You are a helpful assistant . <|im_end|> {% for m in messages %}"
                 "<|im_start|> {{ m['role'] }} {% if m['role'] == 'user' %}"
                 + _USER.replace("{image}", "<|vision_start|><|image_pad|><|vision_end|> ") + " <|im_end|> {% else %}"
                 + _GENERATED.replace("{eos}", "<|im_end|>") + " {% endif %}{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"),
    "smolvlm": ("<|im_start|> {% for m in messages %}{% if m['role'] == 'user' %}User: "
                + _USER.replace("{image}", "<image>") + " <end_of_utterance> {% else %}Assistant: "
                + _GENERATED.replace("{eos}", "<end_of_utterance>")
                + " {% endif %}{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}"),
}
CHAT_FAMILIES = tuple(CHAT_TEMPLATES)
CHAT_EOS = {"llava": "</s>", "qwen2_vl": "<|im_end|>", "smolvlm": "<end_of_utterance>"}
CHAT_IMAGE = {"llava": "<image>", "qwen2_vl": "<|image_pad|>", "smolvlm": "<image>"}


def tiny_chat_processor(family: str):
    """A processor of `family` over [`CHAT_VOCAB`] with its word-level chat template (offline): 8 px images, the image
    tokens the tiny models of [`tiny_chat_vlm`] expect (LLaVA 16, Qwen2-VL 4, SmolVLM 4). SmolVLM uses Idefics3's
    processor, which lays out the same tokens for one unsplit image (SmolVLM's own needs num2words and torchvision)."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel(vocab=CHAT_VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHAT_SPECIAL])
    template = CHAT_TEMPLATES[family]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token=CHAT_EOS[family], chat_template=template,
                                        additional_special_tokens=CHAT_SPECIAL[4:])
    if family == "llava":
        from transformers import CLIPImageProcessor, LlavaProcessor

        images = CLIPImageProcessor(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
        return LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=2, num_additional_image_tokens=1,
                              vision_feature_select_strategy="default", chat_template=template)
    if family == "qwen2_vl":
        from transformers import Qwen2VLProcessor
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        class ImagesOnlyQwen2VLProcessor(Qwen2VLProcessor):  # no torchvision: no video processor to check or save
            def check_argument_for_proper_class(self, argument_name, argument):
                return None if argument is None else super().check_argument_for_proper_class(argument_name, argument)

            @classmethod
            def get_attributes(cls):
                return [name for name in super().get_attributes() if name != "video_processor"]

        images = Qwen2VLImageProcessorPil(patch_size=2, merge_size=2, temporal_patch_size=2, min_pixels=64,
                                          max_pixels=64)
        return ImagesOnlyQwen2VLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=None,
                                          chat_template=template)
    from transformers import Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    images = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 8},
                                       max_image_size={"longest_edge": 8})
    return Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4, chat_template=template)


def tiny_chat_vlm(family: str, seed: int = 0):
    """A tiny random model of `family` (as [`tiny_vlm`]) over [`CHAT_VOCAB`], matching [`tiny_chat_processor`]."""
    ids = dict(vocab_size=len(CHAT_VOCAB), pad_token_id=CHAT_VOCAB["<pad>"], bos_token_id=CHAT_VOCAB["<s>"],
               eos_token_id=CHAT_VOCAB[CHAT_EOS[family]])
    config = tiny_vlm_config(family)
    config.text_config.update(ids)
    config.image_token_id = CHAT_VOCAB[CHAT_IMAGE[family]]
    if family == "llava":
        config.vision_feature_select_strategy = "default"  # the processor counts the CLS token, the model drops it
    if family == "qwen2_vl":
        config.update({"video_token_id": CHAT_VOCAB["<|video_pad|>"],
                       "vision_start_token_id": CHAT_VOCAB["<|vision_start|>"],
                       "vision_end_token_id": CHAT_VOCAB["<|vision_end|>"]})
    torch.manual_seed(seed)
    return MODEL_CLASSES[family](config).eval()


def chat_rows(n: int, seed: int = 0, words: int = 3) -> list:
    """`n` conversational rows as TRL takes them: `messages` (an image placeholder, a question, a yes/no answer) and
    `images` (one 8 px PIL image each)."""
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        question = " ".join(f"w{int(k)}" for k in torch.randint(0, 40, (words,), generator=generator))
        colour = tuple(int(c) for c in torch.randint(0, 256, (3,), generator=generator))
        rows.append({
            "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
                         {"role": "assistant", "content": [{"type": "text", "text": CANDIDATES[i % 2]}]}],
            "images": [Image.new("RGB", (8, 8), colour)],
        })
    return rows
