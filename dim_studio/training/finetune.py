"""Teach the network one photo: fine-tune on a single image and its correct alpha.

The seed's author noticed that Deep Image Matting can overfit a single hard
sample; a user who has corrected one photo can turn that into weights that
do better on it and on photos like it. ``finetune`` draws every training
sample from that one photo, as training does from a dataset:

- the photo's foreground and background colours are estimated from the
  alpha (``compose.estimate_layers``), so it can be recomposited exactly;
- each sample is a random crop (320, 480 or 640 pixels, or the photo's
  shorter side), resized to 320, flipped at random, with a random trimap
  from the alpha, or half the time the user's own trimap, over the photo's
  own background or a new one from ``backgrounds`` (resize first,
  composite after);
- the loss is the paper's: stage 1's (alpha and compositional) for a network
  without a refiner, stage 3's (the whole network) for one with.

Every ``evaluate_every`` steps the network mattes the whole photo through the
``dim`` engine, and the weights with the lowest SAD against the target alpha
so far are the ones kept. A **collapse** (the network answering one constant
everywhere, which a fresh network does at too high a learning rate) is
detected from the predictions' spread over the unknown pixels; the run then
goes back to the best weights with half the learning rate, up to three times.
A collapsed network is never the result: the kept weights are the best
measured ones, and the result says whether they beat the starting point.

Stopping (``cancel``, Ctrl-C) at any step keeps the best weights so far, and
the output file appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..compose import estimate_layers
from ..engines.dim import DIMEngine
from ..errors import DimStudioError
from ..images import read_image
from ..metrics import sad
from ..net.importers import sha256_file
from ..net.model import DEFAULT_NORMALIZATION, DIMConfig, random_dim
from ..net.weights import WeightsInfo, load_weights, save_weights
from ..trimap import trimap_from_alpha, validate_trimap
from .dataset import sample_tensors
from .samples import SampleOptions, make_sample
from .step import StopRequests, optimisation_step, precision_for, precision_name

__all__ = [
    "LR_FROM_SCRATCH",
    "LR_FROM_WEIGHTS",
    "FinetuneError",
    "FinetuneOptions",
    "FinetuneProgress",
    "FinetuneResult",
    "finetune",
    "evaluation_trimap",
]

#: Default learning rates (Adam), by start; see model/README.md for the measurements.
LR_FROM_SCRATCH = 3e-5
LR_FROM_WEIGHTS = 1e-5
DEFAULT_STEPS = 200

# Collapse: the predicted alpha's spread over the unknown pixels below this
# while the target's is above COLLAPSE_TARGET_STD, for COLLAPSE_STEPS steps.
COLLAPSE_STD = 1e-3
COLLAPSE_TARGET_STD = 0.05
COLLAPSE_STEPS = 8
# On the whole photo: a network whose answers over the unknown pixels spread
# less than this fraction of the target's is collapsed (a dead network's
# output varies a little with the padding, so it is not exactly constant).
COLLAPSE_SPREAD = 0.05
MAX_RECOVERIES = 3
# Band of the trimap made from the alpha to measure SAD when the user gave none.
EVALUATION_BAND = 10


class FinetuneError(DimStudioError):
    """A fine-tune cannot run as asked; the message says why."""


@dataclass(frozen=True)
class FinetuneOptions:
    steps: int | None = None  # None with minutes None: DEFAULT_STEPS
    minutes: float | None = None
    lr: float | None = None  # None: LR_FROM_SCRATCH or LR_FROM_WEIGHTS
    batch_size: int = 1
    seed: int = 0
    device: str | None = None
    precision: str = "auto"
    evaluate_every: int = 10
    user_trimap_share: float = 0.5
    sample: SampleOptions = SampleOptions()
    width: float = 1.0  # of a network started from scratch (narrow ones for tests)


@dataclass
class FinetuneProgress:
    step: int
    total: int | None  # None when the run is limited by time
    loss: float
    elapsed: float
    eta: float | None
    sad: float | None = None  # the latest SAD measured on the photo
    best_sad: float | None = None
    message: str | None = None


@dataclass
class FinetuneResult:
    out: Path
    steps: int
    seconds: float
    lr: float
    sad_before: float
    sad_after: float
    best_step: int
    cancelled: bool
    recoveries: int
    improved: bool
    precision: str
    device: str
    notes: list[str] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    sad_history: list[tuple[int, float]] = field(default_factory=list)


def evaluation_trimap(alpha: np.ndarray, trimap: np.ndarray | None) -> np.ndarray:
    """The trimap SAD is measured over: the user's, or a band of 10 pixels around the alpha's edge."""
    if trimap is not None:
        return trimap
    return trimap_from_alpha(alpha, np.random.default_rng(0), EVALUATION_BAND, EVALUATION_BAND)


def _array_sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


class _Photo:
    """The one photo's layers, targets and the batches drawn from it."""

    def __init__(self, image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None,
                 backgrounds: Sequence[Path], options: FinetuneOptions,
                 normalization: dict[str, Any]) -> None:
        self.image, self.alpha, self.trimap = image, alpha, trimap
        self.fg, self.bg = estimate_layers(image, alpha)
        self.backgrounds = list(backgrounds)
        self.options = options
        self.normalization = normalization
        self.eval_trimap = evaluation_trimap(alpha, trimap)
        unknown = self.eval_trimap == 128
        if not unknown.any():
            raise FinetuneError("the trimap has no unknown pixels, so there is nothing to learn")

    def batch(self, rng: np.random.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        items = []
        for _ in range(self.options.batch_size):
            bg = self.bg
            if self.backgrounds and rng.random() < 0.5:
                bg = read_image(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
            given = self.trimap if self.trimap is not None and rng.random() < self.options.user_trimap_share else None
            sample = make_sample(self.fg, self.alpha, bg, rng, self.options.sample, trimap=given)
            items.append(sample_tensors(sample, self.normalization))
        return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}

    def sad_of(self, model: nn.Module, device: torch.device) -> tuple[float, bool]:
        """(SAD on the photo, whether the network answers one constant over the unknown pixels)."""
        engine = DIMEngine(model=model, info={"normalization": self.normalization}, device=device, half=False)
        pred = engine.estimate(self.image, self.eval_trimap)
        model.train()
        unknown = self.eval_trimap == 128
        target = float(self.alpha[unknown].std())
        flat = bool(target > COLLAPSE_TARGET_STD and pred[unknown].std() < COLLAPSE_SPREAD * target)
        return float(sad(pred, self.alpha, self.eval_trimap)), flat


def _start_model(base: Path | None, width: float, seed: int) -> tuple[nn.Module, dict[str, Any], dict[str, Any], list[str]]:
    if base is None:
        model = random_dim(DIMConfig(refine=False, width=width), seed=seed).train()
        return model, dict(DEFAULT_NORMALIZATION), {"file": "none"}, [
            "no --weights: starting from He-initialised weights. A network from scratch needs thousands of "
            "steps to beat the classical engines (GPU work); tune trained weights when you have them"
        ]
    model, info = load_weights(base)
    record = {"file": base.name, "sha256": sha256_file(base)}
    return model.train(), dict(info.normalization), record, []


def _spread(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Std of the predicted and of the target alpha over the unknown pixels."""
    mask = batch["trimap"] == 128
    if not bool(mask.any()):
        return 1.0, 0.0
    pred = outputs["alpha"].detach().float()[mask]
    return float(pred.std()), float(batch["alpha"][mask].float().std())


def finetune(
    image: np.ndarray,
    alpha: np.ndarray,
    out: str | Path,
    *,
    trimap: np.ndarray | None = None,
    base: str | Path | None = None,
    backgrounds: Sequence[Path] = (),
    options: FinetuneOptions = FinetuneOptions(),
    image_name: str = "photo",
    image_sha256: str | None = None,
    progress: Callable[[FinetuneProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FinetuneResult:
    """Fine-tune ``base`` (or a fresh network) on one photo; write the best weights to ``out``.

    ``image_sha256`` is the photo file's (recorded in the output); without it
    the decoded pixels' hash is recorded.
    """
    out = Path(out)
    image = np.asarray(image, dtype=np.float32)
    alpha = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
    if alpha.shape != image.shape[:2]:
        raise FinetuneError(f"the alpha is {alpha.shape[1]}x{alpha.shape[0]} but the photo is "
                            f"{image.shape[1]}x{image.shape[0]}")
    if trimap is not None:
        validate_trimap(trimap, require_foreground=False)
    if options.steps is not None and options.minutes is not None:
        raise FinetuneError("give the steps or the minutes, not both")
    base_path = Path(base) if base is not None else None
    model, normalization, base_record, notes = _start_model(base_path, options.width, options.seed)
    stage = 3 if model.refine is not None else 1
    lr = options.lr if options.lr is not None else (LR_FROM_WEIGHTS if base_path else LR_FROM_SCRATCH)
    steps = options.steps if options.steps is not None else (None if options.minutes else DEFAULT_STEPS)
    deadline = options.minutes * 60.0 if options.minutes else None

    from ..engines.device import select_device

    device = select_device(options.device)
    amp_dtype = precision_for(options.precision, device)
    model = model.to(device).to(memory_format=torch.channels_last)
    photo = _Photo(image, alpha, trimap, backgrounds, options, normalization)
    rng = np.random.default_rng(options.seed)

    def report(step: int, loss: float, start: float, **extra: Any) -> None:
        if progress is None:
            return
        elapsed = time.perf_counter() - start
        if steps is not None:
            eta = elapsed / max(step, 1) * (steps - step) if step else None
        else:
            eta = max(0.0, deadline - elapsed) if deadline is not None else None
        progress(FinetuneProgress(step, steps, loss, elapsed, eta, **extra))

    start = time.perf_counter()
    report(0, math.nan, start, message="measuring the starting weights on the photo")
    sad_before, _ = photo.sad_of(model, device)
    best = {"sad": sad_before, "step": 0,
            "state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
    sad_history = [(0, sad_before)]
    losses: list[float] = []
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    flat_steps, recoveries, step, cancelled = 0, 0, 0, False

    def measure() -> float:
        """The SAD now; inf for broken (NaN) or collapsed (constant) weights, never kept as best.

        A constant answer can score better than a fresh network's noise, so
        without this check a collapsed network could be handed over as the
        best result.
        """
        try:
            value, flat = photo.sad_of(model, device)
        except DimStudioError:  # the engine refuses NaN output: the update broke the weights
            return math.inf
        sad_history.append((step, value))
        if flat:
            return math.inf
        if value < best["sad"]:
            best.update(sad=value, step=step,
                        state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        return value

    with StopRequests() as stop:
        try:
            while True:
                if steps is not None and step >= steps:
                    break
                if deadline is not None and time.perf_counter() - start >= deadline:
                    break
                if stop.requested or (cancel is not None and cancel()):
                    cancelled = True
                    break
                batch = photo.batch(rng, device)
                loss, _, outputs = optimisation_step(model, batch, stage, optimizer, scaler, amp_dtype, True)
                step += 1
                value = float(loss.detach())
                losses.append(value)
                pred_std, target_std = _spread(outputs, batch)
                flat_steps = flat_steps + 1 if (pred_std < COLLAPSE_STD and target_std > COLLAPSE_TARGET_STD) else 0
                latest = measure() if step % options.evaluate_every == 0 else None
                collapsed = not math.isfinite(value) or flat_steps >= COLLAPSE_STEPS or latest == math.inf
                if collapsed:
                    if recoveries >= MAX_RECOVERIES:
                        notes.append(f"the network collapsed again at step {step}; stopped with the best weights")
                        break
                    recoveries += 1
                    lr /= 2
                    model.load_state_dict(best["state"])
                    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
                    flat_steps = 0
                    notes.append(f"the network collapsed at step {step} (constant output): back to the best "
                                 f"weights (step {best['step']}) with the learning rate halved to {lr:.2g}")
                    report(step, value, start, best_sad=best["sad"], message=notes[-1])
                    continue
                report(step, value, start, sad=latest, best_sad=best["sad"])
        except KeyboardInterrupt:
            cancelled = True  # a second Ctrl-C: the current weights may be mid-update; the best are safe
    if not cancelled and sad_history[-1][0] != step:
        measure()  # a broken last update measures as inf and is not kept
    seconds = time.perf_counter() - start
    model.load_state_dict(best["state"])
    improved = best["step"] > 0
    if not improved:
        notes.append("no step beat the starting weights on this photo: the file holds the starting weights")
    provenance = {
        "kind": "finetune",
        "base": base_record,
        "image": image_name,
        "image_sha256": image_sha256 or _array_sha256(image),
        "steps": step,
        "best_step": best["step"],
        "lr": lr,
        "seconds": round(seconds, 1),
        "seed": options.seed,
        "recoveries": recoveries,
        "cancelled": cancelled,
    }
    metrics = {"photo": {"image": image_name, "SAD_before": sad_before, "SAD_after": best["sad"]}}
    save_weights(out, model, {"normalization": normalization, "provenance": provenance, "metrics": metrics})
    return FinetuneResult(
        out=out, steps=step, seconds=seconds, lr=lr, sad_before=sad_before, sad_after=best["sad"],
        best_step=best["step"], cancelled=cancelled, recoveries=recoveries, improved=improved,
        precision=precision_name(amp_dtype), device=str(device), notes=notes, losses=losses,
        sad_history=sad_history,
    )


def describe_tuned(info: WeightsInfo) -> str | None:
    """"tuned on doll.png, 300 steps, SAD 41.2 -> 6.3" for a fine-tuned file, else None."""
    prov = info.provenance
    if prov.get("kind") != "finetune":
        return None
    photo = (info.metrics or {}).get("photo") or {}
    text = f"tuned on {prov.get('image', 'a photo')}, {prov.get('steps', '?')} steps"
    before, after = photo.get("SAD_before"), photo.get("SAD_after")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        text += f", SAD {before:.1f} -> {after:.1f}"
    return text
