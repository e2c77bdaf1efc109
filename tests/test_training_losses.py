"""The training losses, worked by hand on tiny tensors.

Each loss is the Charbonnier distance sqrt(d^2 + eps^2), eps = 1e-6, averaged
over the unknown (128) pixels of the whole batch (and the 3 channels for the
compositional loss). Tensors are (N, C, H, W); most examples are 1x2 pixels.
"""

from __future__ import annotations

import pytest
import torch

from dim_studio.training import losses
from dim_studio.training.losses import (
    EPS,
    alpha_loss,
    composition_loss,
    per_sample_alpha_loss,
    stage_loss,
    unknown_mask,
)


def t(rows, *, grad: bool = False) -> torch.Tensor:
    """A float32 tensor from nested lists; (N, C, H, W)."""
    x = torch.tensor(rows, dtype=torch.float32)
    return x.requires_grad_(grad)


def tri(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.uint8)


def rgb(*pixels) -> torch.Tensor:
    """(1, 3, 1, W) from W (r, g, b) pixels."""
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 3, 1, len(pixels))


def test_eps_is_the_papers() -> None:
    assert EPS == 1e-6
    assert losses.STAGES == (1, 2, 3)


def test_unknown_mask_is_exactly_128() -> None:
    trimap = tri([[[[0, 127, 128, 129, 255]]]])
    assert unknown_mask(trimap).tolist() == [[[[0.0, 0.0, 1.0, 0.0, 0.0]]]]
    assert unknown_mask(trimap).dtype == torch.float32


def test_alpha_loss_counts_unknown_pixels_only() -> None:
    pred = t([[[[0.5, 0.2], [0.9, 0.0]]]])
    gt = t([[[[0.25, 0.2], [0.0, 1.0]]]])
    trimap = tri([[[[128, 128], [0, 255]]]])
    # unknown pixels: |0.5 - 0.25| = 0.25 -> sqrt(0.0625 + 1e-12) = 0.25
    #                 |0.2 - 0.2|  = 0    -> sqrt(0 + 1e-12)      = 1e-6
    # mean over the 2 unknown pixels: (0.25 + 1e-6) / 2 = 0.1250005
    # (the known pixels' errors 0.9 and 1.0 would make it (0.25 + 1e-6 + 1.9) / 4 = 0.5375)
    loss = alpha_loss(pred, gt, unknown_mask(trimap))
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert float(loss) == pytest.approx(0.1250005, abs=1e-7)


def test_alpha_loss_of_a_perfect_prediction_is_eps() -> None:
    # every unknown pixel exact: sqrt(0 + eps^2) = eps, the mean of eps is eps
    pred = t([[[[0.3, 0.6, 0.9]]]])
    trimap = tri([[[[128, 128, 0]]]])
    loss = alpha_loss(pred, pred.detach().clone(), unknown_mask(trimap))
    assert float(loss) == pytest.approx(1e-6, rel=1e-3)


def test_composition_loss_over_three_channels() -> None:
    # pixel 0 (unknown): alpha 0.5, F = (1, 0, 0.5), B = (0, 1, 0.5), image (0.25, 0.75, 0.5)
    #   recomposed 0.5 F + 0.5 B = (0.5, 0.5, 0.5); differences (0.25, -0.25, 0)
    #   Charbonnier (0.25, 0.25, 1e-6); mean over 1 pixel x 3 channels = (0.5 + 1e-6) / 3
    # pixel 1 (known): alpha 1, F = white, image black: an error of 1 per channel, not counted
    pred = t([[[[0.5, 1.0]]]])
    fg = rgb((1.0, 0.0, 0.5), (1.0, 1.0, 1.0))
    bg = rgb((0.0, 1.0, 0.5), (0.0, 0.0, 0.0))
    image = rgb((0.25, 0.75, 0.5), (0.0, 0.0, 0.0))
    mask = unknown_mask(tri([[[[128, 255]]]]))
    loss = composition_loss(pred, fg, bg, image, mask)
    assert float(loss) == pytest.approx((0.5 + 1e-6) / 3, abs=1e-7)


def test_sample_without_unknown_pixels_adds_nothing() -> None:
    # sample 0: two unknown pixels, errors 0.3 and 0.1 -> (0.3 + 0.1) / 2 = 0.2
    # sample 1: no unknown pixel, errors of 1 everywhere -> not counted, and not a zero
    #           averaged in either (that would give (0.2 + 0) / 2 = 0.1)
    pred = t([[[[0.8, 0.6]]], [[[1.0, 0.0]]]])
    gt = t([[[[0.5, 0.5]]], [[[0.0, 1.0]]]])
    trimap = tri([[[[128, 128]]], [[[0, 255]]]])
    mask = unknown_mask(trimap)
    assert float(alpha_loss(pred, gt, mask)) == pytest.approx(0.2, abs=1e-6)
    per = per_sample_alpha_loss(pred, gt, mask)
    assert per.shape == (2,)
    assert per.tolist() == pytest.approx([0.2, 0.0], abs=1e-6)


def test_batch_mean_is_over_pixels_not_samples() -> None:
    # sample 0: 1 unknown pixel, error 0.4; sample 1: 3 unknown pixels, exact (eps each)
    # batch: (0.4 + 3e-6) / 4 = 0.10000075 (a mean of per-sample means would be 0.2000005)
    pred = t([[[[0.4, 0.0, 0.0]]], [[[0.1, 0.2, 0.3]]]])
    gt = t([[[[0.0, 0.9, 0.9]]], [[[0.1, 0.2, 0.3]]]])
    trimap = tri([[[[128, 0, 0]]], [[[128, 128, 128]]]])
    mask = unknown_mask(trimap)
    assert float(alpha_loss(pred, gt, mask)) == pytest.approx(0.10000075, abs=1e-7)
    assert per_sample_alpha_loss(pred, gt, mask).tolist() == pytest.approx([0.4, 1e-6], abs=1e-7)


def test_all_known_batch_is_zero_with_finite_gradient() -> None:
    pred = t([[[[0.9, 0.1]]], [[[0.2, 0.7]]]], grad=True)
    gt = t([[[[0.0, 1.0]]], [[[1.0, 0.0]]]])
    fg = torch.rand(2, 3, 1, 2)
    bg = torch.rand(2, 3, 1, 2)
    image = torch.rand(2, 3, 1, 2)
    trimap = tri([[[[0, 255]]], [[[255, 0]]]])
    batch = {"alpha": gt, "fg": fg, "bg": bg, "image": image, "trimap": trimap}
    for stage in (1, 2, 3):
        pred.grad = None
        total, terms = stage_loss({"stage1": pred, "refined": pred}, batch, stage)
        assert total.item() == 0.0
        assert all(float(v) == 0.0 for v in terms.values())
        total.backward()
        assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert alpha_loss(pred, gt, unknown_mask(trimap)).item() == 0.0
    assert composition_loss(pred, fg, bg, image, unknown_mask(trimap)).item() == 0.0


@pytest.fixture
def staged():
    """Two pixels, pixel 0 unknown (gt alpha 0.5), pixel 1 known; stage 1 says 0.7, refined 0.4."""
    # F = (1, 0, 0.5), B = (0, 0, 0.5): the image at alpha 0.5 is (0.5, 0, 0.5)
    batch = {
        "alpha": t([[[[0.5, 1.0]]]]),
        "fg": rgb((1.0, 0.0, 0.5), (0.3, 0.3, 0.3)),
        "bg": rgb((0.0, 0.0, 0.5), (0.9, 0.9, 0.9)),
        "image": rgb((0.5, 0.0, 0.5), (0.3, 0.3, 0.3)),
        "trimap": tri([[[[128, 255]]]]),
    }
    stage1 = t([[[[0.7, 0.0]]]], grad=True)  # pixel 1 is wildly wrong but known
    refined = t([[[[0.4, 0.0]]]], grad=True)
    return {"stage1": stage1, "refined": refined}, batch


# stage 1 at pixel 0: alpha |0.7 - 0.5| = 0.2
#   recomposed 0.7 F + 0.3 B = (0.7, 0, 0.15 + 0.35 = 0.5); minus the image: (0.2, 0, 0)
#   comp = (0.2 + 1e-6 + 1e-6) / 3 = 0.06666733
# refined at pixel 0: |0.4 - 0.5| = 0.1
ALPHA1, COMP1, REFINE = 0.2, (0.2 + 2e-6) / 3, 0.1


def test_stage1_is_half_alpha_half_composition(staged) -> None:
    outputs, batch = staged
    total, terms = stage_loss({"stage1": outputs["stage1"]}, batch, 1)  # a stage-1 net has no refiner
    assert set(terms) == {"alpha", "comp"}
    assert float(terms["alpha"]) == pytest.approx(ALPHA1, abs=1e-6)
    assert float(terms["comp"]) == pytest.approx(COMP1, abs=1e-6)
    assert total.item() == pytest.approx(0.5 * ALPHA1 + 0.5 * COMP1, abs=1e-6)  # 0.13333367
    assert not any(v.requires_grad for v in terms.values())


def test_stage2_is_the_refined_alpha_loss(staged) -> None:
    outputs, batch = staged
    total, terms = stage_loss(outputs, batch, 2)
    assert set(terms) == {"refine"}
    assert total.item() == pytest.approx(REFINE, abs=1e-6)
    total.backward()
    assert outputs["stage1"].grad is None  # the encoder-decoder's output is not trained
    assert outputs["refined"].grad is not None
    # and stage 2 needs no stage-1 output at all
    total2, _ = stage_loss({"refined": outputs["refined"]}, batch, 2)
    assert total2.item() == total.item()


def test_stage3_is_both_summed(staged) -> None:
    outputs, batch = staged
    total, terms = stage_loss(outputs, batch, 3)
    assert set(terms) == {"alpha", "comp", "refine"}
    assert total.item() == pytest.approx(0.5 * ALPHA1 + 0.5 * COMP1 + REFINE, abs=1e-6)  # 0.23333367
    total.backward()
    assert outputs["stage1"].grad is not None and outputs["refined"].grad is not None


def test_stage1_gradient_points_towards_the_truth(staged) -> None:
    outputs, batch = staged
    total, _ = stage_loss(outputs, batch, 1)
    total.backward()
    grad = outputs["stage1"].grad
    # pixel 0 predicted too high (0.7 > 0.5): the gradient pushes it down; pixel 1 is known: none
    assert float(grad[0, 0, 0, 0]) > 0
    assert float(grad[0, 0, 0, 1]) == 0.0
    assert outputs["refined"].grad is None


def test_unknown_stage_is_refused(staged) -> None:
    outputs, batch = staged
    with pytest.raises(ValueError, match="stage"):
        stage_loss(outputs, batch, 4)


def test_losses_are_float32_for_low_precision_predictions(staged) -> None:
    outputs, batch = staged
    low = {k: v.detach().to(torch.bfloat16) for k, v in outputs.items()}
    total, terms = stage_loss(low, batch, 3)
    assert total.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in terms.values())
    # bf16 rounds 0.7 and 0.4 to 0.69921875 and 0.400390625: close to the float32 result
    assert total.item() == pytest.approx(0.5 * ALPHA1 + 0.5 * COMP1 + REFINE, abs=3e-3)


def test_per_sample_loss_is_detached() -> None:
    pred = t([[[[0.9, 0.5]]]], grad=True)
    gt = t([[[[0.5, 0.5]]]])
    mask = unknown_mask(tri([[[[128, 128]]]]))
    per = per_sample_alpha_loss(pred, gt, mask)
    # (0.4 + 1e-6) / 2
    assert per.tolist() == pytest.approx([0.2000005], abs=1e-7)
    assert not per.requires_grad
