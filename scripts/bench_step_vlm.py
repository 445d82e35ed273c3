"""The VLM cases of `bench_step.py`: a generative vision-language model's SFT step with and without SynIB's views.

Model level (the views' machinery, `synib_hf.models.vlm.embedding_views`, with an AdamW step). Two plain steps:
`plain` (the fair baseline) computes logits only at the supervised positions (`logits_to_keep`) and the causal-LM loss
from them, as the SynIB cases do; `plain_full` is the model's own loss over logits at every position (the old
reference: it flatters any case with lean logits). The SynIB cases add an image view and a text view (full masks, zero
fill, λ·KL-to-uniform over the candidate answers) in one forward:

* `vlm-concatenated` — every input repeated three times, the vision tower on three copies, full logits;
* `vlm-shared-vision` — the vision tower once, its output repeated; full logits;
* `vlm-shared-lean` — the vision tower once and logits only where the loss and the penalty read them;
* `vlm-shared-prefix` — packed rows: each masked view computes only its suffix after the clean view's prefix;
* `vlm-drop` — the image view drops the image positions (a text-only pass), views not sharing a prefix;
* `vlm-drop-shared` — both: one full pass plus the short suffixes.

Every case but the first two uses lean logits. Random weights from configs: `tiny` (hidden 64, vocab 32k, CPU
seconds), `image-dominant` (LLaVA-shaped, 256 image tokens, hidden 256, 4 layers, vocab 8192: a CPU-sized model
whose sequence the image dominates, as in real VLMs) and `base` (SmolVLM-500M or Qwen2-VL-2B shapes, for a GPU).
The memory figure on a CPU is the bytes of tensors saved for the backward pass (activations, each storage once).
"""

import contextlib
import time


LEAN = dict(share_vision=True, lean_logits=True)
VLM_CASES = {
    "vlm-concatenated": dict(share_vision=False, lean_logits=False, share_prefix=False),
    "vlm-shared-vision": dict(share_vision=True, lean_logits=False, share_prefix=False),
    "vlm-shared-lean": dict(LEAN, share_prefix=False),
    "vlm-shared-prefix": dict(LEAN, share_prefix=True),
    "vlm-drop": dict(LEAN, share_prefix=False, drop_image=True),
    "vlm-drop-shared": dict(LEAN, share_prefix=True, drop_image=True),
}
VLM_FAMILIES = ("smolvlm", "qwen2_vl", "llava")
IMAGE_TOKEN, ANSWERS = 4, (40, 41)  # ids inside every vocabulary below

_TINY_TEXT = dict(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512)
_TINY_VISION = dict(image_size=32, patch_size=4, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4)
VLM_SIZES = {
    "image-dominant": {  # 256 image tokens (64 px, patch 4) beside a 32-token prompt
        "llava": dict(text=dict(vocab_size=8192, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024),
                      vision=dict(image_size=64, patch_size=4, hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4)),
    },
    "tiny": {
        "smolvlm": dict(text=_TINY_TEXT, vision=_TINY_VISION, scale_factor=2),
        "llava": dict(text=_TINY_TEXT, vision=_TINY_VISION),
        "qwen2_vl": dict(text=_TINY_TEXT, vision=dict(depth=2, embed_dim=64, num_heads=4, patch_size=4),
                         image_size=32),
    },
    "base": {
        # SmolVLM-500M-Instruct shapes (~0.5B parameters): SigLIP-B/16 at 512 px, pixel shuffle 4 → 64 image tokens.
        "smolvlm": dict(text=dict(vocab_size=49280, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                                  num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192),
                        vision=dict(image_size=512, patch_size=16, hidden_size=768, intermediate_size=3072,
                                    num_hidden_layers=12, num_attention_heads=12), scale_factor=4),
        # Qwen2-VL-2B shapes (~2.2B parameters) at 448 px → 256 image tokens.
        "qwen2_vl": dict(text=dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                                   num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768),
                         vision=dict(depth=32, embed_dim=1280, num_heads=16, patch_size=14), image_size=448),
    },
}


def vlm_config(family: str, size: str):
    from transformers import LlavaConfig, Qwen2VLConfig, SmolVLMConfig

    if size not in VLM_SIZES or family not in VLM_SIZES[size]:
        presets = sorted(VLM_SIZES.get(size, {}))
        raise ValueError(f"No {size} preset for {family!r}; {size} presets: {presets or 'none'}.")
    spec = VLM_SIZES[size][family]
    text = dict(spec["text"], pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if family == "smolvlm":
        return SmolVLMConfig(vision_config=spec["vision"], text_config=dict(model_type="llama", **text),
                             image_token_id=IMAGE_TOKEN, scale_factor=spec["scale_factor"])
    if family == "llava":
        tokens = (spec["vision"]["image_size"] // spec["vision"]["patch_size"]) ** 2
        return LlavaConfig(vision_config=dict(model_type="clip_vision_model", **spec["vision"]),
                           text_config=dict(model_type="llama", **text), image_token_index=IMAGE_TOKEN,
                           image_seq_length=tokens, vision_feature_layer=-1)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    section = [head_dim // 4, head_dim // 8, head_dim // 8]  # M-RoPE t/h/w split of half the head dim
    return Qwen2VLConfig(vision_config=dict(spec["vision"], hidden_size=text["hidden_size"]),
                         text_config=dict(text, rope_parameters={"rope_type": "default", "mrope_section": section}),
                         image_token_id=IMAGE_TOKEN, video_token_id=5, vision_start_token_id=6, vision_end_token_id=7,
                         tie_word_embeddings=size == "base")  # Qwen2-VL-2B ties its embeddings


def vlm_batch(family: str, size: str, batch: int, seq_len: int, generator) -> dict:
    """`batch` SFT rows: `<bos> image-tokens prompt(seq_len) answer <eos>`, labels on the answer and EOS."""
    import torch

    spec = VLM_SIZES[size][family]
    vocab = spec["text"]["vocab_size"]
    if family == "qwen2_vl":
        side = spec["image_size"] // spec["vision"]["patch_size"]
        pixels = {"pixel_values": torch.randn(batch * side * side, 3 * 2 * spec["vision"]["patch_size"] ** 2,
                                              generator=generator),
                  "image_grid_thw": torch.tensor([[1, side, side]] * batch)}
        tokens = side * side // 4
    else:
        image = spec["vision"]["image_size"]
        patches = (image // spec["vision"]["patch_size"]) ** 2
        pixels = torch.randn(batch, 3, image, image, generator=generator)
        if family == "smolvlm":
            pixels = {"pixel_values": pixels[:, None], "pixel_attention_mask": torch.ones(batch, 1, image, image,
                                                                                          dtype=torch.bool)}
            tokens = patches // spec["scale_factor"] ** 2
        else:
            pixels, tokens = {"pixel_values": pixels}, patches
    prompt = torch.randint(100, vocab, (batch, seq_len), generator=generator)
    answer = torch.tensor(ANSWERS)[torch.arange(batch) % 2][:, None]
    input_ids = torch.cat([torch.ones(batch, 1, dtype=torch.long), torch.full((batch, tokens), IMAGE_TOKEN), prompt,
                           answer, torch.full((batch, 1), 2)], dim=1)
    labels = torch.full_like(input_ids, -100)
    labels[:, -2:] = input_ids[:, -2:]
    rows = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels, **pixels}
    if family == "qwen2_vl":
        rows["mm_token_type_ids"] = (input_ids == IMAGE_TOKEN).int()
    return rows


def build_vlm(family: str, size: str, batch: int, seq_len: int, lora: bool):
    """A random-weight model of `family` at `size`, one fixed batch on the model's device, and a LoRA preset."""
    import torch
    from transformers import AutoModelForImageTextToText

    from synib_hf import vlm_lora_config

    config = vlm_config(family, size)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config)
    if torch.cuda.is_available():
        model = model.cuda()
    rows = vlm_batch(family, size, batch, seq_len, torch.Generator().manual_seed(0))
    rows = {k: v.to(model.device) for k, v in rows.items()}
    return model, rows, (vlm_lora_config(model) if lora else None)


def plain_loss(network, rows, lean: bool):
    """The plain SFT step's loss: the model's own (logits everywhere), or from the supervised positions' logits."""
    from synib_hf.generative import causal_lm_loss, supervised_positions

    if not lean:
        return network(**rows, use_cache=False).loss
    inputs = {k: v for k, v in rows.items() if k != "labels"}
    logits = network(**inputs, use_cache=False, logits_to_keep=supervised_positions(rows["labels"])).logits
    return causal_lm_loss(logits, rows["labels"])


class SavedActivations:
    """Bytes of the tensors autograd saves for the backward pass inside the block (each storage counted once): a
    memory figure the CPU gives (activation memory; parameters and optimizer state excluded)."""

    def __init__(self):
        import torch

        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)
        self.storages, self.bytes = set(), 0

    def _pack(self, tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.storages:
            self.storages.add(storage.data_ptr())
            self.bytes += storage.nbytes()
        return tensor

    def __enter__(self):
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)


def time_vlm_steps(model, rows, peft_config, case: str, variant: str, steps: int, bf16: bool):
    """Times of `steps` optimizer steps (after one warm-up step) of `variant` (`"plain"`, `"plain_full"` or
    `"synib"`), and the peak memory: CUDA's peak allocation on a GPU, the saved activations of one step on a CPU."""
    import torch
    from peft import get_peft_model

    from synib_hf.masking import MaskRandomness, MaskSpec
    from synib_hf.models.vlm import embedding_views
    from synib_hf.penalties import kl_uniform

    network = get_peft_model(model, peft_config) if peft_config is not None else model
    network.train()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-5)
    options = VLM_CASES[case]
    views = embedding_views(model, MaskSpec(mask_type="full", mask_fill="zero"), MaskRandomness(0),
                            share_vision=options["share_vision"], share_prefix=options["share_prefix"],
                            drop_image=options.get("drop_image", False))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, saved = [], None
    for step in range(steps + 1):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        counter = SavedActivations() if not cuda and step == 0 else None
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=bf16), \
                (counter or contextlib.nullcontext()):
            if variant == "synib":
                readout = views.generative(network, rows, ANSWERS, (None, "image", "text"), training=True,
                                           lean_logits=options["lean_logits"])
                loss = readout.task_loss + 0.1 * sum(kl_uniform(view).mean() for view in readout.masked_logits)
            else:
                loss = plain_loss(network, rows, lean=variant == "plain")
        saved = counter.bytes if counter is not None else saved
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else saved
    if peft_config is not None:
        network.unload()
    return times[1:], peak

