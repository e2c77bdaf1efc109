"""Downscaled previews (dim_studio.workflows.preview_scale)."""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.engines import create_engine
from dim_studio.workflows.preview_scale import (
    AUTO, CLASSICAL_CPU_BUDGET, CLASSICAL_CPU_UNKNOWN_BUDGET, FULL, HALF, QUARTER, auto_pixel_budget,
    auto_unknown_budget, choose_scale,
    downscale_trimap, estimate_alpha_scaled, estimate_foreground_scaled,
)


def _scene(h=90, w=120):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((25.0 - r) / 4.0 + 0.5, 0, 1).astype(np.float32)
    fg = np.array([0.9, 0.7, 0.2], np.float32)
    bg = np.dstack([0.1 + 0.3 * (xx % 9) / 9, 0.2 + 0 * xx, 0.6 + 0.2 * (yy % 5) / 5]).astype(np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    tri = np.full((h, w), 128, np.uint8)
    tri[r > 32] = 0
    tri[r < 18] = 255
    return image.astype(np.float32), tri, alpha


def test_choose_scale():
    _, tri, _ = _scene()
    assert choose_scale(tri, FULL, 10) == 1.0
    assert choose_scale(tri, HALF, None) == 0.5
    assert choose_scale(tri, QUARTER, None) == 0.25
    assert choose_scale(tri, AUTO, None) == 1.0
    assert choose_scale(tri, AUTO, 10**9) == 1.0
    s = choose_scale(tri, AUTO, 1000, margin=0)
    assert 0 < s < 1
    assert auto_pixel_budget("closed-form", None) == CLASSICAL_CPU_BUDGET
    assert auto_pixel_budget("dim", "cuda:0") is None
    assert auto_pixel_budget("dim", "cpu") is not None


def test_downscale_trimap_keeps_thin_unknown_band():
    tri = np.zeros((40, 40), np.uint8)
    tri[:, 20:] = 255
    tri[:, 19] = 128  # one pixel wide band
    small = downscale_trimap(tri, (10, 10))
    assert set(np.unique(small)) == {0, 128, 255}
    assert np.all(small[:, 4] == 128)


def test_full_scale_is_the_engine_itself():
    image, tri, _ = _scene()
    engine = create_engine("closed-form")
    out = estimate_alpha_scaled(engine, image, tri, 1.0)
    np.testing.assert_array_equal(out.alpha, engine.estimate(image, tri))
    assert out.scale == 1.0


def test_half_scale_is_close_and_known_pixels_exact():
    image, tri, gt = _scene()
    engine = create_engine("closed-form")
    out = estimate_alpha_scaled(engine, image, tri, 0.5)
    assert out.alpha.shape == tri.shape and out.alpha.dtype == np.float32
    assert out.scale == 0.5 and out.work_size[0] < 90
    assert np.all(out.alpha[tri == 255] == 1.0) and np.all(out.alpha[tri == 0] == 0.0)
    unknown = tri == 128
    assert np.abs(out.alpha[unknown] - gt[unknown]).mean() < 0.08


def test_foreground_scaled_keeps_opaque_pixels():
    image, tri, gt = _scene()
    fg = estimate_foreground_scaled(image, gt, 0.5)
    assert fg.shape == image.shape
    np.testing.assert_array_equal(fg[gt == 1.0], image[gt == 1.0])
    mixed = (gt > 0.2) & (gt < 0.8)
    assert np.abs(fg[mixed] - np.array([0.9, 0.7, 0.2])).mean() < 0.15


def test_cancel_is_honoured():
    from dim_studio.errors import Cancelled

    image, tri, _ = _scene()
    with pytest.raises(Cancelled):
        estimate_alpha_scaled(create_engine("closed-form"), image, tri, 0.5, cancel=lambda: True)


def test_auto_scale_fits_the_solved_region_in_the_budget():
    from dim_studio.workflows.preview_scale import MIN_AUTO_SCALE, solved_size

    _, tri, _ = _scene()
    for margin, budget in ((0, 2000), (8, 3000), (16, 6000)):
        s = choose_scale(tri, AUTO, budget, margin)
        h, w = solved_size(tri, s, margin)
        assert MIN_AUTO_SCALE <= s < 1.0
        assert h * w <= budget
        # and not needlessly small: a slightly larger scale would exceed it
        h2, w2 = solved_size(tri, min(1.0, s * 1.05), margin)
        assert h2 * w2 > budget
    # A margin that alone exceeds the budget bottoms out at the minimum scale.
    assert choose_scale(tri, AUTO, 100, margin=40) == MIN_AUTO_SCALE


def test_auto_scale_also_caps_the_unknown_pixels():
    # A see-through subject lassoed unknown whole: the region fits the budget, the unknown pixels do not.
    tri = np.zeros((200, 200), np.uint8)
    tri[20:180, 20:180] = 128
    tri[95:105, 95:105] = 255
    unknown = int(np.count_nonzero(tri == 128))
    assert choose_scale(tri, AUTO, 10**9, 0) == 1.0
    s = choose_scale(tri, AUTO, 10**9, 0, unknown_budget=unknown // 4)
    assert unknown * s * s <= unknown // 4 < unknown * (1.05 * s) ** 2  # the largest scale that fits
    # The tighter of the two caps decides.
    region_only = choose_scale(tri, AUTO, 3000, 0)
    assert choose_scale(tri, AUTO, 3000, 0, unknown_budget=unknown // 4) == min(region_only, s)
    # Classical solvers' time follows the unknown pixels; the network's follows the region.
    assert auto_unknown_budget("closed-form") == auto_unknown_budget("ifm") == CLASSICAL_CPU_UNKNOWN_BUDGET
    assert auto_unknown_budget("dim") is None
