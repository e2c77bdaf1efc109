"""Writing the results of one matting job: alpha, cutout, composite.

The CLI's ``matte``, the batch runner and the GUI's export all call
``write_outputs`` so that the same inputs give byte-identical files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from .atomic import staged_outputs
from .errors import DimStudioError
from .images import is_image_path, read_image, write_alpha, write_rgb, write_rgba

Color = tuple[float, float, float]
CHECKERBOARD = "checkerboard"


@dataclass(frozen=True)
class Background:
    """What a composite is laid over: a colour, an image, or a checkerboard."""

    color: Color | None = None
    image: np.ndarray | None = None
    checkerboard: bool = False
    label: str = ""


BackgroundSpec = Union[str, Background, None]


def resolve_background(spec: BackgroundSpec) -> Background:
    """Parse ``--background``: a colour, the path of an image, or 'checkerboard'."""
    from .compose import parse_color

    if isinstance(spec, Background):
        return spec
    if spec is None or spec == "":
        return Background(color=(1.0, 1.0, 1.0), label="white")
    if spec.strip().lower() == CHECKERBOARD:
        return Background(checkerboard=True, label=CHECKERBOARD)
    if is_image_path(spec) or os.path.exists(spec):
        return Background(image=read_image(spec), label=str(spec))
    try:
        return Background(color=parse_color(spec), label=spec)
    except (ValueError, DimStudioError) as exc:
        raise DimStudioError(
            f"background '{spec}' is neither a colour nor an image file ({exc})"
        ) from None


def composite(foreground: np.ndarray, alpha: np.ndarray, background: Background) -> np.ndarray:
    """The foreground laid over ``background`` with ``alpha``."""
    from .compose import composite_over_checkerboard, composite_over_color, composite_over_image

    if background.checkerboard:
        return composite_over_checkerboard(foreground, alpha)
    if background.image is not None:
        return composite_over_image(foreground, alpha, background.image)
    return composite_over_color(foreground, alpha, background.color or (1.0, 1.0, 1.0))


def write_outputs(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    alpha_path: str | os.PathLike[str] | None = None,
    cutout_path: str | os.PathLike[str] | None = None,
    composite_path: str | os.PathLike[str] | None = None,
    background: BackgroundSpec = None,
    depth: int = 8,
    foreground: np.ndarray | None = None,
) -> list[Path]:
    """Write whichever outputs are asked for; returns the paths written.

    All of them appear, or none does (``atomic.staged_outputs``). The
    foreground colours are estimated once and shared by the cutout and the
    composite, since that estimate is the slow part.
    """
    from .compose import estimate_foreground

    written: list[Path] = []
    with staged_outputs():
        if alpha_path is not None:
            written.append(write_alpha(alpha_path, alpha, depth=depth))
        if cutout_path is None and composite_path is None:
            return written
        if foreground is None:
            foreground = estimate_foreground(image, alpha)
        if cutout_path is not None:
            rgba = np.dstack([foreground, alpha]).astype(np.float32)
            written.append(write_rgba(cutout_path, rgba, depth=depth))
        if composite_path is not None:
            bg = resolve_background(background)
            written.append(write_rgb(composite_path, composite(foreground, alpha, bg), depth=depth))
    return written
