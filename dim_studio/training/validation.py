"""Validation during training: the same folders and metrics as ``dim-studio eval``.

The network being trained mattes every validation photo through the ``dim``
engine (padding, tiling and known pixels exactly as the app does), and
``evaluation.evaluate_folder`` scores it: mean SAD, MSE, Gradient and
Connectivity over the trimaps' unknown regions.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping

import torch
from torch import nn

from ..engines.dim import DIMEngine
from ..errors import DimStudioError
from ..evaluation import METRICS, evaluate_folder
from .config import TrainConfig

__all__ = ["validate"]


def validate(
    model: nn.Module, normalization: Mapping[str, Any], cfg: TrainConfig, device: torch.device
) -> dict[str, float]:
    """Mean metrics of ``model`` on the validation folders; leaves the model in eval mode."""
    engine = DIMEngine(model=model, info={"normalization": dict(normalization)}, device=device,
                       half=False)
    with contextlib.redirect_stdout(io.StringIO()):  # the solvers' chatter is not the log
        results = evaluate_folder(cfg.val_images, cfg.val_trimaps, cfg.val_alphas,  # type: ignore[arg-type]
                                  {"dim": engine}, limit=cfg.val_limit, warmup=False)
    if not results.images:
        first = results.failed[0][1] if results.failed else "no photo could be evaluated"
        raise DimStudioError(f"validation failed: {first}")
    mean = results.mean("dim")
    return {name: float(mean.metric(name)) for name in METRICS}
