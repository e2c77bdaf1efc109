"""Speed and memory of the DIM engine.

    python bench/dim_speed.py [--data ../shared/data/alphamatting_training_lowres]
        [--device auto] [--sizes 512 1024 2048] [--images N] [--big] [--weights FILE]
        [--precision-sizes 640x480 ...] [--only-precision]

Tables:

1. Whole-image forward at several square sizes: milliseconds per megapixel
   (on CUDA: fp32 and fp16 autocast side by side, with peak GPU memory).
2. The alphamatting.com training photos with a trimap (Trimap1): whole-image
   forward versus the engine (unknown region's box + margin, tiled), same
   weights, same run; time ratio and how far the two alphas are apart on the
   unknown pixels (they differ because the crop moves the 32-px pooling grid
   and, with a margin below the receptive field, the context).
3. ``--big``: a 24-megapixel (6000x4000) synthetic photo, an ellipse subject
   with a ~40 px unknown band, matted by the engine in a fresh subprocess, so
   its peak resident memory (ru_maxrss) is its own.
4. On CUDA only: the largest square photo whose whole-image fp16 forward fits.
5. On the CPU: the engine in fp32 and with bf16 autocast (what previews use
   where the CPU has native bf16) side by side on a synthetic photo with a
   ~40 px unknown band: the fp32/bf16 time ratio and the mean and max
   |alpha difference| x 255 over the unknown pixels, and what precision
   "auto" picks on this CPU.

Random weights (He-initialised) unless ``--weights`` is given: the timings do
not depend on the weights, the alpha differences do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from dim_studio.engines.device import cpu_has_native_bf16, describe_device, select_device  # noqa: E402
from dim_studio.engines.dim import DIMEngine, is_out_of_memory, plan_tiles, resolve_precision  # noqa: E402
from dim_studio.net.model import normalize_input, pad_to_multiple, random_dim  # noqa: E402
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN  # noqa: E402
from scenes import make_big_scene  # noqa: E402  (bench/ is on sys.path as the script's folder)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alphamatting_training_lowres"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def get_model(args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, Any]:
    if args.weights:
        from dim_studio.net.weights import load_weights

        return load_weights(args.weights, device=device)
    return random_dim().to(device), None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def whole_forward(model: nn.Module, image: np.ndarray, trimap: np.ndarray, norm: Any,
                  device: torch.device, half: bool, channels_last: bool) -> np.ndarray:
    """Whole-image inference (normalise, reflect-pad to 32, forward, crop back)
    with the same device policy as the engine."""
    x = normalize_input(image, trimap, norm)
    h, w = x.shape[-2:]
    x, _ = pad_to_multiple(x)
    x = x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        if half:
            with torch.autocast(device_type=device.type, dtype=torch.float16):
                out = model(x)["alpha"]
        else:
            out = model(x)["alpha"]
        alpha = out[0, 0, :h, :w].float().cpu().numpy()
    sync(device)
    alpha[trimap == BACKGROUND] = 0.0
    alpha[trimap == FOREGROUND] = 1.0
    return alpha


def timed(fn, device: torch.device, repeats: int = 1) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_header(device: torch.device) -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"machine: {platform.system()} {platform.machine()}, {cpu_name()}, {cores} cores usable{mem}\n"
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; device {describe_device(device)}"
    )


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    print()


def square_input(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.random((size, size, 3), dtype=np.float32)
    trimap = np.full((size, size), UNKNOWN, np.uint8)
    trimap[: size // 4] = BACKGROUND
    trimap[-size // 4:] = FOREGROUND
    return image, trimap


# ---------------------------------------------------------------------------
# 1. ms per megapixel, whole-image forward
# ---------------------------------------------------------------------------


def bench_sizes(args, model, info, device) -> None:
    precisions = [False, True] if device.type == "cuda" else [False]
    norm = getattr(info, "normalization", None)
    cl = device.type in ("cuda", "cpu")
    if cl:
        model.to(memory_format=torch.channels_last)
    print(f"1. whole-image forward, best of {args.repeats} (after one warm-up run per size)")
    rows = []
    for size in args.sizes:
        image, trimap = square_input(size)
        row = [f"{size}x{size}", f"{size * size / 1e6:.2f}"]
        for half in precisions:
            try:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                whole_forward(model, image, trimap, norm, device, half, cl)  # warm-up / autotune
                t, _ = timed(lambda: whole_forward(model, image, trimap, norm, device, half, cl), device, args.repeats)
                row += [f"{t:.3f}", f"{1000 * t / (size * size / 1e6):.0f}"]
                if device.type == "cuda":
                    row.append(f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f}")
            except Exception as exc:  # noqa: BLE001 - report and go on
                if not is_out_of_memory(exc):
                    raise
                row += ["OOM", "-"] + (["-"] if device.type == "cuda" else [])
                release(device)
        rows.append(row)
        print("   ", " | ".join(row), flush=True)
    header = ["size", "MP"]
    for half in precisions:
        p = "fp16" if half else "fp32"
        header += [f"{p} s", f"{p} ms/MP"] + ([f"{p} peak GiB"] if device.type == "cuda" else [])
    table(header, rows)


def release(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------
# 2. alphamatting photos: whole image vs cropped-and-tiled engine
# ---------------------------------------------------------------------------


def bench_photos(args, model, info, device) -> None:
    from dim_studio.images import read_image, read_trimap

    photos = sorted((args.data / "input_training_lowres").glob("GT*.png"))[: args.images]
    if not photos:
        print(f"2. skipped: no photos under {args.data}\n")
        return
    engine = DIMEngine(model=model, info=info, device=str(device), tile_size=args.tile,
                       tile_context=args.context)
    small = None
    if args.compare_tile:
        small = DIMEngine(model=model, info=info, device=str(device), tile_size=args.compare_tile,
                          tile_context=args.context)
    norm = engine.normalization
    half, cl = engine.half, engine.channels_last
    print(f"2. alphamatting training photos ({args.trimap}): whole-image forward vs the engine "
          f"({engine.describe()}, tile {engine.tile_size}+2x{engine.tile_context} px, "
          f"margin {engine.context_margin} px)"
          + (f", and the engine forced to {args.compare_tile} px tiles" if small else "")
          + "; same weights, same run; |diff| over the unknown pixels")
    rows, ratios = [], []
    for path in photos:
        image = read_image(path)
        trimap = read_trimap(args.data / "trimap_training_lowres" / args.trimap / path.name, image.shape[:2])
        if not rows:  # warm-up on the first photo
            whole_forward(model, image, trimap, norm, device, half, cl)
        tw, a_whole = timed(lambda: whole_forward(model, image, trimap, norm, device, half, cl), device)
        te, a_eng = timed(lambda: engine.estimate(image, trimap), device)
        st = engine.last_run_stats
        unknown = trimap == UNKNOWN
        diff = np.abs(a_eng - a_whole)[unknown]
        h, w = trimap.shape
        ch, cw = st["crop"]
        ratios.append(tw / te)
        row = [
            path.stem, f"{w}x{h}", f"{cw}x{ch}", str(st["tiles"]),
            f"{tw:.2f}", f"{te:.2f}", f"{tw / te:.2f}", f"{diff.max():.1e}",
        ]
        if small is not None:
            ts, a_small = timed(lambda: small.estimate(image, trimap), device)
            sd = np.abs(a_small - a_whole)[unknown]
            row += [str(small.last_run_stats["tiles"]), f"{ts:.2f}", f"{sd.max():.1e}", f"{sd.mean():.1e}"]
        rows.append(row)
        print("   ", " | ".join(row), flush=True)
    header = ["photo", "size", "crop", "tiles", "whole s", "engine s", "whole/engine", "max|diff|"]
    if small is not None:
        t = args.compare_tile
        header += [f"tiles@{t}", f"s@{t}", f"max|diff|@{t}", f"mean|diff|@{t}"]
    table(header, rows)
    print(f"   median speed-up of the engine over whole-image: {statistics.median(ratios):.2f}x\n")


# ---------------------------------------------------------------------------
# 3. 24 megapixels in a subprocess
# ---------------------------------------------------------------------------


def maxrss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def big_child(args) -> None:
    """Runs in a fresh process; prints one JSON line."""
    h, w = args.big_size
    device = select_device(args.device)
    out: dict[str, Any] = {"size": f"{w}x{h}", "megapixels": h * w / 1e6}
    out["rss_start_mib"] = maxrss_mib()
    t = time.perf_counter()
    image, trimap = make_big_scene(h, w, args.big_band)
    out["scene_s"] = time.perf_counter() - t
    out["unknown_pixels"] = int(np.count_nonzero(trimap == UNKNOWN))
    out["rss_after_scene_mib"] = maxrss_mib()
    model, info = get_model(args, device)
    engine = DIMEngine(model=model, info=info, device=str(device), tile_size=args.tile, tile_context=args.context)
    out["engine"] = engine.describe()
    out["rss_after_model_mib"] = maxrss_mib()
    from dim_studio.trimap import unknown_bbox

    box = unknown_bbox(trimap, engine.context_margin)
    tiles, skipped = plan_tiles(trimap[box.slices], engine.tile_size, engine.tile_context, engine.shrink_tiles)
    out["planned_window_mp"] = sum(t.window_shape[0] * t.window_shape[1] for t in tiles) / 1e6
    out["largest_window"] = "x".join(map(str, max((t.window_shape for t in tiles), key=lambda s: s[0] * s[1])))
    seen: list[float] = []
    t = time.perf_counter()
    alpha = engine.estimate(image, trimap, progress=seen.append)
    sync(device)
    out["matte_s"] = time.perf_counter() - t
    out["rss_peak_mib"] = maxrss_mib()
    if device.type == "cuda":
        out["gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    out.update({k: v for k, v in engine.last_run_stats.items() if k in ("tiles", "skipped", "tile_size", "crop")})
    out["crop"] = "x".join(map(str, out["crop"][::-1]))
    out["notes"] = engine.last_run_notes
    out["alpha_ok"] = bool(alpha.shape == (h, w) and alpha.dtype == np.float32
                           and np.all(alpha[trimap == FOREGROUND] == 1) and np.all(alpha[trimap == BACKGROUND] == 0))
    out["image_mib"] = image.nbytes / 2**20
    print("BIG-RESULT " + json.dumps(out), flush=True)


def bench_big(args, device: torch.device) -> None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_big-child", "--device", str(device),
           "--big-size", f"{args.big_size[1]}x{args.big_size[0]}", "--big-band", str(args.big_band),
           "--context", str(args.context)]
    if args.tile:
        cmd += ["--tile", str(args.tile)]
    if args.weights:
        cmd += ["--weights", str(args.weights)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    print(f"3. {args.big_size[1]}x{args.big_size[0]} photo, ~{args.big_band:.0f} px unknown band, in a fresh "
          "subprocess (ru_maxrss is its own)", flush=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    line = next((l for l in proc.stdout.splitlines() if l.startswith("BIG-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(f"   failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}\n")
        return
    r = json.loads(line[len("BIG-RESULT "):])
    rows = [
        ["photo", f"{r['size']} ({r['megapixels']:.1f} MP), float32 image {r['image_mib']:.0f} MiB"],
        ["engine", r["engine"]],
        ["unknown pixels", f"{r['unknown_pixels']:,} ({100 * r['unknown_pixels'] / (r['megapixels'] * 1e6):.2f}%)"],
        ["crop", r["crop"]],
        ["tiles run / skipped", f"{r['tiles']} / {r['skipped']} (tile {r['tile_size']} px, largest window {r['largest_window']})"],
        ["network input", f"{r['planned_window_mp']:.1f} MP over all tiles"],
        ["matting time", f"{r['matte_s']:.1f} s ({r['matte_s'] / 60:.1f} min); subprocess wall {wall:.0f} s"],
        ["peak RSS", f"{r['rss_peak_mib']:.0f} MiB (after building the photo: {r['rss_after_scene_mib']:.0f} MiB; "
                     f"interpreter + torch: {r['rss_start_mib']:.0f} MiB)"],
        ["engine's own peak", f"~{r['rss_peak_mib'] - r['rss_after_model_mib']:.0f} MiB above photo + model"],
    ]
    if "gpu_peak_gib" in r:
        rows.append(["GPU peak", f"{r['gpu_peak_gib']:.2f} GiB"])
    rows.append(["known pixels forced", "yes" if r["alpha_ok"] else "NO"])
    if r["notes"]:
        rows.append(["notes", "; ".join(r["notes"])])
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"   {k.ljust(w)}  {v}")
    print()


# ---------------------------------------------------------------------------
# 4. CUDA: largest whole-image photo
# ---------------------------------------------------------------------------


def bench_largest(args, model, info, device) -> None:
    norm = getattr(info, "normalization", None)
    print("4. largest square photo whose whole-image forward fits (fp16 autocast, channels-last)")
    rows = []
    largest = None
    for size in (2048, 3072, 4096, 5120, 6144, 7168, 8192):
        image, trimap = square_input(size)
        release(device)
        torch.cuda.reset_peak_memory_stats(device)
        try:
            t, _ = timed(lambda: whole_forward(model, image, trimap, norm, device, True, True), device)
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
            rows.append([f"{size}x{size}", f"{size * size / 1e6:.1f}", "OOM", "-"])
            release(device)
            break
        largest = size
        rows.append([f"{size}x{size}", f"{size * size / 1e6:.1f}", f"{t:.2f}",
                     f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}"])
        print("   ", " | ".join(rows[-1]), flush=True)
    table(["size", "MP", "s (first run)", "peak GiB"], rows)
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    print(f"   largest that fits untiled: {largest}x{largest} on {total:.0f} GiB; "
          "the tiled engine handles any size\n")


# ---------------------------------------------------------------------------
# 5. CPU: fp32 vs bf16 autocast
# ---------------------------------------------------------------------------


def bench_precision(args, model, info, device) -> None:
    if device.type != "cpu":
        print("5. skipped: the fp32/bf16 comparison is for the CPU (table 1 has fp16 on CUDA)\n")
        return
    avx512_bf16 = bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    native = cpu_has_native_bf16()
    weights = "the given weights" if args.weights else "random He-initialised weights (no trained weights here)"
    print(f"5. CPU precision: the engine in fp32 vs bf16 autocast, same {weights}, same run; "
          f"best of {args.repeats} after a warm-up; |diff| over the unknown pixels, x255")
    print(f"   this CPU: AVX512-BF16 {'yes' if avx512_bf16 else 'no'}, AMX {'yes' if amx else 'no'} -> bf16 is "
          f"{'native' if native else 'EMULATED (slow)'}; precision 'auto' (previews) picks "
          f"{resolve_precision('auto', device)}, exports use fp32")
    engines = {p: DIMEngine(model=model, info=info, device="cpu", tile_size=args.tile,
                            tile_context=args.context, precision=p) for p in ("fp32", "bf16")}
    warm_image, warm_trimap = make_big_scene(160, 160, 20.0)
    for engine in engines.values():
        engine.estimate(warm_image, warm_trimap)
    rows = []
    for h, w in args.precision_sizes:
        image, trimap = make_big_scene(h, w, args.big_band)
        times, alphas = {}, {}
        for name, engine in engines.items():
            times[name], alphas[name] = timed(lambda: engine.estimate(image, trimap), device, args.repeats)
            assert engine.last_precision == name
        st = engines["fp32"].last_run_stats
        unknown = trimap == UNKNOWN
        diff = np.abs(alphas["bf16"] - alphas["fp32"])[unknown] * 255
        rows.append([
            f"{w}x{h}", f"{int(unknown.sum()):,}", "x".join(map(str, st["crop"][::-1])), str(st["tiles"]),
            f"{times['fp32']:.2f}", f"{times['bf16']:.2f}", f"{times['fp32'] / times['bf16']:.2f}",
            f"{diff.mean():.2f}", f"{diff.max():.1f}",
        ])
        print("   ", " | ".join(rows[-1]), flush=True)
    table(["photo", "unknown px", "crop", "tiles", "fp32 s", "bf16 s", "fp32/bf16",
           "mean|diff|x255", "max|diff|x255"], rows)


# ---------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="alphamatting_training_lowres folder")
    ap.add_argument("--trimap", default="Trimap1")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sizes", type=int, nargs="*", default=None,
                    help="square sizes for table 1 (default 512 1024 2048 on a GPU, 256 512 on the CPU); "
                         "give none to skip")
    ap.add_argument("--images", type=int, default=None,
                    help="alphamatting photos for table 2 (default: all 27 on a GPU, 3 on the CPU; 0 skips)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tile", type=int, default=None, help="engine tile size (default: the engine's per device)")
    ap.add_argument("--context", type=int, default=192, help="engine tile context (default 192)")
    ap.add_argument("--compare-tile", type=int, default=128, metavar="PX",
                    help="table 2 also runs the engine with tiles this small (default 128; 0 skips)")
    ap.add_argument("--big", action="store_true", help="also the 24-megapixel photo (subprocess)")
    ap.add_argument("--only-big", action="store_true", help="only the 24-megapixel photo")
    ap.add_argument("--big-size", type=parse_size, default=(4000, 6000), metavar="WxH")
    ap.add_argument("--big-band", type=float, default=40.0, metavar="PX")
    ap.add_argument("--weights", type=Path, default=None, help="a weights file (default: random weights)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--precision-sizes", type=parse_size, nargs="*", default=[(480, 640)], metavar="WxH",
                    help="photos for table 5, CPU fp32 vs bf16 (default 640x480; give none to skip)")
    ap.add_argument("--only-precision", action="store_true", help="only table 5")
    ap.add_argument("--_big-child", dest="big_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.big_child:
        big_child(args)
        return 0

    device = select_device(args.device)
    gpu = device.type != "cpu"
    if args.sizes is None:
        args.sizes = [512, 1024, 2048] if gpu else [256, 512]
    if args.images is None:
        args.images = 27 if gpu else 3
    print(machine_header(device))
    print(f"weights: {args.weights or 'random (He init)'}\n")

    if args.only_precision:
        model, info = get_model(args, device)
        bench_precision(args, model, info, device)
        return 0
    if not args.only_big:
        model, info = get_model(args, device)
        if args.sizes:
            bench_sizes(args, model, info, device)
        if args.images:
            bench_photos(args, model, info, device)
        if device.type == "cuda":
            bench_largest(args, model, info, device)
        if args.precision_sizes:
            bench_precision(args, model, info, device)
        del model
        release(device)
    if args.big or args.only_big:
        bench_big(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
