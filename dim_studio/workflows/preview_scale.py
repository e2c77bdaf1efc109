"""Fast previews: matte a downscaled copy, upsample the alpha back (Qt-free).

On a slow device a live preview at full resolution would lag far behind the
brush. Instead the preview engine runs on a shrunken copy of the unknown
region's bounding box (plus the engine's context margin), and the alpha is
upsampled back to the photo's size. Known pixels are then forced from the
*full-resolution* trimap, so the preview never bleeds over what the user
painted; only the soft band is approximate. Export always runs at full
resolution.

The downscaled trimap is conservative: a small pixel is definite foreground
(or background) only if every full-resolution pixel under it was; anything
mixed becomes unknown, so a thin unknown band never vanishes when shrunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..compose import FOREGROUND_MARGIN, estimate_foreground
from ..engines import Engine
from ..engines.base import CancelFn, ProgressFn, check_cancel
from ..errors import DimStudioError
from ..trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box, force_known, unknown_bbox

# The choices of View > Preview resolution, in menu order.
AUTO = "auto"
FULL = "full"
HALF = "1/2"
QUARTER = "1/4"
PREVIEW_RESOLUTIONS: tuple[str, ...] = (AUTO, FULL, HALF, QUARTER)
_FIXED_SCALES = {FULL: 1.0, HALF: 0.5, QUARTER: 0.25}

# Automatic caps, in pixels of the region the engine actually solves (the
# unknown region's bounding box plus context). Measured with
# bench/preview_latency.py on 2 CPU cores: closed-form solves a 0.38 MP region
# in ~0.4 s, so 0.25 MP keeps stroke-to-preview under half a second with the
# debounce; the network (VGG-16 sized) gets ~0.12 MP there (~2 s on 2 cores);
# on a GPU it runs at full resolution.
CLASSICAL_CPU_BUDGET = 250_000
NETWORK_CPU_BUDGET = 120_000
# A classical solver's time follows its unknown pixels, not the region round
# them: the net photo (800x620) lassoed unknown whole, 45% of it, took
# closed-form 5.5 s at the region cap's scale and ifm 12 s; with this cap
# (scale 0.35) 0.55 s and 1.3 s. On the hand-drawn trimaps of the 27
# alphamatting.com training photos (bench/preview_scale.py) it shrinks the
# preview on 19 (Trimap1) and 27 (Trimap2): the slowest preview goes from
# 2.0 s to 0.6 s and from 4.0 s to 0.7 s, the median distance from the
# full-resolution alpha from 0.0037 to 0.0038 and from 0.0022 to 0.0031.
# The network's cost follows the region, not the unknown pixels.
CLASSICAL_CPU_UNKNOWN_BUDGET = 30_000
# Below this the saving is not worth the blur: run at full resolution.
_MIN_USEFUL_SHRINK = 0.9
# Auto never goes below this: a coarser preview says too little about the edge.
MIN_AUTO_SCALE = 0.125


def auto_pixel_budget(engine_name: str, device: str | None) -> int | None:
    """Pixels of work the automatic preview allows; None = full resolution.

    ``device`` is "cuda", "mps", "cpu" (or None for engines without one, which
    all run on the CPU).
    """
    if engine_name == "dim":
        kind = (device or "cpu").split(":")[0].lower()
        return None if kind in ("cuda", "mps") else NETWORK_CPU_BUDGET
    return CLASSICAL_CPU_BUDGET


def auto_unknown_budget(engine_name: str) -> int | None:
    """Unknown pixels (at the preview's scale) the automatic preview allows; None = no cap."""
    return None if engine_name == "dim" else CLASSICAL_CPU_UNKNOWN_BUDGET


def work_box(trimap: np.ndarray, margin: int) -> Box | None:
    """The region an engine solves: unknown bounding box plus ``margin``."""
    return unknown_bbox(trimap, max(0, int(margin)))


def solved_size(trimap: np.ndarray, scale: float, margin: int) -> tuple[int, int]:
    """(height, width) an engine solves when the preview runs at ``scale``.

    The unknown region shrinks with the scale but the engine's context margin
    is kept in *small* pixels (see ``estimate_alpha_scaled``), and neither
    can exceed the shrunken photo.
    """
    box = work_box(trimap, 0)
    if box is None:
        return (0, 0)
    h, w = trimap.shape[:2]
    return (
        int(min(h * scale, box.height * scale + 2 * margin)),
        int(min(w * scale, box.width * scale + 2 * margin)),
    )


def choose_scale(
    trimap: np.ndarray, resolution: str, pixel_budget: int | None, margin: int = 16,
    unknown_budget: int | None = None,
) -> float:
    """The preview's scale factor in (0, 1] for a View > Preview resolution choice.

    AUTO picks the largest scale whose solved region (``solved_size``) fits
    ``pixel_budget`` and whose unknown pixels (their full-resolution count
    times the scale squared) fit ``unknown_budget``, down to MIN_AUTO_SCALE.
    """
    if resolution in _FIXED_SCALES:
        return _FIXED_SCALES[resolution]
    if resolution != AUTO:
        raise DimStudioError(
            f"unknown preview resolution '{resolution}'; choose one of {', '.join(PREVIEW_RESOLUTIONS)}"
        )
    if pixel_budget is None:
        return 1.0

    unknown = int(np.count_nonzero(trimap == UNKNOWN))

    def fits(scale: float) -> bool:
        h, w = solved_size(trimap, scale, margin)
        return h * w <= pixel_budget and (unknown_budget is None or unknown * scale * scale <= unknown_budget)

    if fits(1.0):
        return 1.0
    if not fits(MIN_AUTO_SCALE):
        return MIN_AUTO_SCALE
    lo, hi = MIN_AUTO_SCALE, 1.0  # fits(lo), not fits(hi); both measures grow with the scale
    for _ in range(30):
        mid = (lo + hi) / 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return 1.0 if lo >= _MIN_USEFUL_SHRINK else lo


def downscale_trimap(trimap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shrink a trimap to ``size`` = (height, width), conservatively (see module doc)."""
    h, w = size
    fg = cv2.resize((trimap == FOREGROUND).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    bg = cv2.resize((trimap == BACKGROUND).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    out = np.full((h, w), UNKNOWN, np.uint8)
    # INTER_AREA averages, so "every pixel under it" is a mean of 1 (with float slack).
    out[fg > 1.0 - 1e-4] = FOREGROUND
    out[bg > 1.0 - 1e-4] = BACKGROUND
    return out


def _small_size(box: Box, scale: float) -> tuple[int, int]:
    return max(1, int(round(box.height * scale))), max(1, int(round(box.width * scale)))


def _has_labels(trimap: np.ndarray) -> bool:
    return bool(
        np.any(trimap == UNKNOWN) and np.any(trimap == FOREGROUND) and np.any(trimap == BACKGROUND)
    )


@dataclass(frozen=True)
class ScaledAlpha:
    """An alpha at the photo's full size and what resolution it was computed at."""

    alpha: np.ndarray          # float32 (H, W), known pixels exact
    scale: float               # 1.0 = computed at full resolution
    work_size: tuple[int, int]  # (height, width) of the region the engine solved


def estimate_alpha_scaled(
    engine: Engine,
    image: np.ndarray,
    trimap: np.ndarray,
    scale: float,
    *,
    progress: ProgressFn = None,
    cancel: CancelFn = None,
) -> ScaledAlpha:
    """Run ``engine`` at ``scale`` of the photo's resolution; alpha back at full size.

    With ``scale >= 1`` this is exactly ``engine.estimate``. When shrinking
    would lose every pixel of one label (a tiny foreground dab), it falls back
    to full resolution rather than fail.
    """
    full_box = work_box(trimap, engine.context_margin)
    if scale >= 1.0 or full_box is None:
        alpha = engine.estimate(image, trimap, progress=progress, cancel=cancel)
        size = (full_box.height, full_box.width) if full_box else trimap.shape[:2]
        return ScaledAlpha(alpha, 1.0, (int(size[0]), int(size[1])))

    # Keep the engine's context margin measured in *small* pixels.
    box = work_box(trimap, int(math.ceil(engine.context_margin / scale)))
    assert box is not None
    rows, cols = box.slices
    small_h, small_w = _small_size(box, scale)
    small_trimap = downscale_trimap(trimap[rows, cols], (small_h, small_w))
    if not _has_labels(small_trimap):
        return estimate_alpha_scaled(engine, image, trimap, 1.0, progress=progress, cancel=cancel)
    check_cancel(cancel)
    small_image = cv2.resize(
        np.ascontiguousarray(image[rows, cols], dtype=np.float32), (small_w, small_h),
        interpolation=cv2.INTER_AREA,
    )
    small_alpha = engine.estimate(small_image, small_trimap, progress=progress, cancel=cancel)
    check_cancel(cancel)
    alpha = (trimap == FOREGROUND).astype(np.float32)
    alpha[rows, cols] = np.clip(
        cv2.resize(small_alpha, (box.width, box.height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0
    )
    force_known(alpha, trimap)
    return ScaledAlpha(alpha, float(scale), (small_h, small_w))


def estimate_foreground_scaled(
    image: np.ndarray, alpha: np.ndarray, scale: float, *, cancel: CancelFn = None
) -> np.ndarray:
    """Foreground colours for a preview cutout, estimated at ``scale``.

    Only the soft pixels' bounding box is estimated (as ``compose`` does);
    outside it the photo is returned unchanged.
    """
    check_cancel(cancel)
    if scale >= 1.0:
        return estimate_foreground(image, alpha)
    soft = (alpha > 0.0) & (alpha < 1.0)
    rows_any = np.flatnonzero(soft.any(axis=1))
    fg = np.clip(image, 0.0, 1.0).astype(np.float32, copy=True)
    if rows_any.size == 0:
        return fg
    cols_any = np.flatnonzero(soft.any(axis=0))
    margin = int(math.ceil(FOREGROUND_MARGIN / scale))
    box = Box(int(rows_any[0]), int(rows_any[-1]) + 1, int(cols_any[0]), int(cols_any[-1]) + 1)
    box = box.grow(margin, alpha.shape)
    rows, cols = box.slices
    small_h, small_w = _small_size(box, scale)
    small_image = cv2.resize(np.ascontiguousarray(image[rows, cols], np.float32), (small_w, small_h),
                             interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(np.ascontiguousarray(alpha[rows, cols], np.float32), (small_w, small_h),
                             interpolation=cv2.INTER_AREA)
    small_fg = estimate_foreground(small_image, small_alpha)
    check_cancel(cancel)
    up = cv2.resize(small_fg, (box.width, box.height), interpolation=cv2.INTER_LINEAR)
    # Only the mixed pixels need the estimate; opaque ones keep the photo's sharp detail.
    region = fg[rows, cols]
    mixed = soft[rows, cols]
    region[mixed] = np.clip(up[mixed], 0.0, 1.0)
    return fg
