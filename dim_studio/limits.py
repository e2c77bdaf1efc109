"""Limits on what a file may make the program allocate, and how a user raises them.

A few kilobytes of PNG can declare 60000x60000 pixels; a megabyte of zip can
inflate to gigabytes. Each limit is checked from a file's header before
anything is decoded, and each error message says how to raise the limit.

- ``DIM_STUDIO_MAX_MEGAPIXELS`` (or ``dim-studio --max-megapixels``): the
  largest image read. The default covers 100 MP medium-format cameras.
"""

from __future__ import annotations

import math
import os

MAX_MEGAPIXELS_ENV = "DIM_STUDIO_MAX_MEGAPIXELS"
DEFAULT_MAX_MEGAPIXELS = 120.0

_override: float | None = None


def set_max_megapixels(value: float | None) -> None:
    """Set the image-size limit for this process (None: back to the environment/default)."""
    global _override
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"the image size limit must be a positive number, not {value}")
    _override = value


def max_megapixels() -> float:
    """The largest image, in megapixels, that may be decoded."""
    if _override is not None:
        return _override
    return _positive_from_env(MAX_MEGAPIXELS_ENV, DEFAULT_MAX_MEGAPIXELS)


def _positive_from_env(name: str, default: float) -> float:
    """A positive number from the environment; anything else means the default."""
    try:
        value = float(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def max_pixels() -> int:
    return int(max_megapixels() * 1_000_000)


HOW_TO_RAISE = (
    f"raise the limit with --max-megapixels or the {MAX_MEGAPIXELS_ENV} environment variable"
)


def megapixels_text(pixels: float) -> str:
    """A pixel count in megapixels for messages: '3600', '144', '12.5', '0.04'."""
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 100 else f"{mp:.3g}"


def over_limit_message(what: str) -> str:
    """'<what> is over the 120 MP limit on image size; raise the limit with ...'."""
    return (f"{what} is over the {megapixels_text(max_megapixels() * 1_000_000)} MP limit "
            f"on image size; {HOW_TO_RAISE}")


def image_size_problem(width: int, height: int) -> str | None:
    """Why an image of width x height may not be decoded, or None when it may."""
    pixels = int(width) * int(height)
    if pixels <= max_pixels():
        return None
    return over_limit_message(f"{width}x{height} = {megapixels_text(pixels)} MP")


# --------------------------------------------------------------------------
# Weights files (checkpoints to import)
# --------------------------------------------------------------------------
#
# ``DIM_STUDIO_MAX_WEIGHTS_MB``: the most a checkpoint may hold, counted as its
# size on disk and, for a zip (a .pth in torch's zip format, an .npz), as the
# uncompressed sizes its central directory declares. Real files are far
# below the default: OpenMMLab's DIM checkpoints are about 100 MB, torchvision's
# VGG-16 528 MB, the seed's vgg16_weights.npz 553 MB, and a training checkpoint
# of the 7x7-conv6 network with Adam's two moment buffers about 1.6 GB. An
# import holds the checkpoint and its converted copy in memory, so 2 GB keeps
# the worst legitimate import within a few GB while a 1 MB zip that would
# inflate to gigabytes is refused before anything is decompressed.

MAX_WEIGHTS_MB_ENV = "DIM_STUDIO_MAX_WEIGHTS_MB"
DEFAULT_MAX_WEIGHTS_MB = 2048.0

#: A zip member larger than MIN_RATIO_CHECKED_BYTES may inflate at most this
#: many times its stored size. torch.save and np.savez store members
#: uncompressed (ratio 1) and deflate shrinks float32 weights by about 10 %;
#: a zip bomb inflates about 1000-fold. Not user-raisable: no real weights
#: file comes near it (re-zip a file stored, without compression, if one does).
MAX_ZIP_RATIO = 100.0
MIN_RATIO_CHECKED_BYTES = 1 << 20


def max_weights_mb() -> float:
    """The largest checkpoint, in MB (10^6 bytes), that may be read for an import."""
    return _positive_from_env(MAX_WEIGHTS_MB_ENV, DEFAULT_MAX_WEIGHTS_MB)


def max_weights_bytes() -> int:
    return int(max_weights_mb() * 1_000_000)


HOW_TO_RAISE_WEIGHTS = f"raise the limit (in MB) with the {MAX_WEIGHTS_MB_ENV} environment variable"
