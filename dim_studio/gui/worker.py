"""Background work for the window: the matting worker (latest wins) and a task runner.

Rules this module enforces (DESIGN section 7, issue item 7):

- Matting never runs on the GUI thread. ``MattingWorker`` owns one daemon
  thread that runs jobs one at a time; results travel back through Qt signals
  (queued into the GUI thread because the emitting thread is not the
  receiver's), and no widget is touched from the worker.
- Latest wins. Submitting a preview job cancels the running preview and
  drops any preview still waiting. Each job gets its own ``threading.Event``;
  the engine polls it through ``cancel=`` and raises ``Cancelled``. Because a
  solver may finish just as it is cancelled, the GUI still compares the
  request id of each result with the newest one it asked for and drops stale
  results: a stale alpha is never shown.
- The GUI thread never waits for matting: ``submit`` and ``cancel`` return at
  once, and ``shutdown`` only signals the thread (it is a daemon, so a solver
  stuck in C code cannot keep the process alive).
- A job's exception never takes the process down: everything is caught and
  reported through ``failed`` with a message for the error dialog.

Engines are created *in the worker thread* (loading network weights is slow)
and kept in an ``EngineCache``, so the model is loaded once per worker.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from dim_studio.engines import Engine, create_engine
from dim_studio.errors import Cancelled, DimStudioError

# --------------------------------------------------------------------------
# errors -> dialog text
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class JobError:
    """A failed job, ready for the error dialog."""

    title: str
    message: str
    exception_type: str


def describe_exception(exc: BaseException) -> JobError:
    """Turn any exception into a message a user can act on.

    DimStudioError messages are written for users and are shown as they are;
    memory errors get advice; anything else shows its type and message (a bug,
    but the user still learns what failed and the program keeps running).
    """
    name = type(exc).__name__
    text = str(exc).strip()
    if isinstance(exc, DimStudioError):
        return JobError("Matting failed", text or name, name)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return JobError(
            "Out of memory",
            "There was not enough memory to matte this photo"
            + (f" ({text})" if text else "")
            + ". Narrow the unknown band, choose a lower preview resolution, "
            "or use the CPU or a lighter engine.",
            name,
        )
    return JobError("Unexpected error", f"{name}: {text}" if text else name, name)


# --------------------------------------------------------------------------
# engines and devices
# --------------------------------------------------------------------------


EngineKey = tuple[str, tuple[tuple[str, Any], ...]]


class EngineCache:
    """Engines by (name, options), created on first use and kept (a few at most).

    Keeping the engine keeps the network's weights loaded between previews;
    the cap stops switching engines back and forth from filling the GPU.
    """

    def __init__(self, capacity: int = 2) -> None:
        self._capacity = capacity
        self._engines: OrderedDict[EngineKey, Engine] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(name: str, options: dict[str, Any]) -> EngineKey:
        return name, tuple(sorted((k, v) for k, v in options.items() if v is not None))

    def get(self, name: str, options: dict[str, Any] | None = None) -> Engine:
        key = self.key(name, options or {})
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
        # Created outside the lock: loading weights can take seconds.
        engine = create_engine(name, **dict(key[1]))
        with self._lock:
            self._engines[key] = engine
            while len(self._engines) > self._capacity:
                self._engines.popitem(last=False)
        return engine

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()


def device_of(engine: Engine) -> str | None:
    """The torch device an engine runs on ('cuda:0', 'mps', 'cpu') or None (classical)."""
    device = getattr(engine, "device", None)
    return None if device is None else str(device)


def describe_device(device: str | None) -> str:
    """'CUDA (NVIDIA H100 ...)', 'MPS (Apple GPU)', 'CPU (8 threads)'; plain 'CPU' for classical engines."""
    if device is None:
        return "CPU"
    try:
        from dim_studio.engines.device import describe_device as describe

        return describe(device)
    except Exception:  # noqa: BLE001 - a label is never worth a crash
        return device.split(":")[0].upper()


@dataclass(frozen=True)
class Environment:
    """What the machine offers, probed once in the background at start-up."""

    devices: list[tuple[str, str]]  # (value for --device, label), "auto" first
    weights: str | None              # path of the weights the dim engine would use
    weights_help: str                # how to get weights (for the disabled item's tooltip)
    weights_error: str = ""          # a named weights file that is missing, etc.


def probe_environment(weights: str | None = None) -> Environment:
    """Find devices and weights. Imports torch, so call it off the GUI thread."""
    devices: list[tuple[str, str]] = [("auto", "Auto")]
    try:
        from dim_studio.engines.device import available_devices, describe_device as describe

        for name in available_devices():
            devices.append((name, describe(name)))
    except Exception:  # noqa: BLE001 - no torch, or a broken driver: the CPU is always there
        devices.append(("cpu", "CPU"))
    found: str | None = None
    help_text = (
        "The dim engine needs a weights file; the network package is not available "
        "in this installation (it needs torch)."
    )
    error = ""
    try:
        from dim_studio.net.weights import find_weights, how_to_get_weights
    except ImportError:
        pass
    else:
        help_text = how_to_get_weights()
        try:
            path = find_weights(weights)
            found = str(path) if path is not None else None
        except DimStudioError as exc:
            error = str(exc)
    return Environment(devices, found, help_text, error)


# --------------------------------------------------------------------------
# the matting worker
# --------------------------------------------------------------------------


@dataclass
class JobContext:
    """What a job function gets: its id, cancel flag, progress and the engine cache."""

    request_id: int
    event: threading.Event
    engines: EngineCache
    _progress: Callable[[int, float], None]
    _partial: Callable[[int, Any], None]
    _last_progress: float = field(default=0.0)

    def cancelled(self) -> bool:
        """The ``cancel=`` callable handed to engines."""
        return self.event.is_set()

    def progress(self, fraction: float) -> None:
        # Throttled: a CG solver calls this every iteration, and each call
        # would otherwise queue a signal into the GUI's event loop.
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_progress >= 0.05:
            self._last_progress = now
            self._progress(self.request_id, float(fraction))

    def partial(self, payload: Any) -> None:
        """Hand an intermediate result (the alpha before the foreground) to the GUI."""
        if not self.event.is_set():
            self._partial(self.request_id, payload)


JobFn = Callable[[JobContext], Any]


@dataclass
class _Job:
    request_id: int
    fn: JobFn
    supersedable: bool
    event: threading.Event = field(default_factory=threading.Event)


class MattingWorker(QObject):
    """One background thread running matting jobs in order; previews are latest-wins.

    Signals carry the job's request id first; the GUI must ignore ids other
    than the one it is waiting for.
    """

    started = Signal(int)
    progressed = Signal(int, float)
    partial = Signal(int, object)
    finished = Signal(int, object)
    failed = Signal(int, object)  # JobError
    cancelled = Signal(int)

    _ids = itertools.count(1)  # ids unique across workers, so tests can compare them

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engines = EngineCache()
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._running: _Job | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- GUI-thread API (all return immediately) -----------------------------

    def submit(self, fn: JobFn, *, supersedable: bool = True) -> int:
        """Queue ``fn(context)``; returns its request id.

        A supersedable job (a preview) cancels every other supersedable job,
        running or waiting: only the newest preview matters. A job that is not
        supersedable (an export) is cancelled only by ``cancel``.
        """
        job = _Job(next(self._ids), fn, supersedable)
        with self._cond:
            stopped = self._stopping
            if not stopped:
                if supersedable:
                    for old in [*self._queue, self._running]:
                        if old is not None and old.supersedable:
                            old.event.set()
                self._queue.append(job)
                self._ensure_thread()
                self._cond.notify()
        if stopped:
            # A timer that fired while the window is being torn down: the job is dropped.
            self._emit(self.cancelled, job.request_id)
        return job.request_id

    def cancel(self, request_id: int | None = None) -> None:
        """Cancel one job by id, or every job when ``request_id`` is None."""
        with self._cond:
            for job in [*self._queue, self._running]:
                if job is not None and (request_id is None or job.request_id == request_id):
                    job.event.set()

    def is_idle(self) -> bool:
        with self._cond:
            return self._running is None and not self._queue

    def shutdown(self) -> None:
        """Cancel everything and let the thread end; does not wait for it."""
        with self._cond:
            self._stopping = True
            for job in [*self._queue, self._running]:
                if job is not None:
                    job.event.set()
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (tests and benchmarks only, never the GUI's normal flow)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # -- the thread -------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="dim-studio-matting", daemon=True)
            self._thread.start()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping and not self._queue:
                return None
            job = self._queue.pop(0)
            self._running = job
            return job

    def _loop(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running = None
            if self._stopping:
                with self._cond:
                    dropped, self._queue = self._queue, []
                for old in dropped:
                    self._emit(self.cancelled, old.request_id)
                return

    def _emit(self, signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:
            # The worker's C++ object was deleted with its window; nobody is listening.
            pass

    def _run(self, job: _Job) -> None:
        if job.event.is_set():
            self._emit(self.cancelled, job.request_id)
            return
        self._emit(self.started, job.request_id)
        ctx = JobContext(
            job.request_id, job.event, self.engines,
            lambda rid, f: self._emit(self.progressed, rid, f),
            lambda rid, p: self._emit(self.partial, rid, p),
        )
        try:
            result = job.fn(ctx)
        except Cancelled:
            self._emit(self.cancelled, job.request_id)
            return
        except Exception as exc:  # noqa: BLE001 - a job must never take the process down
            if job.event.is_set():
                # Many solvers fail in odd ways when interrupted; a cancelled
                # job's error is of no interest to anyone.
                self._emit(self.cancelled, job.request_id)
            else:
                self._emit(self.failed, job.request_id, describe_exception(exc))
            return
        if job.event.is_set() and job.supersedable:
            # A preview that finished just as it was superseded: stale.
            self._emit(self.cancelled, job.request_id)
        else:
            # An export whose files are written is done, however late Cancel came.
            self._emit(self.finished, job.request_id, result)


# --------------------------------------------------------------------------
# the preview and export jobs (plain functions, run inside the worker)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRequest:
    """A snapshot of everything a preview needs; the arrays are never mutated after."""

    image: np.ndarray
    trimap: np.ndarray
    engine_name: str
    engine_options: dict[str, Any]
    resolution: str = "auto"
    want_foreground: bool = False


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


def run_preview(ctx: JobContext, request: PreviewRequest) -> PreviewResult:
    """Alpha (maybe downscaled), then, if asked for, the foreground colours."""
    from dim_studio.preview_scale import (
        auto_pixel_budget, choose_scale, estimate_alpha_scaled, estimate_foreground_scaled,
    )

    engine = ctx.engines.get(request.engine_name, request.engine_options)
    device = device_of(engine)
    budget = auto_pixel_budget(request.engine_name, device)
    scale = choose_scale(request.trimap, request.resolution, budget, engine.context_margin)
    start = time.perf_counter()
    scaled = estimate_alpha_scaled(
        engine, request.image, request.trimap, scale, progress=ctx.progress, cancel=ctx.cancelled
    )
    result = PreviewResult(
        scaled.alpha, None, request.trimap, scaled.scale, scaled.work_size,
        time.perf_counter() - start, engine.describe(), describe_device(device),
        final=not request.want_foreground,
    )
    if not request.want_foreground:
        return result
    ctx.partial(result)
    foreground = estimate_foreground_scaled(request.image, scaled.alpha, scaled.scale, cancel=ctx.cancelled)
    return replace(
        result, foreground=foreground, seconds=time.perf_counter() - start, final=True
    )


@dataclass(frozen=True)
class ExportRequest:
    image: np.ndarray
    trimap: np.ndarray
    engine_name: str
    engine_options: dict[str, Any]
    alpha_path: str | None = None
    cutout_path: str | None = None
    composite_path: str | None = None
    background: Any = None  # a BackgroundSpec for export.write_outputs
    depth: int = 8


@dataclass(frozen=True)
class ExportResult:
    paths: list[str]
    seconds: float
    engine_label: str


def run_export(ctx: JobContext, request: ExportRequest) -> ExportResult:
    """Full resolution, then ``export.write_outputs``: the same calls as ``dim-studio matte``."""
    from dim_studio.engines.base import check_cancel, scaled_progress
    from dim_studio.export import write_outputs

    engine = ctx.engines.get(request.engine_name, request.engine_options)
    start = time.perf_counter()
    # The alpha is most of the work; writing (and the foreground estimate) the rest.
    alpha = engine.estimate(
        request.image, request.trimap,
        progress=scaled_progress(ctx.progress, 0.0, 0.8), cancel=ctx.cancelled,
    )
    check_cancel(ctx.cancelled)
    ctx.progress(0.8)
    written = write_outputs(
        request.image, alpha,
        alpha_path=request.alpha_path, cutout_path=request.cutout_path,
        composite_path=request.composite_path, background=request.background,
        depth=request.depth,
    )
    ctx.progress(1.0)
    return ExportResult([str(p) for p in written], time.perf_counter() - start, engine.describe())


# --------------------------------------------------------------------------
# small background tasks (probes, autosave writes)
# --------------------------------------------------------------------------


class TaskRunner(QObject):
    """Runs short tasks on one background thread, in order; callbacks run on the GUI thread.

    Used for the start-up probe (importing torch takes a second) and the
    autosave writes (PNG-encoding a 24 MP trimap takes a noticeable moment).
    One thread keeps the tasks ordered: a "discard autosave" submitted after
    a "write autosave" cannot overtake it.
    """

    _done = Signal(object, object, object)  # callback, result, JobError | None

    def __init__(self, parent: QObject | None = None, name: str = "dim-studio-tasks") -> None:
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._done.connect(self._deliver)
        self._pending = 0
        self._closed = False
        self._lock = threading.Lock()

    def submit(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[JobError], None] | None = None,
    ) -> Future:
        if self._closed:
            dropped: Future = Future()
            dropped.cancel()  # the window is closing; nobody would see the result
            return dropped
        with self._lock:
            self._pending += 1

        def task() -> Any:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - reported to the GUI, never raised here
                self._finish(on_error, None, describe_exception(exc))
                return None
            self._finish(on_done, result, None)
            return result

        return self._executor.submit(task)

    def _finish(self, callback: Callable[..., None] | None, result: Any, error: JobError | None) -> None:
        with self._lock:
            self._pending -= 1
        try:
            self._done.emit(callback, result, error)
        except RuntimeError:
            pass  # the runner's window is gone

    def _deliver(self, callback: Callable[..., None] | None, result: Any, error: JobError | None) -> None:
        if callback is None:
            return
        callback(error if error is not None else result)

    def is_idle(self) -> bool:
        with self._lock:
            return self._pending == 0

    def flush(self, timeout: float | None = None) -> None:
        """Block until queued tasks ran (tests and benchmarks only, never the GUI's normal flow)."""
        if self._closed:
            self._executor.shutdown(wait=True)
        else:
            self._executor.submit(lambda: None).result(timeout)

    def shutdown(self) -> None:
        """No new tasks; the queued ones (a last autosave discard) still run."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=False)
