"""The live-preview job: alpha (maybe downscaled), foreground colours, and the pixels to display.

Everything whose cost grows with the photo happens here, in the job, never on
the GUI thread: the engine's solve, the foreground estimate, and composing the
display pixels for the chosen preview mode (a cutout over a colour or a photo
is a full-frame blend). The GUI only converts the finished pixels to an image
and paints them. Composing reuses ``export.composite``, so the preview looks
like what export writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..compose import DEFAULT_DECONTAMINATION, decontaminate
from ..enums import TextEnum
from ..export import Background, composite
from ..trimap_mirror import TrimapSnapshot, as_trimap
from ..engines.base import scaled_progress
from .engine_choice import EngineChoice, preview_options, preview_stand_in
from .jobs import JobContext
from .preview_scale import (
    auto_pixel_budget, auto_unknown_budget, choose_scale, estimate_alpha_scaled, estimate_foreground_scaled,
)


class PreviewMode(TextEnum):
    """What the preview pane shows (in this order in its list and the View menu)."""

    ALPHA = "alpha"
    OVERLAY = "overlay"
    CHECKERBOARD = "checkerboard"
    BLACK = "black"
    WHITE = "white"
    COLOR = "color"
    IMAGE = "image"

    @property
    def label(self) -> str:
        return _MODE_LABELS[self]

    @property
    def needs_foreground(self) -> bool:
        """Cutout modes show estimated foreground colours, which the job computes."""
        return self not in (PreviewMode.ALPHA, PreviewMode.OVERLAY)

    @property
    def is_cutout(self) -> bool:
        """The foreground laid over something: decontamination applies."""
        return self.needs_foreground


_MODE_LABELS = {
    PreviewMode.ALPHA: "Alpha",
    PreviewMode.OVERLAY: "Mask overlay on photo",
    PreviewMode.CHECKERBOARD: "Cutout on checkerboard",
    PreviewMode.BLACK: "Cutout on black",
    PreviewMode.WHITE: "Cutout on white",
    PreviewMode.COLOR: "Cutout on colour",
    PreviewMode.IMAGE: "Cutout on image",
}

#: the mask overlay's default tint and opacity: Photoshop's quick-mask red at half strength
DEFAULT_OVERLAY_COLOR: tuple[float, float, float] = (1.0, 0.0, 0.0)
DEFAULT_OVERLAY_OPACITY = 0.5


@dataclass(frozen=True)
class Display:
    """How to show a matte.

    ``mode``; ``color`` for COLOR; ``background`` the photo for IMAGE (same
    size, or None); ``overlay_color`` and ``overlay_opacity`` the tint OVERLAY
    lays where alpha is low; ``decontaminate`` (0-1) how far the cut-out's
    edge colours move from the photo's towards the estimated foreground
    (``compose.decontaminate``), for every cut-out mode.
    """

    mode: PreviewMode = PreviewMode.ALPHA
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    background: np.ndarray | None = field(default=None, compare=False)
    overlay_color: tuple[float, float, float] = DEFAULT_OVERLAY_COLOR
    overlay_opacity: float = DEFAULT_OVERLAY_OPACITY
    decontaminate: float = DEFAULT_DECONTAMINATION


def compose_preview(
    image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None, display: Display
) -> np.ndarray:
    """uint8 display pixels for a mode.

    ALPHA: (H, W) grey. OVERLAY: (H, W, 3), the photo tinted with
    ``overlay_color`` at ``overlay_opacity`` × (1 - alpha), like a quick-mask
    overlay. CHECKERBOARD: (H, W, 4) straight RGBA, which the view draws over
    its own checkerboard (squares of constant screen size, as in every image
    editor). BLACK / WHITE / COLOR / IMAGE: (H, W, 3), composed by
    ``export.composite`` exactly as an exported composite. Cut-out colours are
    ``compose.decontaminate(image, foreground, display.decontaminate)``;
    until the foreground estimate arrives the photo stands in for it, so the
    cutout appears at once and its edge colours clean up a moment later.
    """
    mode = PreviewMode(display.mode)
    a = np.clip(alpha, 0.0, 1.0)
    if mode is PreviewMode.ALPHA:
        return np.round(a * 255.0).astype(np.uint8)
    if mode is PreviewMode.OVERLAY:
        tint = np.asarray(display.overlay_color, np.float32).reshape(1, 1, 3)
        k = (np.float32(min(max(display.overlay_opacity, 0.0), 1.0)) * (1.0 - a))[..., None]
        out = image[..., :3] + k * (tint - image[..., :3])
        return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    strength = min(max(float(display.decontaminate), 0.0), 1.0)
    fg = image if foreground is None else decontaminate(image, foreground, strength)
    if mode is PreviewMode.CHECKERBOARD:
        rgba = np.dstack([fg, alpha])
        return np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
    if mode is PreviewMode.IMAGE and display.background is not None:
        bg = Background(image=display.background)
    elif mode is PreviewMode.BLACK:
        bg = Background(color=(0.0, 0.0, 0.0))
    elif mode is PreviewMode.WHITE:
        bg = Background(color=(1.0, 1.0, 1.0))
    else:
        bg = Background(color=display.color)
    out = composite(fg, alpha, bg)
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class PreviewRequest:
    """A snapshot of everything a preview needs; the arrays are never mutated after."""

    image: np.ndarray
    trimap: np.ndarray | TrimapSnapshot  # a snapshot is copied out in the job, not by the caller
    engine: EngineChoice
    resolution: str = "auto"
    display: Display = Display()


@dataclass(frozen=True)
class PreviewResult:
    alpha: np.ndarray
    foreground: np.ndarray | None
    trimap: np.ndarray           # the trimap this alpha belongs to
    scale: float
    work_size: tuple[int, int]   # (height, width) the engine solved
    seconds: float               # alpha (and foreground, when final) compute time
    engine_label: str
    device_label: str
    final: bool                  # False for the alpha-only stage before the foreground
    display: Display = Display()
    pixels: np.ndarray | None = None  # compose_preview(...) for ``display``
    #: the engine whose matte will replace this one (a stand-in's result), else ""
    refining: str = ""


def device_label(engine: Any) -> str:
    """'CUDA (NVIDIA H100 ...)', 'MPS (Apple GPU)', 'CPU (8 threads)'; plain 'CPU' for classical engines."""
    device = getattr(engine, "device", None)
    if device is None:
        return "CPU"
    try:
        from ..engines.device import describe_device

        return describe_device(str(device))
    except Exception:  # noqa: BLE001 - a label is never worth a crash
        return str(device).split(":")[0].upper()


#: Share of the progress bar the stand-in's solve takes (it is the faster one).
STAND_IN_SHARE = 0.25


def run_preview(ctx: JobContext, request: PreviewRequest) -> PreviewResult:
    """Alpha (maybe downscaled), then, if the mode shows a cutout, the foreground colours.

    With a cutout mode the alpha-only stage is handed to ``ctx.partial`` first
    (with the photo standing in for the foreground), so the matte appears
    before the slower foreground estimate. An engine with a preview stand-in
    (``engine_choice.PREVIEW_STAND_INS``) first hands over the stand-in's
    matte, marked ``refining``, then computes its own.
    """
    start = time.perf_counter()
    stand_in = preview_stand_in(request.engine)
    progress = ctx.progress
    if stand_in is not None:
        quick = _solve(ctx, request, stand_in, scaled_progress(ctx.progress, 0.0, STAND_IN_SHARE), start)
        ctx.partial(replace(quick, refining=request.engine.name, final=False))
        progress = scaled_progress(ctx.progress, STAND_IN_SHARE, 1.0)
    result = _solve(ctx, request, request.engine, progress, start)
    if result.final:
        return result
    ctx.partial(result)
    return redisplay(ctx, request.image, result, request.display, started=start)


def _solve(
    ctx: JobContext, request: PreviewRequest, choice: EngineChoice, progress: Any, start: float
) -> PreviewResult:
    """``choice``'s alpha at the preview's scale, composed with the photo as the foreground;
    final when the display needs no foreground estimate. ``seconds`` count from ``start``."""
    # Previews take the fast precision where it is native (bf16 on such CPUs); exports stay fp32.
    engine = ctx.engines.get(choice.name, preview_options(choice))
    device = getattr(engine, "device", None)
    budget = auto_pixel_budget(choice.name, None if device is None else str(device))
    trimap = as_trimap(request.trimap)
    scale = choose_scale(trimap, request.resolution, budget, engine.context_margin,
                         auto_unknown_budget(choice.name))
    scaled = estimate_alpha_scaled(
        engine, request.image, trimap, scale, progress=progress, cancel=ctx.cancelled
    )
    display = request.display
    return PreviewResult(
        scaled.alpha, None, trimap, scaled.scale, scaled.work_size,
        time.perf_counter() - start, engine.describe(), device_label(engine),
        final=not PreviewMode(display.mode).needs_foreground, display=display,
        pixels=compose_preview(request.image, scaled.alpha, None, display),
    )


def redisplay(
    ctx: JobContext, image: np.ndarray, result: PreviewResult, display: Display,
    *, started: float | None = None,
) -> PreviewResult:
    """``result`` shown another way: the foreground when the new mode needs it and it is missing, then the pixels.

    ``started`` is when the alpha's computation began (the seconds then count
    both); without it the foreground's time is added to the result's.
    """
    start = time.perf_counter()
    foreground = result.foreground
    if foreground is None and PreviewMode(display.mode).needs_foreground:
        foreground = estimate_foreground_scaled(image, result.alpha, result.scale, cancel=ctx.cancelled)
    now = time.perf_counter()
    seconds = now - started if started is not None else result.seconds + (now - start)
    return replace(
        result, foreground=foreground, display=display, final=True, seconds=seconds,
        pixels=compose_preview(image, result.alpha, foreground, display),
    )


__all__ = [
    "DEFAULT_OVERLAY_COLOR", "DEFAULT_OVERLAY_OPACITY", "Display", "PreviewMode", "PreviewRequest", "PreviewResult", "compose_preview", "device_label",
    "redisplay", "run_preview",
]
