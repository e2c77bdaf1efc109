"""The training loop: the paper's three stages, validation, checkpoints, resume, torchrun.

``train(config)`` runs one stage for ``config.steps`` steps (counted from the
start of the run, so a resumed run stops at the same step):

- stage 1 trains the encoder-decoder with ``0.5 alpha + 0.5 compositional``
  loss (the refiner, if the weights have one, is frozen and unused);
- stage 2 trains the refinement stage alone with the alpha loss, everything
  else frozen;
- stage 3 trains everything with both (``losses.stage_loss``).

Adam, learning rate 1e-5 by default (the paper's). Mixed precision where the
device has it (bf16 or fp16 with loss scaling on CUDA, bf16 on CPUs with
native bf16), channels-last, cuDNN benchmark.

Stopping: Ctrl-C (SIGINT), SIGTERM or the ``cancel`` callback stop the run
at the next step boundary, never inside an update, and a resumable
checkpoint is written. Under torchrun the ranks agree on the step to stop at
(one small all-reduce per step), so none waits forever for the others. A
second Ctrl-C stops at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DimStudioError
from ..net.weights import save_weights
from .checkpoints import (
    BEST, LAST, LAST_STATE, RUN_RECORD, TrainingStateError, load_state, save_checkpoint, write_json,
)
from .config import ConfigError, TrainConfig
from .dataset import CompositionDataset, LossTracker, TrainSampler, make_loader
from .distributed import Dist, setup, teardown
from .initial import initial_model
from .logs import TrainLog
from .losses import per_sample_alpha_loss, unknown_mask
from .samples import SampleOptions
from .sources import find_training_data, read_hard_list
from .step import StopRequests, optimisation_step, precision_for, precision_name, weights_digest
from .validation import validate

__all__ = ["TrainProgress", "TrainResult", "TrainingError", "precision_for", "train", "weights_digest"]  # the last two re-exported from step


class TrainingError(DimStudioError):
    """Training cannot go on; the message says why and what was kept."""


@dataclass
class TrainProgress:
    """What the loop reports after each step (and while preparing, with ``message``)."""

    step: int
    total: int
    stage: int
    loss: float | None = None
    terms: dict[str, float] = field(default_factory=dict)
    lr: float | None = None
    images_per_s: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    message: str | None = None
    metrics: dict[str, float] | None = None


@dataclass
class TrainResult:
    out: Path
    stage: int
    steps: int
    interrupted: bool
    last: Path
    best: Path | None
    best_metrics: dict[str, float] | None
    first_loss: float | None
    final_loss: float | None
    seconds: float
    precision: str
    device: str
    world_size: int
    notes: list[str]
    rank_weights_sha256: list[str]


ProgressFn = Callable[[TrainProgress], None]


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Run (or resume) one training stage as ``config`` says; see the module docstring."""
    config.check()
    dist = setup(config.device)
    try:
        return _Run(config, dist, resume, progress, cancel).run()
    finally:
        teardown(dist)


class _Run:
    def __init__(self, config: TrainConfig, dist: Dist, resume: bool,
                 progress: ProgressFn | None, cancel: Callable[[], bool] | None) -> None:
        self.config = config
        self.dist = dist
        self.resume = resume
        self.progress = progress
        self.cancel = cancel
        self.out = Path(config.out)  # type: ignore[arg-type]
        self.notes: list[str] = []

    # ------------------------------------------------------------ helpers

    def _say(self, message: str) -> None:
        if self.progress is not None and self.dist.main:
            self.progress(TrainProgress(0, self.config.steps, self.config.stage, message=message))

    def _prepare_folder(self) -> dict[str, Any] | None:
        if self.resume:
            return load_state(self.out)
        if (self.out / LAST).exists() or (self.out / LAST_STATE).exists():
            raise TrainingStateError(
                f"{self.out} already holds a training run; continue it with --resume, or choose "
                "another --out (nothing was overwritten)"
            )
        if self.dist.main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrainingError(f"{self.out}: cannot create the output folder ({exc.strerror or exc})") from None
        self.dist.barrier()
        return None

    # ---------------------------------------------------------------- run

    def run(self) -> TrainResult:
        cfg, dist = self.config, self.dist
        state = self._prepare_folder()
        if state is not None and int(state.get("stage", cfg.stage)) != cfg.stage:
            raise TrainingStateError(
                f"the run in {self.out} is stage {state['stage']}; resume it as that stage, or start "
                f"stage {cfg.stage} in a new folder with --init {self.out / LAST}"
            )
        model, normalization, init_record, init_notes = initial_model(
            cfg, self.out, dist, resume_from=self.out / LAST if state is not None else None
        )
        self.notes.extend(init_notes)
        self._normalization = normalization
        hard = read_hard_list(cfg.hard_list) if cfg.hard_list else None
        # The main process estimates any photo layers first; the others then read its cache.
        if not dist.main:
            dist.barrier()
        data = find_training_data(
            cfg.data, cfg.backgrounds, per_foreground=cfg.backgrounds_per_fg,  # type: ignore[arg-type]
            cache=self.out / "layers", hard=hard, alphas=cfg.alphas, progress=self._say,
        )
        if dist.main:
            dist.barrier()
        self.notes.extend(data.notes)
        dataset = CompositionDataset(
            data, per_foreground=cfg.backgrounds_per_fg, seed=cfg.seed,
            options=SampleOptions(size=cfg.size, crop_sizes=tuple(cfg.crop_sizes),
                                  max_kernel=cfg.max_trimap_kernel),
            normalization=normalization,
        )
        sampler = TrainSampler(dataset, num_replicas=dist.world, rank=dist.rank, seed=cfg.seed)
        if sampler.num_samples < cfg.batch_size:
            raise ConfigError(
                f"the data make {len(dataset)} compositions ({sampler.num_samples} per process), fewer "
                f"than one batch of {cfg.batch_size}: raise backgrounds_per_fg or lower batch_size"
            )
        device = dist.device
        loader = make_loader(dataset, sampler, batch_size=cfg.batch_size, workers=cfg.workers,
                             prefetch=cfg.prefetch, pin_memory=device.type == "cuda")
        amp_dtype = precision_for(cfg.precision, device)
        model = self._place(model, device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        tracker = LossTracker(len(data.foregrounds))
        net: nn.Module = model
        if dist.active:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )

        step, epoch, epoch_step = 0, 0, 0
        best: dict[str, Any] = {"SAD": None, "step": None, "metrics": None}
        elapsed_before = 0.0
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            tracker.load_state_dict(state["tracker"])
            step, epoch, epoch_step = int(state["step"]), int(state["epoch"]), int(state["epoch_step"])
            best = dict(state.get("best") or best)
            elapsed_before = float(state.get("elapsed", 0.0))
            torch.set_rng_state(state["torch_rng"])
            if step >= cfg.steps:
                self.notes.append(f"the run is already at step {step} of {cfg.steps}: raise --steps to train on")
        weights_snapshot = state.get("sampler_weights") if state is not None else None
        validated_at: int | None = state.get("validated_at") if state is not None else None

        log = TrainLog(self.out, resume_step=step if state is not None else None) if dist.main else None
        if log is not None and log.note:
            self.notes.append(log.note)
        if dist.main:
            self._write_record(init_record, data, amp_dtype)

        record = {
            "init": init_record, "data": str(cfg.data), "layout": data.layout,
            "precision": precision_name(amp_dtype), "device": str(device), "world_size": dist.world,
        }
        first_loss: float | None = state.get("first_loss") if state is not None else None
        last_loss: float | None = None
        window: list[dict[str, float]] = []
        interrupted = False
        start = time.perf_counter()
        session_start_step = step
        tick = start

        def epoch_batches() -> Iterator[dict[str, torch.Tensor]]:
            nonlocal epoch, epoch_step, weights_snapshot
            while True:
                sampler.set_epoch(epoch)
                if cfg.hard_weighting:
                    if weights_snapshot is None:
                        weights_snapshot = tracker.weights()
                    sampler.set_weights(weights_snapshot, draws=cfg.hard_refresh_steps * cfg.batch_size * dist.world)
                sampler.set_skip(epoch_step * cfg.batch_size)
                yield from loader
                epoch, epoch_step = epoch + 1, 0
                weights_snapshot = None

        def save() -> None:
            if not dist.main:
                return
            metadata = self._metadata(record, step, last_loss, best)
            save_checkpoint(self.out, model, metadata, {
                "stage": cfg.stage, "step": step, "epoch": epoch, "epoch_step": epoch_step,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "tracker": tracker.state_dict(), "sampler_weights": weights_snapshot,
                "torch_rng": torch.get_rng_state(), "best": best, "first_loss": first_loss,
                "validated_at": validated_at,
                "elapsed": elapsed_before + time.perf_counter() - start,
            })

        def run_validation() -> None:
            nonlocal best, validated_at
            if not cfg.validates or validated_at == step:
                return
            validated_at = step
            if dist.main:
                self._say(f"validating at step {step}")
                metrics = validate(model, normalization, cfg, device)
                model.train()
                if log is not None:
                    log.write(step, {"stage": cfg.stage, **metrics})
                if best["SAD"] is None or metrics["SAD"] < best["SAD"]:
                    best = {"SAD": metrics["SAD"], "step": step, "metrics": metrics}
                    save_weights(self.out / BEST, model, self._metadata(record, step, last_loss, best))
                if self.progress is not None:
                    self.progress(TrainProgress(step, cfg.steps, cfg.stage, last_loss, metrics=metrics,
                                                message=f"validation at step {step}: SAD {metrics['SAD']:.2f}"))
            dist.barrier()

        batches = epoch_batches()
        try:
            with StopRequests() as stop:
                model.train()
                while step < cfg.steps:
                    stop_now, bad = dist.any([stop.requested or bool(self.cancel and self.cancel()), False])
                    if stop_now:
                        interrupted = True
                        break
                    batch = next(batches)
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    loss, terms, outputs = optimisation_step(
                        net, batch, cfg.stage, optimizer, scaler, amp_dtype, cfg.channels_last)
                    scheduler.step()
                    step += 1
                    epoch_step += 1
                    if cfg.hard_weighting:
                        key = "refined" if cfg.stage == 2 else "stage1"
                        per = per_sample_alpha_loss(outputs[key], batch["alpha"], unknown_mask(batch["trimap"]))
                        tracker.update(dist.gather(batch["fg_index"]), dist.gather(per))
                    value = float(loss.detach())
                    _, bad = dist.any([False, not math.isfinite(value)])
                    if bad:
                        raise TrainingError(
                            f"the loss became {value} at step {step}: the training diverged (try a lower "
                            f"--lr than {cfg.lr:g}); the last checkpoint ({self.out / LAST}) is kept"
                        )
                    window.append({"loss": value, **{k: float(v) for k, v in terms.items()}})
                    if first_loss is None:
                        first_loss = value
                    last_loss = value
                    if step % cfg.log_every == 0 or step == cfg.steps:
                        now = time.perf_counter()
                        means = dist.mean(torch.tensor([[w[k] for k in window[0]] for w in window]).mean(0))
                        logged = dict(zip(window[0], means.tolist()))
                        rate = len(window) * cfg.batch_size * dist.world / max(now - tick, 1e-9)
                        lr = scheduler.get_last_lr()[0]
                        if log is not None:
                            log.write(step, {"stage": cfg.stage, **logged, "lr": lr, "images_per_s": rate})
                        window, tick = [], now
                        last_loss = logged["loss"]
                        if self.progress is not None and dist.main:
                            done = step - session_start_step
                            spent = now - start
                            eta = spent / done * (cfg.steps - step) if done else None
                            self.progress(TrainProgress(
                                step, cfg.steps, cfg.stage, logged["loss"],
                                {k: v for k, v in logged.items() if k != "loss"}, lr, rate,
                                elapsed_before + spent, eta,
                            ))
                    if cfg.validate_every and step % cfg.validate_every == 0 and step < cfg.steps:
                        run_validation()
                    if step % cfg.save_every == 0 and step < cfg.steps:
                        save()
        except KeyboardInterrupt:
            interrupted = True  # a second Ctrl-C: the model is between steps or mid-update
        if not interrupted:
            run_validation()
        if step > session_start_step or validated_at == step or state is None:
            save()  # a resumed run that was already finished leaves its files as they were
        digests = dist.gather_objects(weights_digest(model))
        seconds = elapsed_before + time.perf_counter() - start
        if log is not None:
            log.close()
        result = TrainResult(
            out=self.out, stage=cfg.stage, steps=step, interrupted=interrupted, last=self.out / LAST,
            best=self.out / BEST if best["SAD"] is not None else None, best_metrics=best["metrics"],
            first_loss=first_loss, final_loss=last_loss, seconds=seconds,
            precision=precision_name(amp_dtype), device=str(device), world_size=dist.world,
            notes=self.notes, rank_weights_sha256=digests,
        )
        if dist.main:
            summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(result).items()}
            summary["replicas_agree"] = len(set(digests)) == 1
            write_json(self.out / "summary.json", summary)
        return result

    # ------------------------------------------------------------- pieces

    def _lr_factor(self, step: int) -> float:
        cfg = self.config
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "cosine":
            span = max(1, cfg.steps - cfg.warmup_steps)
            done = min(1.0, (step - cfg.warmup_steps) / span)
            return 0.5 * (1.0 + math.cos(math.pi * done))
        return 1.0

    def _place(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Freeze what this stage does not train, move to the device, pick fast kernels."""
        stage = self.config.stage
        for name, param in model.named_parameters():
            is_refiner = name.startswith("refine.")
            param.requires_grad_(is_refiner if stage == 2 else (not is_refiner if stage == 1 else True))
        model = model.to(device)
        if self.config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return model.train()

    def _metadata(self, record: dict[str, Any], step: int, loss: float | None, best: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        provenance = {
            "kind": "training", "stage": cfg.stage, "steps": step, **record,
            "config": cfg.to_dict(),
        }
        metrics: dict[str, Any] = {}
        if loss is not None:
            metrics["train_loss"] = loss
        if best.get("metrics"):
            metrics["validation"] = {**best["metrics"], "step": best["step"]}
        return {"normalization": self._normalization, "provenance": provenance, "metrics": metrics}

    def _write_record(self, init_record: dict[str, Any], data: Any, amp_dtype: torch.dtype | None) -> None:
        write_json(self.out / RUN_RECORD, {
            "config": self.config.to_dict(),
            "init": init_record,
            "layout": data.layout,
            "foregrounds": len(data.foregrounds),
            "backgrounds": len(data.backgrounds),
            "precision": precision_name(amp_dtype),
            "device": str(self.dist.device),
            "world_size": self.dist.world,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })

