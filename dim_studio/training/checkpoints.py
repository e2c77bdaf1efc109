"""A training run's output folder: weights, resumable state, the run's record.

``OUT/`` holds:

- ``last.safetensors`` and ``last.state.pt``: the latest weights (in the
  app's weights format, usable at once with ``--weights``) and the state a
  resume needs (step, optimizer, scheduler, loss scaler, RNG, sampler and
  hard-mode state). The two are written together or not at all
  (``atomic.staged_outputs``), so an interrupted write never pairs new
  weights with an old optimizer.
- ``best.safetensors``: the weights with the lowest validation SAD so far.
- ``run.json``: the effective configuration, so ``--resume`` needs nothing
  but ``--out``.
- ``log.csv``, ``tensorboard/`` (when tensorboard is installed),
  ``summary.json`` at the end.

The state file holds only tensors and plain values and is read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..atomic import atomic_output, staged_outputs
from ..errors import DimStudioError
from ..net.weights import WeightsWriteError, save_weights
from .config import TrainConfig

__all__ = [
    "BEST",
    "LAST",
    "LAST_STATE",
    "RUN_RECORD",
    "TrainingStateError",
    "load_state",
    "read_run_config",
    "save_checkpoint",
    "write_json",
]

LAST = "last.safetensors"
LAST_STATE = "last.state.pt"
BEST = "best.safetensors"
RUN_RECORD = "run.json"
STATE_FORMAT = 1


class TrainingStateError(DimStudioError):
    """A run's folder cannot be resumed (or would be overwritten); the message says why."""


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=str) + "\n"
    with atomic_output(path, WeightsWriteError) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_checkpoint(
    out: Path, model: nn.Module, metadata: Mapping[str, Any], state: Mapping[str, Any]
) -> Path:
    """Write ``last.safetensors`` and ``last.state.pt`` together, or neither."""
    with staged_outputs(WeightsWriteError):
        save_weights(out / LAST, model, metadata)
        with atomic_output(out / LAST_STATE, WeightsWriteError) as tmp:
            torch.save({"format": STATE_FORMAT, **state}, tmp)
    return out / LAST


def load_state(out: Path) -> dict[str, Any]:
    """The resumable state of the run in ``out``."""
    path = out / LAST_STATE
    if not path.is_file() or not (out / LAST).is_file():
        raise TrainingStateError(
            f"{out} holds no resumable run ({LAST} and {LAST_STATE} are written every "
            "--save-every steps and on Ctrl-C); start a new run without --resume"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: one line
        raise TrainingStateError(f"{path} cannot be read ({exc}); it is damaged or not a training state") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TrainingStateError(f"{path} is not a DIM Studio training state of format {STATE_FORMAT}")
    return state


def read_run_config(out: str | Path) -> TrainConfig:
    """The configuration a run in ``out`` was started with (for --resume)."""
    path = Path(out) / RUN_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return TrainConfig().updated(record["config"])
    except FileNotFoundError:
        raise TrainingStateError(f"{out} holds no training run ({RUN_RECORD} is missing)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingStateError(f"{path} cannot be read ({exc})") from None
