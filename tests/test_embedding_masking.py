"""The embedding-level masking hook on a stand-in language model that returns what it receives, so every fill can be
checked in closed form."""

import pytest
import torch
from torch import nn

from synib_hf.masking import EmbeddingMasker, PackedFeatures, modality_positions
from synib_hf.masking import MaskRandomness, MaskSpec


class Echo(nn.Module):
    """A 'language model' returning its (hooked) inputs."""

    def forward(self, inputs_embeds=None, **kwargs):
        return {"inputs_embeds": inputs_embeds, **kwargs}


IMAGE_ID, SPECIAL = 4, (0, 2, 3, 4)
IDS = torch.tensor([[2, 4, 4, 11, 12, 13, 3],
                    [2, 4, 4, 14, 15, 16, 3],
                    [2, 4, 4, 17, 18, 19, 3]])


def positions(ids=IDS, **kwargs):
    return modality_positions(ids, torch.ones_like(ids), [IMAGE_ID], SPECIAL, **kwargs)


def embeds(rows, seed=0, width=5):
    return torch.randn(rows, IDS.shape[1], width, generator=torch.Generator().manual_seed(seed))


def run(masker, inputs, layout=(None, "image", "text"), training=False, where=None, **kwargs):
    model = Echo()
    with masker.views(model, where or positions(), layout, training) as replaced:
        out = model(inputs_embeds=inputs, **kwargs)
    return out, replaced


def masker(**spec):
    return EmbeddingMasker(MaskSpec(**{"mask_type": "full", "mask_fill": "zero", **spec}), MaskRandomness(0))


def test_default_positions_are_image_tokens_and_unsupervised_content_text():
    labels = torch.full_like(IDS, -100)
    labels[:, 5:] = IDS[:, 5:]  # the last word is the answer
    where = positions(labels=labels, readout_positions=torch.tensor([4, 4, 4]))
    assert where["image"][0].int().tolist() == [0, 1, 1, 0, 0, 0, 0]
    # special tokens, the answer (supervised) and the read-out position are never text to mask
    assert where["text"][0].int().tolist() == [0, 0, 0, 1, 0, 0, 0]


def test_image_tokens_are_never_text_even_when_not_registered_as_special():
    where = modality_positions(IDS, torch.ones_like(IDS), [IMAGE_ID], special_ids=(0, 2, 3))  # <image> not special
    assert not bool((where["text"] & where["image"]).any())
    assert where["text"][0].int().tolist() == [0, 0, 0, 1, 1, 1, 0]


def test_full_zero_fill_overwrites_only_each_blocks_modality():
    inputs = embeds(9)
    out, replaced = run(masker(), inputs)
    blocks = out["inputs_embeds"].split(3)
    where = positions()
    assert torch.equal(blocks[0], inputs[:3])  # the clean block is untouched
    for block, source, modality in ((blocks[1], inputs[3:6], "image"), (blocks[2], inputs[6:], "text")):
        assert torch.equal(replaced[modality], where[modality])
        assert block[where[modality]].abs().sum() == 0
        assert torch.equal(block[~where[modality]], source[~where[modality]])


def test_random_masks_a_mask_ratio_share_of_the_modality_and_repeat_with_the_seed():
    ids = torch.cat([IDS[:, :3], torch.randint(10, 40, (3, 400)), IDS[:, -1:]], dim=1)
    where = positions(ids)
    first = EmbeddingMasker(MaskSpec(mask_type="random", mask_ratio=0.3), MaskRandomness(7)).replaced_positions(
        where, ["text"])["text"]
    again = EmbeddingMasker(MaskSpec(mask_type="random", mask_ratio=0.3), MaskRandomness(7)).replaced_positions(
        where, ["text"])["text"]
    assert torch.equal(first, again) and not bool((first & ~where["text"]).any())
    assert abs(first.sum().item() / where["text"].sum().item() - 0.3) < 0.05


def test_shuffle_takes_the_same_place_from_another_example():
    inputs = embeds(6)
    out, _ = run(masker(mask_fill="shuffle"), inputs, layout=(None, "text"))
    masked = out["inputs_embeds"][3:]
    text = positions()["text"]
    sources = []
    for row in range(3):
        matches = [other for other in range(3) if torch.equal(masked[row][text[row]], inputs[3 + other][text[other]])]
        assert matches and matches[0] != row  # another example's text, position for position
        sources.append(matches[0])
    assert sorted(sources) == [0, 1, 2]


def test_shuffle_needs_equal_counts():
    ids = IDS.clone()
    ids[0, 3] = 0  # a special token: one text position fewer in the first example
    with pytest.raises(ValueError, match="mask_fill='shuffle'.*counts here are \\[2, 3, 3\\]"):
        run(masker(mask_fill="shuffle"), embeds(6), layout=(None, "text"), where=positions(ids))


def test_ema_noise_follows_the_clean_statistics_and_freezes_in_evaluation():
    m = masker(mask_fill="ema_noise", fill_ema_decay=0.5)
    constant = torch.full((6, IDS.shape[1], 5), 2.0)
    out, _ = run(m, constant, layout=(None, "image"), training=True)
    assert torch.allclose(out["inputs_embeds"][3:][positions()["image"]], torch.full((6, 5), 2.0))  # σ = 0
    run(m, constant + 4.0, layout=(None, "image"), training=True)  # E[x] = ½·2 + ½·6 = 4, E[x²] = ½·4 + ½·36 = 20
    mean, var = m.statistics.moments("image", constant)
    assert torch.equal(mean, torch.full((1, 5), 4.0)) and torch.equal(var, torch.full((1, 5), 4.0))
    out, _ = run(m, constant - 100.0, layout=(None, "image"), training=False)  # evaluation does not update
    fill = out["inputs_embeds"][3:][positions()["image"]]
    assert abs(fill.mean().item() - 4.0) < 1.5 and 1.0 < fill.std().item() < 3.5  # N(4, 2²)
    restored = masker(mask_fill="ema_noise")
    restored.load_state_dict(m.state_dict())
    assert torch.equal(restored.statistics.moments("image", constant)[1], var)


def test_fills_carry_no_gradient_and_kept_positions_keep_theirs():
    inputs = embeds(6).requires_grad_()
    out, _ = run(masker(mask_fill="shuffle"), inputs, layout=(None, "image"))
    out["inputs_embeds"].sum().backward()
    image = positions()["image"]
    assert bool((inputs.grad[3:][image] == 0).all()) and bool((inputs.grad[3:][~image] == 1).all())
    assert bool((inputs.grad[:3] == 1).all())


@pytest.mark.parametrize("fill", ["zero", "shuffle", "ema_noise"])
def test_packed_features_of_masked_positions_are_masked_with_the_same_donors(fill):
    inputs = embeds(6)
    visual = torch.cat([positions()["image"]] * 2)  # (6, T)
    packed = [inputs[visual].clone(), 10 * inputs[visual].clone()]  # two layers, one row per image position
    m = EmbeddingMasker(MaskSpec(mask_type="full", mask_fill=fill), MaskRandomness(0),
                        [PackedFeatures("deepstack", "visual", "image")])
    out, _ = run(m, inputs, layout=(None, "image"), training=True, deepstack=packed, visual=visual)
    n = int(visual[:3].sum())
    layer0, layer1 = out["deepstack"]
    assert torch.equal(layer0[:n], packed[0][:n]) and torch.equal(layer1[:n], packed[1][:n])  # clean block kept
    if fill == "zero":
        assert layer0[n:].abs().sum() == 0 and layer1[n:].abs().sum() == 0
    elif fill == "shuffle":  # the packed rows moved exactly as the embeddings did
        assert torch.equal(layer0[n:], out["inputs_embeds"][3:][visual[3:]])
        assert torch.equal(layer1[n:], 10 * out["inputs_embeds"][3:][visual[3:]])
    else:
        assert not torch.equal(layer0[n:], packed[0][n:]) and layer1[n:].std() > 3 * layer0[n:].std()


def test_hook_is_removed_and_bad_calls_are_explained():
    model = Echo()
    with masker().views(model, positions(), (None, "image"), False):
        with pytest.raises(ValueError, match="expect 2 blocks of 3"):
            model(inputs_embeds=embeds(3))
        with pytest.raises(ValueError, match="without `inputs_embeds`"):
            model(input_ids=IDS)
    assert torch.equal(model(inputs_embeds=embeds(6))["inputs_embeds"], embeds(6))
    with pytest.raises(ValueError, match="mask_type='learned' is not available"):
        EmbeddingMasker(MaskSpec(mask_type="learned"), MaskRandomness(0))


def test_position_errors_name_the_fix():
    with pytest.raises(ValueError, match="synib_text_mask has shape"):
        positions(text_mask=torch.ones(3, 2))
    with pytest.raises(ValueError, match="marks image-token positions"):
        positions(text_mask=torch.ones_like(IDS))
    no_text = IDS.clone()
    no_text[1, 3:6] = 0
    with pytest.raises(ValueError, match=r"Examples \[1\] .* no text position"):
        positions(no_text)
    no_image = IDS.clone()
    no_image[2, 1:3] = 11
    with pytest.raises(ValueError, match=r"Examples \[2\] .* no image position"):
        positions(no_image)
