"""The training job (``dim-studio train``), Qt-free like every job.

The configuration is assembled in one order whichever front end asks: the
run's own record when resuming (``OUT/run.json``), else the defaults; then
the config file; then the options given. The job reports each step through
``ctx.partial`` (a ``TrainProgress``) and the fraction done through
``ctx.progress``; ``ctx.cancelled`` stops it at the next step with a
resumable checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .jobs import JobContext

__all__ = ["TrainRequest", "run_training", "training_config"]


@dataclass(frozen=True)
class TrainRequest:
    config_file: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    resume: bool = False


def training_config(request: TrainRequest) -> Any:
    """The effective ``TrainConfig`` of ``request`` (checked)."""
    from ..training.checkpoints import read_run_config
    from ..training.config import ConfigError, TrainConfig, load_config

    base = TrainConfig()
    if request.resume:
        out = request.overrides.get("out")
        if out is None and request.config_file is not None:
            out = load_config(request.config_file).out
        if out is None:
            raise ConfigError("--resume needs the run's folder: give --out DIR")
        base = read_run_config(out)
    if request.config_file is not None:
        base = load_config(request.config_file, base)
    return base.updated(dict(request.overrides)).absolute().check()


def run_training(ctx: JobContext, request: TrainRequest) -> Any:
    """Train as ``request`` says; returns ``training.trainer.TrainResult``."""
    from ..training.trainer import TrainProgress, train

    config = training_config(request)

    def report(update: TrainProgress) -> None:
        ctx.partial(update)
        if update.message is None and update.total:
            ctx.progress(min(1.0, update.step / update.total))

    return train(config, resume=request.resume, progress=report, cancel=ctx.cancelled)
