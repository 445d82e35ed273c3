"""Packed views (issue 25) on tiny random VLMs: a shared causal prefix gives the unshared computation's losses, logits
and every parameter's gradient; a dropped image view equals the prompt with the image removed and positions kept;
families and options where neither is exact are refused with the reason; the default text view masks the user's
content, found from each chat template's structure."""

import functools

import pytest
import torch

from synib_hf.generative import candidate_token_ids
from synib_hf.masking import MaskRandomness, MaskSpec, modality_positions
from synib_hf.masking.embedding_masking import PromptLayout
from synib_hf.masking.view_packing import pack_views, packed_attention
from synib_hf.models.vlm import embedding_views, prompt_layout
from synib_hf.models.vlm.families import inner_model
from synib_hf.penalties import kl_uniform
from tiny_vlms import (
    CANDIDATES,
    CHAT_FAMILIES,
    CHAT_VOCAB,
    IMAGE,
    chat_rows,
    random_batch,
    tiny_chat_processor,
    tiny_vlm,
    tiny_vlm_tokenizer,
)


CAUSAL = ("llava", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics3", "smolvlm")
LAYOUT = (None, "image", "text")
TOKENIZER = tiny_vlm_tokenizer()
CANDIDATE_IDS = candidate_token_ids(TOKENIZER, CANDIDATES)


@functools.lru_cache(maxsize=None)
def model(family):
    return tiny_vlm(family)


def builder(family, share_prefix, drop_image=False, **spec):
    spec = MaskSpec(**{"mask_type": "full", "mask_fill": "zero", **spec})
    return embedding_views(model(family), spec, MaskRandomness(0), TOKENIZER.all_special_ids,
                           share_prefix=share_prefix, drop_image=drop_image)


def step(family, batch, layout=LAYOUT, **options):
    """One training read-out and its backward: (readout, {parameter: gradient})."""
    net = model(family)
    net.zero_grad()
    readout = builder(family, **options).generative(net, batch, CANDIDATE_IDS, layout, training=True)
    (readout.task_loss + kl_uniform(readout.masked_logits.flatten(0, 1)).sum()).backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()
    return readout, grads


def assert_same_step(shared, unshared):
    (a, grads_a), (b, grads_b) = shared, unshared
    torch.testing.assert_close(a.task_loss, b.task_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.masked_logits, b.masked_logits, rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name, grad in grads_a.items():  # 1e-5 of the parameter's largest gradient (zero-in-theory ones: ~1e-10)
        error = (grad - grads_b[name]).abs().max().item()
        assert error <= 1e-5 * grads_b[name].abs().max().item() + 1e-9, (name, error)


@pytest.mark.parametrize("family", CAUSAL)
def test_shared_prefix_gives_the_unshared_losses_logits_and_gradients(family):
    batch = random_batch(family, 4)
    assert_same_step(step(family, batch, share_prefix=True), step(family, batch, share_prefix=False))


@pytest.mark.parametrize("fill", ["shuffle", "ema_noise"])
def test_shared_prefix_with_random_fills_and_masks_draws_the_same_views(fill):
    batch = random_batch("smolvlm", 4, text_mask=True)
    options = dict(mask_type="random", mask_ratio=0.5, mask_fill=fill)
    assert_same_step(step("smolvlm", batch, share_prefix=True, **options),
                     step("smolvlm", batch, share_prefix=False, **options))


@pytest.mark.parametrize("family", CAUSAL)
def test_dropped_image_view_with_and_without_a_shared_prefix(family):
    batch = random_batch(family, 4)
    assert_same_step(step(family, batch, share_prefix=True, drop_image=True),
                     step(family, batch, share_prefix=False, drop_image=True))


def answers(batch):
    return (batch["labels"] != -100).int().argmax(dim=1) - 1


def without_the_image(family, batch):
    """The candidates' logits at the answer position of the prompt with the image tokens removed and every other
    token's position ids kept (M-RoPE's three axes from the model's own rope index), by hand."""
    net = model(family)
    inner = inner_model(net)
    ids = batch["input_ids"]
    keep = ids != IMAGE
    size = ids.shape[0]
    if family.startswith("qwen"):
        positions, _ = inner.get_rope_index(ids, image_grid_thw=batch["image_grid_thw"],
                                            attention_mask=batch["attention_mask"],
                                            mm_token_type_ids=batch["mm_token_type_ids"])  # (3, B, T)
        positions = positions[:, keep].view(3, size, -1)
    else:
        positions = torch.arange(ids.shape[1]).expand_as(ids)[keep].view(size, -1)
    text = ids[keep].view(size, -1)
    # an all-ones mask: without it the gap in the position ids would be read as packed sequences
    hidden = inner.get_decoder()(inputs_embeds=net.get_input_embeddings()(text), position_ids=positions,
                                 attention_mask=torch.ones_like(text)).last_hidden_state
    readout = answers(batch) - (~keep).sum(dim=1)  # every image token precedes the answer
    logits = net.get_output_embeddings()(hidden[torch.arange(size), readout])
    return logits[:, list(CANDIDATE_IDS)]


@pytest.mark.parametrize("family", CAUSAL)
def test_dropped_image_view_equals_the_prompt_without_the_image_and_positions_kept(family):
    batch = random_batch(family, 4)
    with torch.no_grad():
        for share_prefix in (True, False):
            readout = builder(family, share_prefix, drop_image=True).generative(
                model(family), batch, CANDIDATE_IDS, LAYOUT, training=False)
            torch.testing.assert_close(readout.masked_logits[0], without_the_image(family, batch), rtol=0, atol=1e-5)
            assert (readout.masked_logits[0] - readout.logits).abs().max() > 1e-4  # the image did matter
        clean = model(family)(**batch, use_cache=False).logits[torch.arange(4), answers(batch)]
    torch.testing.assert_close(readout.logits, clean[:, list(CANDIDATE_IDS)], rtol=0, atol=1e-6)
    assert readout.replaced["image"].equal(batch["input_ids"] == IMAGE)


def test_evaluation_views_alone_share_their_prefix_too():
    """Without the clean view (evaluation), the masked views still equal their blocks."""
    batch = random_batch("qwen2_vl", 4)
    with torch.no_grad():
        packed, blocks = (builder("qwen2_vl", share).generative(model("qwen2_vl"), batch, CANDIDATE_IDS,
                                                                 ("image", "text"), training=False)
                          for share in (True, False))
    torch.testing.assert_close(packed.masked_logits, blocks.masked_logits, rtol=0, atol=1e-6)


def test_packed_rows_and_their_mask():
    attention = torch.tensor([[0, 1, 1, 1, 1]])  # left padding
    differs = {"image": torch.tensor([[0, 0, 1, 0, 0]]).bool(), "text": torch.tensor([[0, 0, 0, 1, 0]]).bool()}
    rows = pack_views(attention, LAYOUT, differs, {"image": differs["image"]})
    # clean 1..4 (padding left out), image view from 2 without 2, text view from 3
    assert rows.source.tolist() == [[1, 2, 3, 4, 3, 4, 3, 4]]
    assert rows.segment.tolist() == [[0, 0, 0, 0, 1, 1, 2, 2]]
    mask = packed_attention(rows, "sdpa", torch.float32)[0, 0].int()
    assert mask[4].tolist() == [1, 0, 0, 0, 1, 0, 0, 0]  # image view at 3: the clean prefix before 2, itself
    assert mask[7].tolist() == [1, 1, 0, 0, 0, 0, 1, 1]  # text view at 4: the clean prefix before 3, its own past
    additive = packed_attention(rows, "eager", torch.float32)[0, 0]
    assert additive[4, 1] == torch.finfo(torch.float32).min and additive[4, 0] == 0
    with pytest.raises(ValueError, match="'flash_attention_2' attention implementation does not take"):
        packed_attention(rows, "flash_attention_2", torch.float32)


# ---- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family, why", [("paligemma", "prefix-LM attention is bidirectional"),
                                         ("gemma3", "attend to each other bidirectionally")])
def test_families_without_a_causal_prefix_refuse_packing_and_run_blocks_by_default(family, why):
    with pytest.raises(ValueError, match=f"share_view_prefix=True, but .* cannot share it: .*{why}"):
        builder(family, share_prefix=True)
    with pytest.raises(ValueError, match=f"drop_masked_image=True drops .*{why}"):
        builder(family, share_prefix=None, drop_image=True)
    assert builder(family, share_prefix=None).share_prefix is False  # the default runs the views as blocks


@pytest.mark.parametrize("options, why", [
    (dict(drop_image=True, mask_type="random"), "mask_type='random' keeps part of the image"),
    (dict(drop_image=True, masked_modalities=["text"]), "'image' is not in masked_modalities"),
    (dict(share_prefix=True, view_batching="sequential"), "view_batching='sequential' runs each view alone"),
])
def test_options_that_cannot_pack_are_refused_with_the_reason(options, why):
    spec = MaskSpec(mask_type=options.pop("mask_type", "full"), mask_fill="zero")
    with pytest.raises(ValueError, match=why):
        embedding_views(model("llava"), spec, MaskRandomness(0), candidate_ids=CANDIDATE_IDS, **options)


def test_flash_attention_and_sliding_windows_fall_back_to_blocks_or_refuse():
    net = tiny_vlm("llava")
    net.model.language_model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="'flash_attention_2' attention takes no 4-D mask"):
        embedding_views(net, MaskSpec(mask_type="full"), MaskRandomness(0), share_prefix=True)
    assert not embedding_views(net, MaskSpec(mask_type="full"), MaskRandomness(0)).share_prefix
    net.model.language_model.config._attn_implementation = "sdpa"
    net.model.language_model.config.layer_types = ["sliding_attention", "full_attention"]
    with pytest.raises(ValueError, match="sliding-window layers"):
        embedding_views(net, MaskSpec(mask_type="full"), MaskRandomness(0), share_prefix=True)


def test_the_classification_variant_refuses_packing():
    from synib_hf import VLMClassificationConfig, VLMForSequenceClassification
    from tiny_vlms import tiny_vlm_config

    classifier = VLMForSequenceClassification(VLMClassificationConfig(vlm_config=tiny_vlm_config("llava")))
    with pytest.raises(ValueError, match="reads its head at positions of the unpacked sequence"):
        embedding_views(classifier, MaskSpec(mask_type="full"), MaskRandomness(0), share_prefix=True)
    assert not embedding_views(classifier, MaskSpec(mask_type="full"), MaskRandomness(0)).share_prefix


# ---- the default text view: the user's content -----------------------------------------------------------------------


def test_default_text_positions_are_the_content_between_the_templates_words():
    #        sys  USER img  img  nl   q1   q2   END  ASSIST  ans  eos
    ids = torch.tensor([[20, 21, 4, 4, 22, 23, 24, 25, 26, 27, 3]])
    labels = torch.full_like(ids, -100)
    labels[0, -2:] = ids[0, -2:]
    layout = PromptLayout(image_trailer=1, answer_header=2)
    positions = modality_positions(ids, torch.ones_like(ids), [4], special_ids=[3], labels=labels,
                                   readout_positions=torch.tensor([8]), prompt_layout=layout)
    assert positions["text"].int().tolist() == [[0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]]
    bare = modality_positions(ids, torch.ones_like(ids), [4], special_ids=[3], labels=labels,
                              readout_positions=torch.tensor([8]))
    assert bare["text"].int().tolist() == [[0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]]  # after the image, before the answer


@pytest.mark.parametrize("family, expected", [("llava", PromptLayout(1, 1)), ("qwen2_vl", PromptLayout(0, 3)),
                                              ("smolvlm", PromptLayout(0, 2))])
def test_each_chat_templates_layout_and_the_text_view_it_gives(family, expected):
    processor = tiny_chat_processor(family)
    assert prompt_layout(processor) == expected
    rows = chat_rows(3, words=3)
    batch = processor.apply_chat_template([r["messages"] for r in rows], images=[r["images"] for r in rows],
                                          tokenize=True, return_dict=True, return_tensors="pt", padding=True,
                                          return_assistant_tokens_mask=True)
    labels = batch["input_ids"].masked_fill(batch.pop("assistant_masks") == 0, -100)
    special = processor.tokenizer.all_special_ids
    positions = modality_positions(batch["input_ids"], batch["attention_mask"], [CHAT_VOCAB["<image>"],
                                   CHAT_VOCAB["<|image_pad|>"]], special, labels=labels,
                                   readout_positions=answers({"labels": labels}), prompt_layout=expected)
    words = {i for token, i in CHAT_VOCAB.items() if token.startswith("w")}
    question = torch.isin(batch["input_ids"], torch.tensor(sorted(words)))
    assert positions["text"].equal(question)  # exactly the three question words of every row
    first = positions["text"].int().argmax(dim=1)
    assert bool((first > positions["image"].int().cumsum(1).argmax(1)).all())  # the shared prefix holds the image


def test_no_chat_template_gives_the_plain_layout():
    assert prompt_layout(TOKENIZER) == PromptLayout() and prompt_layout(None) == PromptLayout()
