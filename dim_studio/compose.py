"""Compositing: foreground colours, cutouts, backgrounds and checkerboards.

All functions take and return float images in [0, 1]:
RGB ``(H, W, 3)``, alpha ``(H, W)``. The composite of a foreground F over a
background B is ``alpha * F + (1 - alpha) * B``.

A cutout's RGB is the *estimated foreground* (PyMatting's
``estimate_foreground_ml``), not the photo: in hair and other mixed pixels the
photo still contains the old background's colour, which would show as a halo
on a new background.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from dim_studio.errors import DimStudioError

__all__ = [
    "DEFAULT_DECONTAMINATION",
    "decontaminate",
    "estimate_foreground",
    "estimate_layers",
    "make_cutout",
    "parse_color",
    "composite_over_color",
    "composite_over_image",
    "cover_resize",
    "checkerboard",
    "composite_over_checkerboard",
]

Color = tuple[float, float, float]

# Pixels around the soft region that still take part in the foreground solve,
# so the estimate near the box edge sees real neighbours.
FOREGROUND_MARGIN = 16


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------

def _as_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    """Return ``arr`` as float32 (H, W, 3) in [0, 1] units."""
    a = np.asarray(arr)
    if a.ndim != 3 or a.shape[2] != 3:
        raise DimStudioError(f"{name} must be an RGB image of shape (H, W, 3), got {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return a.astype(np.float32, copy=False)


def _as_alpha(arr: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``arr`` as float32 (H, W) alpha; check it matches ``shape``[:2]."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise DimStudioError(f"alpha must be a single-channel (H, W) matte, got {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    else:
        a = a.astype(np.float32, copy=False)
    if shape is not None and a.shape != tuple(shape[:2]):
        raise DimStudioError(
            f"alpha and image differ in size: alpha is {a.shape[1]}x{a.shape[0]}, "
            f"image is {shape[1]}x{shape[0]}"
        )
    return a


# --------------------------------------------------------------------------
# foreground and cutouts
# --------------------------------------------------------------------------

def _soft_bbox(alpha: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Bounding box (with margin, clipped) of the pixels with 0 < alpha < 1."""
    soft = (alpha > 0.0) & (alpha < 1.0)
    rows = np.flatnonzero(soft.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(soft.any(axis=0))
    h, w = alpha.shape
    y0 = max(0, int(rows[0]) - margin)
    y1 = min(h, int(rows[-1]) + 1 + margin)
    x0 = max(0, int(cols[0]) - margin)
    x1 = min(w, int(cols[-1]) + 1 + margin)
    return slice(y0, y1), slice(x0, x1)


def estimate_foreground(
    image: np.ndarray, alpha: np.ndarray, *, margin: int = FOREGROUND_MARGIN
) -> np.ndarray:
    """Foreground colours F with ``image ~= alpha F + (1 - alpha) B``.

    Uses ``pymatting.estimate_foreground_ml`` on the bounding box of the soft
    pixels (0 < alpha < 1) plus ``margin``; outside that box every pixel is
    fully opaque or fully transparent, nothing is mixed, and the photo itself
    is the answer (for alpha = 0 the colour is invisible anyway). This keeps
    large photos with a thin soft band fast. Returns float32 (H, W, 3) in
    [0, 1].
    """
    return estimate_layers(image, alpha, margin=margin)[0]


def estimate_layers(
    image: np.ndarray, alpha: np.ndarray, *, margin: int = FOREGROUND_MARGIN
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours (F, B) with ``image ~= alpha F + (1 - alpha) B``.

    As :func:`estimate_foreground`, from the same solve (PyMatting estimates
    both at once). Outside the soft box the photo stands in for both: where
    alpha is 0 it is the background exactly, and where alpha is 1 the
    background is hidden, so any colour composites the same.
    """
    img = _as_rgb(image, "image")
    a = _as_alpha(alpha, img.shape)
    fg = np.clip(img, 0.0, 1.0).astype(np.float32, copy=True)
    bg = fg.copy()
    box = _soft_bbox(a, max(0, int(margin)))
    if box is None:
        return fg, bg
    # imported here: pymatting pulls in numba, which is slow to import and not
    # needed by the rest of this module; Numba's cache goes to a writable per-user folder
    from . import numba_cache

    numba_cache.configure()
    from pymatting import estimate_foreground_ml

    # float32, which estimate_foreground_ml computes in anyway: a float64 copy
    # of a 24 MP box would cost 0.75 GB for nothing.
    crop_img = np.ascontiguousarray(img[box], dtype=np.float32)
    crop_alpha = np.ascontiguousarray(np.clip(a[box], 0.0, 1.0), dtype=np.float32)
    crop_fg, crop_bg = estimate_foreground_ml(crop_img, crop_alpha, return_background=True)
    fg[box] = np.clip(crop_fg, 0.0, 1.0)
    bg[box] = np.clip(crop_bg, 0.0, 1.0)
    return fg, bg


def make_cutout(
    image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None
) -> np.ndarray:
    """RGBA float32 (H, W, 4): RGB = estimated foreground, A = alpha."""
    img = _as_rgb(image, "image")
    a = _as_alpha(alpha, img.shape)
    if foreground is None:
        fg = estimate_foreground(img, a)
    else:
        fg = _as_rgb(foreground, "foreground")
        if fg.shape != img.shape:
            raise DimStudioError(
                f"foreground and image differ in size: foreground shape {fg.shape}, "
                f"image shape {img.shape}"
            )
    out = np.empty(img.shape[:2] + (4,), dtype=np.float32)
    out[..., :3] = fg
    out[..., 3] = a
    return out


#: How strongly the estimated foreground colour replaces the photo's own
#: colour in a cut-out by default: fully, as the cut-outs always were.
DEFAULT_DECONTAMINATION = 1.0


def decontaminate(image: np.ndarray, foreground: np.ndarray, strength: float) -> np.ndarray:
    """The cut-out's colours: the photo's own colour moved ``strength`` (0-1) of the way to the estimate.

    0 keeps the photo's colours (the background's cast stays in the edge:
    green from a green screen in out-of-focus fur), 1 uses the estimated
    foreground colour everywhere. Where alpha is 1 the two are the same, so
    only the soft edge changes.
    """
    if not 0.0 <= strength <= 1.0:
        raise DimStudioError(f"decontamination strength must be between 0 and 1, not {strength:g}")
    img = _as_rgb(image, "image")
    fg = _as_rgb(foreground, "foreground")
    if strength == 1.0:
        return fg
    if strength == 0.0:
        return img
    return (img + np.float32(strength) * (fg - img)).astype(np.float32)


# --------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------

# Pure primaries: someone typing "green" for a background wants a green screen,
# not CSS's dark #008000.
_NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
}

_HEX6 = re.compile(r"#([0-9a-f]{6})")
_HEX3 = re.compile(r"#([0-9a-f]{3})")
_TRIPLE = re.compile(r"(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})")


def parse_color(text: str) -> Color:
    """Parse ``#rrggbb``, ``#rgb``, ``r,g,b`` (0-255) or a colour name.

    Returns RGB floats in [0, 1]. Raises ``DimStudioError`` for anything else.
    """
    s = str(text).strip().lower()
    rgb: tuple[int, int, int] | None = None
    if m := _HEX6.fullmatch(s):
        h = m.group(1)
        rgb = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    elif m := _HEX3.fullmatch(s):
        # #abc means #aabbcc, as in CSS
        rgb = tuple(int(c * 2, 16) for c in m.group(1))  # type: ignore[assignment]
    elif m := _TRIPLE.fullmatch(s):
        rgb = tuple(int(v) for v in m.groups())  # type: ignore[assignment]
        if any(v > 255 for v in rgb):  # type: ignore[union-attr]
            raise DimStudioError(
                f"colour {text!r}: each of r,g,b must be between 0 and 255"
            )
    elif s in _NAMED_COLORS:
        rgb = _NAMED_COLORS[s]
    if rgb is None:
        names = ", ".join(sorted(_NAMED_COLORS))
        raise DimStudioError(
            f"cannot read the colour {text!r}: use #rrggbb, #rgb, r,g,b with "
            f"values 0-255, or one of: {names}"
        )
    r, g, b = rgb
    return (r / 255.0, g / 255.0, b / 255.0)


# --------------------------------------------------------------------------
# composites
# --------------------------------------------------------------------------

def _over(fg: np.ndarray, a: np.ndarray, bg: np.ndarray) -> np.ndarray:
    a3 = a[:, :, None]
    return (a3 * fg + (1.0 - a3) * bg).astype(np.float32, copy=False)


def composite_over_color(
    foreground: np.ndarray, alpha: np.ndarray, color: Color | str
) -> np.ndarray:
    """``alpha * F + (1 - alpha) * color`` as float32 (H, W, 3).

    ``color`` is an RGB triple in [0, 1] or any string ``parse_color`` accepts.
    """
    fg = _as_rgb(foreground, "foreground")
    a = _as_alpha(alpha, fg.shape)
    rgb = parse_color(color) if isinstance(color, str) else tuple(float(c) for c in color)
    if len(rgb) != 3:
        raise DimStudioError(f"a colour needs 3 components (r, g, b), got {color!r}")
    bg = np.asarray(rgb, dtype=np.float32).reshape(1, 1, 3)
    return _over(fg, a, bg)


def cover_resize(background: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``background`` to cover ``height`` x ``width``, then centre-crop.

    The aspect ratio is kept (like CSS ``background-size: cover``): the image
    is scaled so both sides are at least the target, and the overflow on the
    longer side is cut equally from both ends. INTER_AREA when shrinking (no
    aliasing), INTER_CUBIC when enlarging (clipped to [0, 1], cubic overshoots).
    """
    bg = _as_rgb(background, "background")
    if height <= 0 or width <= 0:
        raise DimStudioError(f"target size must be positive, got {width}x{height}")
    h, w = bg.shape[:2]
    if h == 0 or w == 0:
        raise DimStudioError(f"background image is empty (shape {bg.shape})")
    scale = max(height / h, width / w)
    # round() can land one pixel short of the target on the matching side
    new_w = max(width, int(round(w * scale)))
    new_h = max(height, int(round(h * scale)))
    if (new_h, new_w) != (h, w):
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
        bg = cv2.resize(np.ascontiguousarray(bg), (new_w, new_h), interpolation=interp)
        if interp == cv2.INTER_CUBIC:
            bg = np.clip(bg, 0.0, 1.0)
    y0 = (new_h - height) // 2
    x0 = (new_w - width) // 2
    return np.ascontiguousarray(bg[y0 : y0 + height, x0 : x0 + width], dtype=np.float32)


def composite_over_image(
    foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """Composite over a photo resized to cover the frame (see ``cover_resize``)."""
    fg = _as_rgb(foreground, "foreground")
    a = _as_alpha(alpha, fg.shape)
    bg = cover_resize(background, fg.shape[0], fg.shape[1])
    return _over(fg, a, bg)


def checkerboard(
    height: int, width: int, square: int = 16, light: float = 0.8, dark: float = 0.6
) -> np.ndarray:
    """Grey transparency checkerboard, float32 (H, W, 3); top-left square light."""
    if height < 0 or width < 0:
        raise DimStudioError(f"checkerboard size must not be negative, got {width}x{height}")
    if square < 1:
        raise DimStudioError(f"checkerboard square must be at least 1 pixel, got {square}")
    ys = (np.arange(height) // square)[:, None]
    xs = (np.arange(width) // square)[None, :]
    board = np.where((ys + xs) % 2 == 0, np.float32(light), np.float32(dark))
    return np.repeat(board[:, :, None], 3, axis=2).astype(np.float32, copy=False)


def composite_over_checkerboard(
    foreground: np.ndarray, alpha: np.ndarray, square: int = 16
) -> np.ndarray:
    """Composite over ``checkerboard`` (how the GUI shows transparency)."""
    fg = _as_rgb(foreground, "foreground")
    a = _as_alpha(alpha, fg.shape)
    return _over(fg, a, checkerboard(fg.shape[0], fg.shape[1], square))
