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


def check_decontamination(strength: float | None) -> float:
    """The decontamination strength as a float in [0, 1] (None: the default); refuses anything else."""
    from .compose import DEFAULT_DECONTAMINATION

    if strength is None:
        return DEFAULT_DECONTAMINATION
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise DimStudioError(f"decontamination strength must be a number from 0 to 1, not {strength!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise DimStudioError(f"decontamination strength must be from 0 to 1, not {value:g}")
    return value


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
    decontaminate: float | None = None,
) -> list[Path]:
    """Write whichever outputs are asked for; returns the paths written.

    All of them appear, or none does (``atomic.staged_outputs``). The
    foreground colours are estimated once and shared by the cutout and the
    composite, since that estimate is the slow part. ``decontaminate``
    (0-1, default ``compose.DEFAULT_DECONTAMINATION``) is how far those
    colours move from the photo's own towards the estimate
    (``compose.decontaminate``); the alpha never depends on it.
    """
    from .compose import decontaminate as decontaminated
    from .compose import estimate_foreground

    strength = check_decontamination(decontaminate)
    written: list[Path] = []
    with staged_outputs():
        if alpha_path is not None:
            written.append(write_alpha(alpha_path, alpha, depth=depth))
        if cutout_path is None and composite_path is None:
            return written
        if foreground is None:
            foreground = estimate_foreground(image, alpha)
        foreground = decontaminated(image, foreground, strength)
        if cutout_path is not None:
            rgba = np.dstack([foreground, alpha]).astype(np.float32)
            written.append(write_rgba(cutout_path, rgba, depth=depth))
        if composite_path is not None:
            bg = resolve_background(background)
            written.append(write_rgb(composite_path, composite(foreground, alpha, bg), depth=depth))
    return written
