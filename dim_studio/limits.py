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
    text = os.environ.get(MAX_MEGAPIXELS_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if math.isfinite(value) and value > 0:
            return value
    return DEFAULT_MAX_MEGAPIXELS


def max_pixels() -> int:
    return int(max_megapixels() * 1_000_000)


HOW_TO_RAISE = (
    f"raise the limit with --max-megapixels or the {MAX_MEGAPIXELS_ENV} environment variable"
)
