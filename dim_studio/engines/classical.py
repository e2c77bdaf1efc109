"""Classical matting engines from PyMatting: closed-form, LKM and KNN.

They need no weights, so the app works fully on a fresh machine. All three
solve a sparse linear system with PyMatting's conjugate-gradient solver; its
per-iteration callback is where progress is reported and cancellation polled.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

import cv2
import numpy as np

from ..errors import Cancelled, EngineError
from .base import CancelFn, Engine, ProgressFn, check_cancel, scaled_progress

# Building the Laplacian takes roughly this share of the time; the solve the rest.
_SETUP_SHARE = 0.3

log = logging.getLogger(__name__)


def _route_pymatting_prints_to_logging() -> None:
    """PyMatting's preconditioner prints warnings to stdout, which would corrupt
    a command's output. Shadowing ``print`` in that one module's globals sends
    them to logging instead; unlike swapping sys.stdout it is thread-safe."""
    import importlib

    # The package re-exports the function under the module's name, so fetch
    # the module itself.
    ichol = importlib.import_module("pymatting.preconditioner.ichol")

    def _log_print(*args: Any, **kwargs: Any) -> None:
        text = " ".join(str(a) for a in args).strip()
        if text:
            log.debug("pymatting: %s", text)

    ichol.print = _log_print  # type: ignore[attr-defined]


def _cg_callback(progress: ProgressFn, cancel: CancelFn, rtol: float) -> Callable[..., None]:
    """Turn CG iterations into progress (log of the residual) and cancel checks."""
    target = math.log(rtol)

    def callback(A: Any, x: Any, b: Any, norm_b: float, r: Any, norm_r: float) -> None:
        check_cancel(cancel)
        if progress is not None and norm_b > 0 and norm_r > 0:
            progress(min(1.0, max(0.0, math.log(norm_r / norm_b) / target)))

    return callback


class _PyMattingEngine(Engine):
    rtol = 1e-7
    maxiter = 10000
    #: smallest crop side the solver accepts; smaller crops are reflect-padded
    min_size = 1

    def __init__(self, **laplacian_kwargs: Any) -> None:
        self.laplacian_kwargs = laplacian_kwargs
        _route_pymatting_prints_to_logging()

    def _solver(self) -> Callable[..., np.ndarray]:
        raise NotImplementedError

    def _estimate_crop(
        self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn, cancel: CancelFn
    ) -> np.ndarray:
        cg_kwargs = {
            "rtol": self.rtol,
            "maxiter": self.maxiter,
            "callback": _cg_callback(scaled_progress(progress, _SETUP_SHARE, 1.0), cancel, self.rtol),
        }
        check_cancel(cancel)
        h, w = trimap.shape
        pad_y, pad_x = max(0, self.min_size - h), max(0, self.min_size - w)
        if pad_y or pad_x:
            image = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101)
            trimap = cv2.copyMakeBorder(trimap, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101)
        try:
            alpha = self._solver()(
                image.astype(np.float64),
                trimap.astype(np.float64) / 255.0,
                laplacian_kwargs=self.laplacian_kwargs,
                cg_kwargs=cg_kwargs,
            )[:h, :w]
        except Cancelled:
            raise
        except MemoryError:
            raise EngineError(
                f"{self.name}: not enough memory for a {image.shape[1]}x{image.shape[0]} "
                "unknown region; narrow the unknown band or use the dim engine"
            ) from None
        except (ValueError, ArithmeticError, RuntimeError, AssertionError) as exc:
            raise EngineError(f"{self.name} failed: {exc or type(exc).__name__}") from None
        return np.asarray(alpha, dtype=np.float32)


class ClosedFormEngine(_PyMattingEngine):
    """Levin et al. closed-form matting (PyMatting's ``estimate_alpha_cf``)."""

    name = "closed-form"

    def _solver(self) -> Callable[..., np.ndarray]:
        from pymatting import estimate_alpha_cf

        return estimate_alpha_cf


class LKMEngine(_PyMattingEngine):
    """Large-kernel matting (He et al.), fast for wide unknown bands."""

    name = "lkm"
    # LKM's default radius is 10; its windows reach further than closed-form's,
    # and its box filters need at least 4 * radius + 1 pixels on each side.
    context_margin = 32
    min_size = 41

    def _solver(self) -> Callable[..., np.ndarray]:
        from pymatting import estimate_alpha_lkm

        return estimate_alpha_lkm


class KNNEngine(_PyMattingEngine):
    """KNN matting (Chen et al.): non-local, good for hair and fur."""

    name = "knn"
    # KNN's neighbours are found in feature space, so more context helps it.
    context_margin = 48

    def _solver(self) -> Callable[..., np.ndarray]:
        from pymatting import estimate_alpha_knn

        return estimate_alpha_knn
