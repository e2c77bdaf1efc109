"""One training sample, the paper's way: crop, resize, flip, trimap, then composite.

Deep Image Matting composites its training data on the fly: a foreground F
with its alpha over a random background B. The order matters: **F, alpha and
B are cropped and resized first, and composited after**, so the network's
input is exactly ``alpha * F + (1 - alpha) * B`` of the very tensors the
compositional loss recomposes with the predicted alpha. Resizing the
composite instead blends colours across the edge at the old resolution, and
the input then disagrees with the ground truth the loss compares it with
(``tests/test_training_data.py`` measures both orders).

Everything here is plain NumPy and OpenCV on float32 arrays in [0, 1] and is
driven by an explicit ``numpy.random.Generator``, so a sample is fully
determined by its seed whatever process makes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..trimap import trimap_from_alpha

__all__ = [
    "CROP_SIZES",
    "OUTPUT_SIZE",
    "Sample",
    "SampleOptions",
    "composite",
    "crop_window",
    "make_sample",
    "random_trimap",
    "resize",
]

#: The paper's crop sizes, each resized to OUTPUT_SIZE.
CROP_SIZES: tuple[int, ...] = (320, 480, 640)
OUTPUT_SIZE = 320

# Alpha above this is "definitely foreground", below 1 - this "definitely
# background": 8-bit alphas store 254/255 and 1/255 for nearly-solid pixels.
_SOLID = 1.0 - 1.0 / 255.0


@dataclass(frozen=True)
class SampleOptions:
    """How samples are drawn (defaults: the paper's)."""

    size: int = OUTPUT_SIZE
    crop_sizes: tuple[int, ...] = CROP_SIZES
    flip: bool = True
    #: Largest dilation/erosion kernel for the random trimap, in output
    #: pixels; each side of the band is 1..max_kernel wide.
    max_kernel: int = 20


@dataclass
class Sample:
    """A training sample: float32 arrays at the output size."""

    image: np.ndarray  # (S, S, 3): composite of fg, bg, alpha below
    fg: np.ndarray  # (S, S, 3)
    bg: np.ndarray  # (S, S, 3)
    alpha: np.ndarray  # (S, S)
    trimap: np.ndarray  # (S, S) uint8, 0/128/255


def composite(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg`` in float32, as the compositional loss computes it."""
    a = alpha.astype(np.float32)[..., None]
    return (a * fg.astype(np.float32) + (np.float32(1.0) - a) * bg.astype(np.float32)).astype(np.float32)


def resize(arr: np.ndarray, size: int) -> np.ndarray:
    """Square ``arr`` to ``size`` x ``size``: area averaging down (no aliasing), linear up."""
    h, w = arr.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(arr, dtype=np.float32)
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(arr, dtype=np.float32), (size, size), interpolation=interp)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def random_trimap(alpha: np.ndarray, rng: np.random.Generator, max_kernel: int = 20) -> np.ndarray:
    """The paper's training trimap: the band is where dilation and erosion of the alpha differ.

    Everything not background is dilated and everything opaque eroded, each
    by a random radius of 1 to ``max_kernel`` pixels
    (``trimap.trimap_from_alpha``), so every soft pixel is unknown and the
    band's width varies like hand-drawn trimaps do.
    """
    return trimap_from_alpha(alpha, rng, 1, max(1, int(max_kernel)))


def crop_window(alpha: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """(y0, x0, side) of a square crop centred on a soft pixel where possible.

    The side is ``crop``, or the photo's shorter side when that is smaller
    (the crop is then enlarged to the output size). The centre is a random
    pixel with 0 < alpha < 1; a hard-edged alpha uses its edge pixels, and an
    alpha without any edge a random pixel. The window is shifted to stay
    inside the photo.
    """
    h, w = alpha.shape
    side = int(min(crop, h, w))
    soft = np.flatnonzero((alpha > 1.0 - _SOLID) & (alpha < _SOLID))
    if soft.size == 0:
        solid = (alpha >= 0.5).astype(np.uint8)
        edge = cv2.dilate(solid, np.ones((3, 3), np.uint8)) != cv2.erode(solid, np.ones((3, 3), np.uint8))
        soft = np.flatnonzero(edge)
    if soft.size:
        cy, cx = divmod(int(soft[rng.integers(soft.size)]), w)
    else:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    return y0, x0, side


def _background_window(
    bg: np.ndarray, shape: tuple[int, int], window: tuple[int, int, int], size: int
) -> np.ndarray:
    """The part of ``bg`` under the crop window, at ``size`` x ``size``.

    The background is scaled to cover the whole foreground photo (as in the
    paper's compositions); only the window is cut from the original
    background and resized once, straight to the output size.
    """
    h, w = shape
    bh, bw = bg.shape[:2]
    scale = max(h / bh, w / bw)  # background pixels -> foreground pixels
    y0, x0, side = window
    # Centre the foreground photo on the scaled background, like cover_resize.
    oy = (bh * scale - h) / 2.0
    ox = (bw * scale - w) / 2.0
    top = (y0 + oy) / scale
    left = (x0 + ox) / scale
    extent = side / scale
    # Integer window in the background, at least one pixel.
    t = int(np.clip(np.floor(top), 0, bh - 1))
    l_ = int(np.clip(np.floor(left), 0, bw - 1))
    b = int(np.clip(np.ceil(top + extent), t + 1, bh))
    r = int(np.clip(np.ceil(left + extent), l_ + 1, bw))
    return resize(bg[t:b, l_:r], size)


def make_sample(
    fg: np.ndarray,
    alpha: np.ndarray,
    bg: np.ndarray,
    rng: np.random.Generator,
    options: SampleOptions = SampleOptions(),
    trimap: np.ndarray | None = None,
) -> Sample:
    """Crop, resize, flip, make the trimap, and only then composite.

    ``fg`` (H, W, 3) and ``alpha`` (H, W) are the foreground photo's layers;
    ``bg`` is any background photo (scaled to cover the foreground). A given
    ``trimap`` (the user's own, for a fine-tune) is cropped with the layers
    instead of drawing a random one.
    """
    crop = int(options.crop_sizes[rng.integers(len(options.crop_sizes))])
    window = crop_window(alpha, crop, rng)
    y0, x0, side = window
    size = options.size
    fg_c = resize(fg[y0:y0 + side, x0:x0 + side], size)
    alpha_c = resize(alpha[y0:y0 + side, x0:x0 + side], size)
    bg_c = _background_window(bg, alpha.shape, window, size)
    tri_c = None
    if trimap is not None:
        tri_c = cv2.resize(np.ascontiguousarray(trimap[y0:y0 + side, x0:x0 + side]), (size, size),
                           interpolation=cv2.INTER_NEAREST)
    if options.flip and rng.random() < 0.5:
        fg_c, alpha_c, bg_c = fg_c[:, ::-1], alpha_c[:, ::-1], bg_c[:, ::-1]
        tri_c = None if tri_c is None else tri_c[:, ::-1]
    fg_c, alpha_c, bg_c = (np.ascontiguousarray(a) for a in (fg_c, alpha_c, bg_c))
    tri_c = random_trimap(alpha_c, rng, options.max_kernel) if tri_c is None else np.ascontiguousarray(tri_c)
    return Sample(composite(fg_c, bg_c, alpha_c), fg_c, bg_c, alpha_c, tri_c)
