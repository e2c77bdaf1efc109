"""Metrics checked against values worked out by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dim_studio.errors import DimStudioError, TrimapError
from dim_studio.metrics import (
    connectivity_error,
    evaluate,
    gradient_error,
    mse,
    sad,
)

U, F, B = 128, 255, 0  # trimap values: unknown, foreground, background


# --------------------------------------------------------------------------
# SAD / MSE
# --------------------------------------------------------------------------

PRED = np.array([[0.2, 0.5, 1.0], [0.0, 0.9, 0.3]])
GT = np.array([[0.0, 0.5, 1.0], [0.0, 0.6, 0.7]])
TRI = np.array([[U, U, F], [B, U, U]], dtype=np.uint8)
# unknown pixels and |pred - gt|: (0,0) 0.2, (0,1) 0.0, (1,1) 0.3, (1,2) 0.4
#   sum = 0.9                          -> SAD = 0.9 / 1000 = 0.0009
#   squares 0.04 + 0 + 0.09 + 0.16 = 0.29 over 4 pixels -> MSE = 0.0725


def test_sad_by_hand() -> None:
    assert sad(PRED, GT, TRI) == pytest.approx(0.0009, abs=1e-12)


def test_mse_by_hand() -> None:
    assert mse(PRED, GT, TRI) == pytest.approx(0.0725, abs=1e-12)


def test_mse_without_unknown_pixels_is_zero() -> None:
    tri = np.full((2, 3), F, dtype=np.uint8)
    assert mse(PRED, GT, tri) == 0.0
    assert sad(PRED, GT, tri) == 0.0


def test_known_pixels_are_ignored_by_sad_and_mse() -> None:
    changed = PRED.copy()
    changed[0, 2] = 0.0  # a foreground pixel
    changed[1, 0] = 1.0  # a background pixel
    assert sad(changed, GT, TRI) == sad(PRED, GT, TRI)
    assert mse(changed, GT, TRI) == mse(PRED, GT, TRI)


def test_uint8_alphas_are_scaled_to_unit_range() -> None:
    # 51/255 = 0.2 and 153/255 = 0.6: the same errors as on the float arrays
    pred8 = np.array([[51, 128], [0, 230]], dtype=np.uint8)
    gt = np.array([[0.0, 128 / 255], [0.0, 153 / 255]])
    tri = np.array([[U, U], [B, U]], dtype=np.uint8)
    # |0.2 - 0| + 0 + |230/255 - 153/255| = 0.2 + 77/255
    assert sad(pred8, gt, tri) == pytest.approx((0.2 + 77 / 255) / 1000, abs=1e-12)


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(DimStudioError) as err:
        sad(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((3, 2), np.uint8))
    assert "(2, 3)" in str(err.value) and "(3, 2)" in str(err.value)


def test_trimap_shape_mismatch_is_a_trimap_error() -> None:
    with pytest.raises(TrimapError) as err:
        evaluate(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 3), np.uint8))
    assert "(3, 3)" in str(err.value) and "(2, 3)" in str(err.value)


def test_evaluate_keys_and_zero_for_perfect_prediction() -> None:
    rng = np.random.default_rng(0)
    gt = rng.random((5, 5))
    tri = np.full((5, 5), U, dtype=np.uint8)
    result = evaluate(gt.copy(), gt, tri)
    assert set(result) == {"SAD", "MSE", "Gradient", "Connectivity"}
    assert all(isinstance(v, float) for v in result.values())
    assert result == {"SAD": 0.0, "MSE": 0.0, "Gradient": 0.0, "Connectivity": 0.0}


# --------------------------------------------------------------------------
# Gradient
# --------------------------------------------------------------------------

def _dgauss_kernel_by_hand(sigma: float = 1.4) -> np.ndarray:
    """kx of gaussgradient.m, written out independently of the module."""
    # half = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    half = 4
    k = np.zeros((2 * half + 1, 2 * half + 1))
    for i in range(-half, half + 1):
        for j in range(-half, half + 1):
            gy = math.exp(-i * i / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            gxv = math.exp(-j * j / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            k[i + half, j + half] = gy * (-j * gxv / sigma**2)
    return k / math.sqrt((k**2).sum())


def _grad_mag_by_loops(a: np.ndarray) -> np.ndarray:
    """min-max normalise, then correlate with kx / kx.T using replicated edges."""
    lo, hi = a.min(), a.max()
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    kx = _dgauss_kernel_by_hand()
    ky = kx.T
    h = kx.shape[0] // 2
    padded = np.pad(a, h, mode="edge")
    out = np.zeros_like(a)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            win = padded[y : y + 2 * h + 1, x : x + 2 * h + 1]
            out[y, x] = math.hypot((win * kx).sum(), (win * ky).sum())
    return out


def test_gradient_constant_images_give_zero() -> None:
    tri = np.full((4, 4), U, dtype=np.uint8)
    assert gradient_error(np.full((4, 4), 0.3), np.full((4, 4), 0.7), tri) == 0.0


def test_gradient_identical_images_give_zero() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((5, 5))
    assert gradient_error(a, a.copy(), np.full((5, 5), U, np.uint8)) == 0.0


def test_gradient_of_a_linear_ramp() -> None:
    # pred = x on a 3x11 image -> min-max normalised to x/10; gt constant -> 0.
    # At column 5 the 9-wide kernel sees columns 1..9 only (no border), and
    #   sum_ij kx[i,j] * (5 + j)/10 = (1/10) * sum_i g(i) * sum_j j g'(j) / norm
    # (the "5" term vanishes because g' is odd); gy = 0 because the image does
    # not change along y. With norm = sqrt(sum g^2 * sum g'^2):
    #   sum g ~ 0.99897, sum j g'(j) ~ -0.98652, S ~ -9.6838
    # Unknown = column 5 (3 pixels): error = 3 * (S/10)^2 / 1000 ~ 0.0028133.
    sigma = 1.4
    us = range(-4, 5)
    g = [math.exp(-u * u / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi)) for u in us]
    dg = [-u * gu / sigma**2 for u, gu in zip(us, g)]
    s = sum(g) * sum(u * d for u, d in zip(us, dg))
    s /= math.sqrt(sum(v * v for v in g) * sum(v * v for v in dg))
    expected = 3 * (s / 10) ** 2 / 1000
    assert expected == pytest.approx(0.0028133, rel=1e-4)

    pred = np.tile(np.arange(11, dtype=np.float64), (3, 1))
    gt = np.zeros((3, 11))
    tri = np.full((3, 11), B, dtype=np.uint8)
    tri[:, 5] = U
    assert gradient_error(pred, gt, tri) == pytest.approx(expected, rel=1e-9)
    # min-max normalisation: the scale of the ramp does not matter
    assert gradient_error(pred * 0.05, gt, tri) == pytest.approx(expected, rel=1e-9)


def test_gradient_matches_direct_convolution_with_borders() -> None:
    rng = np.random.default_rng(2)
    pred = rng.random((5, 4))
    gt = rng.random((5, 4))
    tri = np.array(
        [[B, U, U, F], [U, U, U, U], [B, B, U, F], [U, F, F, U], [B, U, U, U]],
        dtype=np.uint8,
    )
    unknown = tri == U
    expected = ((_grad_mag_by_loops(pred) - _grad_mag_by_loops(gt)) ** 2)[unknown].sum() / 1000
    assert expected > 0
    assert gradient_error(pred, gt, tri) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------
# Connectivity
# --------------------------------------------------------------------------

def test_connectivity_by_hand_on_a_row() -> None:
    # Values avoid multiples of 0.1 so no pixel sits exactly on a threshold.
    #                 0    1    2     3    4     5
    gt = np.array([[1.0, 1.0, 0.65, 0.0, 0.95, 0.45]])
    pred = np.array([[1.0, 1.0, 0.85, 0.0, 0.75, 0.95]])
    tri = np.array([[F, F, U, B, U, U]], dtype=np.uint8)
    # A pixel is in (pred>=t)&(gt>=t) iff min(pred, gt) >= t;
    #   min = [1, 1, 0.65, 0, 0.75, 0.45]; pixel 3 splits the row.
    # t=0.1: components {0,1,2} (3 px) and {4,5} (2 px); omega = {0,1,2};
    #        pixels 3,4,5 drop out -> l = previous threshold = 0.
    # t=0.2..0.6: omega = {0,1,2} still.
    # t=0.7: pixel 2 (0.65) leaves; omega = {0,1} (beats {4}) -> l[2] = 0.6.
    # t=0.8..1.0: omega = {0,1}; they never drop out -> l = 1.
    # l_map = [1, 1, 0.6, 0, 0, 0]
    # d_gt   = [0, 0, 0.05, 0, 0.95, 0.45] -> phi_gt   = [1, 1, 1,    1, 0.05, 0.55]
    # d_pred = [0, 0, 0.25, 0, 0.75, 0.95] -> phi_pred = [1, 1, 0.75, 1, 0.25, 0.05]
    #   (0.05 < 0.15 is not counted)
    # unknown pixels 2, 4, 5: |diff| = 0.25 + 0.2 + 0.5 = 0.95 -> 0.00095
    assert connectivity_error(pred, gt, tri) == pytest.approx(0.00095, abs=1e-12)


def test_connectivity_uses_4_connectivity() -> None:
    # Pixel (1,2) touches the opaque corner only diagonally.
    gt = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.95], [0.0, 0.0, 0.0]])
    pred = gt.copy()
    pred[1, 2] = 0.55
    tri = np.full((3, 3), U, dtype=np.uint8)
    # 4-connected: (1,2) is its own 1-pixel component, omega at t=0.1 is the
    # 3-pixel corner, so l(1,2) = 0:
    #   d_gt = 0.95 -> phi 0.05; d_pred = 0.55 -> phi 0.45; |diff| = 0.4.
    # (8-connected it would stay until t=0.6, l = 0.5, |0.55 - 1| = 0.45.)
    # Every other pixel has pred == gt, so phi agrees there.
    assert connectivity_error(pred, gt, tri) == pytest.approx(0.0004, abs=1e-12)


def test_connectivity_identical_is_zero() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((4, 5))
    assert connectivity_error(a, a.copy(), np.full((4, 5), U, np.uint8)) == 0.0


def test_bad_parameters_are_errors() -> None:
    a = np.zeros((2, 2))
    tri = np.full((2, 2), U, np.uint8)
    with pytest.raises(DimStudioError):
        connectivity_error(a, a, tri, step=0)
    with pytest.raises(DimStudioError):
        gradient_error(a, a, tri, sigma=-1)
    with pytest.raises(DimStudioError):
        sad(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)), np.zeros((2, 2), np.uint8))
