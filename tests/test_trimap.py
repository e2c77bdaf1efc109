"""Trimap tools: from masks and alphas, bounding boxes, validation."""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.errors import TrimapError
from dim_studio.trimap import (
    BACKGROUND, FOREGROUND, UNKNOWN, trimap_from_alpha, trimap_from_mask, unknown_bbox,
    validate_trimap,
)


def _square_mask(size: int = 60, lo: int = 20, hi: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[lo:hi, lo:hi] = 1.0
    return mask


def test_trimap_from_binary_mask_band_width():
    tri = trimap_from_mask(_square_mask(), band=3)
    assert set(np.unique(tri)) == {0, 128, 255}
    row = tri[30]  # a row through the middle of the square
    # Unknown exactly within 3 px either side of each edge (at x=20 and x=40).
    assert list(np.flatnonzero(row == UNKNOWN)) == [17, 18, 19, 20, 21, 22, 37, 38, 39, 40, 41, 42]
    assert row[0] == BACKGROUND and row[30] == FOREGROUND


def test_trimap_from_mask_zero_band_and_soft_mask():
    tri0 = trimap_from_mask(_square_mask(), band=0)
    assert not np.any(tri0 == UNKNOWN)
    soft = _square_mask()
    soft[30, 5] = 0.5  # an unsure pixel far from the edge
    tri = trimap_from_mask(soft, band=2)
    assert tri[30, 5] == UNKNOWN
    with pytest.raises(TrimapError):
        trimap_from_mask(soft, band=-1)


def test_trimap_from_mask_accepts_0_255_masks():
    np.testing.assert_array_equal(
        trimap_from_mask(_square_mask() * 255, band=2), trimap_from_mask(_square_mask(), band=2)
    )


def test_trimap_from_alpha_covers_soft_edge_and_is_random():
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 20:60] = 1.0
    alpha[20:60, 58:62] = 0.5  # a soft edge
    rng = np.random.default_rng(1)
    tris = [trimap_from_alpha(alpha, rng, 1, 10) for _ in range(6)]
    for tri in tris:
        soft = (alpha > 0) & (alpha < 1)
        assert np.all(tri[soft] == UNKNOWN), "every soft pixel must be unknown"
        assert tri[40, 40] == FOREGROUND and tri[0, 0] == BACKGROUND
    widths = {int(np.count_nonzero(t == UNKNOWN)) for t in tris}
    assert len(widths) > 1, "random radii should give different bands"


def test_unknown_bbox_with_margin_is_clipped():
    tri = np.zeros((50, 70), np.uint8)
    tri[10:20, 30:35] = UNKNOWN
    box = unknown_bbox(tri)
    assert (box.y0, box.y1, box.x0, box.x1) == (10, 20, 30, 35)
    box = unknown_bbox(tri, margin=15)
    assert (box.y0, box.y1, box.x0, box.x1) == (0, 35, 15, 50)
    assert unknown_bbox(np.zeros((5, 5), np.uint8)) is None


def test_validate_trimap_messages():
    tri = np.zeros((10, 10), np.uint8)
    with pytest.raises(TrimapError, match="no unknown"):
        validate_trimap(tri)
    tri[2:4, 2:4] = UNKNOWN
    with pytest.raises(TrimapError, match="no foreground"):
        validate_trimap(tri)
    validate_trimap(tri, require_foreground=False)
    tri[5:7, 5:7] = FOREGROUND
    validate_trimap(tri)
