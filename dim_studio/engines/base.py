"""The engine interface shared by the CLI, batch runs and the GUI.

An engine turns (image, trimap) into an alpha. The base class does the parts
every engine needs: validate the inputs, cut out the bounding box of the
unknown region plus a context margin, run the engine there, paste the result
back, and force known pixels to exactly 0/1.

Memory follows the unknown band, not its bounding box. A subject's edge on a
24-megapixel photo has a bounding box nearly the size of the photo, and a
solver that builds a matrix over that box needs ~12 GB. Engines that set
``max_solve_bytes`` (the classical ones) describe what a solve costs
(``solve_bytes_per_pixel`` of the window and ``solve_bytes_per_unknown``) and
the base class keeps every solve under that limit (plans in ``tiling``):

- A crop whose solve fits under ``tile_above_bytes`` (by default the limit)
  is solved in one piece, exactly as before, so small photos keep their
  results.
- A larger crop is cut into cores of ``tile_size`` pixels (``plan_tiles``).
  A core without unknown pixels is skipped; otherwise the engine solves the
  box of the core's unknown pixels plus ``tile_context`` pixels of context
  and keeps that box. Where the unknown region is wide, the context grows
  until the window holds, around every unknown pixel of the core, twice the
  distance to the farther of its nearest foreground and nearest background
  pixels (``tiling.REACH_FACTOR``): a tile that sees only one side of a wide unknown
  region would answer without the other. A core whose window lies inside a
  larger one is kept from that solve rather than solved again.
- Everything is planned before the first solve. When a window would need
  more memory than ``max_solve_bytes`` to see both kinds of known pixels, the
  job is refused there and then, with the size the engine can do in the
  message, instead of swapping the machine to a halt half-way through.

Engines that keep their own memory bounded (the DIM network tiles itself)
leave ``max_solve_bytes`` at None and are never tiled here.

Affinity-based engines (``propagates_known``) solve a system whose matting
Laplacian has the constants in its null space: with known pixels of only one
kind in reach, the solver's answer is that constant everywhere (energy zero).
PyMatting refuses such a trimap ("did not contain background values"), so
the base class answers it directly: for a whole crop (its margin covers the
Laplacian's reach, so this is also the whole-photo answer for closed-form and
LKM) and for a tile whose unknown pixels are enclosed by one kind.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Optional

import numpy as np

from ..errors import Cancelled, EngineError
from ..trimap import (
    FOREGROUND, UNKNOWN, Box, check_same_size, force_known, unknown_bbox,
    validate_trimap,
)
from .tiling import RegionTooLarge, TilePlan, known_kinds, plan_tiles

ProgressFn = Optional[Callable[[float], None]]
CancelFn = Optional[Callable[[], bool]]

GIB = 1 << 30


def check_cancel(cancel: CancelFn) -> None:
    """Raise Cancelled when the caller asked to stop."""
    if cancel is not None and cancel():
        raise Cancelled()


def scaled_progress(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A progress callback mapping [0, 1] onto [start, end] of ``progress``."""
    if progress is None:
        return None
    span = end - start

    def report(fraction: float) -> None:
        progress(start + span * min(1.0, max(0.0, fraction)))

    return report


def monotone_progress(progress: ProgressFn) -> ProgressFn:
    """``progress`` that never goes backwards (a solver's residual does)."""
    if progress is None:
        return None
    last = [0.0]

    def report(fraction: float) -> None:
        fraction = max(last[0], min(1.0, fraction))
        last[0] = fraction
        progress(fraction)

    return report


# --------------------------------------------------------------------------
# The engine interface
# --------------------------------------------------------------------------


class Engine(ABC):
    """Base class of all matting engines."""

    #: registry name, e.g. "closed-form"
    name: str = ""
    #: pixels of context kept around the unknown region's bounding box
    context_margin: int = 16
    #: whether the engine needs foreground pixels in the trimap to do anything
    needs_foreground: bool = True
    #: what the last run had to do differently (smaller tiles, CPU fallback, ...)
    last_run_notes: "list[str] | tuple[str, ...]" = ()
    #: the alpha is harmonic between the known pixels (a matting-Laplacian
    #: solve): with one kind of known pixel in reach the answer is constant
    propagates_known: bool = False

    #: Memory limit of one solve in bytes; None: the engine bounds its own
    #: memory and the base class never tiles it.
    max_solve_bytes: int | None = None
    #: Crops estimated above this (or above ``max_solve_bytes``) are tiled
    #: (None: ``max_solve_bytes``; 0 tiles every crop, for tests and benchmarks).
    tile_above_bytes: int | None = None
    #: Memory model of one solve: bytes per pixel of its window, plus bytes
    #: per unknown pixel in it (measured with bench/memory.py).
    solve_bytes_per_pixel: float = 0.0
    solve_bytes_per_unknown: float = 0.0
    #: Core of a tile (the part kept) and the context solved around it, in pixels.
    tile_size: int = 512
    tile_context: int = 64

    def estimate(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        *,
        progress: ProgressFn = None,
        cancel: CancelFn = None,
    ) -> np.ndarray:
        """Predict the alpha (float32, same size as the image, known pixels forced)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise EngineError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
        if image.dtype != np.float32:
            image = image.astype(np.float32)
        check_same_size(image.shape, trimap.shape)
        validate_trimap(trimap, require_foreground=self.needs_foreground)
        check_cancel(cancel)
        progress = monotone_progress(progress)
        if progress is not None:
            progress(0.0)

        box = self._crop_box(trimap)
        rows, cols = box.slices
        crop_trimap = trimap[rows, cols]
        alpha = (trimap == FOREGROUND).astype(np.float32)
        has_fg, has_bg = known_kinds(crop_trimap) if self.propagates_known else (True, True)
        if not (has_fg and has_bg):
            # Known pixels of one kind within the Laplacian's reach of every
            # unknown pixel: the constant is the exact answer (module docstring).
            self._set_stats(box, solves=0, filled=1)
            alpha[rows, cols][crop_trimap == UNKNOWN] = 1.0 if has_fg else 0.0
        elif self._fits_in_one_solve(crop_trimap):
            self._set_stats(box, solves=1)
            crop_alpha = self._estimate_crop(
                np.ascontiguousarray(image[rows, cols]),
                np.ascontiguousarray(crop_trimap),
                progress,
                cancel,
            )
            self._check_shape(crop_alpha, box, "a region")
            alpha[rows, cols] = np.clip(crop_alpha, 0.0, 1.0)
        else:
            plan = self._plan(crop_trimap, box)
            self._run_plan(image, trimap, box, plan, alpha, progress, cancel)
        force_known(alpha, trimap)
        if progress is not None:
            progress(1.0)
        return alpha

    # ------------------------------------------------------------ tiling

    def solve_bytes(self, pixels: int, unknown: int) -> float:
        """Estimated peak memory of one solve over ``pixels`` with ``unknown`` unknown pixels."""
        return self.solve_bytes_per_pixel * pixels + self.solve_bytes_per_unknown * unknown

    def _fits_in_one_solve(self, crop_trimap: np.ndarray) -> bool:
        if self.max_solve_bytes is None:
            return True
        limit = self.max_solve_bytes
        if self.tile_above_bytes is not None:
            limit = min(limit, self.tile_above_bytes)
        pixels = crop_trimap.size
        if self.solve_bytes(pixels, 0) > limit:  # cheap test first: no scan
            return False
        return self.solve_bytes(pixels, int(np.count_nonzero(crop_trimap == UNKNOWN))) <= limit

    def _plan(self, crop_trimap: np.ndarray, box: Box) -> TilePlan:
        assert self.max_solve_bytes is not None
        try:
            return plan_tiles(
                crop_trimap, int(self.tile_size), int(self.tile_context),
                self.solve_bytes, float(self.max_solve_bytes),
            )
        except RegionTooLarge as err:
            raise EngineError(self._too_large_message(err, box)) from None

    def _too_large_message(self, err: RegionTooLarge, box: Box) -> str:
        """One line: where, what it would take, and the size the engine can do."""
        limit = float(self.max_solve_bytes or 0)
        # The largest square piece within the limit: around a thin band, and
        # (where unknown pixels cost more) when it is all unknown.
        side_band = int(math.sqrt(limit / max(self.solve_bytes_per_pixel, 1e-9)))
        can_do = f"{side_band}x{side_band} px"
        if self.solve_bytes_per_unknown > 0:
            side_unknown = int(math.sqrt(
                limit / max(self.solve_bytes_per_pixel + self.solve_bytes_per_unknown, 1e-9)))
            can_do = f"{side_unknown}x{side_unknown} px of unknown pixels ({can_do} around a thin band)"
        x, y = box.x0 + err.keep.x0, box.y0 + err.keep.y0
        return (
            f"the unknown region is too large for {self.name}: near ({x}, {y}) its pixels are "
            f"{err.reach} px from the foreground or background they need, which would take a "
            f"{err.wanted.width}x{err.wanted.height} px piece; {self.name} solves pieces up to "
            f"about {can_do} within {limit / GIB:.1f} GB: mark more definite foreground and "
            "background, or use the dim engine"
        )

    def _run_plan(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        box: Box,
        plan: TilePlan,
        alpha: np.ndarray,
        progress: ProgressFn,
        cancel: CancelFn,
    ) -> None:
        """Solve the plan's pieces one by one into ``alpha`` (full size)."""
        self._set_stats(box, solves=plan.solves, filled=len(plan.tiles) - plan.solves,
                        skipped=plan.skipped, capped=plan.capped)
        if plan.capped:
            self._add_note(
                f"{self.name}: {plan.capped} tile(s) got less context than the unknown region's "
                "width asked for, to stay within the memory limit"
            )
        crop_alpha = alpha[box.slices]  # a view: writes land in ``alpha``
        crop_image = image[box.slices]
        crop_trimap = trimap[box.slices]
        frame = (box.height, box.width)
        total = float(sum(t.window.area for t in plan.tiles if t.fill is None)) or 1.0
        done = 0.0
        for tile in plan.tiles:
            check_cancel(cancel)
            win = tile.window
            if tile.fill is not None:
                for keep in tile.keeps:
                    part = crop_alpha[keep.slices]
                    part[crop_trimap[keep.slices] == UNKNOWN] = tile.fill
                continue
            area = float(win.area)
            out = self._estimate_tile(
                np.ascontiguousarray(crop_image[win.slices]),
                np.ascontiguousarray(crop_trimap[win.slices]),
                scaled_progress(progress, done / total, (done + area) / total),
                cancel,
                frame,
            )
            self._check_shape(out, win, "a tile")
            for keep in tile.keeps:
                crop_alpha[keep.slices] = np.clip(
                    out[keep.y0 - win.y0:keep.y1 - win.y0, keep.x0 - win.x0:keep.x1 - win.x0],
                    0.0, 1.0)
            done += area

    def _check_shape(self, alpha: np.ndarray, box: Box, what: str) -> None:
        if alpha.shape != (box.height, box.width):
            raise EngineError(
                f"engine {self.name} returned an alpha of shape {alpha.shape} "
                f"for {what} of {box.height}x{box.width}"
            )

    def _set_stats(self, box: Box, *, solves: int, filled: int = 0, skipped: int = 0,
                   capped: int = 0) -> None:
        self.last_run_notes = []
        #: what the last run did: solver calls, pieces answered without a solve,
        #: cores skipped (no unknown pixels), tiles cut to the limit, the crop
        self.last_run_stats = {
            "solves": solves, "filled": filled, "skipped": skipped, "capped": capped,
            "crop": (box.height, box.width),
        }

    def _add_note(self, text: str) -> None:
        notes = list(self.last_run_notes)
        notes.append(text)
        self.last_run_notes = notes

    # ------------------------------------------------------------ hooks

    def _crop_box(self, trimap: np.ndarray) -> Box:
        """The region the engine works on: unknown pixels plus the context margin."""
        box = unknown_bbox(trimap, self.context_margin)
        assert box is not None  # validate_trimap guarantees unknown pixels
        return box

    @abstractmethod
    def _estimate_crop(
        self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn, cancel: CancelFn
    ) -> np.ndarray:
        """Alpha for a crop that contains every unknown pixel plus context."""

    def _estimate_tile(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        progress: ProgressFn,
        cancel: CancelFn,
        frame: tuple[int, int],
    ) -> np.ndarray:
        """Alpha for one tile of a crop of ``frame`` = (height, width) pixels.

        The same as ``_estimate_crop`` unless the engine's answer depends on
        the size of the region it sees (KNN scales its spatial features by it).
        """
        return self._estimate_crop(image, trimap, progress, cancel)

    def describe(self) -> str:
        """A short human description for status bars and reports."""
        return self.name
