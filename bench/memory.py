"""Peak memory and time of every engine on large photos with a thin unknown band.

    python bench/memory.py [--sizes 6 12 24] [--engines closed-form ifm lkm knn dim]
        [--band 20] [--cutout] [--untiled] [--threads N] [--device cpu]
    python bench/memory.py --too-large [--sizes 24] [--engines closed-form ifm lkm knn]
    python bench/memory.py --probe [--engines ...] [--probe-sides 700 1000] [--probe-bands 20 500]

Each (engine, size) runs in its own fresh Python process, so its peak
resident memory (VmHWM from /proc/self/status) is its own: the photo, the
trimap, the engine and everything it allocated. The photo is synthetic, 3:2,
built in row blocks (no full-size float64 array): a soft-edged ellipse subject
over a textured background, with an unknown band of ``--band`` pixels around
its edge, which is what a user's brush or ``trimap_from_mask`` gives. The
unknown region's bounding box is ~80 % of the photo while the band is 1-2 %.

Columns: the unknown pixels (share of the photo), the crop the engine works
on, the solver calls (tiled runs), the time and peak RSS of ``estimate``
alone, and with ``--cutout`` the time and peak RSS after also writing a cutout
and a composite through ``export.write_outputs`` (the path ``dim-studio
matte --cutout --composite`` takes: foreground estimate, RGBA and RGB PNGs).
The target (DESIGN.md section 9) is 4 GB for every engine at 24 MP.

``--untiled`` turns the classical engines' tiling off (the behaviour before
it: one solve over the whole crop) to show what it saves; expect ~12 GB for
closed-form at 24 MP, so run it at small sizes only. ``dim`` runs with random
He-initialised weights (as bench/dim_speed.py does): the time and memory do
not depend on the weights.

``--too-large`` gives each engine a trimap it must refuse: the same photo
with almost everything unknown (background only in a 2 % frame, foreground a
small central ellipse), and prints how long the refusal took, the peak RSS and
the message. ``dim`` is left out: it tiles the network with a fixed context and
mattes such a trimap within bounded memory (slowly).

``--probe`` measures the classical engines' memory model instead: one untiled
solve over a square window of each side with a band of each width across it,
and prints MiB per megapixel of window; ``base.Engine.solve_bytes_per_pixel``
and ``solve_bytes_per_unknown`` come from these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN  # noqa: E402
from scenes import make_big_scene  # noqa: E402  (bench/ is on sys.path as the script's folder)

ENGINES = ["closed-form", "ifm", "lkm", "knn", "dim"]


# ---------------------------------------------------------------------------
# Measuring (in the child)
# ---------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def photo_size(megapixels: float) -> tuple[int, int]:
    """(height, width) of a 3:2 photo of about ``megapixels``."""
    w = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    return int(round(w / 1.5)), w


def mostly_unknown(trimap: np.ndarray) -> None:
    """Turn a scene's trimap (in place) into one the classical engines must refuse."""
    h, w = trimap.shape
    f = max(1, int(0.02 * min(h, w)))
    trimap[...] = UNKNOWN
    trimap[:f] = trimap[-f:] = BACKGROUND
    trimap[:, :f] = trimap[:, -f:] = BACKGROUND
    ry, rx = h // 20, w // 20
    yy, xx = np.ogrid[-ry:ry + 1, -rx:rx + 1]
    inside = (yy / ry) ** 2 + (xx / rx) ** 2 <= 1
    centre = trimap[h // 2 - ry:h // 2 + ry + 1, w // 2 - rx:w // 2 + rx + 1]
    centre[inside] = FOREGROUND


def build_engine(name: str, untiled: bool, device: str) -> Any:
    from dim_studio.engines import create_engine

    if name == "dim":
        from dim_studio.engines.dim import DIMEngine
        from dim_studio.net.model import random_dim

        return DIMEngine(model=random_dim(), device=device)
    engine = create_engine(name)
    if untiled:
        engine.max_solve_bytes = None  # one solve over the whole crop, as before tiling
    return engine


def child(args: argparse.Namespace) -> None:
    """One engine on one photo, in a fresh process; prints one JSON line."""
    out: dict[str, Any] = {"engine": args.engines[0], "mp": args.sizes[0]}
    h, w = photo_size(args.sizes[0])
    out["size"] = f"{w}x{h}"
    image, trimap = make_big_scene(h, w, args.band)
    if args.too_large:
        mostly_unknown(trimap)
    out["unknown"] = float(np.count_nonzero(trimap == UNKNOWN)) / trimap.size
    engine = build_engine(args.engines[0], args.untiled, args.device)
    out["rss_ready_mib"] = peak_rss_mib()
    if args.too_large:
        from dim_studio.errors import DimStudioError

        t = time.perf_counter()
        try:
            engine.estimate(image, trimap)
            out["message"] = "NOT REFUSED"
        except DimStudioError as exc:
            out["message"] = f"{type(exc).__name__}: {exc}"
        out["refuse_s"] = time.perf_counter() - t
        out["rss_peak_mib"] = peak_rss_mib()
        print("MEMORY-RESULT " + json.dumps(out), flush=True)
        return
    seen: list[float] = []
    t = time.perf_counter()
    alpha = engine.estimate(image, trimap, progress=seen.append)
    out["alpha_s"] = time.perf_counter() - t
    out["rss_alpha_mib"] = peak_rss_mib()
    stats = dict(getattr(engine, "last_run_stats", {}) or {})
    out["solves"] = stats.get("solves", stats.get("tiles"))
    crop = stats.get("crop")
    out["crop"] = f"{crop[1]}x{crop[0]}" if crop else ""
    out["progress_ok"] = bool(seen and seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:])))
    out["alpha_ok"] = bool(
        alpha.shape == (h, w) and np.all(alpha[trimap == FOREGROUND] == 1)
        and np.all(alpha[trimap == BACKGROUND] == 0) and np.isfinite(alpha).all()
    )
    if args.cutout:
        from dim_studio.export import write_outputs

        with tempfile.TemporaryDirectory(prefix="dim-memory-") as tmp:
            t = time.perf_counter()
            write_outputs(image, alpha, cutout_path=Path(tmp) / "cutout.png",
                          composite_path=Path(tmp) / "composite.png", background="white")
            out["cutout_s"] = time.perf_counter() - t
        out["rss_cutout_mib"] = peak_rss_mib()
    print("MEMORY-RESULT " + json.dumps(out), flush=True)


def probe_child(args: argparse.Namespace) -> None:
    """One untiled solve over a square window with a band across it."""
    name, side, band = args.engines[0], args.probe_sides[0], args.probe_bands[0]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    d = (xx + 0.3 * yy - 0.65 * side) / np.float32(np.hypot(1, 0.3))  # a slanted edge
    alpha = np.clip(d / 4 + 0.5, 0, 1)[..., None]
    image = (alpha * np.array([0.85, 0.55, 0.3], np.float32)
             + (1 - alpha) * (0.3 + 0.1 * rng.random((side, side, 3), dtype=np.float32)))
    trimap = np.where(d > 0, FOREGROUND, BACKGROUND).astype(np.uint8)
    trimap[np.abs(d) < band / 2] = UNKNOWN
    del yy, xx, d, alpha
    engine = build_engine(name, untiled=True, device="cpu")
    engine.context_margin = side  # the whole window
    base = peak_rss_mib()
    t = time.perf_counter()
    engine.estimate(image.astype(np.float32), trimap)
    print("MEMORY-RESULT " + json.dumps({
        "engine": name, "side": side, "band": band, "window_mp": side * side / 1e6,
        "unknown_mp": float(np.count_nonzero(trimap == UNKNOWN)) / 1e6,
        "solve_mib": peak_rss_mib() - base, "s": time.perf_counter() - t,
    }), flush=True)


# ---------------------------------------------------------------------------
# Driving the children (in the parent)
# ---------------------------------------------------------------------------


def run_child(argv: list[str], threads: int | None, timeout: float | None) -> dict[str, Any]:
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - start
    for line in proc.stdout.splitlines():
        if line.startswith("MEMORY-RESULT "):
            result = json.loads(line.split(" ", 1)[1])
            result["wall_s"] = wall
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:200]}", "wall_s": wall}


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |", flush=True)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def gib(mib: float | None) -> str:
    return "" if mib is None else f"{mib / 1024:.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[6.0, 12.0, 24.0], metavar="MP",
                    help="photo sizes in megapixels (3:2)")
    ap.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES, metavar="NAME")
    ap.add_argument("--band", type=float, default=20.0, metavar="PX", help="unknown band width")
    ap.add_argument("--cutout", action="store_true",
                    help="also write a cutout and a composite (foreground estimate included)")
    ap.add_argument("--untiled", action="store_true",
                    help="classical engines without tiling (the old behaviour; heavy)")
    ap.add_argument("--threads", type=int, default=None, metavar="N",
                    help="OMP/NUMBA/MKL threads in each child (default: the libraries' own)")
    ap.add_argument("--device", default="cpu", help="device of the dim engine")
    ap.add_argument("--timeout", type=float, default=None, metavar="S", help="per child")
    ap.add_argument("--too-large", action="store_true",
                    help="a mostly unknown trimap the classical engines must refuse up front")
    ap.add_argument("--probe", action="store_true", help="measure the classical engines' memory model")
    ap.add_argument("--probe-sides", nargs="+", type=int, default=[700, 1000], metavar="PX")
    ap.add_argument("--probe-bands", nargs="+", type=int, default=[20, 500], metavar="PX")
    ap.add_argument("--_child", dest="child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        (probe_child if args.probe else child)(args)
        return 0

    print(f"machine: {machine()}; threads per child: {args.threads or 'library default'}")
    if args.probe:
        rows = []
        for name in [e for e in args.engines if e != "dim"]:
            for band in args.probe_bands:
                for side in args.probe_sides:
                    r = run_child(["--_child", "--probe", "--engines", name, "--probe-sides", str(side),
                                   "--probe-bands", str(band)], args.threads, args.timeout)
                    if "error" in r:
                        rows.append([name, f"{side}x{side}", str(band), "", "", r["error"], ""])
                        continue
                    rows.append([name, f"{side}x{side}", str(band), f"{r['unknown_mp']:.2f}",
                                 f"{r['solve_mib']:.0f}", f"{r['solve_mib'] / r['window_mp']:.0f}",
                                 f"{r['s']:.1f}"])
        table(["engine", "window", "band px", "unknown MP", "solve MiB", "MiB per MP", "s"], rows)
        return 0

    if args.too_large:
        rows = []
        for size in args.sizes:
            for name in [e for e in args.engines if e != "dim"]:
                r = run_child(["--_child", "--too-large", "--engines", name, "--sizes", str(size)],
                              args.threads, args.timeout)
                h, w = photo_size(size)
                if "error" in r:
                    rows.append([name, f"{w}x{h}", "", "", "", r["error"]])
                    continue
                rows.append([name, f"{w}x{h}", f"{r['unknown'] * 100:.0f} %", f"{r['refuse_s']:.1f}",
                             gib(r["rss_peak_mib"]), r["message"]])
        table(["engine", "photo", "unknown", "refused after s", "peak RSS", "message"], rows)
        return 0

    print(f"synthetic 3:2 photos, ellipse subject, {args.band:g} px unknown band; "
          f"{'UNTILED classical engines; ' if args.untiled else ''}each run in a fresh process; "
          "peak RSS = VmHWM")
    header = ["engine", "photo", "unknown", "crop", "solves", "alpha s", "peak RSS alpha"]
    if args.cutout:
        header += ["cutout s", "peak RSS with cutout"]
    header += ["ok"]
    rows = []
    for size in args.sizes:
        for name in args.engines:
            argv_child = ["--_child", "--engines", name, "--sizes", str(size), "--band", str(args.band),
                          "--device", args.device]
            if args.cutout:
                argv_child.append("--cutout")
            if args.untiled:
                argv_child.append("--untiled")
            r = run_child(argv_child, args.threads, args.timeout)
            h, w = photo_size(size)
            if "error" in r:
                row = [name, f"{w}x{h}", "", "", "", "", r["error"]] + (["", ""] if args.cutout else []) + ["no"]
            else:
                row = [name, f"{w}x{h} ({size:g} MP)", f"{r['unknown'] * 100:.1f} %", r["crop"],
                       str(r["solves"]), f"{r['alpha_s']:.1f}", gib(r["rss_alpha_mib"])]
                if args.cutout:
                    row += [f"{r['cutout_s']:.1f}", gib(r["rss_cutout_mib"])]
                row += ["yes" if r["alpha_ok"] and r["progress_ok"] else "NO"]
            rows.append(row)
            print(f"  done: {name} {size:g} MP ({r.get('wall_s', 0):.0f} s wall)", file=sys.stderr, flush=True)
    table(header, rows)
    print("ok: alpha has the photo's size, known pixels exactly 0/1, finite; progress monotone, ends at 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
