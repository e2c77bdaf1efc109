"""One optimisation step, and what every training loop shares.

Used by the training loop (``trainer``) and the one-image fine-tune
(``finetune``): the autocast precision for a device, the step itself
(forward under autocast, the stage's loss in float32, backward through the
loss scaler, the optimizer), stop requests from Ctrl-C, and a digest of the
weights.
"""

from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..engines import device as _devices
from .config import ConfigError
from .losses import stage_loss

__all__ = ["StopRequests", "optimisation_step", "precision_for", "precision_name", "weights_digest"]


def precision_for(choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``choice`` on ``device`` (None: fp32)."""
    if choice == "fp32":
        return None
    if device.type == "cuda":
        if choice == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if choice == "bf16" else torch.float16
    if device.type == "cpu":
        if choice == "fp16":
            raise ConfigError("fp16 training needs a CUDA GPU; on the CPU use bf16 or fp32")
        if choice == "auto":
            # Emulated bf16 is slower than fp32: only where the CPU has it natively.
            return torch.bfloat16 if _devices.cpu_has_native_bf16() else None
        return torch.bfloat16
    if choice in ("bf16", "fp16"):
        raise ConfigError(f"mixed precision training is not supported on {device.type}; use fp32")
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def weights_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer, in state-dict order (replicas must agree)."""
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        h.update(key.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class StopRequests:
    """Ctrl-C and SIGTERM set a flag the loop checks between steps (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.requested = True

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def optimisation_step(
    net: nn.Module,
    batch: Mapping[str, torch.Tensor],
    stage: int,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Forward, the stage's loss, backward, update; returns (loss, terms, outputs).

    ``batch`` is on the model's device. Stage 1 runs without the refiner.
    """
    x = batch["input"]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    device_type = x.device.type
    with torch.autocast(device_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        outputs = net(x, refine=stage != 1)
    loss, terms = stage_loss(outputs, batch, stage)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss, terms, outputs
