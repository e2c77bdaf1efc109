"""Running a batch plan: matte every photo to do, record what happened, write the report.

Reliability
    One bad file never stops the run: every failure is recorded with its reason.
    Writes are atomic, so a cancelled or failed file never leaves a
    half-written output, and an output never overwrites an input file.

Concurrency
    Matting runs on the calling thread. One reader thread decodes the next
    photo and its trimap while the current one is matted (at most one photo is
    read ahead) and one writer thread writes the previous result (the cutout's
    foreground estimate is part of the writing). Events are always delivered on
    the calling thread.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..enums import TextEnum
from .. import __version__
from ..atomic import atomic_output
from ..engines.base import Engine
from ..errors import Cancelled, DimStudioError, ImageWriteError, TrimapError
from ..export import Background, BackgroundSpec, check_decontamination, resolve_background, write_outputs
from ..images import image_size, read_image, read_mask, read_trimap
from ..trimap import trimap_from_mask
from .planning import REPORT_LISTS, BatchItem, BatchPlan, FileStatus, PlanStatus, check_background

__all__ = ["BatchEvent", "BatchEventKind", "BatchReport", "FileResult", "RunStatus", "run_batch"]


class BatchEventKind(TextEnum):
    """What a ``BatchEvent`` reports."""

    START = "start"
    FILE_STARTED = "file-started"
    FILE_PROGRESS = "file-progress"  # ``fraction`` of the current file's matting
    FILE_DONE = "file-done"
    FILE_FAILED = "file-failed"
    FILE_SKIPPED = "file-skipped"
    FILE_NOT_PROCESSED = "file-not-processed"
    FINISHED = "finished"


class RunStatus(TextEnum):
    """How a run ended (``BatchReport.status``, the report's "status")."""

    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # stop() or Ctrl-C: the current file was finished
    CANCELLED = "cancelled"  # cancel(): the current file was abandoned


@dataclass(frozen=True)
class BatchEvent:
    """A progress event of ``run_batch``, delivered on the calling thread.

    ``kind``: a ``BatchEventKind`` ("start", "file-started", "file-progress"
    with the ``fraction`` of the current file's matting, "file-done",
    "file-failed", "file-skipped", "file-not-processed" or "finished").
    ``done`` counts the files finished so far (whatever their outcome) out of
    ``total``.
    """

    kind: BatchEventKind
    done: int
    total: int
    name: str = ""  # the photo's path relative to the images folder
    reason: str = ""
    seconds: float = 0.0
    fraction: float = 0.0


@dataclass
class FileResult:
    """What happened to one photo."""

    image: str  # relative to the images folder
    status: FileStatus
    partner: Optional[str] = None
    outputs: list[str] = field(default_factory=list)  # relative to the output folder
    seconds: Optional[float] = None
    reason: str = ""
    entry: Optional[dict[str, Any]] = None  # a kept entry of an earlier report, verbatim
    partner_key: str = "trimap"  # or "mask"

    def to_dict(self) -> dict[str, Any]:
        if self.entry is not None:
            return dict(self.entry)
        out: dict[str, Any] = {"image": self.image, self.partner_key: self.partner}
        if self.status == FileStatus.DONE:
            out["outputs"] = self.outputs
            out["seconds"] = round(self.seconds or 0.0, 4)
        else:
            out["reason"] = self.reason
        return out


@dataclass
class BatchReport:
    """The outcome of a batch run; ``to_dict()`` is what the JSON report holds."""

    plan: BatchPlan
    engine: str
    engine_description: str
    settings: dict[str, Any]
    started: str
    finished: str = ""
    seconds: float = 0.0
    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False
    cancelled: bool = False
    path: Optional[Path] = None

    def _with(self, status: FileStatus) -> list[FileResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[FileResult]:
        return self._with(FileStatus.DONE)

    @property
    def failed(self) -> list[FileResult]:
        return self._with(FileStatus.FAILED)

    @property
    def skipped(self) -> list[FileResult]:
        return self._with(FileStatus.SKIPPED)

    @property
    def not_processed(self) -> list[FileResult]:
        return self._with(FileStatus.NOT_PROCESSED)

    @property
    def status(self) -> RunStatus:
        if self.cancelled:
            return RunStatus.CANCELLED
        if self.interrupted:
            return RunStatus.INTERRUPTED
        return RunStatus.COMPLETED

    def totals(self) -> dict[str, int]:
        return {
            "images": len(self.results),
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "not_processed": len(self.not_processed),
        }

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        data: dict[str, Any] = {
            "tool": f"dim-studio {__version__}",
            "engine": self.engine,
            "engine_description": self.engine_description,
            "images": str(plan.images_dir),
            "trimaps": str(plan.trimaps_dir) if plan.trimaps_dir is not None else None,
            "masks": str(plan.masks_dir) if plan.masks_dir is not None else None,
            "output": str(plan.out_dir),
            "settings": self.settings,
            "started": self.started,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
            "status": self.status,
            "totals": self.totals(),
        }
        for status, key in REPORT_LISTS.items():
            data[key] = [r.to_dict() for r in self.results if r.status == status]
        return data

    def write(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the JSON report atomically (default: ``OUT/dim-studio-report.json``)."""
        target = Path(path) if path is not None else self.plan.report_path
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        try:
            with atomic_output(target) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ImageWriteError(f"{target}: cannot write the report ({exc.strerror or exc})") from None
        self.path = target
        return target


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DimStudioError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Runner:
    def __init__(
        self,
        plan: BatchPlan,
        engine: Engine,
        band: int,
        background: Background | None,
        depth: int,
        on_event: Callable[[BatchEvent], None] | None,
        cancel: Callable[[], bool] | None,
        stop: Callable[[], bool] | None,
        report: BatchReport,
        decontaminate: float | None = None,
    ) -> None:
        self.plan = plan
        self.engine = engine
        self.band = band
        self.background = background
        self.depth = depth
        self.on_event = on_event
        self.cancel = cancel
        self.stop = stop
        self.report = report
        self.decontaminate = decontaminate
        self.total = len(plan.items)
        self.finished = 0
        self.results: dict[str, FileResult] = {}
        self.pending: tuple[BatchItem, Future, float] | None = None

    # -- events -------------------------------------------------------------

    def emit(self, kind: BatchEventKind, item: BatchItem | None = None, **kw: Any) -> None:
        if self.on_event is not None:
            self.on_event(BatchEvent(kind, self.finished, self.total,
                                     item.rel if item is not None else "", **kw))

    def record(self, item: BatchItem, result: FileResult, event: BatchEventKind) -> None:
        self.results[item.rel] = result
        self.finished += 1
        self.emit(event, item, reason=result.reason, seconds=result.seconds or 0.0)

    def result(self, item: BatchItem, status: FileStatus, **kw: Any) -> FileResult:
        partner = str(item.partner) if item.partner is not None else None
        key = "mask" if self.plan.masks_dir is not None else "trimap"
        return FileResult(item.rel, status, partner, partner_key=key, **kw)

    def fail(self, item: BatchItem, reason: str) -> None:
        self.record(item, self.result(item, FileStatus.FAILED, reason=reason),
                    BatchEventKind.FILE_FAILED)

    # -- reading and writing (worker threads) --------------------------------

    def read(self, item: BatchItem) -> tuple[np.ndarray, np.ndarray]:
        assert item.partner is not None
        # Sizes from the headers first: a mismatched pair is refused before either is decoded.
        shape = image_size(item.image)
        if self.plan.masks_dir is not None:
            trimap = trimap_from_mask(read_mask(item.partner, shape), self.band)
        else:
            trimap = read_trimap(item.partner, shape)
        return read_image(item.image), trimap

    def write(self, item: BatchItem, image: np.ndarray, alpha: np.ndarray) -> list[Path]:
        out = item.outputs
        return write_outputs(
            image, alpha,
            alpha_path=out.get("alpha"), cutout_path=out.get("cutout"),
            composite_path=out.get("composite"),
            background=self.background, depth=self.depth, decontaminate=self.decontaminate,
        )

    def collect_write(self, block: bool) -> None:
        """Record the previous file once its outputs are written."""
        if self.pending is None:
            return
        item, future, seconds = self.pending
        if not block and not future.done():
            return
        self.pending = None
        try:
            written = future.result()
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            self.fail(item, _reason(exc))
            return
        outputs = []
        for path in written:
            try:
                outputs.append(Path(path).relative_to(self.plan.out_dir).as_posix())
            except ValueError:
                outputs.append(str(path))
        self.record(item, self.result(item, FileStatus.DONE, outputs=outputs, seconds=seconds),
                    BatchEventKind.FILE_DONE)

    # -- the loop --------------------------------------------------------------

    def stopping(self) -> RunStatus | None:
        if self.cancel is not None and self.cancel():
            return RunStatus.CANCELLED
        if self.stop is not None and self.stop():
            return RunStatus.INTERRUPTED
        return None

    def progress(self, item: BatchItem) -> Callable[[float], None]:
        def report(fraction: float) -> None:
            self.collect_write(block=False)
            self.emit(BatchEventKind.FILE_PROGRESS, item, fraction=fraction)

        return report

    def run(self) -> None:
        todo = self.plan.todo
        reader = ThreadPoolExecutor(1, thread_name_prefix="dim-batch-read")
        writer = ThreadPoolExecutor(1, thread_name_prefix="dim-batch-write")
        stop_reason: RunStatus | None = None
        next_read: Future | None = None
        try:
            for item in self.plan.items:
                if item.status == PlanStatus.SKIP:
                    self.record(item, self.result(item, FileStatus.SKIPPED, reason=item.reason),
                                BatchEventKind.FILE_SKIPPED)
                elif item.status == PlanStatus.KEPT:
                    prev = item.previous or {}
                    result = self.result(item, prev.get("status", FileStatus.SKIPPED), reason=item.reason,
                                         entry=prev.get("entry"))
                    self.record(item, result, BatchEventKind.FILE_SKIPPED)
                elif item.status in (PlanStatus.MISSING_TRIMAP, PlanStatus.INVALID):
                    self.fail(item, item.reason)
            if todo:
                next_read = reader.submit(self.read, todo[0])
            for i, item in enumerate(todo):
                stop_reason = self.stopping()
                if stop_reason:
                    break
                current, next_read = next_read, None
                self.emit(BatchEventKind.FILE_STARTED, item)
                try:
                    assert current is not None
                    image, trimap = current.result()
                except Exception as exc:  # noqa: BLE001 - unreadable input: recorded
                    image = trimap = None
                    read_error: Exception | None = exc
                else:
                    read_error = None
                # Read the next pair while this one is matted (one read ahead).
                if i + 1 < len(todo):
                    next_read = reader.submit(self.read, todo[i + 1])
                if read_error is not None:
                    self.collect_write(block=False)
                    self.fail(item, _reason(read_error))
                    continue
                start = time.perf_counter()
                try:
                    alpha = self.engine.estimate(image, trimap, progress=self.progress(item),
                                                 cancel=self.cancel)
                except Cancelled:
                    stop_reason = RunStatus.CANCELLED
                    break
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
                    self.collect_write(block=False)
                    self.fail(item, _reason(exc))
                    continue
                seconds = time.perf_counter() - start
                self.collect_write(block=True)  # at most one result waits to be written
                self.pending = (item, writer.submit(self.write, item, image, alpha), seconds)
                self.collect_write(block=False)
        except KeyboardInterrupt:
            stop_reason = RunStatus.INTERRUPTED
        finally:
            if next_read is not None:
                next_read.cancel()
            reader.shutdown(wait=True, cancel_futures=True)
            try:
                # A finished result is worth keeping: let its write complete.
                self.collect_write(block=True)
            except KeyboardInterrupt:
                stop_reason = RunStatus.INTERRUPTED
            writer.shutdown(wait=True)
            if stop_reason == RunStatus.CANCELLED:
                self.report.cancelled = True
            elif stop_reason == RunStatus.INTERRUPTED:
                self.report.interrupted = True
            for item in todo:
                if item.rel not in self.results:
                    reason = f"not processed: {stop_reason or 'the run stopped on an error'}"
                    self.record(item, self.result(item, FileStatus.NOT_PROCESSED, reason=reason),
                                BatchEventKind.FILE_NOT_PROCESSED)


def run_batch(
    plan: BatchPlan,
    engine: Engine,
    *,
    band: int = 10,
    background: BackgroundSpec = None,
    depth: int = 8,
    on_event: Callable[[BatchEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    stop: Callable[[], bool] | None = None,
    write_report: bool = True,
    decontaminate: float | None = None,
) -> BatchReport:
    """Matte every ``todo`` item of ``plan`` with ``engine`` (created once by the caller).

    ``band`` is the unknown band (pixels each side of the edge) of trimaps made
    from masks; ``background`` is used for composites; ``depth`` is 8 or 16;
    ``decontaminate`` (0-1, default ``compose.DEFAULT_DECONTAMINATION``) is
    how far the cutouts' and composites' edge colours move from the photo's
    towards the estimated foreground (``compose.decontaminate``).
    ``on_event(BatchEvent)`` is called on this thread. ``cancel()`` is polled
    between files and passed to the engine, so it also abandons the current
    file (recorded as not processed, nothing written); ``stop()`` is polled
    only between files (finish the current one, then stop). A
    KeyboardInterrupt ends the run the same way. The unfinished files are
    marked "not processed", the report is written (``write_report``) and
    returned, with ``cancelled`` / ``interrupted`` set.
    """
    if depth not in (8, 16):
        raise DimStudioError(f"bit depth must be 8 or 16, not {depth}")
    if band < 0:
        raise TrimapError(f"the band width must be 0 or more pixels, not {band}")
    strength = check_decontamination(decontaminate)
    if isinstance(background, (str, os.PathLike)) and str(background) != plan.background:
        check_background(plan, background)  # a background the plan was not checked against
    bg = resolve_background(background) if "composite" in plan.outputs else None
    settings: dict[str, Any] = {
        "outputs": list(plan.outputs),
        "alpha_depth": depth,
        "recursive": plan.recursive,
        "overwrite": plan.overwrite,
        "retry_failed": plan.retry_failed,
    }
    if plan.masks_dir is not None:
        settings["band"] = band
    if bg is not None:
        settings["background"] = bg.label or "image"
    if "cutout" in plan.outputs or "composite" in plan.outputs:
        settings["decontaminate"] = strength
    report = BatchReport(
        plan=plan, engine=engine.name or type(engine).__name__,
        engine_description=engine.describe(), settings=settings, started=_now(),
    )
    runner = _Runner(plan, engine, band, bg, depth, on_event, cancel, stop, report, strength)
    t0 = time.perf_counter()
    runner.emit(BatchEventKind.START)
    try:
        runner.run()
    finally:
        report.results = [runner.results[item.rel] for item in plan.items if item.rel in runner.results]
        report.finished = _now()
        report.seconds = time.perf_counter() - t0
        if write_report:
            report.write()
    runner.emit(BatchEventKind.FINISHED)
    return report
