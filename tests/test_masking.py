import pytest
import torch

from synib_hf.masking import InputMasker, TokenIds
from synib_hf.masking import FeatureMasker, FillStatistics, MaskRandomness, MaskSpec
from tiny_models import mlp_fusion, tiny_tokenizer


def batch(n=8):
    generator = torch.Generator().manual_seed(0)
    tokenizer = tiny_tokenizer()
    encoded = tokenizer(["w1 w2 w3 w4", "w5 w6"] * (n // 2), padding="max_length", max_length=7, return_tensors="pt")
    return {
        "pixel_values": torch.randn(n, 3, 4, 4, generator=generator) + 3.0,
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "other": torch.randn(n, 5, generator=generator),
    }, tokenizer


IMAGE, TEXT = ["pixel_values"], ["input_ids", "attention_mask"]


@pytest.mark.parametrize("mask_type", ["full", "random", "oracle"])
@pytest.mark.parametrize("fill", ["ema_noise", "shuffle", "zero"])
def test_input_masking_changes_only_its_own_modality(mask_type, fill):
    inputs, tokenizer = batch()
    spec = MaskSpec(mask_type=mask_type, mask_fill=fill, oracle_coordinates={"pixel_values": [0, 2]})
    masker = InputMasker(spec, MaskRandomness(0), TokenIds.from_tokenizer(tokenizer))
    view = masker(inputs, IMAGE, training=True)
    assert not torch.equal(view["pixel_values"], inputs["pixel_values"])
    for key in ("input_ids", "attention_mask", "other"):
        assert view[key] is inputs[key]
    if mask_type == "oracle":  # only the named coordinates of the last axis change
        changed = (view["pixel_values"] != inputs["pixel_values"]).flatten(0, -2).any(0)
        assert changed.tolist() == [True, False, True, False]
    if mask_type != "oracle":
        text_view = masker(inputs, TEXT, training=True)
        assert text_view["pixel_values"] is inputs["pixel_values"] and text_view["other"] is inputs["other"]


def test_full_token_masking_keeps_only_special_tokens():
    inputs, tokenizer = batch(2)
    ids = TokenIds.from_tokenizer(tokenizer)
    view = InputMasker(MaskSpec(mask_type="full"), MaskRandomness(0), ids)(inputs, TEXT, training=True)
    special = torch.isin(inputs["input_ids"], torch.tensor(ids.special_ids))
    content = inputs["attention_mask"].bool() & ~special
    assert (view["input_ids"][content] == tokenizer.mask_token_id).all()
    assert torch.equal(view["input_ids"][~content], inputs["input_ids"][~content])
    assert torch.equal(view["attention_mask"].bool(), inputs["attention_mask"].bool() & special)


def test_random_token_masking_hits_about_the_ratio_and_never_special_tokens():
    inputs, tokenizer = batch(200)
    ids = TokenIds.from_tokenizer(tokenizer)
    view = InputMasker(MaskSpec(mask_type="random", mask_ratio=0.3), MaskRandomness(0), ids)(inputs, TEXT, True)
    special = torch.isin(inputs["input_ids"], torch.tensor(ids.special_ids))
    content = inputs["attention_mask"].bool() & ~special
    replaced = view["input_ids"] != inputs["input_ids"]
    assert not (replaced & ~content).any()
    assert 0.25 < replaced.sum() / content.sum() < 0.35


def test_a_row_never_loses_all_attention():
    ids = torch.tensor([[5, 6, 7]])  # no special tokens at all
    view = InputMasker(MaskSpec(mask_type="full"), MaskRandomness(0), TokenIds(fill_id=4, special_ids=(0,)))(
        {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, TEXT, training=True
    )
    assert view["attention_mask"].tolist() == [[1, 0, 0]] and view["input_ids"].tolist() == [[4, 4, 4]]


def test_token_masking_without_tokenizer_names_the_fix():
    inputs, _ = batch()
    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        InputMasker(MaskSpec(), MaskRandomness(0))(inputs, TEXT, training=True)


def test_random_image_mask_is_shared_across_channels_and_uses_the_ratio():
    x = torch.ones(64, 3, 8, 8)
    view = InputMasker(MaskSpec(mask_type="random", mask_ratio=0.5, mask_fill="zero"), MaskRandomness(0))(
        {"pixel_values": x}, IMAGE, training=True
    )["pixel_values"]
    replaced = view == 0
    assert torch.equal(replaced[:, 0], replaced[:, 1]) and torch.equal(replaced[:, 0], replaced[:, 2])
    assert 0.45 < replaced.float().mean() < 0.55


def test_shuffle_takes_values_from_other_examples():
    x = torch.arange(6.0)[:, None].expand(6, 4).contiguous()
    view = InputMasker(MaskSpec(mask_type="full", mask_fill="shuffle"), MaskRandomness(0))({"v": x}, ["v"], True)["v"]
    assert (view[:, 0] != x[:, 0]).all() and sorted(view[:, 0].tolist()) == x[:, 0].tolist()
    with pytest.raises(ValueError, match="this batch has one example and no earlier batch"):
        InputMasker(MaskSpec(mask_type="full", mask_fill="shuffle"), MaskRandomness(0))({"v": x[:1]}, ["v"], True)


def test_ema_statistics_track_the_clean_moments():
    stats = FillStatistics(decay=0.5)
    stats.update("x", torch.zeros(4, 2))
    stats.update("x", torch.full((4, 2), 2.0))
    mean, var = stats.moments("x", torch.zeros(1, 2))
    torch.testing.assert_close(mean, torch.ones(1, 2))
    torch.testing.assert_close(var, torch.ones(1, 2))  # E[x²] = ½·0 + ½·4 = 2, minus mean² = 1: pooled over steps
    with pytest.raises(ValueError, match="feature axis"):
        stats.update("x", torch.zeros(4, 3))


def test_ema_noise_fill_follows_the_feature_statistics():
    x = torch.randn(4096, 2) * torch.tensor([1.0, 3.0]) + torch.tensor([5.0, -2.0])
    masker = InputMasker(MaskSpec(mask_type="full"), MaskRandomness(0))
    view = masker({"v": x}, ["v"], training=True)["v"]
    torch.testing.assert_close(view.mean(0), torch.tensor([5.0, -2.0]), atol=0.2, rtol=0)
    torch.testing.assert_close(view.std(0), torch.tensor([1.0, 3.0]), atol=0.2, rtol=0)
    assert not torch.equal(view, x)


def test_masks_never_touch_the_global_rng():
    inputs = {"v": torch.randn(8, 4)}
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    InputMasker(MaskSpec(mask_type="random"), MaskRandomness(1))(inputs, ["v"], training=True)
    assert torch.equal(torch.rand(3), expected)


def test_learned_masks_are_refused_on_inputs():
    with pytest.raises(ValueError, match="native protocol"):
        InputMasker(MaskSpec(mask_type="learned"), MaskRandomness(0))


def test_unknown_strings_are_errors():
    with pytest.raises(ValueError, match="mask_type='dropout'"):
        MaskSpec(mask_type="dropout")
    with pytest.raises(ValueError, match="mask_fill='mean'"):
        MaskSpec(mask_fill="mean")


def feature_views(mask_type, seed=0, **spec):
    model = mlp_fusion()
    generator = torch.Generator().manual_seed(seed)
    inputs = {"x1": torch.randn(16, 6, generator=generator), "x2": torch.randn(16, 6, generator=generator)}
    labels = (inputs["x1"][:, 0] > 0).long()
    features = {m: model.synib_encode(m, inputs) for m in model.synib_modalities}
    masker = FeatureMasker(
        MaskSpec(mask_type=mask_type, mask_ratio=0.5, oracle_coordinates={"x1": [0, 1], "x2": [0]}, **spec),
        ["x1", "x2"],
        MaskRandomness(seed),
    )
    return model, features, masker(model, inputs, features, labels)


@pytest.mark.parametrize("mask_type", ["full", "random", "learned", "oracle"])
def test_feature_masking_destroys_each_modality(mask_type):
    _, features, masked = feature_views(mask_type)
    for modality in ("x1", "x2"):
        assert masked[modality].shape == features[modality].shape
        assert not torch.allclose(masked[modality], features[modality])


def test_native_views_change_only_their_own_modality():
    """Each masked view is the fusion head on (masked m, every other modality clean), in masked_modalities order."""
    model = mlp_fusion().eval()
    inputs = {"x1": torch.randn(8, 6), "x2": torch.randn(8, 6)}
    masker = FeatureMasker(MaskSpec(mask_type="full", mask_fill="zero"), ["x2", "x1"], MaskRandomness(0))
    with torch.no_grad():
        out = model(**inputs, synib_views=masker)
        clean = {m: model.synib_encode(m, inputs) for m in ("x1", "x2")}
        for index, modality in enumerate(["x2", "x1"]):
            expected = model.synib_fuse({**clean, modality: torch.zeros_like(clean[modality])})[0]
            torch.testing.assert_close(out.masked_logits[index], expected)
        torch.testing.assert_close(out.logits, model.synib_fuse(clean)[0])


def test_learned_and_random_masks_really_differ():
    _, features, random_views = feature_views("random")
    _, _, learned_views = feature_views("learned")
    assert not torch.allclose(random_views["x1"], learned_views["x1"], atol=1e-3)
    # random keeps each feature exactly or replaces it; learned mixes softly with gates strictly inside (0, 1)
    random_kept = torch.isclose(random_views["x1"], features["x1"])
    assert 0.3 < random_kept.float().mean() < 0.7
    assert torch.isclose(learned_views["x1"], features["x1"]).float().mean() < 0.05


def test_learned_gates_close_where_the_unimodal_head_reads():
    """Gates shut the features a unimodal head depends on and stay open elsewhere."""
    from synib_hf.masking import learn_keep_gates

    head = torch.nn.Linear(4, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, 0], head.weight[1, 0] = -1.0, 1.0  # reads only feature 0
        head.bias.zero_()
    features = torch.randn(64, 4)
    labels = (features[:, 0] > 0).long()
    gates = learn_keep_gates(features, labels, head, torch.zeros(64, 4))
    assert gates[:, 0].median() < 0.3 and gates[:, 1:].min() > 0.9
    assert head.weight.grad is None


def test_learned_mask_gives_no_parameter_a_gradient():
    model, _, masked = feature_views("learned")
    assert all(p.grad is None for p in model.parameters())
    masked["x1"].sum().backward()  # the masked feature still carries the encoder's gradient
    assert model.encoders["x1"][0].weight.grad is not None
    assert model.unimodal["x1"].weight.grad is None


def test_detached_masked_features_carry_no_encoder_gradient():
    model, _, masked = feature_views("random", detach_masked_features=True)
    assert not masked["x1"].requires_grad
