"""The Deep Image Matting engine: the DIM network behind the common interface.

What it does with a photo (model/README.md describes the network):

1. The base class cuts out the unknown region's bounding box plus
   ``context_margin`` pixels (default 192, see below) and forces known pixels
   afterwards.
2. The crop is conceptually reflect-padded at the bottom and right to a
   multiple of 32, exactly as whole-image inference (``net.predict_alpha``)
   does. That padded crop is never built: each tile gathers its own pixels
   (with the reflected rows/columns where it reaches the padding) and is
   normalised on its own, with the normalisation from the weights' metadata.
   Full-size arrays stay float32/uint8; memory peaks with the tile, not the
   photo.
3. Tiling. The padded crop is split along each axis into segments ("cores"):
   an axis that fits in ``tile_size + 2 * tile_context`` is one segment;
   otherwise the two edge segments are ``tile_size + tile_context`` long and
   the inner ones ``tile_size``. Each tile runs the network on its core plus
   ``tile_context`` pixels on every side (clipped at the crop's edge) and keeps
   only the core. All boundaries are multiples of 32 relative to the crop, so
   the five 2x2 max-poolings see the same windows (and the unpooling the same
   indices) as an untiled run. The network's receptive field reaches about 175
   pixels from an output pixel (VGG-16's 13 3x3 convolutions and 5 poolings:
   106 px; the five 5x5 decoder convolutions at strides 16..1: +62; the
   refiner's four 3x3 convolutions: +4; plus pooling-window alignment), so a
   context of 192 px makes every kept pixel's computation identical to the
   untiled run: tiled and untiled results agree to float rounding (measured
   with He-initialised random weights, three 64 px tiles on a 561x100 photo:
   max |diff| 6e-7 with 192 px of context; 3e-5 with 160 px; 5e-3 with
   128 px; 1e-2 with 96 px). Smaller contexts are allowed (``tile_context=``)
   and trade exactness for speed.
4. Inside each core only the bounding box of its unknown pixels is computed
   (plus the context), and a core with no unknown pixels is not run at all:
   its alpha comes from the trimap. On a 24-megapixel photo with a thin
   unknown band this skips most of the picture. (On CUDA the window is not
   shrunk, so tile shapes repeat and cuDNN's autotuner is not re-run for
   every odd size.)
5. Device: CUDA, then Apple MPS, then the CPU (``device=`` overrides). On CUDA:
   fp16 autocast (by default) and ``cudnn.benchmark``; channels-last tensors on
   CUDA and the CPU (where oneDNN runs it ~18% faster). ``precision=`` picks
   the arithmetic (see ``PRECISIONS``): "auto" is what previews ask for, bf16
   autocast on a CPU with native bf16 (AVX512-BF16 or AMX), fp32 on other
   CPUs, where emulated bf16 is far slower than fp32. Everything in
   ``torch.inference_mode``. When a tile runs out of memory the engine retries
   with tiles half the size, down to ``min_tile_size``, then on the CPU, and
   says so in ``last_run_notes`` (and in a logging warning).

Why ``context_margin`` is 192 px and not the 16-48 px of the classical
engines: the network's receptive field is large (about 175 px each way), so
the crop margin decides how much of the photo the outermost unknown pixels
see. With a margin of at least the receptive field every unknown pixel sees
all the context it would see in a whole-image run (the only remaining
difference is the 32-px pooling grid, which starts at the crop's corner
rather than the photo's), and the crop's edges play the same role as the
tiles' context. On large photos it costs nothing extra: the margin is only
read as context by tiles that hold unknown pixels, and no tile runs for it.
On a small crop that fits one tile it makes the forward larger; pass
``context_margin=`` (e.g. 64) for a faster, slightly less faithful preview.

Weights are loaded once per process: ``load_model(path, device)`` caches the
model by (file, modification time, size, device), so the GUI and batch runs
can create engines freely.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import EngineError, WeightsError
from ..net.model import (
    DEFAULT_NORMALIZATION, SIZE_MULTIPLE, build_dim, normalize_input, reflect_indices,
)
from ..trimap import FOREGROUND, UNKNOWN, Box
from .base import CancelFn, Engine, ProgressFn, check_cancel, scaled_progress
from . import device as _devices
from .device import device_kind_and_name, select_device

log = logging.getLogger(__name__)

#: Context (px) each tile sees beyond the part it keeps. At least the
#: network's receptive-field radius (~175 px), rounded up to a multiple of 32.
DEFAULT_TILE_CONTEXT = 192
#: Default core (kept part) size of a tile per device type; a tile's input is
#: at most ``tile_size + 2 * tile_context`` pixels on a side.
DEFAULT_TILE_SIZES = {"cuda": 1024, "mps": 640, "cpu": 512}
#: Out of memory: tiles are halved down to this core size before giving up
#: on the device.
MIN_TILE_SIZE = 64

_M = SIZE_MULTIPLE  # 32: five 2x2 poolings

#: The ``precision=`` choices. "fp32": no autocast. "bf16": bf16 autocast
#: (the CPU, or a CUDA GPU that supports it; approximate, about 1/255 of mean
#: alpha difference on random weights). "fp16": fp16 autocast on a GPU (CUDA
#: or MPS), the old ``half=True``. "auto": the fastest good choice for a
#: preview: fp16 on CUDA, bf16 on a CPU with native bf16, else fp32.
#: The default (None) is fp16 on CUDA and fp32 everywhere else: exports stay
#: fp32 on the CPU unless bf16 is asked for.
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {v: k for k, v in _DTYPES.items()}


def resolve_precision(choice: str | None, device: torch.device) -> str:
    """The precision ("fp32", "bf16" or "fp16") that ``choice`` means on ``device``.

    Raises EngineError for an unknown choice or one the device cannot run.
    """
    kind = device.type
    if choice is None:
        return "fp16" if kind == "cuda" else "fp32"
    text = str(choice).strip().lower()
    if text not in PRECISIONS:
        raise EngineError(f"unknown precision {choice!r} for the dim engine: choose one of {', '.join(PRECISIONS)}")
    if text == "auto":
        if kind == "cuda":
            return "fp16"
        if kind == "cpu" and _devices.cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if text == "fp16" and kind not in ("cuda", "mps"):
        raise EngineError(
            f"half precision (fp16) needs a GPU (CUDA or MPS); on the {kind.upper()} use bf16 or fp32"
        )
    if text == "bf16":
        if kind == "mps":
            raise EngineError("bf16 is not supported by the dim engine on MPS; use fp16 or fp32")
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise EngineError("this CUDA GPU does not support bf16; use fp16 or fp32")
    return text


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def _floor_to(n: int, m: int) -> int:
    return (n // m) * m


# --------------------------------------------------------------------------
# The model cache (one load per weights file and device per process)
# --------------------------------------------------------------------------

_CACHE_SIZE = 3
_cache: OrderedDict[tuple[str, int, int, str], tuple[torch.nn.Module, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(path: Path, device: torch.device) -> tuple[str, int, int, str]:
    resolved = path.resolve()
    try:
        st = resolved.stat()
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    return (str(resolved), st.st_mtime_ns, st.st_size, str(device))


def _file_stamp(path: Path) -> tuple[int, int]:
    """(modification time, size) of a weights file: what tells a rewritten file from the one loaded."""
    _, mtime, size, _ = _cache_key(path, torch.device("cpu"))
    return mtime, size


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Any]:
    """The model and WeightsInfo for a weights file on ``device``, loaded once.

    Cached by (resolved path, modification time, size, device): a file that is
    rewritten (e.g. by a fine-tune) is loaded again. Keeps the last few models.
    """
    from ..net.weights import load_weights

    device = torch.device(device)
    key = _cache_key(Path(path), device)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
        # Drop older versions of the same file on the same device first.
        for old in [k for k in _cache if k[0] == key[0] and k[3] == key[3]]:
            del _cache[old]
        model, info = load_weights(Path(path), device=device)
        model.eval()
        _cache[key] = (model, info)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return model, info


def clear_model_cache() -> None:
    """Forget every cached model (frees their memory once no engine holds them)."""
    with _cache_lock:
        _cache.clear()


def cached_model_keys() -> list[tuple[str, int, int, str]]:
    with _cache_lock:
        return list(_cache)


# --------------------------------------------------------------------------
# Tiling (pure functions, easy to test)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One network run: ``window`` is the input (in padded-crop coordinates,
    multiples of 32), ``keep`` the part of its output that is used (in crop
    coordinates, inside the window)."""

    keep: tuple[int, int, int, int]  # y0, y1, x0, x1
    window: tuple[int, int, int, int]  # y0, y1, x0, x1

    @property
    def window_shape(self) -> tuple[int, int]:
        y0, y1, x0, x1 = self.window
        return y1 - y0, x1 - x0


def axis_segments(length: int, core: int, context: int) -> list[tuple[int, int]]:
    """Split a padded axis (a multiple of 32) into kept segments.

    One segment when the axis fits in ``core + 2 * context``; otherwise edge
    segments of ``core + context`` (their window is clipped on one side) and
    inner ones of ``core``. Every boundary is a multiple of 32 as long as
    ``core`` and ``context`` are, and no window exceeds ``core + 2 * context``.
    """
    if length <= core + 2 * context:
        return [(0, length)]
    first = core + context
    segments = [(0, first)]
    pos = first
    while length - pos > core + context:
        segments.append((pos, pos + core))
        pos += core
    segments.append((pos, length))
    return segments


def plan_tiles(
    trimap: np.ndarray, core: int, context: int, shrink: bool = True
) -> tuple[list[Tile], int]:
    """The tiles to run for a crop's trimap, and how many cores were skipped.

    A core with no unknown pixels is skipped (its alpha comes from the
    trimap). With ``shrink`` only the bounding box of a core's unknown pixels
    is kept and its window is that box (widened to multiples of 32) plus
    ``context``; the kept pixels still see at least ``context`` pixels of real
    neighbours on every side that is not the crop's edge, so the result is the
    same.
    """
    h, w = trimap.shape
    hp, wp = _ceil_to(h, _M), _ceil_to(w, _M)
    tiles: list[Tile] = []
    skipped = 0
    for ry0, ry1 in axis_segments(hp, core, context):
        for rx0, rx1 in axis_segments(wp, core, context):
            ky1, kx1 = min(ry1, h), min(rx1, w)
            unknown = trimap[ry0:ky1, rx0:kx1] == UNKNOWN
            rows = np.flatnonzero(unknown.any(axis=1))
            if rows.size == 0:
                skipped += 1
                continue
            if shrink:
                cols = np.flatnonzero(unknown.any(axis=0))
                ky0, ky1 = ry0 + int(rows[0]), ry0 + int(rows[-1]) + 1
                kx0, kx1 = rx0 + int(cols[0]), rx0 + int(cols[-1]) + 1
                wy0, wy1 = _floor_to(ky0, _M), _ceil_to(ky1, _M)
                wx0, wx1 = _floor_to(kx0, _M), _ceil_to(kx1, _M)
            else:
                ky0, kx0 = ry0, rx0
                wy0, wy1, wx0, wx1 = ry0, ry1, rx0, rx1
            window = (
                max(0, wy0 - context), min(hp, wy1 + context),
                max(0, wx0 - context), min(wp, wx1 + context),
            )
            tiles.append(Tile((ky0, ky1, kx0, kx1), window))
    return tiles, skipped


def _gather(array: np.ndarray, rows: np.ndarray, cols: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``array`` padded by reflection, window [y0:y1, x0:x1], without padding the whole array."""
    h, w = array.shape[:2]
    if y1 <= h and x1 <= w:
        return array[y0:y1, x0:x1]
    return array[np.ix_(rows[y0:y1], cols[x0:x1])]


# --------------------------------------------------------------------------
# Out-of-memory handling
# --------------------------------------------------------------------------

_OOM_TYPES: tuple[type[BaseException], ...] = tuple(
    t for t in {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)}
    if isinstance(t, type)
) + (MemoryError,)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures (typed or by torch's message)."""
    if isinstance(exc, _OOM_TYPES):
        return True
    if isinstance(exc, RuntimeError):
        msg = str(exc).lower()
        return "out of memory" in msg or "can't allocate memory" in msg
    return False


def _release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        try:
            torch.mps.empty_cache()
        except Exception:  # older torch without torch.mps.empty_cache
            pass


class _MonotoneProgress:
    """Forwards progress, never going backwards (a retry restarts its tiles)."""

    def __init__(self, progress: ProgressFn) -> None:
        self.progress = progress
        self.last = 0.0

    def __call__(self, fraction: float) -> None:
        fraction = max(self.last, min(1.0, fraction))
        self.last = fraction
        if self.progress is not None:
            self.progress(fraction)


class _OutOfMemory(Exception):
    """Internal: a tile ran out of memory (carries a description for the notes)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        super().__init__(f"{shape[1]}x{shape[0]}")
        self.shape = shape


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


def _normalization_of(info: Any) -> dict[str, Any]:
    norm = None
    if info is not None:
        norm = info.get("normalization") if isinstance(info, Mapping) else getattr(info, "normalization", None)
    out = dict(DEFAULT_NORMALIZATION)
    out.update(norm or {})
    return out


def _copy_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A copy of ``model`` on ``device`` (the CPU fallback of an in-memory model)."""
    config = getattr(model, "config", None)
    # state_dict().cpu() copies device -> host without allocating on the device.
    tensors = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    if config is not None:
        return build_dim(config, tensors, device=device)
    import copy

    clone = copy.deepcopy(model)  # not a DIMNet: a plain copy
    clone.load_state_dict(tensors)
    return clone.to(device).eval()


class DIMEngine(Engine):
    """Deep Image Matting (Xu et al. 2017) on the unknown region, tiled.

    weights: a weights file (or folder), found with ``net.find_weights``
        (``--weights``, ``DIM_STUDIO_WEIGHTS``, the user data folder, ``model/``)
        when not given; none found raises WeightsError saying how to get them.
    device: "auto"/None (CUDA, then MPS, then CPU), "cuda", "cuda:N", "mps", "cpu".
    tile_size: the kept core of a tile in pixels (a multiple of 32; default per
        device: 1024 CUDA, 640 MPS, 512 CPU). A tile's input is at most
        ``tile_size + 2 * tile_context`` on a side.
    precision: "fp32", "bf16", "fp16" (GPU only) or "auto" (see ``PRECISIONS``);
        None = fp16 on CUDA, fp32 elsewhere. Autocast only: the weights stay
        fp32, so engines of different precisions share one loaded network.
    half: the older switch: True = precision "fp16", False = "fp32" (when
        ``precision`` is not given).
    model, info: an in-memory network (e.g. random weights in tests and
        benchmarks) and optionally its WeightsInfo (for the normalisation);
        ``weights`` is then ignored.
    tile_context: context in pixels around each tile's kept part (rounded up
        to a multiple of 32; default 192, enough for an exact match with the
        untiled run).
    context_margin: the crop's margin around the unknown region (default: the
        tile context).
    shrink_tiles: compute only the unknown pixels' box inside each tile
        (default: on, except on CUDA where fixed tile shapes suit cuDNN's autotuner).
    channels_last: channels-last tensors (default: on CUDA and the CPU).
    min_tile_size: the smallest tile tried when memory runs out.
    """

    name = "dim"
    context_margin = DEFAULT_TILE_CONTEXT

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        tile_size: int | None = None,
        half: bool | None = None,
        model: torch.nn.Module | None = None,
        info: Any = None,
        *,
        tile_context: int = DEFAULT_TILE_CONTEXT,
        context_margin: int | None = None,
        shrink_tiles: bool | None = None,
        channels_last: bool | None = None,
        min_tile_size: int = MIN_TILE_SIZE,
        precision: str | None = None,
    ) -> None:
        self.device = select_device(device)
        dtype = self.device.type
        if precision is None and half is not None:
            precision = "fp16" if half else "fp32"
        #: What was asked for (None, "auto", ...) and what it means on this device.
        self.requested_precision = precision
        self.precision_name = resolve_precision(precision, self.device)
        #: The precision the last run used (the CPU fallback after running out
        #: of GPU memory may differ); None before the first run.
        self.last_precision: str | None = None
        # Channels-last: cuDNN's fp16 tensor-core kernels want NHWC; on the CPU
        # oneDNN ran the network ~18% faster with it (2-core EPYC, 384x384).
        self.channels_last = (dtype in ("cuda", "cpu")) if channels_last is None else bool(channels_last)
        self.shrink_tiles = (dtype != "cuda") if shrink_tiles is None else bool(shrink_tiles)

        if tile_context < 0:
            raise EngineError(f"tile context must be 0 or more pixels, not {tile_context}")
        self.tile_context = _ceil_to(int(tile_context), _M)
        self.tile_size = self._check_tile_size(
            DEFAULT_TILE_SIZES.get(dtype, DEFAULT_TILE_SIZES["cpu"]) if tile_size is None else tile_size
        )
        self.min_tile_size = min(self.tile_size, max(_M, _floor_to(int(min_tile_size), _M)))
        self.context_margin = self.tile_context if context_margin is None else int(context_margin)
        if self.context_margin < 0:
            raise EngineError(f"context margin must be 0 or more pixels, not {context_margin}")

        self.weights_path: Path | None = None
        self._weights_stamp: tuple[int, int] | None = None
        if model is None:
            from ..net.weights import find_weights, how_to_get_weights

            path = find_weights(weights)
            if path is None:
                raise WeightsError(f"the dim engine needs a weights file and none was found. {how_to_get_weights()}")
            self.weights_path = Path(path)
            self._weights_stamp = _file_stamp(self.weights_path)
            model, loaded_info = load_model(self.weights_path, self.device)
            info = loaded_info if info is None else info
        else:
            model = model.eval()
            param = next(model.parameters(), None)
            if param is not None and param.device != self.device:
                model = model.to(self.device)
        if dtype == "cuda":
            torch.backends.cudnn.benchmark = True
        if self.channels_last:
            # In place on a shared (cached) model: it only changes the layout.
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.info = info
        self.normalization = _normalization_of(info)
        self._models: dict[str, torch.nn.Module] = {str(self.device): model}

        #: What happened in the last run that the user should know about
        #: (out-of-memory retries, CPU fallback), for the GUI / CLI to show.
        self.last_run_notes: list[str] = []
        #: Counters of the last run: tiles run, cores skipped, the tile size and
        #: device that finished the job.
        self.last_run_stats: dict[str, Any] = {}
        #: Where the next run starts: after running out of memory the engine
        #: keeps the tile size (and device) that worked, so a GUI preview does
        #: not fail its way down again on every stroke. A new engine starts over.
        self.active_device: torch.device = self.device
        self.active_tile_size: int = self.tile_size

    @staticmethod
    def _check_tile_size(tile_size: int) -> int:
        tile_size = int(tile_size)
        if tile_size < _M:
            raise EngineError(f"tile size must be at least {_M} pixels, not {tile_size}")
        return _floor_to(tile_size, _M)

    # ------------------------------------------------------------------ info

    @property
    def half(self) -> bool:
        """fp16 autocast on the engine's device (the older flag)."""
        return self.precision_name == "fp16"

    def precision(self, device: torch.device | None = None) -> str:
        """"fp32", "bf16" or "fp16": what a run on ``device`` (default: the engine's) computes in.

        On the CPU fallback of a GPU engine: "auto" and "bf16" keep their
        meaning on the CPU, anything else is fp32.
        """
        device = self.device if device is None else torch.device(device)
        if device == self.device:
            return self.precision_name
        if self.requested_precision in ("auto", "bf16") and device.type == "cpu":
            return resolve_precision(self.requested_precision, device)
        return "fp32"

    def describe(self) -> str:
        """e.g. "dim (CUDA fp16, NVIDIA H100 80GB HBM3)", "dim (MPS fp32, Apple GPU)", "dim (CPU bf16)"."""
        kind, detail = device_kind_and_name(self.device)
        if self.device.type == "cpu":
            return f"dim (CPU {self.precision()})"
        return f"dim ({kind} {self.precision()}, {detail})"

    # ---------------------------------------------------------------- models

    def _follow_weights_file(self) -> None:
        """Load the weights again when their file was replaced (an import, a download, a fine-tune).

        An engine kept alive by a cache would otherwise go on serving the old
        network after the user installed new weights under the same name.
        """
        if self.weights_path is None:
            return
        stamp = _file_stamp(self.weights_path)
        if stamp == self._weights_stamp:
            return
        model, info = load_model(self.weights_path, self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model, self.info = model, info
        self.normalization = _normalization_of(info)
        self._models = {str(self.device): model}
        self._weights_stamp = stamp
        self._note(f"the weights file {self.weights_path.name} changed; loaded it again")

    def _model_on(self, device: torch.device) -> torch.nn.Module:
        key = str(device)
        model = self._models.get(key)
        if model is None:
            if self.weights_path is not None:
                model, _ = load_model(self.weights_path, device)
            else:
                model = _copy_model(self.model, device)
            if self.channels_last and device.type != "mps":
                model = model.to(memory_format=torch.channels_last)
            self._models[key] = model
        return model

    # ---------------------------------------------------------------- running

    def _forward_tile(self, x: torch.Tensor, device: torch.device, precision: str) -> np.ndarray:
        """Run the network on one normalised tile (1, 4, h, w); alpha (h, w) float32.

        ``precision``: "fp32", or the autocast dtype's name ("bf16", "fp16").
        The single place that touches the device, so tests can inject failures.
        """
        model = self._model_on(device)
        x = x.to(device, non_blocking=device.type == "cuda")
        if self.channels_last and device.type != "mps":
            x = x.contiguous(memory_format=torch.channels_last)
        amp_dtype = _DTYPES[precision]
        with torch.inference_mode():
            if amp_dtype is not None:
                with torch.autocast(device_type=device.type, dtype=amp_dtype):
                    out = model(x)["alpha"]
                if not bool(torch.isfinite(out).all()):
                    # fp16 overflowed somewhere: redo this tile in fp32.
                    out = model(x)["alpha"]
            else:
                out = model(x)["alpha"]
            return out[0, 0].float().cpu().numpy()

    def _run_tiles(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        device: torch.device,
        tile_size: int,
        precision: str,
        progress: ProgressFn,
        cancel: CancelFn,
    ) -> np.ndarray:
        h, w = trimap.shape
        hp, wp = _ceil_to(h, _M), _ceil_to(w, _M)
        rows, cols = reflect_indices(h, hp), reflect_indices(w, wp)
        # The CPU fallback of a CUDA engine shrinks windows (no autotuner there).
        shrink = self.shrink_tiles if device == self.device else device.type != "cuda"
        tiles, skipped = plan_tiles(trimap, tile_size, self.tile_context, shrink=shrink)
        self.last_run_stats = {
            "tiles": len(tiles), "skipped": skipped, "tile_size": tile_size,
            "context": self.tile_context, "device": str(device), "crop": (h, w),
            "precision": precision,
        }
        alpha = (trimap == FOREGROUND).astype(np.float32)
        for done, tile in enumerate(tiles):
            check_cancel(cancel)
            wy0, wy1, wx0, wx1 = tile.window
            try:
                # Normalised per tile: no full-size 4-channel array is ever built.
                x = normalize_input(
                    _gather(image, rows, cols, wy0, wy1, wx0, wx1),
                    _gather(trimap, rows, cols, wy0, wy1, wx0, wx1),
                    self.normalization,
                )
                out = self._forward_tile(x, device, precision)
                del x
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise _OutOfMemory(tile.window_shape) from None
                raise
            if not np.isfinite(out).all():
                raise self._garbage_output(device)
            ky0, ky1, kx0, kx1 = tile.keep
            alpha[ky0:ky1, kx0:kx1] = out[ky0 - wy0:ky1 - wy0, kx0 - wx0:kx1 - wx0]
            if progress is not None:
                progress((done + 1) / len(tiles))
        return alpha

    def _garbage_output(self, device: torch.device) -> EngineError:
        # NaN survives every later step and ends as alpha 0 in a PNG: an
        # all-transparent cutout that looks like a result. Never hand that out.
        kind, _ = device_kind_and_name(device)
        source = f"the weights file {self.weights_path}" if self.weights_path is not None else "the network given"
        return EngineError(
            f"the DIM network produced NaN or infinite values on the {kind} with {source}, so it gave "
            "no alpha: the weights or their normalisation are broken. Import or download the weights "
            "again, or use a classical engine (closed-form, ifm, lkm, knn)"
        )

    def _note(self, text: str) -> None:
        self.last_run_notes.append(text)
        log.warning("%s", text)

    def _crop_box(self, trimap: np.ndarray) -> Box:
        # Start the crop on the photo's 32-pixel grid: max-pooling windows and
        # unpooling indices then line up with a whole-image run, so cropping
        # changes nothing but the amount of work.
        box = super()._crop_box(trimap)
        return Box(box.y0 - box.y0 % SIZE_MULTIPLE, box.y1, box.x0 - box.x0 % SIZE_MULTIPLE, box.x1)

    def _estimate_crop(
        self, image: np.ndarray, trimap: np.ndarray, progress: ProgressFn, cancel: CancelFn
    ) -> np.ndarray:
        self.last_run_notes = []
        self._follow_weights_file()
        report = _MonotoneProgress(progress)
        device, tile_size = self.active_device, self.active_tile_size
        precision = self.precision(device)
        if (device, tile_size) != (self.device, self.tile_size):
            kind, _ = device_kind_and_name(device)
            self._note(f"using {tile_size} px tiles on the {kind}, where an earlier run ran out of memory")
        while True:
            try:
                alpha = self._run_tiles(
                    image, trimap, device, tile_size, precision,
                    scaled_progress(report, report.last, 1.0), cancel,
                )
                self.active_device, self.active_tile_size = device, tile_size
                self.last_precision = precision
                return alpha
            except _OutOfMemory as oom:
                failed = oom.shape
            except RuntimeError as exc:
                kind, _ = device_kind_and_name(device)
                raise EngineError(f"the dim engine failed on the {kind}: {exc}") from exc
            # Out of memory: the traceback is gone, free what the tile left behind.
            _release_memory(device)
            kind, _ = device_kind_and_name(device)
            if tile_size > self.min_tile_size:
                smaller = max(self.min_tile_size, _floor_to(tile_size // 2, _M))
                self._note(
                    f"out of memory on the {kind} with a {failed[1]}x{failed[0]} tile; "
                    f"retrying with {smaller} px tiles"
                )
                tile_size = smaller
                continue
            if device.type != "cpu":
                cpu = torch.device("cpu")
                self._note(
                    f"out of {kind} memory even with {tile_size} px tiles; finishing on the CPU "
                    "(slower)"
                )
                device, precision = cpu, self.precision(cpu)
                tile_size = max(self.min_tile_size, min(self.tile_size, DEFAULT_TILE_SIZES["cpu"]))
                continue
            raise EngineError(
                f"not enough memory to run the DIM network even with {tile_size} px tiles "
                f"({failed[1]}x{failed[0]} px with context): close other programs, narrow the "
                "unknown band, or use a classical engine"
            )


__all__ = [
    "DEFAULT_TILE_CONTEXT",
    "DEFAULT_TILE_SIZES",
    "DIMEngine",
    "MIN_TILE_SIZE",
    "PRECISIONS",
    "Tile",
    "axis_segments",
    "cached_model_keys",
    "clear_model_cache",
    "is_out_of_memory",
    "load_model",
    "plan_tiles",
    "resolve_precision",
]
