"""The standard alpha-matting error measures: SAD, MSE, Gradient, Connectivity.

They follow the evaluation code published with Deep Image Matting (the MATLAB
``compute_*_loss.m`` scripts of Rhemann et al.'s alphamatting.com benchmark)
and its Python ports (OpenMMLab mmedit / mmeval ``gradient_error`` and
``connectivity``), so numbers are comparable with published tables:

- every error is summed (or averaged, for MSE) over the *unknown* region of the
  trimap only (``trimap == 128``);
- alphas are floats in [0, 1] (8- and 16-bit integer alphas are converted);
- SAD, Gradient and Connectivity are divided by 1000, MSE is not.

No pixel of the prediction is changed here: engines already force the known
pixels to the trimap's 0/1, and the gradient and connectivity measures look at
the whole image (as the reference code does), so a prediction that was *not*
forced can score differently near the band's border.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from dim_studio.errors import DimStudioError, TrimapError

__all__ = [
    "sad",
    "mse",
    "gradient_error",
    "connectivity_error",
    "evaluate",
]

UNKNOWN = 128  # trimap value of the unknown band


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------

def _as_alpha(arr: np.ndarray, name: str) -> np.ndarray:
    """Return ``arr`` as a float64 (H, W) alpha in [0, 1] units."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise DimStudioError(
            f"{name} must be a single-channel (H, W) alpha matte, got shape {a.shape}"
        )
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.number):
        # float64 keeps the sums exact enough to compare with the reference code
        return a.astype(np.float64)
    raise DimStudioError(f"{name} has unsupported data type {a.dtype}")


def _prepare(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the three inputs; return (pred, gt, unknown-mask)."""
    p = _as_alpha(pred, "predicted alpha")
    g = _as_alpha(gt, "ground-truth alpha")
    if p.shape != g.shape:
        raise DimStudioError(
            f"predicted alpha and ground-truth alpha differ in size: "
            f"prediction is {p.shape[1]}x{p.shape[0]} (shape {p.shape}), "
            f"ground truth is {g.shape[1]}x{g.shape[0]} (shape {g.shape})"
        )
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[2] == 1:
        t = t[:, :, 0]
    if t.shape != g.shape:
        raise TrimapError(
            f"trimap and alpha differ in size: trimap shape {t.shape}, "
            f"alpha shape {g.shape}"
        )
    return p, g, t == UNKNOWN


# --------------------------------------------------------------------------
# SAD / MSE
# --------------------------------------------------------------------------

def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum of absolute differences over the unknown region, divided by 1000."""
    p, g, unknown = _prepare(pred, gt, trimap)
    return float(np.abs(p - g)[unknown].sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Mean squared error over the unknown pixels (0.0 when there are none)."""
    p, g, unknown = _prepare(pred, gt, trimap)
    n = int(unknown.sum())
    if n == 0:
        return 0.0
    return float(((p - g) ** 2)[unknown].sum() / n)


# --------------------------------------------------------------------------
# Gradient
# --------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The x and y first-derivative-of-Gaussian kernels of ``gaussgradient.m``.

    Half size ``ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma eps)))`` with
    eps = 0.01 (4 for sigma 1.4, so a 9x9 kernel);
    ``kx[i, j] = G(i - h) * G'(j - h)`` with ``G'(x) = -x G(x) / sigma^2``,
    scaled to unit L2 (Frobenius) norm; ``ky = kx.T``.
    """
    eps = 1e-2
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * eps))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u ** 2) / (2.0 * sigma ** 2)) / (sigma * np.sqrt(2.0 * np.pi))
    dg = -u * g / sigma ** 2
    kx = np.outer(g, dg)  # rows (y) smooth, columns (x) differentiate
    kx /= np.sqrt((kx ** 2).sum())
    kx.setflags(write=False)
    ky = kx.T.copy()
    ky.setflags(write=False)
    return kx, ky


def _minmax(a: np.ndarray) -> np.ndarray:
    """Stretch to [0, 1] like MATLAB ``mat2gray`` / ``cv2.NORM_MINMAX``.

    A constant image becomes all zeros (what ``cv2.normalize`` does), so it has
    no gradient.
    """
    lo, hi = float(a.min()), float(a.max())
    if hi - lo <= np.finfo(np.float64).eps:
        return np.zeros_like(a)
    return (a - lo) / (hi - lo)


def _gradient_magnitude(a: np.ndarray, sigma: float) -> np.ndarray:
    kx, ky = _gaussian_derivative_kernels(float(sigma))
    # filter2D correlates where MATLAB's imfilter(..., 'conv') convolves: this
    # only flips the sign of gx/gy, the magnitude is the same. Borders are
    # replicated as in the reference code.
    gx = cv2.filter2D(a, cv2.CV_64F, kx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, ky, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx ** 2 + gy ** 2)


def gradient_error(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray, sigma: float = 1.4
) -> float:
    """Gradient error: sum over unknown of (|grad pred| - |grad gt|)^2 / 1000.

    Convention (same as ``compute_gradient_loss.m`` and mmedit/mmeval
    ``gradient_error``):

    1. pred and gt are each min-max normalised to [0, 1] over the whole image
       (``mat2gray`` / ``cv2.normalize(..., NORM_MINMAX)``); a constant matte
       becomes 0;
    2. both are filtered over the whole image with first-order
       Gaussian-derivative kernels (``gaussgradient.m``): sigma 1.4,
       epsilon 0.01 -> half size 4, a 9x9 kernel ``G(y) * G'(x)`` scaled to
       unit L2 norm, its transpose for y; replicated borders;
    3. magnitude ``sqrt(gx^2 + gy^2)``; the squared difference of the two
       magnitudes is summed over ``trimap == 128`` and divided by 1000.
    """
    if not sigma > 0:
        raise DimStudioError(f"gradient sigma must be positive, got {sigma}")
    p, g, unknown = _prepare(pred, gt, trimap)
    if not unknown.any():
        return 0.0
    gp = _gradient_magnitude(_minmax(p), sigma)
    gg = _gradient_magnitude(_minmax(g), sigma)
    return float(((gp - gg) ** 2)[unknown].sum() / 1000.0)


# --------------------------------------------------------------------------
# Connectivity
# --------------------------------------------------------------------------

def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Boolean mask of the largest 4-connected component of ``mask``.

    Ties go to the component whose first pixel comes first in raster order
    (cv2 labels in raster order and ``argmax`` takes the first maximum), as in
    mmedit. Empty input -> empty mask.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=4
    )
    if n <= 1:  # only the background label
        return np.zeros(mask.shape, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return labels == int(np.argmax(areas)) + 1


def connectivity_error(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray, step: float = 0.1
) -> float:
    """Connectivity error of Rhemann et al. (``compute_connectivity_error.m``).

    For each threshold t in ``np.arange(0, 1 + step, step)`` after the first
    (0.1, 0.2, ..., 1.0 for the default step), omega is the largest
    4-connected component of ``(pred >= t) & (gt >= t)``. ``l_map`` starts at
    -1; a pixel still at -1 that is not in omega gets the *previous* threshold
    (the last level at which it was still connected); pixels that never drop
    out get 1. Then ``d = alpha - l_map``, ``phi = 1 - d * (d >= 0.15)`` for
    pred and gt, and the error is ``sum over unknown |phi_pred - phi_gt| / 1000``.

    Thresholds are the floating-point values ``i * step`` exactly as
    ``np.arange`` produces them in the reference code (so 3 * 0.1 is
    0.30000000000000004 and an alpha of exactly 0.3 is below it).
    """
    if not 0 < step <= 1:
        raise DimStudioError(f"connectivity step must be in (0, 1], got {step}")
    p, g, unknown = _prepare(pred, gt, trimap)
    if not unknown.any():
        return 0.0
    thresholds = np.arange(0, 1 + step, step)
    l_map = np.full(p.shape, -1.0)
    for i in range(1, len(thresholds)):
        t = thresholds[i]
        omega = _largest_component((p >= t) & (g >= t))
        drops_out = (l_map == -1) & ~omega
        l_map[drops_out] = thresholds[i - 1]
    l_map[l_map == -1] = 1.0

    d_pred = p - l_map
    d_gt = g - l_map
    phi_pred = 1.0 - d_pred * (d_pred >= 0.15)
    phi_gt = 1.0 - d_gt * (d_gt >= 0.15)
    return float(np.abs(phi_pred - phi_gt)[unknown].sum() / 1000.0)


# --------------------------------------------------------------------------

def evaluate(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """All four measures: keys "SAD", "MSE", "Gradient", "Connectivity"."""
    _prepare(pred, gt, trimap)  # fail once, with one clear message
    return {
        "SAD": sad(pred, gt, trimap),
        "MSE": mse(pred, gt, trimap),
        "Gradient": gradient_error(pred, gt, trimap),
        "Connectivity": connectivity_error(pred, gt, trimap),
    }
