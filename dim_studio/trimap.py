"""Trimap conventions and tools.

A trimap is uint8 (H, W) with exactly 0 = background, 128 = unknown and
255 = foreground. Files in the wild use 102, 127 or 128 for unknown, so every
trimap read from disk is quantised first.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import TrimapError

BACKGROUND = 0
UNKNOWN = 128
FOREGROUND = 255


@dataclass(frozen=True)
class Box:
    """A half-open rectangle [y0, y1) x [x0, x1) in pixel coordinates."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def area(self) -> int:
        return self.height * self.width

    def union(self, other: "Box | None") -> "Box":
        if other is None:
            return self
        return Box(
            min(self.y0, other.y0), max(self.y1, other.y1),
            min(self.x0, other.x0), max(self.x1, other.x1),
        )

    def grow(self, margin: int, shape: tuple[int, int]) -> "Box":
        """This box enlarged by ``margin`` on each side, clipped to ``shape``."""
        h, w = shape[:2]
        return Box(
            max(0, self.y0 - margin), min(h, self.y1 + margin),
            max(0, self.x0 - margin), min(w, self.x1 + margin),
        )


def quantize_trimap(arr: np.ndarray) -> np.ndarray:
    """Map any grey levels to 0/128/255: < 64 -> 0, > 191 -> 255, else 128."""
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float64)), 0, 255).astype(np.uint8)
    out = np.full(arr.shape, UNKNOWN, dtype=np.uint8)
    out[arr < 64] = BACKGROUND
    out[arr > 191] = FOREGROUND
    return out


#: A trimap file's pixel is ambiguous when it is farther than this from 0, 128
#: and 255 (in 8-bit levels: 41-87 and 169-214), or when its colour channels
#: differ by more than this (a trimap is grey). Unknown drawn as 102 or 127,
#: and JPEG's ringing along the edges of a trimap, stay within it.
AMBIGUOUS_TOLERANCE = 40
#: More than this fraction of ambiguous pixels: the file is not a trimap (the
#: photo itself given as the trimap, a mask with soft edges, an alpha matte).
NOT_A_TRIMAP_FRACTION = 0.20
#: More than this (but not too many): the file is read, with a warning.
AMBIGUOUS_WARNING_FRACTION = 0.02
#: The fraction is measured on at most about this many pixels (a regular subsample).
_AMBIGUITY_SAMPLE = 1 << 22

_LEVELS = np.arange(256, dtype=np.int16)
_AMBIGUOUS_LEVEL = np.minimum(np.minimum(_LEVELS, np.abs(_LEVELS - UNKNOWN)), 255 - _LEVELS) > AMBIGUOUS_TOLERANCE


def ambiguous_fraction(arr: np.ndarray) -> float:
    """The fraction of a trimap file's pixels that are not clearly black, grey 128 or white.

    ``arr``: the file's 8-bit pixels, (H, W), grey and alpha (H, W, 2) or
    RGB(A) (H, W, 3|4); alpha is ignored. See ``AMBIGUOUS_TOLERANCE``.
    """
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected 8-bit pixels, got {arr.dtype}")
    if arr.ndim not in (2, 3) or arr.size == 0:
        return 0.0
    step = max(1, int(np.ceil(np.sqrt(arr.shape[0] * arr.shape[1] / _AMBIGUITY_SAMPLE))))
    sample = arr[::step, ::step]
    if sample.ndim == 3 and sample.shape[2] < 3:
        sample = sample[:, :, 0]  # grey (and alpha)
    if sample.ndim == 2:
        ambiguous = _AMBIGUOUS_LEVEL[sample]
    else:
        colour = sample[:, :, :3]
        ambiguous = _AMBIGUOUS_LEVEL[colour].any(axis=2)
        spread = colour.max(axis=2).astype(np.int16) - colour.min(axis=2)
        ambiguous |= spread > AMBIGUOUS_TOLERANCE
    return float(ambiguous.mean())


def check_same_size(
    image_shape: tuple[int, ...],
    trimap_shape: tuple[int, ...],
    image_name: str = "image",
    trimap_name: str = "trimap",
) -> None:
    """Raise a TrimapError naming both sizes when they differ."""
    ih, iw = image_shape[:2]
    th, tw = trimap_shape[:2]
    if (ih, iw) != (th, tw):
        raise TrimapError(
            f"{trimap_name} is {tw}x{th} but {image_name} is {iw}x{ih} (width x height); "
            "they must be the same size"
        )


def validate_trimap(trimap: np.ndarray, require_foreground: bool = True) -> None:
    """Check a trimap is usable for matting; raise TrimapError saying what to fix."""
    if trimap.ndim != 2 or trimap.dtype != np.uint8:
        raise TrimapError(
            f"a trimap must be a single-channel 8-bit array, got {trimap.dtype} {trimap.shape}"
        )
    if not np.any(trimap == UNKNOWN):
        raise TrimapError(
            "the trimap has no unknown (grey) pixels, so there is nothing to matte: "
            "paint the unknown band over the subject's edge"
        )
    if require_foreground and not np.any(trimap == FOREGROUND):
        raise TrimapError(
            "the trimap has no foreground (white) pixels: paint at least part of the "
            "subject as foreground"
        )
    if not np.any(trimap == BACKGROUND) and require_foreground:
        # Solvers that propagate between the two known labels need both.
        raise TrimapError(
            "the trimap has no background (black) pixels: mark some of the background"
        )


def _disk(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def trimap_from_mask(mask: np.ndarray, band: int = 10, threshold: float = 0.5) -> np.ndarray:
    """Turn a binary or soft mask into a trimap with an unknown band.

    Pixels within ``band`` pixels of the mask's edge become unknown (the band
    is ``2 * band`` wide in total); soft pixels (strictly between 0.05 and 0.95)
    are unknown too, since the mask itself was unsure there.
    """
    if band < 0:
        raise TrimapError(f"the band width must be 0 or more pixels, not {band}")
    mask = np.asarray(mask, dtype=np.float32)
    if mask.max(initial=0.0) > 1.0:
        mask = mask / 255.0
    fg = (mask >= threshold).astype(np.uint8)
    if band > 0:
        kernel = _disk(band)
        sure_fg = cv2.erode(fg, kernel, borderType=cv2.BORDER_REPLICATE)
        maybe_fg = cv2.dilate(fg, kernel, borderType=cv2.BORDER_REPLICATE)
    else:
        sure_fg, maybe_fg = fg, fg
    trimap = np.full(mask.shape, UNKNOWN, dtype=np.uint8)
    trimap[maybe_fg == 0] = BACKGROUND
    trimap[sure_fg == 1] = FOREGROUND
    soft = (mask > 0.05) & (mask < 0.95)
    trimap[soft] = UNKNOWN
    return trimap


def trimap_from_alpha(
    alpha: np.ndarray,
    rng: np.random.Generator,
    min_radius: int = 1,
    max_radius: int = 30,
) -> np.ndarray:
    """Make a training trimap from a ground-truth alpha (DIM's data pipeline).

    Foreground = alpha == 1 eroded, background = alpha == 0 eroded, by random
    radii; the unknown band is where dilation and erosion of the alpha differ.
    """
    alpha = np.asarray(alpha, dtype=np.float32)
    fg = (alpha >= 1.0 - 1e-6).astype(np.uint8)
    not_bg = (alpha > 1e-6).astype(np.uint8)
    r_erode = int(rng.integers(min_radius, max_radius + 1))
    r_dilate = int(rng.integers(min_radius, max_radius + 1))
    sure_fg = cv2.erode(fg, _disk(r_erode), borderType=cv2.BORDER_REPLICATE)
    maybe_fg = cv2.dilate(not_bg, _disk(r_dilate), borderType=cv2.BORDER_REPLICATE)
    trimap = np.full(alpha.shape, UNKNOWN, dtype=np.uint8)
    trimap[maybe_fg == 0] = BACKGROUND
    trimap[sure_fg == 1] = FOREGROUND
    return trimap


def unknown_bbox(trimap: np.ndarray, margin: int = 0) -> Box | None:
    """The bounding box of the unknown pixels plus ``margin``, or None if none."""
    rows = np.flatnonzero(np.any(trimap == UNKNOWN, axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(np.any(trimap == UNKNOWN, axis=0))
    box = Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return box.grow(margin, trimap.shape)


def force_known(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Set alpha to exactly 0/1 where the trimap is known (in place, returned)."""
    alpha[trimap == BACKGROUND] = 0.0
    alpha[trimap == FOREGROUND] = 1.0
    return alpha


def trimap_stats(trimap: np.ndarray) -> dict[str, float]:
    """Fractions of background, unknown and foreground pixels."""
    n = float(trimap.size) or 1.0
    return {
        "background": float(np.count_nonzero(trimap == BACKGROUND)) / n,
        "unknown": float(np.count_nonzero(trimap == UNKNOWN)) / n,
        "foreground": float(np.count_nonzero(trimap == FOREGROUND)) / n,
    }
