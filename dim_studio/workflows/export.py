"""The export job: one photo at full resolution to its files (``dim-studio matte`` and File > Export)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import check_outputs
from ..engines.base import check_cancel, scaled_progress
from ..compose import DEFAULT_DECONTAMINATION
from ..export import check_decontamination, write_outputs
from ..trimap_mirror import TrimapSnapshot, as_trimap
from .engine_choice import EngineChoice
from .jobs import JobContext

# The alpha is most of the work; the foreground estimate and writing are the rest.
_ALPHA_SHARE = 0.8


@dataclass(frozen=True)
class ExportRequest:
    image: np.ndarray
    trimap: np.ndarray | TrimapSnapshot  # a snapshot is copied out in the job, not by the caller
    engine: EngineChoice
    alpha_path: str | None = None
    cutout_path: str | None = None
    composite_path: str | None = None
    background: Any = None  # a BackgroundSpec for export.write_outputs, parsed before the job
    depth: int = 8
    # How far the cut-out's and composite's edge colours move from the photo's
    # towards the estimated foreground (0-1, compose.decontaminate); never the alpha.
    decontaminate: float = DEFAULT_DECONTAMINATION
    # What the job must never write, by the name a user knows it by
    # ("the photo": path); checked before the engine runs.
    inputs: Mapping[str, str | None] = field(default_factory=dict)

    def outputs(self) -> dict[str, str | None]:
        return {"alpha": self.alpha_path, "cutout": self.cutout_path,
                "composite": self.composite_path}


@dataclass(frozen=True)
class ExportResult:
    paths: list[str]
    seconds: float          # the whole job
    alpha_seconds: float    # the engine's solve alone
    engine_label: str
    notes: tuple[str, ...] = ()  # what the engine had to do differently (smaller tiles, CPU fallback)


def run_export(ctx: JobContext, request: ExportRequest) -> ExportResult:
    """Full resolution, then ``export.write_outputs``; the files appear together or not at all.

    Refuses, before any work, outputs that would overwrite an input or each other.
    """
    check_outputs(request.outputs(), request.inputs)
    check_decontamination(request.decontaminate)
    engine = ctx.engines.get(request.engine.name, request.engine.options)
    start = time.perf_counter()
    alpha = engine.estimate(
        request.image, as_trimap(request.trimap),
        progress=scaled_progress(ctx.progress, 0.0, _ALPHA_SHARE), cancel=ctx.cancelled,
    )
    alpha_seconds = time.perf_counter() - start
    check_cancel(ctx.cancelled)
    ctx.progress(_ALPHA_SHARE)
    written = write_outputs(
        request.image, alpha,
        alpha_path=request.alpha_path, cutout_path=request.cutout_path,
        composite_path=request.composite_path, background=request.background,
        depth=request.depth, decontaminate=request.decontaminate,
    )
    ctx.progress(1.0)
    return ExportResult(
        [str(Path(p)) for p in written], time.perf_counter() - start, alpha_seconds,
        engine.describe(), tuple(getattr(engine, "last_run_notes", ()) or ()),
    )


__all__ = ["ExportRequest", "ExportResult", "run_export"]
