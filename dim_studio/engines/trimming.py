"""Edge-based trimap trimming (label expansion) for information-flow matting.

Shahrian, Rajan, Price and Cohen, "Improving Image Matting using
Comprehensive Sampling Sets", CVPR 2013, sec. 3.1; used by Aksoy et al.
(CVPR 2017, sec. 3.6) as the pre-processing of the known-to-unknown flow.
An unknown pixel that lies within a small radius of a known pixel of nearly
the same colour almost surely shares its label: hard edges and the flat
insides of a generous trimap are resolved before the solve, and the
known-to-unknown flow gets confident estimates there.

Schedule (Shahrian et al.): ``ITERATIONS`` = 9 passes; pass i (1-based)
searches a (2i + 1)^2 window and accepts a known pixel whose RGB distance is
below 9/256 - i (8/256) / 9, i.e. the radius grows while the colour
tolerance shrinks from ~8/256 to 1/256. Each pass looks only at the labels of
the previous pass, nearest candidate first.

Why a Numba kernel: per unknown pixel it is a nearest-first search that
stops at the first match, which neither NumPy nor OpenCV express without
visiting every offset for every pixel (1,329 full passes over the band).
The work is over the unknown pixels only, so it follows the band.
"""

from __future__ import annotations

import numpy as np

from .. import numba_cache
from .base import CancelFn, check_cancel

numba_cache.configure()  # before numba is imported: where the kernel is cached

import numba  # noqa: E402

ITERATIONS = 9
START_THRESHOLD = 9.0 / 256.0
END_THRESHOLD = 1.0 / 256.0

UNKNOWN_LABEL = -1


@numba.njit(cache=True, nogil=True)
def _expand_pass(image: np.ndarray, labels: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 offsets: np.ndarray, threshold: float, out: np.ndarray) -> None:
    h, w = labels.shape
    t2 = threshold * threshold
    for i in range(ys.shape[0]):
        y, x = ys[i], xs[i]
        if labels[y, x] != UNKNOWN_LABEL:
            continue
        for j in range(offsets.shape[0]):
            ny, nx = y + offsets[j, 0], x + offsets[j, 1]
            if ny < 0 or nx < 0 or ny >= h or nx >= w or labels[ny, nx] == UNKNOWN_LABEL:
                continue
            d = 0.0
            for c in range(3):
                diff = image[y, x, c] - image[ny, nx, c]
                d += diff * diff
            if d < t2:
                out[y, x] = labels[ny, nx]
                break


def _offsets(radius: int) -> np.ndarray:
    """(dy, dx) within a (2r + 1)^2 window, nearest first (ties in raster order)."""
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    order = np.argsort((dy * dy + dx * dx).ravel(), kind="stable")
    return np.stack([dy.ravel()[order], dx.ravel()[order]], axis=1).astype(np.int64)


def edge_trim(image: np.ndarray, is_fg: np.ndarray, is_bg: np.ndarray,
              iterations: int = ITERATIONS, cancel: CancelFn = None) -> np.ndarray:
    """Labels after trimming: 1 foreground, 0 background, -1 still unknown (int8, (h, w)).

    ``image`` is RGB in [0, 1], ``is_fg``/``is_bg`` the trimap's known masks;
    ``cancel`` is polled before each pass.
    """
    labels = np.full(is_fg.shape, UNKNOWN_LABEL, np.int8)
    labels[is_bg] = 0
    labels[is_fg] = 1
    ys, xs = np.nonzero(labels == UNKNOWN_LABEL)
    if len(ys) == 0 or not (is_fg.any() or is_bg.any()):
        return labels
    ys, xs = ys.astype(np.int64), xs.astype(np.int64)
    img = np.ascontiguousarray(image, np.float32)
    step = (START_THRESHOLD - END_THRESHOLD) / iterations
    for it in range(1, iterations + 1):
        check_cancel(cancel)
        out = labels.copy()
        _expand_pass(img, labels, ys, xs, _offsets(it), START_THRESHOLD - it * step, out)
        labels = out
        still = labels[ys, xs] == UNKNOWN_LABEL
        ys, xs = ys[still], xs[still]
        if len(ys) == 0:
            break
    return labels
