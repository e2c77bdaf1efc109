"""The batch job: matte a folder of photos (``dim-studio batch`` and the batch dialog).

Both front ends describe a run with a ``BatchRequest`` and go through the same
steps, so they pair files, name outputs, skip finished work, retry failures,
refuse an unwritable output folder and write ``dim-studio-report.json``
identically:

1. ``plan_request``: ``batch.plan_batch``, then ``check_output_folder`` (the
   output folder must be writable before anything is matted, so a run never
   spends minutes on a photo it cannot save);
2. the engine (the GUI through its lane's ``EngineCache``, the CLI creates
   its own before installing its Ctrl-C handler);
3. ``run_planned``: ``batch.run_batch`` with the request's settings, its
   events forwarded to ``ctx.partial`` (per-file progress thinned out).

``run_batch_job`` is all three as one job (what the batch dialog's lane runs); it
also reports ``BatchPhase`` and ``BatchPlanned`` through ``ctx.partial`` so a
front end can show what is going on before the first file starts.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..batch import BatchEvent, BatchEventKind, BatchPlan, BatchReport, PlanStatus, plan_batch, run_batch
from ..compose import DEFAULT_DECONTAMINATION
from ..engines.base import Engine
from ..errors import DimStudioError
from ..export import check_decontamination
from .engine_choice import OFFLINE_DEFAULT, EngineChoice
from .jobs import JobContext

__all__ = [
    "PROGRESS_INTERVAL", "BatchPhase", "BatchPlanned", "BatchRequest", "EventForwarder",
    "check_output_folder", "plan_request", "run_batch_job", "run_planned",
]

#: seconds between forwarded per-file progress events
PROGRESS_INTERVAL = 0.1


@dataclass(frozen=True)
class BatchRequest:
    """Everything a run needs (the GUI captures it from its widgets, the CLI from its arguments)."""

    images_dir: str
    partners_dir: str
    use_masks: bool
    out_dir: str
    outputs: tuple[str, ...] = ("alpha",)
    band: int = 10
    background: str | None = None  # a --background spec, used when a composite is written
    depth: int = 8
    engine: EngineChoice = EngineChoice(OFFLINE_DEFAULT, {})
    recursive: bool = False
    overwrite: bool = False
    retry_failed: bool = False
    # Cutouts' and composites' edge colours: 0 = the photo's, 1 = the estimated foreground.
    decontaminate: float = DEFAULT_DECONTAMINATION


@dataclass(frozen=True)
class BatchPhase:
    """A step before the files start (planning, loading the engine)."""

    text: str


@dataclass(frozen=True)
class BatchPlanned:
    """The plan, reduced to what a front end lists (the plan object stays with the job)."""

    rows: tuple[tuple[str, PlanStatus, str], ...]  # (name, plan status, reason)
    ignored: int
    report_path: str
    thread_ident: int  # the thread that planned (and runs) the batch

    @classmethod
    def of(cls, plan: BatchPlan) -> "BatchPlanned":
        return cls(
            tuple((item.rel, item.status, item.reason) for item in plan.items),
            len(plan.ignored), str(plan.report_path), threading.get_ident(),
        )


class EventForwarder:
    """``on_event`` for ``run_batch``: forwards events to ``send``, thinning file-progress.

    A solver may report progress every iteration; at most one progress event
    per ``PROGRESS_INTERVAL`` goes on, so a GUI's event queue is never flooded.
    """

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        self._last = 0.0

    def __call__(self, event: BatchEvent) -> None:
        if event.kind == BatchEventKind.FILE_PROGRESS:
            now = time.monotonic()
            if now - self._last < PROGRESS_INTERVAL:
                return
            self._last = now
        self._send(event)  # the GUI's is a queued signal: safe from any thread


def check_output_folder(out: Path) -> None:
    """Create the output folder and fail with one clear line when it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DimStudioError(
            f"{out}: cannot create the output folder ({exc.strerror or exc}); choose another folder"
        ) from None
    try:
        # A hidden name, so a run whose output is the photos folder never lists it.
        with tempfile.NamedTemporaryFile(dir=out, prefix=".dim-studio-write-test-"):
            pass
    except OSError as exc:
        raise DimStudioError(
            f"{out}: the output folder is not writable ({exc.strerror or exc}); choose another folder"
        ) from None


def plan_request(request: BatchRequest) -> BatchPlan:
    """Pair the photos and decide what to do with each; the output folder is ready to write."""
    check_decontamination(request.decontaminate)  # a bad setting fails before any file is touched
    partners = request.partners_dir
    plan = plan_batch(
        request.images_dir, request.out_dir,
        trimaps_dir=None if request.use_masks else partners,
        masks_dir=partners if request.use_masks else None,
        recursive=request.recursive, outputs=request.outputs,
        overwrite=request.overwrite, retry_failed=request.retry_failed,
        background=request.background,
    )
    check_output_folder(plan.out_dir)
    return plan


def run_planned(
    ctx: JobContext,
    request: BatchRequest,
    plan: BatchPlan,
    engine: Engine,
    *,
    cancel: Callable[[], bool] | None = None,
    stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """``run_batch`` with the request's settings; its events go to ``ctx.partial``.

    ``cancel`` abandons the current file, ``stop`` finishes it first (see
    ``batch.run_batch``); either way the report is written.
    """
    return run_batch(
        plan, engine, band=request.band, background=request.background, depth=request.depth,
        decontaminate=request.decontaminate,
        on_event=EventForwarder(ctx.partial), cancel=cancel, stop=stop,
    )


def run_batch_job(ctx: JobContext, request: BatchRequest, stop: threading.Event) -> BatchReport:
    """Plan, create the engine and run the batch; progress goes through ``ctx.partial``.

    ``stop`` is ``run_batch``'s cancel flag: setting it abandons the current
    file and lists the rest as not processed. The job's own cancel flag is not
    used for this, because a front end drops a cancelled job's result, and the
    report of a stopped run is exactly what the user wants to see.
    """
    ctx.partial(BatchPhase("Looking for photos…"))
    plan = plan_request(request)
    ctx.partial(BatchPlanned.of(plan))
    ctx.partial(BatchPhase(f"Loading the {request.engine.name} engine…"))
    # The context's cache keeps the engine (and a dim network) loaded for the next run.
    engine = ctx.engines.get(request.engine.name, request.engine.options)
    return run_planned(ctx, request, plan, engine, cancel=stop.is_set)
