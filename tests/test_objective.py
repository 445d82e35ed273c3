"""SynIB's objective as a pure function: hand-computed losses and metrics, with no model and no Trainer."""

import math

import pytest
import torch

from synib_hf.objective import (
    VIEW_LOSSES,
    Views,
    check_finite,
    select_masked_modalities,
    synib_objective,
    valid_mean,
    view_losses,
)
from synib_hf.tasks import Task


SINGLE = Task("single_label_classification", 2)
LOG2 = math.log(2.0)


def two_views(**extra) -> Views:
    """Two rows; image view: row 0 uniform, row 1 certain; text view: both uniform."""
    masked = torch.tensor([[[0.0, 0.0], [50.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])  # (M=2, B=2, C=2)
    defaults = dict(task=SINGLE, modalities=("image", "text"), masked=masked, valid=torch.tensor([True, True]),
                    targets=torch.tensor([0, 1]), task_loss=torch.tensor(0.5), scores=torch.zeros(2, 2))
    return Views(**{**defaults, **extra})


def test_kl_uniform_by_hand():
    out = synib_objective(two_views(), weight=2.0)
    torch.testing.assert_close(out.view_losses, torch.tensor([[0.0, LOG2], [0.0, 0.0]]))
    # 0.5 + 2 · (mean(0, log 2) + mean(0, 0))
    assert out.loss.item() == pytest.approx(0.5 + 2.0 * LOG2 / 2, rel=1e-6)
    assert out.penalty.item() == pytest.approx(LOG2, rel=1e-6)


def test_rows_that_do_not_count_leave_the_penalty_and_every_metric():
    out = synib_objective(two_views(valid=torch.tensor([True, False])), weight=1.0, accuracy=True)
    assert out.penalty.item() == 0.0  # the certain row is the ignored one
    for key, column in out.metrics.items():
        assert not math.isnan(column[0].item()) and math.isnan(column[1].item()), key
    assert out.metrics["masked_max_prob_image"][0].item() == pytest.approx(0.5)


def test_weight_zero_adds_nothing_but_the_metrics_remain():
    out = synib_objective(two_views(), weight=0.0, accuracy=True)
    assert out.loss.item() == 0.5
    assert set(out.metrics) >= {"task_loss", "penalty_image", "penalty_text", "masked_accuracy_text", "weight"}


def test_the_penalty_divisor_divides_only_the_penalty():
    full = synib_objective(two_views(), weight=2.0)
    halved = synib_objective(two_views(), weight=2.0, penalty_divisor=2)
    assert halved.loss.item() == pytest.approx(0.5 + full.penalty.item() / 2, rel=1e-6)


def test_gaussian_anchor_and_cross_entropy_by_hand():
    logvar = torch.zeros(2, 2, 2)
    out = synib_objective(two_views(masked_logvar=logvar), weight=1.0, view_loss="gaussian")
    # ½ Σ_c (1 + μ² − 1 − 0) = ½ Σ μ²: row 1 of the image view has μ = (50, 0)
    torch.testing.assert_close(out.view_losses, torch.tensor([[0.0, 1250.0], [0.0, 0.0]]))
    anchors = torch.tensor([[[0.0, 0.0], [50.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    out = synib_objective(two_views(anchors=anchors), weight=1.0, view_loss="unimodal_anchor")
    torch.testing.assert_close(out.view_losses, torch.zeros(2, 2), atol=1e-6, rtol=0)  # each view equals its anchor
    out = synib_objective(two_views(), weight=1.0, view_loss="cross_entropy")
    # image view: row 0 uniform (log 2); row 1 predicts class 0 with certainty but the label is 1 (50)
    torch.testing.assert_close(out.view_losses, torch.tensor([[LOG2, 50.0], [LOG2, LOG2]]))


def test_precomputed_view_losses_are_added_as_they_are():
    penalties = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    out = synib_objective(two_views(penalties=penalties), weight=1.0)
    assert out.loss.item() == pytest.approx(0.5 + 2.0)
    assert out.view_losses is penalties


def test_clear_errors():
    with pytest.raises(ValueError, match="needs the clean view's task loss"):
        synib_objective(two_views(task_loss=None), weight=1.0)
    with pytest.raises(ValueError, match="is not one of"):
        view_losses(two_views(), "hinge")
    with pytest.raises(ValueError, match="needs the views' masked_logvar"):
        view_losses(two_views(), "gaussian")
    with pytest.raises(ValueError, match="weight must be a finite number"):
        synib_objective(two_views(), weight=float("nan"))
    with pytest.raises(ValueError, match=r"Non-finite logits at step 3 \(train\) in the masked-text view"):
        bad = two_views().masked.clone()
        bad[1, 0, 0] = float("inf")
        check_finite(two_views(masked=bad), where="at step 3 (train)")
    with pytest.raises(ValueError, match=r"masked_modalities names \['audio'\]"):
        select_masked_modalities(["audio"], ("image", "text"))
    assert select_masked_modalities(None, ("image", "text")) == ("image", "text")
    assert "cross_entropy" in VIEW_LOSSES


def test_valid_mean_is_a_mean_over_the_rows_that_count():
    torch.testing.assert_close(valid_mean(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([True, True, False])),
                               torch.tensor([2.0]))
    assert valid_mean(torch.tensor([5.0]), torch.tensor([False])).item() == 0.0
