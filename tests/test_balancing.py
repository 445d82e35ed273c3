"""The balancing rules (synib_hf/balancing.py) against their equations, on constructed numbers."""

import math

import pytest
import torch

from synib_hf.balancing import (
    gradient_noise,
    mlb_coefficients,
    ogm_coefficients,
    pareto_combination,
    true_class_probability,
)


def test_true_class_probability_for_softmax_and_one_logit_heads():
    softmax = true_class_probability(torch.tensor([[0.0, math.log(3.0)], [2.0, 0.0]]), torch.tensor([1, 1]))
    torch.testing.assert_close(softmax, torch.tensor([0.75, 1 / (1 + math.exp(2.0))]))
    one_logit = true_class_probability(torch.tensor([[math.log(3.0)], [math.log(3.0)]]), torch.tensor([1, 0]))
    torch.testing.assert_close(one_logit, torch.tensor([0.75, 0.25]))
    ignored = true_class_probability(torch.zeros(2, 3), torch.tensor([2, -100]))  # −100 counts in no score
    torch.testing.assert_close(ignored, torch.tensor([1 / 3, 0.0]))


@pytest.mark.parametrize("scores, ahead", [((30.0, 10.0), 0), ((2.0, 5.0), 1)])
def test_ogm_damps_only_the_modality_ahead_by_eq_10(scores, ahead):
    alpha = 0.3
    coefficients = ogm_coefficients(torch.tensor(scores), alpha)
    rho = scores[ahead] / scores[1 - ahead]
    assert coefficients[ahead].item() == pytest.approx(1 - math.tanh(alpha * rho))
    assert coefficients[1 - ahead].item() == 1.0


def test_ogm_leaves_balanced_modalities_alone_and_needs_two():
    assert ogm_coefficients(torch.tensor([4.0, 4.0]), 0.8).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="exactly two"):
        ogm_coefficients(torch.tensor([1.0, 2.0, 3.0]), 0.1)


def test_mlb_speeds_up_the_modality_behind_and_slows_the_one_ahead():
    alpha = 0.7
    scores = torch.tensor([6.0, 2.0, 4.0])
    coefficients = mlb_coefficients(scores, alpha)
    for i in range(3):
        ratio = (scores.sum() - scores[i]).item() / 2 / scores[i].item()  # mean of the others over this one
        assert coefficients[i].item() == pytest.approx(1 + math.tanh(alpha * (ratio - 1)), rel=1e-6)
    assert coefficients[0] < 1 < coefficients[1]  # ahead slowed, behind sped up
    torch.testing.assert_close(mlb_coefficients(torch.tensor([3.0, 3.0]), 5.0), torch.ones(2))


def test_pareto_combination_of_conflicting_gradients_descends_both_losses():
    torch.manual_seed(0)
    multimodal = torch.randn(50)
    unimodal = -0.5 * multimodal + 0.3 * torch.randn(50)  # a conflict: negative cosine
    combined, weight, cosine = pareto_combination(multimodal, unimodal, gamma=1.5)
    assert cosine < 0 and 0 < weight < 1
    # the min-norm point of the segment is orthogonal to it: equal, non-negative inner products with both
    assert combined @ multimodal >= 0 and combined @ unimodal >= 0
    assert (combined @ multimodal).item() == pytest.approx((combined @ unimodal).item(), rel=1e-4)
    # rescaled to γ times the norm of the plain sum (the min-norm point is shorter)
    assert combined.norm().item() == pytest.approx(1.5 * (multimodal + unimodal).norm().item(), rel=1e-5)
    # the plain sum would have increased one of the losses: the rule changed something
    total = multimodal + unimodal
    assert min(total @ multimodal, total @ unimodal) < 0


def test_pareto_combination_sums_gradients_that_agree():
    multimodal, unimodal = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.5, 0.0, 1.0])
    combined, weight, cosine = pareto_combination(multimodal, unimodal, gamma=1.5)
    assert cosine > 0 and weight.item() == 0.5
    torch.testing.assert_close(combined, 1.5 * (multimodal + unimodal))


def test_pareto_weight_is_the_closed_form_min_norm_point():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    _, weight, _ = pareto_combination(a, b)
    grid = torch.linspace(0, 1, 10001)
    norms = torch.stack([(w * a + (1 - w) * b).norm() for w in grid])
    assert weight.item() == pytest.approx(grid[norms.argmin()].item(), abs=1e-4)  # 0.6


def test_gradient_noise_has_the_gradients_spread_and_follows_the_generator():
    gradient = torch.randn(20000) * 3.0
    first = gradient_noise(gradient, torch.Generator().manual_seed(1))
    again = gradient_noise(gradient, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    assert first.std().item() == pytest.approx(gradient.std().item(), rel=0.05)
    assert abs(first.mean().item()) < 0.1
    assert torch.isfinite(gradient_noise(torch.tensor([2.0]), torch.Generator().manual_seed(0))).all()
