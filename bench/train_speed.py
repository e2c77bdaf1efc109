"""Training speed: images/s of the training step per precision, and of the data loader alone.

    python bench/train_speed.py [--device auto|cpu|cuda] [--stage 1|2|3] [--batch N]
        [--steps N] [--warmup N] [--width W] [--precisions fp32,bf16,fp16]
        [--no-loader] [--loader-batches N] [--workers N] [--no-fit] [--time-budget S]
        [--threads N]

Quick try on a laptop: ``--width 0.25 --steps 2 --warmup 1 --loader-batches 4``.

Tables:

1. The training step alone, exactly as ``dim_studio.training.trainer`` runs it
   (channels-last, autocast with the dtype ``precision_for`` gives for each
   precision, ``stage_loss``, Adam over the stage's trainable parameters,
   GradScaler for fp16, ``float(loss)`` each step), on a fixed random batch of
   320x320 samples already on the device, so the loader is not in it. Every
   precision has its own model and optimizer and the timed steps are
   interleaved (fp32, bf16, ..., fp32, bf16, ...), so a change in the
   machine's load hits every precision alike (``--time-budget`` stops them
   early on a slow CPU). Columns: images/s (batch / median step), seconds per
   step (median, min-max), and the ratio to fp32. On the CPU: fp32, and bf16
   where the CPU has it natively (AVX512-BF16 or AMX; the header says, and
   what ``precision="auto"`` picks). Without it bf16 is emulated, several
   times slower than fp32 (a full-network step takes minutes on 2 cores), so
   it is measured only when asked: ``--precisions fp32,bf16``. On CUDA: fp32,
   bf16 where the GPU has it, and fp16, with the GPU's utilisation during each
   precision's timed steps (pynvml through ``torch.cuda.utilization``, else
   ``nvidia-smi``) and the step's transient peak memory.
2. On CUDA only: the largest batch of 320x320 samples whose training step fits
   (the ``auto`` precision unless ``--fit-precision``): the batch doubles until
   ``torch.cuda.OutOfMemoryError``, then bisects; peak memory per try.
3. The loader alone: a synthetic Composition-1k-layout folder (soft-edged
   foregrounds of ``--fg-size`` pixels with hair strands, COCO-sized JPEG
   backgrounds) is written to a temporary folder and read through
   ``find_training_data``, ``CompositionDataset`` (320 px, the paper's 320/480/640
   crops), ``TrainSampler`` and ``make_loader``, with ``--workers`` processes and
   with none; images/s after the first batch (steady) and including the
   workers' start, and whether the loader keeps up with each precision's step
   (loader images/s / step images/s; 1 or more keeps up). On the CPU the
   workers and the step share the cores, so a real run is slower than both.

Last, an estimate for the model card: seconds (and hours) per 1000 steps at
the measured rate and batch, for each precision, and the same limited by the
loader where it is the slower.

Random weights (He-initialised): the timings do not depend on the weights.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from dim_studio.engines.device import describe_device, select_device  # noqa: E402
from dim_studio.engines.dim import is_out_of_memory  # noqa: E402
from dim_studio.net.model import DIMConfig, random_dim  # noqa: E402
from dim_studio.training.config import ConfigError  # noqa: E402
from dim_studio.training.dataset import CompositionDataset, TrainSampler, make_loader  # noqa: E402
from dim_studio.training.losses import stage_loss  # noqa: E402
from dim_studio.training.samples import CROP_SIZES, OUTPUT_SIZE, SampleOptions  # noqa: E402
from dim_studio.training.sources import find_training_data  # noqa: E402
from dim_studio.training.trainer import precision_for  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dim_speed import cpu_name, table  # noqa: E402  (the same machine line and table layout)

SIZE = OUTPUT_SIZE  # 320, the paper's training size


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def native_cpu_bf16() -> tuple[bool, bool]:
    avx512_bf16 = bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return avx512_bf16, amx


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def header(device: torch.device, args: argparse.Namespace) -> None:
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    avx512_bf16, amx = native_cpu_bf16()
    auto_cpu = precision_name(precision_for("auto", torch.device("cpu")))
    print(f"machine: {platform.system()} {platform.machine()}, {cpu_name()}, {usable_cores()} cores usable{mem}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"CPU bf16: avx512_bf16 {'yes' if avx512_bf16 else 'no'}, AMX {'yes' if amx else 'no'} -> "
          f"{'native' if avx512_bf16 or amx else 'emulated (expect bf16 slower than fp32)'}; "
          f"precision 'auto' on the CPU trains in {auto_cpu}")
    line = f"device: {describe_device(device)}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        line += (f", {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}, "
                 f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}; precision 'auto' trains in "
                 f"{precision_name(precision_for('auto', device))}")
    print(line)
    print(f"network: {DIMConfig(width=args.width).describe()}, stage {args.stage}, "
          f"{args.batch} x {SIZE}x{SIZE} per step, random He-init weights\n")


# ---------------------------------------------------------------------------
# The training step (as dim_studio.training.trainer runs it)
# ---------------------------------------------------------------------------


def random_batch(batch: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch like the loader's: normalised input, image/fg/bg/alpha in [0, 1], a uint8 trimap
    with a band of unknown pixels across the middle (0 above, 255 below)."""
    g = torch.Generator(device=device).manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, device=device)

    n, s = batch, SIZE
    trimap = torch.full((n, 1, s, s), 128, dtype=torch.uint8, device=device)
    trimap[:, :, : int(s * 0.3)] = 0
    trimap[:, :, int(s * 0.7):] = 255
    x = torch.randn(n, 4, s, s, generator=g, device=device)
    x[:, 3:] = trimap.float() / 255.0
    return {"input": x, "image": rand(n, 3, s, s), "fg": rand(n, 3, s, s), "bg": rand(n, 3, s, s),
            "alpha": rand(n, 1, s, s), "trimap": trimap}


def place_model(args: argparse.Namespace, device: torch.device, seed: int = 0) -> nn.Module:
    """The trainer's ``_place``: freeze what the stage does not train, device, channels-last."""
    model = random_dim(DIMConfig(width=args.width), seed=seed)
    for name, param in model.named_parameters():
        is_refiner = name.startswith("refine.")
        param.requires_grad_(is_refiner if args.stage == 2 else (not is_refiner if args.stage == 1 else True))
    model = model.to(device).to(memory_format=torch.channels_last)
    return model.train()


class Trainer:
    """One precision's model, optimizer and scaler, and its step."""

    def __init__(self, args: argparse.Namespace, device: torch.device, name: str) -> None:
        self.name = name
        self.device = device
        self.stage = args.stage
        self.amp_dtype = precision_for(name, device)  # may raise ConfigError (fp16 on the CPU)
        self.model = place_model(args, device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=1e-5)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.times: list[float] = []
        self.intervals: list[tuple[float, float]] = []
        self.losses: list[float] = []
        self.peak_gib = 0.0

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        x = batch["input"].contiguous(memory_format=torch.channels_last)
        dtype = self.amp_dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = self.model(x, refine=self.stage != 1)
        loss, _ = stage_loss(outputs, batch, self.stage)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())  # the trainer reads the loss every step (a sync)

    def timed_step(self, batch: dict[str, torch.Tensor]) -> None:
        cuda = self.device.type == "cuda"
        if cuda:
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        sync(self.device)
        start = time.perf_counter()
        value = self.step(batch)
        sync(self.device)
        end = time.perf_counter()
        self.times.append(end - start)
        self.intervals.append((start, end))
        self.losses.append(value)
        if cuda:
            self.peak_gib = max(self.peak_gib, (torch.cuda.max_memory_allocated(self.device) - base) / 2**30)

    def images_per_s(self, batch: int) -> float:
        """From the median step: robust to one step slowed by the machine's other work."""
        return batch / statistics.median(self.times)


class UtilisationPoller:
    """Samples the GPU's utilisation (%) in a background thread: torch.cuda.utilization
    (needs pynvml), else nvidia-smi; ``source`` is None when neither works."""

    def __init__(self, device: torch.device, period: float = 0.1) -> None:
        self.device = device
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.source: str | None = None
        self._read = None
        try:
            torch.cuda.utilization(device)
            self.source, self._read = "pynvml", lambda: float(torch.cuda.utilization(device))
        except Exception:  # noqa: BLE001 - pynvml missing or no NVML
            smi = shutil.which("nvidia-smi")
            if smi is not None:
                cmd = [smi, f"--id={self._smi_id()}", "--query-gpu=utilization.gpu",
                       "--format=csv,noheader,nounits"]

                def read() -> float:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=True)
                    return float(out.stdout.strip().splitlines()[0])

                try:
                    read()
                    self.source, self._read = "nvidia-smi", read
                    self.period = max(period, 0.2)
                except Exception:  # noqa: BLE001
                    pass

    def _smi_id(self) -> str:
        """nvidia-smi's id of this device (it ignores CUDA_VISIBLE_DEVICES, torch does not)."""
        index = self.device.index or 0
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        return ids[index] if index < len(ids) else str(index)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._read()  # type: ignore[misc]
                self.samples.append((time.perf_counter(), value))
            except Exception:  # noqa: BLE001
                pass
            self._stop.wait(self.period)

    def __enter__(self) -> UtilisationPoller:
        if self._read is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def during(self, intervals: list[tuple[float, float]]) -> str:
        if self.source is None:
            return "unavailable"
        values = [v for t, v in self.samples if any(a <= t <= b for a, b in intervals)]
        if not values:
            return "no sample"
        return f"{statistics.mean(values):.0f}% (max {max(values):.0f}, n={len(values)})"


def bench_steps(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    print(f"1. training step alone (stage {args.stage}, batch {args.batch} on the device, "
          f"{args.warmup} warm-up + {args.steps} timed steps per precision, interleaved)", flush=True)
    trainers: list[Trainer] = []
    skipped: list[str] = []
    for name in args.precisions:
        try:
            trainers.append(Trainer(args, device, name))
        except ConfigError as exc:
            skipped.append(f"{name}: {exc}")
    if not trainers:
        print("   no precision to run\n")
        return {}
    batch = random_batch(args.batch, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the trainer does
    if args.warmup:
        spent = []
        for t in trainers:  # warm-up (and cuDNN autotuning), not timed
            t0 = time.perf_counter()
            for _ in range(args.warmup):
                t.step(batch)
            sync(device)
            spent.append(f"{t.name} {time.perf_counter() - t0:.1f} s")
        print(f"   warm-up: {', '.join(spent)}", flush=True)
    poller = UtilisationPoller(device) if device.type == "cuda" else None
    budget_note = None
    t0 = time.perf_counter()
    with poller or _Null():
        for i in range(args.steps):
            for t in trainers:
                t.timed_step(batch)
            print(f"   step {i + 1}/{args.steps}: "
                  + ", ".join(f"{t.name} {t.times[-1]:.2f} s" for t in trainers), flush=True)
            spent = time.perf_counter() - t0
            if args.time_budget and i + 1 < args.steps and spent * (i + 2) / (i + 1) > args.time_budget:
                budget_note = (f"stopped after {i + 1} of {args.steps} timed steps per precision: another "
                               f"round would pass --time-budget {args.time_budget:g} s ({spent:.0f} s so far)")
                break
    print()
    rates = {t.name: t.images_per_s(args.batch) for t in trainers}
    ref = rates.get("fp32")
    rows = []
    for t in trainers:
        row = [t.name, precision_name(t.amp_dtype) if t.amp_dtype else "off", f"{rates[t.name]:.2f}",
               f"{statistics.median(t.times):.3f}", f"{min(t.times):.2f}-{max(t.times):.2f}",
               f"{rates[t.name] / ref:.2f}" if ref else "-"]
        if device.type == "cuda":
            row += [f"{t.peak_gib:.2f}", poller.during(t.intervals) if poller else "unavailable"]
        finite = all(math.isfinite(v) for v in t.losses)
        row.append("yes" if finite else "NO")
        rows.append(row)
    head = ["precision", "autocast", "images/s", "s/step (median)", "min-max s", "vs fp32"]
    if device.type == "cuda":
        head += ["step peak GiB", "GPU utilisation"]
    head.append("loss finite")
    table(head, rows)
    print(f"   images/s = batch / median step time; {len(trainers[0].times)} timed steps each")
    if budget_note:
        print(f"   {budget_note}")
    if device.type == "cuda" and poller is not None and poller.source:
        print(f"   GPU utilisation from {poller.source}, sampled every {poller.period:.1f} s during the "
              "timed steps; step peak GiB: allocated above the resident models during one step")
    if device.type == "cpu":
        avx512_bf16, amx = native_cpu_bf16()
        if "bf16" in rates and ref and not (avx512_bf16 or amx):
            print(f"   this CPU has no native bf16 (no AVX512-BF16, no AMX): bf16 runs emulated at "
                  f"{rates['bf16'] / ref:.2f}x fp32's speed, so precision 'auto' trains in fp32 here")
    for s in skipped:
        print(f"   skipped {s}")
    if getattr(args, "bf16_note", None):
        print(f"   {args.bf16_note}")
    print()
    t = None  # the loops' last Trainer: free every model before the next table
    del trainers, batch, t
    release(device)
    return rates


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# ---------------------------------------------------------------------------
# CUDA: the largest batch that fits
# ---------------------------------------------------------------------------


def bench_fit(args: argparse.Namespace, device: torch.device) -> None:
    name = args.fit_precision
    try:
        dtype = precision_for(name, device)
    except ConfigError as exc:
        print(f"2. largest batch: skipped ({exc})\n")
        return
    print(f"2. largest batch of {SIZE}x{SIZE} whose training step fits ({name} -> {precision_name(dtype)}, "
          f"stage {args.stage}, one model with its Adam state, cuDNN benchmark on)", flush=True)
    trainer = Trainer(args, device, name)
    torch.backends.cudnn.benchmark = True
    tried: dict[int, tuple[bool, float, float]] = {}

    def fits(n: int) -> bool:
        release(device)
        torch.cuda.reset_peak_memory_stats(device)
        batch = None
        try:
            batch = random_batch(n, device)
            trainer.step(batch)  # first run of a shape (autotunes)
            sync(device)
            start = time.perf_counter()
            trainer.step(batch)
            sync(device)
            took = time.perf_counter() - start
            tried[n] = (True, torch.cuda.max_memory_allocated(device) / 2**30, n / took)
            ok = True
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
            tried[n] = (False, torch.cuda.max_memory_allocated(device) / 2**30, 0.0)
            ok = False
        del batch
        trainer.optimizer.zero_grad(set_to_none=True)
        release(device)
        print(f"   batch {n}: {'fits' if ok else 'OOM'} (peak {tried[n][1]:.1f} GiB)", flush=True)
        return ok

    lo, hi = 0, None
    n = max(1, args.batch)
    while n <= args.fit_max:
        if fits(n):
            lo, n = n, n * 2
        else:
            hi = n
            break
    if hi is not None:
        while hi - lo > max(1, lo // 32):  # to ~3 %
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
    rows = [[str(n), "fits" if ok else "OOM", f"{peak:.2f}", f"{rate:.0f}" if ok else "-"]
            for n, (ok, peak, rate) in sorted(tried.items())]
    table(["batch", "result", "peak GiB", "images/s (2nd step)"], rows)
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    if lo == 0:
        print(f"   not even batch {max(1, args.batch)} fits on {total:.0f} GiB\n")
    elif hi is None:
        print(f"   batch {lo} fits (peak {tried[lo][1]:.1f} of {total:.0f} GiB); stopped at --fit-max "
              f"{args.fit_max}\n")
    else:
        print(f"   largest batch that fits: {lo} (peak {tried[lo][1]:.1f} of {total:.0f} GiB); "
              f"{hi} does not\n")
    trainer = None  # frees its model and Adam state before the next measurement
    release(device)


# ---------------------------------------------------------------------------
# The loader alone
# ---------------------------------------------------------------------------


def synthetic_foreground(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(fg BGR uint8, alpha uint8): a textured blob with a soft edge and thin hair strands."""
    rng = np.random.default_rng(seed)
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6)
    radius = size * rng.uniform(0.25, 0.35)
    dist = np.hypot((yy - cy) * rng.uniform(0.8, 1.2), xx - cx)
    alpha = np.clip((radius - dist) / (size / 100) + 0.5, 0.0, 1.0)  # a ~8 px soft edge at 800 px
    strands = np.zeros((h, w), np.float32)
    for _ in range(40):
        angle = rng.uniform(0, 2 * np.pi)
        length = radius * rng.uniform(0.2, 0.5)
        x0, y0 = cx + np.cos(angle) * radius * 0.95, cy + np.sin(angle) * radius * 0.95
        x1, y1 = x0 + np.cos(angle) * length, y0 + np.sin(angle) * length
        cv2.line(strands, (int(x0), int(y0)), (int(x1), int(y1)), float(rng.uniform(0.3, 0.8)),
                 thickness=int(rng.integers(1, 4)), lineType=cv2.LINE_AA)
    alpha = np.maximum(alpha, strands)
    base = rng.uniform(0.2, 0.9, size=3).astype(np.float32)
    shade = 0.15 * np.sin(xx / rng.uniform(5, 15))[..., None] * np.cos(yy / rng.uniform(5, 15))[..., None]
    noise = rng.normal(0, 0.03, size=(h, w, 3)).astype(np.float32)
    fg = np.clip(base[None, None, :] + shade + noise, 0.0, 1.0)
    return (fg * 255 + 0.5).astype(np.uint8), (alpha * 255 + 0.5).astype(np.uint8)


def synthetic_background(seed: int, shape: tuple[int, int] = (480, 640)) -> np.ndarray:
    """BGR uint8, COCO-sized: a colour ramp with stripes and noise."""
    rng = np.random.default_rng(1000 + seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(0.0, 1.0, size=(2, 3)).astype(np.float32)
    ramp = (xx / w)[..., None] * a + (yy / h)[..., None] * b
    stripes = 0.1 * np.sign(np.sin(xx / rng.uniform(4, 12)))[..., None]
    noise = rng.normal(0, 0.04, size=(h, w, 3)).astype(np.float32)
    img = np.clip(0.5 * ramp + 0.25 + stripes + noise, 0.0, 1.0)
    return (img * 255 + 0.5).astype(np.uint8)


def write_synthetic_data(root: Path, foregrounds: int, backgrounds: int, fg_size: int) -> tuple[Path, Path]:
    """A Composition-1k-layout folder (PNG foregrounds and alphas) and a folder of JPEG backgrounds."""
    base = root / "comp1k" / "Training_set"
    folder = base / "Adobe-licensed images"
    (folder / "fg").mkdir(parents=True)
    (folder / "alpha").mkdir(parents=True)
    names = []
    for i in range(foregrounds):
        fg, alpha = synthetic_foreground(i, fg_size)
        name = f"fg{i:02d}.png"
        cv2.imwrite(str(folder / "fg" / name), fg)
        cv2.imwrite(str(folder / "alpha" / name), alpha)
        names.append(name)
    (base / "training_fg_names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    bg_dir = root / "backgrounds"
    bg_dir.mkdir()
    for j in range(backgrounds):
        cv2.imwrite(str(bg_dir / f"bg{j:03d}.jpg"), synthetic_background(j), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root / "comp1k", bg_dir


def time_loader(dataset: CompositionDataset, batch: int, batches: int, workers: int,
                pin: bool) -> dict[str, float]:
    sampler = TrainSampler(dataset, seed=0)
    sampler.set_epoch(0)
    loader = make_loader(dataset, sampler, batch_size=batch, workers=workers, pin_memory=pin)
    start = time.perf_counter()
    it = iter(loader)
    stamps = []
    for _ in range(batches):
        next(it)
        stamps.append(time.perf_counter())
    total = stamps[-1] - start
    out = {"first": stamps[0] - start, "overall": batches * batch / total}
    out["steady"] = (batches - 1) * batch / (stamps[-1] - stamps[0]) if batches > 1 else out["overall"]
    del it, loader
    gc.collect()
    return out


def bench_loader(args: argparse.Namespace, device: torch.device, rates: dict[str, float]) -> dict[str, float]:
    batches = max(1, args.loader_batches)
    fgs = args.loader_foregrounds
    per_fg = max(2, math.ceil((batches + 1) * args.batch / fgs))
    print(f"3. loader alone: {batches} batches of {args.batch}, {SIZE} px from crops of "
          f"{'/'.join(map(str, CROP_SIZES))}, {fgs} synthetic {args.fg_size}x{args.fg_size} PNG foregrounds "
          f"x {per_fg} backgrounds each (640x480 JPEG)", flush=True)
    with tempfile.TemporaryDirectory(prefix="dim-train-speed-") as tmp:
        t = time.perf_counter()
        data_root, bg_dir = write_synthetic_data(Path(tmp), fgs, args.loader_backgrounds, args.fg_size)
        print(f"   synthetic data written in {time.perf_counter() - t:.1f} s", flush=True)
        data = find_training_data(data_root, bg_dir, per_foreground=per_fg, cache=Path(tmp) / "layers")
        dataset = CompositionDataset(data, per_foreground=per_fg, seed=0,
                                     options=SampleOptions(size=SIZE, crop_sizes=CROP_SIZES))
        results = {}
        for workers in dict.fromkeys([args.workers, 0]):
            results[workers] = time_loader(dataset, args.batch, batches, workers, device.type == "cuda")
            r = results[workers]
            print(f"   workers {workers}: {r['steady']:.1f} images/s", flush=True)
    print()
    rows = [[str(w), f"{r['first']:.2f}", f"{r['steady']:.1f}", f"{1000 / r['steady']:.0f}",
             f"{r['overall']:.1f}"] for w, r in results.items()]
    table(["workers", "first batch s", "images/s (steady)", "ms/image", "images/s (incl. start)"], rows)
    print("   steady: from the first batch to the last; ms/image is wall time per image "
          "(with 0 workers: one sample's cost in this process)")
    loader_rate = results[args.workers]["steady"]
    if rates:
        parts = [f"{name} {loader_rate / rate:.1f}x ({'keeps up' if loader_rate >= rate else 'the loader is the bottleneck'})"
                 for name, rate in rates.items()]
        print(f"   loader with {args.workers} workers / training step, images/s: " + ", ".join(parts))
        if device.type == "cpu":
            print("   (on the CPU the workers and the step share the cores: a real run is slower than either)")
    print()
    return {"rate": loader_rate}


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    ap.add_argument("--stage", type=int, choices=(1, 2, 3), default=1, help="training stage (default 1)")
    ap.add_argument("--batch", type=int, default=None, help="samples per step (default 2 on the CPU, 16 on CUDA)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per precision (default 3 CPU, 20 CUDA)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per precision (default 1 CPU, 5 CUDA)")
    ap.add_argument("--width", type=float, default=1.0,
                    help="DIMConfig width (default 1, the paper's network; e.g. 0.25 for a quick try)")
    ap.add_argument("--precisions", default=None,
                    help="comma list of fp32, bf16, fp16 (default on the CPU: fp32, and bf16 where "
                         "the CPU has it natively; on CUDA fp32,bf16,fp16, bf16 where the GPU has it)")
    ap.add_argument("--no-loader", action="store_true", help="skip the loader table")
    ap.add_argument("--loader-batches", type=int, default=16, help="batches the loader makes (default 16)")
    ap.add_argument("--workers", type=int, default=None,
                    help=f"loader worker processes (default: the usable cores, {usable_cores()}, up to 8); "
                         "0 is always measured too")
    ap.add_argument("--loader-foregrounds", type=int, default=4, help="synthetic foregrounds (default 4)")
    ap.add_argument("--loader-backgrounds", type=int, default=6, help="synthetic backgrounds (default 6)")
    ap.add_argument("--fg-size", type=int, default=800, help="synthetic foreground side in px (default 800)")
    ap.add_argument("--no-fit", action="store_true", help="CUDA: skip the largest-batch search")
    ap.add_argument("--fit-precision", default="auto", help="CUDA: precision of the largest-batch search")
    ap.add_argument("--fit-max", type=int, default=1024, help="CUDA: stop the search at this batch")
    ap.add_argument("--time-budget", type=float, default=None, metavar="S",
                    help="skip the timed rounds (one step per precision) that would end past S "
                         "seconds (default 120 on the CPU, none on CUDA; 0: none); at least one runs")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if device.type not in ("cpu", "cuda"):
        ap.error(f"{device.type}: this benchmark runs on the CPU or CUDA (mixed-precision training "
                 "is CUDA/CPU only)")
    cuda = device.type == "cuda"
    if args.batch is None:
        args.batch = 16 if cuda else 2
    if args.steps is None:
        args.steps = 20 if cuda else 3
    if args.warmup is None:
        args.warmup = 5 if cuda else 1
    if args.time_budget is None:
        args.time_budget = 0 if cuda else 120
    if args.workers is None:
        args.workers = min(8, usable_cores())
    if args.precisions is None:
        if cuda:
            args.precisions = ["fp32"] + (["bf16"] if torch.cuda.is_bf16_supported() else []) + ["fp16"]
        elif any(native_cpu_bf16()):
            args.precisions = ["fp32", "bf16"]
        else:
            args.precisions = ["fp32"]
            args.bf16_note = (
                "bf16 not measured by default: this CPU has no native bf16 (no AVX512-BF16, no AMX), so "
                "bf16 autocast is emulated, several times slower than fp32 (a full-network step can take "
                "minutes), and precision 'auto' trains in fp32 here; measure it with --precisions fp32,bf16")
    else:
        args.precisions = [p.strip().lower() for p in args.precisions.split(",") if p.strip()]
        bad = [p for p in args.precisions if p not in ("fp32", "bf16", "fp16")]
        if bad:
            ap.error(f"unknown precision(s) {', '.join(bad)}: choose from fp32, bf16, fp16")
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        ap.error("--batch and --steps must be 1 or more, --warmup 0 or more")

    header(device, args)
    rates = bench_steps(args, device)
    if cuda and not args.no_fit:
        bench_fit(args, device)
    loader_rate = None
    if not args.no_loader:
        loader_rate = bench_loader(args, device, rates)["rate"]

    if rates:
        parts = []
        for name, rate in rates.items():
            s = 1000 * args.batch / rate
            text = f"{name} {s:,.0f} s ({s / 3600:.2f} h)"
            if loader_rate is not None and loader_rate < rate:
                sl = 1000 * args.batch / loader_rate
                text += f" [loader-bound: {sl:,.0f} s ({sl / 3600:.2f} h)]"
            parts.append(text)
        print(f"model card estimate: 1000 steps of stage {args.stage} at batch {args.batch} "
              f"({SIZE} px, {describe_device(device)}"
              f"{', width x' + format(args.width, 'g') if args.width != 1 else ''}): " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
