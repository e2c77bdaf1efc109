"""The engine interface shared by the CLI, batch runs and the GUI.

An engine turns (image, trimap) into an alpha. The base class does the parts
every engine needs: validate the inputs, cut out the bounding box of the
unknown region plus a context margin, run the engine there, paste the result
back, and force known pixels to exactly 0/1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Optional

import numpy as np

from ..errors import Cancelled, EngineError
from ..trimap import FOREGROUND, Box, check_same_size, force_known, unknown_bbox, validate_trimap

ProgressFn = Optional[Callable[[float], None]]
CancelFn = Optional[Callable[[], bool]]


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
        if progress is not None:
            progress(0.0)

        box = self._crop_box(trimap)
        rows, cols = box.slices
        crop_alpha = self._estimate_crop(
            np.ascontiguousarray(image[rows, cols]),
            np.ascontiguousarray(trimap[rows, cols]),
            progress,
            cancel,
        )
        if crop_alpha.shape != (box.height, box.width):
            raise EngineError(
                f"engine {self.name} returned an alpha of shape {crop_alpha.shape} "
                f"for a region of {box.height}x{box.width}"
            )
        alpha = (trimap == FOREGROUND).astype(np.float32)
        alpha[rows, cols] = np.clip(crop_alpha, 0.0, 1.0)
        force_known(alpha, trimap)
        if progress is not None:
            progress(1.0)
        return alpha

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

    def describe(self) -> str:
        """A short human description for status bars and reports."""
        return self.name
