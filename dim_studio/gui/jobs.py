"""Running jobs for the window: lanes of worker threads, a small task runner, and app-wide events.

The jobs themselves live in ``dim_studio.workflows`` and know nothing of Qt;
this module only runs them off the GUI thread and carries their results back
(docs/ARCHITECTURE.md):

- ``JobLane``: one daemon thread running jobs in order. The window has one
  lane for previews and another for exports, the batch dialog and each
  weights download their own, so a preview never waits behind a long job.
  Within a lane, latest wins: submitting a supersedable job (a preview)
  cancels the running preview and drops any preview still waiting. Each job
  gets its own ``threading.Event``, polled by the engine through
  ``cancel=``; because a solver may finish just as it is cancelled, the GUI
  still compares the request id of each result with the newest one it asked
  for, and a stale result is never shown.
- Results travel back through Qt signals, queued into the GUI thread by an
  application-wide relay (``AppEvents.relayed``): a worker thread never emits on
  the lane or runner itself, which its window may be deleting at that very
  moment; no widget is touched from a lane. The GUI thread never waits for
  a job: ``submit`` and ``cancel`` return at once, ``shutdown`` only
  signals the thread.
- A job's exception never takes the process down: it is reported through
  ``failed`` as a ``JobError`` for the error dialog.
- Each lane keeps its engines in an ``EngineCache`` (the network is loaded
  once per lane; the model itself is shared process-wide by the dim
  engine's model cache), cleared when ``app_events().weightsChanged`` says
  new weights were installed.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Signal

from dim_studio.errors import Cancelled
from dim_studio.workflows.jobs import EngineCache, JobContext, JobError, describe_exception

# --------------------------------------------------------------------------
# app-wide events
# --------------------------------------------------------------------------


class AppEvents(QObject):
    """Signals every window, dialog and lane of the application listens to, and the relay
    worker threads hand their results to.

    Why the relay: a lane or task runner is deleted with its window or dialog
    while its thread may be finishing a job. Emitting a signal on a QObject
    that the GUI thread is deleting at that moment is a race Qt does not
    guard: now and then the queued event outlived its receiver and the
    process crashed in the next event loop (a segfault in about 1 run in 8 of
    tests/gui/test_batch_dialog.py). ``AppEvents`` lives as long as the
    application, so the threads only ever emit ``relayed`` on it (``_post``),
    and the call it carries checks on the GUI thread, where deletion happens
    too, that the sender is still alive.
    """

    #: weights were installed or replaced (the new file's Path, or None when unknown)
    weightsChanged = Signal(object)
    #: a callable of no arguments, run on the GUI thread (see ``_post``)
    relayed = Signal(object)

    def __init__(self, parent: QObject | None) -> None:
        super().__init__(parent)
        self.relayed.connect(self._run)

    @staticmethod
    def _run(fn: Callable[[], None]) -> None:
        fn()


_events: AppEvents | None = None


def app_events() -> AppEvents:
    """The application's ``AppEvents`` (one per QApplication); first called on the GUI thread."""
    global _events
    app = QCoreApplication.instance()
    if _events is None or _events.parent() is not app:
        _events = AppEvents(app)
    return _events


def _post(events: AppEvents, sender: QObject, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the GUI thread if ``sender``'s C++ object still exists then."""
    def run() -> None:
        if shiboken6.isValid(sender):  # reliable here: deletion happens on this thread too
            fn()
    try:
        events.relayed.emit(run)
    except RuntimeError:
        pass  # the application is gone: nobody is listening


def announce_weights_changed(path: Path | None = None) -> None:
    """Tell the whole application that the weights changed (after an import, download or fine-tune)."""
    app_events().weightsChanged.emit(path)


# --------------------------------------------------------------------------
# lanes
# --------------------------------------------------------------------------


JobFn = Callable[[JobContext], Any]


class _Throttle:
    """Progress at most every 50 ms (and always the end): a CG solver reports every
    iteration, and each report would otherwise queue a signal into the GUI's event loop."""

    def __init__(self, send: Callable[[float], None]) -> None:
        self._send = send
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last >= 0.05:
            self._last = now
            self._send(float(fraction))


@dataclass
class _Job:
    request_id: int
    fn: JobFn
    supersedable: bool
    event: threading.Event = field(default_factory=threading.Event)


class JobLane(QObject):
    """One background thread running jobs in order; supersedable jobs (previews) are latest-wins.

    Signals carry the job's request id first (ids count up within a lane);
    the GUI must ignore ids other than the one it is waiting for.
    """

    started = Signal(int)
    progressed = Signal(int, float)
    partial = Signal(int, object)
    finished = Signal(int, object)
    failed = Signal(int, object)  # JobError
    cancelled = Signal(int)

    def __init__(self, parent: QObject | None = None, name: str = "jobs") -> None:
        super().__init__(parent)
        self.name = name
        self.engines = EngineCache()
        self._ids = itertools.count(1)
        self._events = app_events()  # created here, on the GUI thread
        # New weights: the next job builds its engine afresh (the cache is thread-safe).
        self._events.weightsChanged.connect(self._on_weights_changed)
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
        with self._cond:
            request_id = next(self._ids)
        job = _Job(request_id, fn, supersedable)
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
            self._thread = threading.Thread(target=self._loop, name=f"dim-studio-{self.name}", daemon=True)
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

    def _on_weights_changed(self, _path: object) -> None:
        self.engines.clear()

    def _emit(self, signal: Any, *args: Any) -> None:
        _post(self._events, self, lambda: signal.emit(*args))

    def _run(self, job: _Job) -> None:
        if job.event.is_set():
            self._emit(self.cancelled, job.request_id)
            return
        self._emit(self.started, job.request_id)
        rid, event = job.request_id, job.event

        def partial(payload: Any) -> None:
            if not event.is_set():
                self._emit(self.partial, rid, payload)

        ctx = JobContext(
            event.is_set, _Throttle(lambda f: self._emit(self.progressed, rid, f)), partial, self.engines
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
# small background tasks (probes, autosave writes)
# --------------------------------------------------------------------------


class TaskRunner(QObject):
    """Runs short tasks on one background thread, in order; callbacks run on the GUI thread.

    Used for the start-up probe (importing torch takes a second) and the
    autosave writes (PNG-encoding a 24 MP trimap takes a noticeable moment).
    One thread keeps the tasks ordered: a "discard autosave" submitted after
    a "write autosave" cannot overtake it.
    """

    def __init__(self, parent: QObject | None = None, name: str = "dim-studio-tasks") -> None:
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._events = app_events()  # created here, on the GUI thread
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
        def deliver() -> None:
            # Counted down only once delivered, so "idle" means no callback is still on its way.
            with self._lock:
                self._pending -= 1
            if callback is not None:
                callback(error if error is not None else result)
        _post(self._events, self, deliver)

    def is_idle(self) -> bool:
        """No task waiting, running, or with its callback not yet run on the GUI thread."""
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
