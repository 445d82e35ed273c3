import math

import pytest
import torch

from synib_hf.penalties import bernoulli_kl_half, entropy, gaussian, kl_uniform, max_probability, unimodal_anchor
from synib_hf.tasks import classification_loss


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_kl_uniform_is_zero_for_uniform_and_log_c_for_certain(classes):
    uniform = torch.zeros(4, classes)
    certain = torch.zeros(4, classes)
    certain[:, 1] = 60.0
    torch.testing.assert_close(kl_uniform(uniform), torch.zeros(4))
    torch.testing.assert_close(kl_uniform(certain), torch.full((4,), math.log(classes)))


def test_kl_uniform_matches_the_definition():
    logits = torch.tensor([[1.0, -0.5, 2.0]])
    p = logits.softmax(-1)
    expected = (p * (p * 3).log()).sum(-1)  # KL(p ‖ 1/3)
    torch.testing.assert_close(kl_uniform(logits), expected)


def test_single_logit_head_is_a_bernoulli():
    z = torch.tensor([[0.0], [40.0], [1.3]])
    p = torch.sigmoid(torch.tensor(1.3))
    h = -(p * p.log() + (1 - p) * (1 - p).log())
    torch.testing.assert_close(kl_uniform(z), torch.stack([torch.tensor(0.0), torch.tensor(math.log(2)), math.log(2) - h]))
    torch.testing.assert_close(max_probability(z)[:2], torch.tensor([0.5, 1.0]))


def test_entropy_and_max_probability_of_uniform():
    torch.testing.assert_close(entropy(torch.zeros(2, 4)), torch.full((2,), math.log(4)))
    torch.testing.assert_close(max_probability(torch.zeros(2, 4)), torch.full((2,), 0.25))


def test_gaussian_closed_form():
    mean = torch.tensor([[1.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    expected = 0.5 * ((1 + 1 - 1 - 0) + (2 + 4 - 1 - math.log(2.0)))
    torch.testing.assert_close(gaussian(mean, logvar), torch.tensor([expected]))
    torch.testing.assert_close(gaussian(torch.zeros(3, 2), torch.zeros(3, 2)), torch.zeros(3))


def test_gaussian_rejects_mismatched_logvar():
    with pytest.raises(ValueError, match="one log-variance per logit"):
        gaussian(torch.zeros(2, 3), torch.zeros(2, 2))


def test_unimodal_anchor_is_kl_and_stops_gradient_into_the_anchor():
    anchor = torch.tensor([[2.0, 0.0]], requires_grad=True)
    masked = torch.tensor([[0.0, 1.0]], requires_grad=True)
    value = unimodal_anchor(masked, anchor)
    p, q = anchor.softmax(-1), masked.softmax(-1)
    torch.testing.assert_close(value, (p * (p / q).log()).sum(-1).detach())
    value.sum().backward()
    assert anchor.grad is None and masked.grad.abs().sum() > 0
    torch.testing.assert_close(unimodal_anchor(anchor.detach(), anchor.detach()), torch.zeros(1))


def test_penalties_are_float32_under_bf16_inputs():
    logits = torch.zeros(2, 3, dtype=torch.bfloat16)
    assert kl_uniform(logits).dtype == torch.float32


def test_classification_loss_rejects_multilabel_targets():
    with pytest.raises(ValueError, match="one integer class id per example"):
        classification_loss(torch.zeros(2, 3), torch.zeros(2, 3))


def test_bernoulli_kl_half_is_log2_minus_entropy_averaged_over_labels():
    z = torch.tensor([[0.0, 1.3, 40.0]])
    p = torch.sigmoid(z)
    per_label = math.log(2) + p * p.log() + (1 - p) * torch.log1p(-p).nan_to_num(0.0)
    torch.testing.assert_close(bernoulli_kl_half(z), per_label.mean(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(bernoulli_kl_half(z[:, 1:2]), kl_uniform(z[:, 1:2]))  # one label: the same penalty


def test_predicted_classes_reads_one_logit_and_softmax_heads_in_torch_and_numpy():
    import numpy as np

    from synib_hf import predicted_classes

    assert predicted_classes(torch.tensor([[0.5], [-0.5], [0.0]])).tolist() == [1, 0, 0]
    assert predicted_classes(np.array([[0.5], [-0.5]])).tolist() == [1, 0]
    assert predicted_classes(np.array([[0.1, 0.9, 0.0], [2.0, 0.0, 1.0]])).tolist() == [1, 0]
