"""Embedding-level views on tiny random models of all eight supported VLM families (offline): clean rows equal a plain
forward, each masked view is independent of its modality's content, the vision tower runs once, lean logits give the
full path's loss and gradients, and Qwen3-VL's deepstack features do not leak the image. Each holds for the views as
blocks of rows (`share_prefix=False`) and as packed rows (the default where exact; `test_vlm_packed_views.py` has
the packed rows' own equivalences)."""

import functools
from dataclasses import replace

import pytest
import torch

from synib_hf.generative import candidate_token_ids
from synib_hf.masking import MaskRandomness, MaskSpec
from synib_hf.models.vlm import embedding_views
from synib_hf.models.vlm.families import inner_model
from synib_hf.penalties import kl_uniform
from tiny_vlms import CANDIDATES, FAMILIES, VOCAB, random_batch, tiny_vlm, tiny_vlm_tokenizer


LAYOUT = (None, "image", "text")
TOKENIZER = tiny_vlm_tokenizer()
CANDIDATE_IDS = candidate_token_ids(TOKENIZER, CANDIDATES)


@functools.lru_cache(maxsize=None)
def model(family):
    return tiny_vlm(family)


PACKING = [False, None]  # blocks of rows; packed rows wherever exact (the default)


def views(family, share_vision=True, share_prefix=None, drop_image=False, **spec):
    spec = MaskSpec(**{"mask_type": "full", "mask_fill": "zero", **spec})
    return embedding_views(model(family), spec, MaskRandomness(0), TOKENIZER.all_special_ids,
                           share_vision=share_vision, share_prefix=share_prefix, drop_image=drop_image)


def answers(batch):
    return (batch["labels"] != -100).int().argmax(dim=1) - 1


def plain_candidates(family, batch):
    with torch.no_grad():
        logits = model(family)(**batch, use_cache=False).logits
    return logits[torch.arange(logits.shape[0]), answers(batch)][:, list(CANDIDATE_IDS)]


def read(family, batch, **kwargs):
    with torch.no_grad():
        return views(family, **kwargs).generative(model(family), batch, CANDIDATE_IDS, LAYOUT, training=False)


@pytest.mark.parametrize("share_prefix", PACKING)
@pytest.mark.parametrize("family", FAMILIES)
def test_clean_rows_equal_a_plain_forward(family, share_prefix):
    batch = random_batch(family, 4)
    with torch.no_grad():
        plain = model(family)(**batch, use_cache=False)
        outputs, _ = views(family).forward(model(family), batch, LAYOUT, views(family).positions(
            batch, labels=batch["labels"], readout_positions=answers(batch)), training=False)
    # equal up to the rounding of a three-times larger matmul (batch-size-dependent CPU kernels: ~3e-8)
    torch.testing.assert_close(outputs.logits[:4], plain.logits, rtol=0, atol=1e-6)
    readout = read(family, batch, share_prefix=share_prefix)
    torch.testing.assert_close(readout.task_loss, plain.loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(readout.logits, plain_candidates(family, batch), rtol=0, atol=1e-6)


@pytest.mark.parametrize("share_prefix", PACKING)
@pytest.mark.parametrize("family", FAMILIES)
def test_masked_views_are_independent_of_their_modality(family, share_prefix):
    batch = random_batch(family, 4, seed=0)
    other_pixels = random_batch(family, 4, seed=1)
    other_prompt = random_batch(family, 4, seed=2)
    new_pixels = {**batch, **{k: other_pixels[k] for k in ("pixel_values",)}}
    new_prompt = {**batch, "input_ids": other_prompt["input_ids"]}
    assert not torch.equal(new_prompt["input_ids"], batch["input_ids"])
    base, by_pixels, by_prompt = (read(family, b, share_prefix=share_prefix) for b in (batch, new_pixels, new_prompt))
    # the content does reach the clean rows (so the test can fail) ...
    assert (by_pixels.logits - base.logits).abs().max() > 1e-4
    assert (by_prompt.logits - base.logits).abs().max() > 1e-4
    # ... but not the view that masks it, while the other view sees it
    image, text = 0, 1
    torch.testing.assert_close(by_pixels.masked_logits[image], base.masked_logits[image], rtol=0, atol=1e-6)
    torch.testing.assert_close(by_prompt.masked_logits[text], base.masked_logits[text], rtol=0, atol=1e-6)
    assert (by_pixels.masked_logits[text] - base.masked_logits[text]).abs().max() > 1e-4
    assert (by_prompt.masked_logits[image] - base.masked_logits[image]).abs().max() > 1e-4


def test_noise_fill_views_are_independent_too():
    """With `ema_noise` (statistics frozen in evaluation, the same seed) the image view ignores the pixels."""
    batch, other = random_batch("llava", 4, seed=0), random_batch("llava", 4, seed=1)
    results = []
    for pixels in (batch["pixel_values"], other["pixel_values"]):
        runner = views("llava", mask_fill="ema_noise")
        runner.generative(model("llava"), batch, CANDIDATE_IDS, LAYOUT, training=True)  # fills the EMA statistics
        runner.masker.randomness = MaskRandomness(3)
        with torch.no_grad():
            results.append(runner.generative(model("llava"), {**batch, "pixel_values": pixels}, CANDIDATE_IDS,
                                             LAYOUT, training=False))
    torch.testing.assert_close(results[0].masked_logits[0], results[1].masked_logits[0], rtol=0, atol=1e-6)
    assert (results[0].logits - results[1].logits).abs().max() > 1e-4


def vision_tower(family):
    inner = inner_model(model(family))
    towers = {"qwen2_vl": "visual", "qwen2_5_vl": "visual", "qwen3_vl": "visual", "idefics3": "vision_model",
              "smolvlm": "vision_model"}
    return getattr(inner, towers.get(family, "vision_tower"))


@pytest.mark.parametrize("family", FAMILIES)
def test_vision_tower_runs_once_on_the_clean_images_with_identical_logits(family):
    batch = random_batch(family, 4)
    seen = []
    handle = vision_tower(family).register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[0] if args else kwargs["pixel_values"]).shape[0]),
        with_kwargs=True)
    try:
        shared = read(family, batch, share_prefix=False)
        repeated = read(family, batch, share_vision=False, share_prefix=False)
        packed = read(family, batch)
    finally:
        handle.remove()
    pixels = batch["pixel_values"]
    images = pixels.shape[0] * (pixels.shape[1] if family in ("idefics3", "smolvlm") else 1)  # Idefics: (B, N, ...)
    assert seen == [images, 3 * images, images]  # once on the clean images, once on three copies; packed: once
    torch.testing.assert_close(packed.masked_logits, shared.masked_logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(shared.logits, repeated.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(shared.masked_logits, repeated.masked_logits, rtol=0, atol=1e-6)


def gradients(family, lean, share_prefix=None):
    net = model(family)
    net.zero_grad()
    batch = random_batch(family, 4)
    readout = views(family, share_prefix=share_prefix).generative(net, batch, CANDIDATE_IDS, LAYOUT, training=True,
                                                                  lean_logits=lean)
    (readout.task_loss + kl_uniform(readout.masked_logits.flatten(0, 1)).sum()).backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()
    return readout, grads


@pytest.mark.parametrize("share_prefix", PACKING)
@pytest.mark.parametrize("family", FAMILIES)
def test_lean_logits_give_the_full_paths_loss_penalty_and_gradients(family, share_prefix):
    (lean, lean_grads), (full, full_grads) = (gradients(family, lean, share_prefix) for lean in (True, False))
    torch.testing.assert_close(lean.task_loss, full.task_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lean.masked_logits, full.masked_logits, rtol=1e-6, atol=1e-6)
    assert lean_grads.keys() == full_grads.keys() and len(lean_grads) > 10
    for name in lean_grads:
        torch.testing.assert_close(lean_grads[name], full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("share_prefix", PACKING)
def test_qwen3_vl_deepstack_features_would_leak_the_image_unless_masked(share_prefix):
    batch, other = random_batch("qwen3_vl", 4, seed=0), random_batch("qwen3_vl", 4, seed=1)
    changed = {**batch, "pixel_values": other["pixel_values"]}
    leaky = views("qwen3_vl", share_prefix=share_prefix)
    # as if only the input embeddings were masked: the features belong to no masked modality
    leaky.masker.packed_features = tuple(replace(p, modality="none") for p in leaky.masker.packed_features)
    with torch.no_grad():
        leaked = [leaky.generative(model("qwen3_vl"), b, CANDIDATE_IDS, LAYOUT, training=False)
                  for b in (batch, changed)]
    assert (leaked[0].masked_logits[0] - leaked[1].masked_logits[0]).abs().max() > 1e-3
    masked = [read("qwen3_vl", b, share_prefix=share_prefix) for b in (batch, changed)]
    torch.testing.assert_close(masked[0].masked_logits[0], masked[1].masked_logits[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("family, key", [("qwen2_vl", "mm_token_type_ids"), ("idefics3", "pixel_attention_mask")])
def test_missing_family_inputs_are_named(family, key):
    batch = {k: v for k, v in random_batch(family, 2).items() if k != key}
    with pytest.raises(ValueError, match=f"\\['{key}'\\] is missing"):
        read(family, batch)


def test_videos_are_refused_rather_than_left_unmasked():
    batch = {**random_batch("qwen2_vl", 2), "pixel_values_videos": torch.zeros(4, 24)}
    with pytest.raises(ValueError, match="pixel_values_videos.*images only"):
        read("qwen2_vl", batch)


def test_unsupported_models_are_refused_with_the_supported_list():
    from tiny_models import CLIPWithHead

    with pytest.raises(ValueError, match="supports the vision-language families .*got a 'clip' model"):
        embedding_views(CLIPWithHead().clip, MaskSpec(mask_type="full"), MaskRandomness(0))
    with pytest.raises(ValueError, match="Linear has no `get_image_features`"):
        embedding_views(torch.nn.Linear(2, 2), MaskSpec(mask_type="full"), MaskRandomness(0))
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

    config = LlavaNextConfig(text_config=dict(model_type="llama", vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                              num_attention_heads=4, intermediate_size=37),
                             vision_config=dict(model_type="clip_vision_model", image_size=8, patch_size=2,
                                                hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                                intermediate_size=37))
    with pytest.raises(ValueError, match="supports the vision-language families .*'llava_next'"):
        embedding_views(LlavaNextForConditionalGeneration(config), MaskSpec(mask_type="full"), MaskRandomness(0))


def test_qwen_views_after_a_batch_of_another_size():
    """Qwen caches rope_deltas on the inner model; views of a smaller batch after a larger one still match a plain
    forward."""
    read("qwen2_vl", random_batch("qwen2_vl", 4))
    small = random_batch("qwen2_vl", 2, seed=5)
    torch.testing.assert_close(read("qwen2_vl", small).logits, plain_candidates("qwen2_vl", small), rtol=0, atol=1e-6)


def test_shuffle_and_random_masks_run_on_every_view():
    batch = random_batch("smolvlm", 4, text_mask=True)
    readout = read("smolvlm", batch, mask_type="random", mask_ratio=0.5, mask_fill="shuffle")
    assert readout.masked_logits.shape == (2, 4, 2)
    assert readout.replaced["text"].sum() < batch["synib_text_mask"].sum()  # a random subset of the text mask
    assert not bool((readout.replaced["text"] & ~batch["synib_text_mask"].bool()).any())
    assert readout.classes.tolist() == [VOCAB[a] == CANDIDATE_IDS[1] for a in ("yes", "no", "yes", "no")]


def test_shuffle_on_a_batch_of_one_is_a_clear_error():
    batch = random_batch("smolvlm", 1, text_mask=True)
    with pytest.raises(ValueError, match="mask_fill='shuffle' on the embedding path .* this batch has one example"):
        read("smolvlm", batch, mask_type="random", mask_ratio=0.5, mask_fill="shuffle")
    read("smolvlm", batch, mask_type="random", mask_ratio=0.5, mask_fill="ema_noise")  # the path's default runs
