"""Classical matting engines from PyMatting: closed-form, LKM and KNN.

They need no weights, so the app works fully on a fresh machine. All three
solve a sparse linear system with PyMatting's conjugate-gradient solver; its
per-iteration callback is where progress is reported and cancellation polled.

Each engine states what one solve costs in memory (``solve_bytes_per_pixel``
of its window, ``solve_bytes_per_unknown``; measured with ``bench/memory.py
--probe``) and the base class keeps every solve under ``max_solve_bytes``:
small crops are solved whole, as PyMatting would; large ones (a subject's
edge on a 24-megapixel photo) in tiles that follow the unknown band (see
``base``). Closed-form costs ~0.56 kB per pixel of the window and 2.2-2.6 kB
more per unknown pixel, LKM ~0.48 kB per pixel, KNN ~3.7 kB per pixel: untiled, the bounding box of a 24 MP photo's edge needed ~12 GB with
closed-form and would need ~90 GB with KNN.

KNN is non-local (its second neighbour pass weighs position by 0.1, so a
pixel's neighbours are the closest colours anywhere in what it sees): tiles
change its answer more than closed-form's or LKM's, which only propagate
through neighbouring pixels.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

import cv2
import numpy as np

from .. import numba_cache
from ..errors import Cancelled, EngineError
from .base import GIB, CancelFn, Engine, ProgressFn, check_cancel, scaled_progress

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
    numba_cache.configure()  # before PyMatting imports numba: its kernels' cache folder
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
    propagates_known = True
    #: Working memory of one solve; above it a crop is tiled (base.Engine). With
    #: the photo's own arrays (~0.5 GB at 24 MP) a run stays well inside 4 GB.
    max_solve_bytes = 2 * GIB

    def __init__(
        self,
        *,
        tile_size: int | None = None,
        tile_context: int | None = None,
        tile_above_bytes: int | None = None,
        **laplacian_kwargs: Any,
    ) -> None:
        self.laplacian_kwargs = laplacian_kwargs
        if tile_size is not None:
            if int(tile_size) < 1:
                raise EngineError(f"tile size must be at least 1 pixel, not {tile_size}")
            self.tile_size = int(tile_size)
        if tile_context is not None:
            if int(tile_context) < 0:
                raise EngineError(f"tile context must be 0 or more pixels, not {tile_context}")
            self.tile_context = int(tile_context)
        if tile_above_bytes is not None:
            self.tile_above_bytes = max(0, int(tile_above_bytes))
        _route_pymatting_prints_to_logging()

    @property
    def min_size(self) -> int:
        """Smallest side the solver accepts; smaller crops are reflect-padded."""
        return 1

    def _padding(self, h: int, w: int) -> tuple[int, int]:
        """Rows and columns of reflection to add at the bottom and right."""
        return max(0, self.min_size - h), max(0, self.min_size - w)

    def _solver(self) -> Callable[..., np.ndarray]:
        raise NotImplementedError

    def _estimate_crop(
        self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn, cancel: CancelFn
    ) -> np.ndarray:
        return self._solve(image, trimap, progress, cancel, self.laplacian_kwargs)

    def _solve(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        progress: ProgressFn,
        cancel: CancelFn,
        laplacian_kwargs: dict[str, Any],
    ) -> np.ndarray:
        cg_kwargs = {
            "rtol": self.rtol,
            "maxiter": self.maxiter,
            "callback": _cg_callback(scaled_progress(progress, _SETUP_SHARE, 1.0), cancel, self.rtol),
        }
        return self._padded_solve(image, trimap, cancel, lambda img, tri: self._solver()(
            img, tri, laplacian_kwargs=laplacian_kwargs, cg_kwargs=cg_kwargs))

    def _padded_solve(
        self, image: np.ndarray, trimap: np.ndarray, cancel: CancelFn,
        solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """``solve(image, trimap in 0-1)`` in float64 on a crop padded to ``min_size``; its
        failures as one-line EngineErrors (cancelling passes through)."""
        check_cancel(cancel)
        h, w = trimap.shape
        pad_y, pad_x = self._padding(h, w)
        if pad_y or pad_x:
            image = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101)
            trimap = cv2.copyMakeBorder(trimap, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101)
        try:
            alpha = solve(image.astype(np.float64), trimap.astype(np.float64) / 255.0)[:h, :w]
        except Cancelled:
            raise
        except MemoryError:
            raise EngineError(
                f"{self.name}: not enough memory for a {image.shape[1]}x{image.shape[0]} "
                "unknown region; narrow the unknown band or use the dim engine"
            ) from None
        except (ValueError, ArithmeticError, RuntimeError, AssertionError, np.linalg.LinAlgError) as exc:
            raise EngineError(f"{self.name} failed: {exc or type(exc).__name__}") from None
        return np.asarray(alpha, dtype=np.float32)


class ClosedFormEngine(_PyMattingEngine):
    """Levin et al. closed-form matting (PyMatting's ``estimate_alpha_cf``)."""

    name = "closed-form"
    # Measured (bench/memory.py --probe): the Laplacian is built for every
    # pixel of the window (~560 B/px), the solve and its incomplete-Cholesky
    # preconditioner cost 2.2-2.6 kB per unknown pixel on top.
    solve_bytes_per_pixel = 600.0
    solve_bytes_per_unknown = 2700.0
    # Whole up to ~1 GB (any crop of a photo up to ~1.5 MP, as before tiling).
    tile_above_bytes = GIB

    @property
    def min_size(self) -> int:
        # PyMatting skips windows that do not fit, so a crop thinner than one
        # (2r + 1) window gets an all-zero Laplacian and CG never converges.
        return 2 * int(self.laplacian_kwargs.get("radius", 1)) + 1

    def _solver(self) -> Callable[..., np.ndarray]:
        numba_cache.configure()
        from pymatting import estimate_alpha_cf

        return estimate_alpha_cf


class LKMEngine(_PyMattingEngine):
    """Large-kernel matting (He et al.), fast for wide unknown bands."""

    name = "lkm"
    # LKM's default radius is 10; its windows reach further than closed-form's,
    # and its box filters need at least 4 * radius + 1 pixels on each side.
    context_margin = 32
    # Matrix-free: image statistics and CG vectors per pixel (~480 B/px measured).
    solve_bytes_per_pixel = 500.0
    # Tiles from 1 MP on: CG converges in fewer iterations on small windows,
    # so a 6 MP photo's edge took 46 s whole and 12 s tiled (bench/memory.py).
    tile_above_bytes = GIB // 2
    # The core is smaller than closed-form's: LKM solves every pixel of its
    # window, so windows that hug the band cost less time.
    tile_size = 256

    @property
    def min_size(self) -> int:
        return 4 * int(self.laplacian_kwargs.get("radius", 10)) + 1

    def _solver(self) -> Callable[..., np.ndarray]:
        numba_cache.configure()
        from pymatting import estimate_alpha_lkm

        return estimate_alpha_lkm


class KNNEngine(_PyMattingEngine):
    """KNN matting (Chen et al.): non-local, good for hair and fur."""

    name = "knn"
    # KNN's neighbours are found in feature space, so more context helps it.
    context_margin = 48
    # The neighbour lists and the Laplacian cost ~3.7 kB per pixel of the
    # window whatever the trimap (measured), so its tiles are small.
    solve_bytes_per_pixel = 3800.0
    # 2.5 GB: any crop up to ~0.7 MP is solved whole, as before tiling (the
    # alphamatting photos' crops reach 0.58 MP); larger ones are tiled.
    max_solve_bytes = 5 * GIB // 2
    tile_size = 256

    def _padding(self, h: int, w: int) -> tuple[int, int]:
        # The neighbour search needs more points than neighbours (20 by
        # default); the shape does not matter to it, so a thin crop with
        # enough pixels is left as it is.
        k = max(self.laplacian_kwargs.get("n_neighbors", [20, 10]))
        if h * w > k:
            return 0, 0
        side = int(math.ceil(math.sqrt(k + 1)))
        return max(0, side - h), max(0, side - w)

    def _estimate_tile(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        progress: ProgressFn,
        cancel: CancelFn,
        frame: tuple[int, int],
    ) -> np.ndarray:
        # PyMatting's spatial features run from 0 to 1 across whatever it is
        # given: scale them so a tile's pixels are as far apart as in the
        # whole crop. One weight serves both axes, so it matches the geometric
        # mean of the two axes' scales.
        (h, w), (fh, fw) = trimap.shape, frame
        factor = math.sqrt(max(1, h - 1) * max(1, w - 1) / (max(1, fh - 1) * max(1, fw - 1)))
        kwargs = dict(self.laplacian_kwargs)
        weights = kwargs.get("distance_weights", [2.0, 0.1])
        kwargs["distance_weights"] = [float(d) * factor for d in weights]
        return self._solve(image, trimap, progress, cancel, kwargs)

    def _solver(self) -> Callable[..., np.ndarray]:
        numba_cache.configure()
        from pymatting import estimate_alpha_knn

        return estimate_alpha_knn
