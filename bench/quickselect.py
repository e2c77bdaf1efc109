"""Quick selection: is a box drag a usable start? Speed and agreement on real photos.

    python bench/quickselect.py [FOLDER] [--trimap-set Trimap1] [--engine closed-form]
        [--max-side N] [--band N] [--out DIR] [--only NAME,...] [--big WxH]

FOLDER defaults to ../shared/data/alphamatting_test_lowres_noGT (alphamatting.com's
low-resolution test set: ``input_lowres/<name>.png`` and
``trimap_lowres/Trimap1|2|3/<name>.png``, no ground truth).

For each photo the user's box drag is stood in for by the bounding box of the
provided trimap's non-background pixels, grown by 5% of its size on each side.
Then ``quickselect.segment`` (GrabCut) and ``trimap_from_segmentation`` at
``default_band``, and the engine (closed-form by default) on the quick trimap
and on the provided one. Columns: photo, size, GrabCut seconds, trimap
seconds, engine seconds on each trimap, the unknown share of each trimap, and
the agreement ``mean |alpha_quick - alpha_provided|`` over the whole photo (a
stand-in for quality, since there is no ground truth; the provided trimaps
were drawn by hand, so their alpha is the better of the two). ``--out`` writes
both alphas and the quick trimap as PNGs for a person to look at.

``--big WxH`` adds a table for a synthetic photo of that size (e.g. 6000x4000,
24 MP): segment from a box, a re-run with a background stroke and the
previous result, trimap_from_segmentation, the band slider's cached
re-threshold (``Segmentation.trimap``), and tighten.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dim_studio import quickselect as qs  # noqa: E402
from dim_studio.engines import create_engine  # noqa: E402
from dim_studio.images import read_image, read_trimap, write_alpha, write_trimap  # noqa: E402
from dim_studio.trimap import BACKGROUND, UNKNOWN  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dim_speed import cpu_name, table  # noqa: E402  (the same machine line and table layout)
from scenes import make_big_scene  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alphamatting_test_lowres_noGT"


def box_from_trimap(trimap: np.ndarray, grow: float = 0.05) -> tuple[int, int, int, int]:
    """The user's box drag: the provided trimap's non-background box, grown by ``grow`` of its size."""
    ys, xs = np.nonzero(trimap != BACKGROUND)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    dx, dy = grow * (x1 - x0), grow * (y1 - y0)
    h, w = trimap.shape
    return (max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(w, int(x1 + dx)), min(h, int(y1 + dy)))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_photos(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    inputs = sorted((folder / "input_lowres").glob("*.png"))
    if args.only:
        keep = set(args.only.split(","))
        inputs = [p for p in inputs if p.stem in keep]
    if not inputs:
        raise SystemExit(f"no photos in {folder / 'input_lowres'}")
    engine = create_engine(args.engine)
    # Compile the solver's kernels before any clock starts (numba's first call).
    warm = np.zeros((16, 16, 3), np.float32)
    warm_trimap = np.zeros((16, 16), np.uint8)
    warm_trimap[4:12, 4:12] = UNKNOWN
    warm_trimap[7:9, 7:9] = 255
    engine.estimate(warm, warm_trimap)
    out = Path(args.out) if args.out else None
    rows = []
    for path in inputs:
        image = read_image(path)
        provided = read_trimap(folder / "trimap_lowres" / args.trimap_set / path.name, image.shape)
        box = box_from_trimap(provided)
        band = args.band if args.band is not None else qs.default_band(image.shape)
        t_gc, seg = timed(lambda: qs.segment(image, box=box, max_side=args.max_side))
        t_tri, quick = timed(lambda: qs.trimap_from_segmentation(seg.mask, band))
        t_quick, alpha_quick = timed(lambda: engine.estimate(image, quick))
        t_prov, alpha_prov = timed(lambda: engine.estimate(image, provided))
        agree = float(np.mean(np.abs(alpha_quick - alpha_prov)))
        h, w = image.shape[:2]
        rows.append([
            path.stem, f"{w}x{h}", f"{seg.small.shape[1]}x{seg.small.shape[0]}", f"{t_gc:.2f}", f"{t_tri * 1000:.0f}",
            str(band), f"{t_quick:.2f}", f"{t_prov:.2f}",
            f"{qs.unknown_fraction(quick):.3f}", f"{qs.unknown_fraction(provided):.3f}", f"{agree:.4f}",
        ])
        print("  ".join(rows[-1]), flush=True)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            write_alpha(out / f"{path.stem}_alpha_quick.png", alpha_quick)
            write_alpha(out / f"{path.stem}_alpha_{args.trimap_set}.png", alpha_prov)
            write_trimap(out / f"{path.stem}_trimap_quick.png", quick)
    print()
    table(
        ["photo", "size", "GrabCut at", "GrabCut s", "trimap ms", "band", f"{args.engine} quick s",
         f"{args.engine} {args.trimap_set} s", "unknown quick", f"unknown {args.trimap_set}", "mean |dA|"],
        rows,
    )


def bench_big(args: argparse.Namespace) -> None:
    w, h = (int(v) for v in args.big.lower().split("x"))
    image, trimap = make_big_scene(h, w, 0.006 * max(h, w))
    box = box_from_trimap(trimap)
    band = qs.default_band(image.shape)
    rows = []
    t, seg = timed(lambda: qs.segment(image, box=box, max_side=args.max_side))
    rows.append(["segment (box, from scratch)", f"{t:.2f}"])
    hints = np.full((h, w), qs.NO_HINT, np.uint8)
    hints[h // 20: h // 20 + max(2, h // 200), w // 10: w // 2] = BACKGROUND
    t, _ = timed(lambda: qs.segment(image, box=box, hints=hints, max_side=args.max_side))
    rows.append(["segment with a stroke, from scratch", f"{t:.2f}"])
    t, _ = timed(lambda: qs.segment(image, box=box, hints=hints, previous=seg, max_side=args.max_side))
    rows.append(["segment with a stroke, previous reused", f"{t:.2f}"])
    t, quick = timed(lambda: qs.trimap_from_segmentation(seg.mask, band))
    rows.append([f"trimap_from_segmentation (band {band})", f"{t:.3f}"])
    t, _ = timed(lambda: seg.trimap(band))
    rows.append(["Segmentation.trimap, first (distances)", f"{t:.3f}"])
    t, _ = timed(lambda: seg.trimap(band + 10))
    rows.append(["Segmentation.trimap, slider move (cached)", f"{t:.3f}"])
    rng = np.random.default_rng(0)
    alpha = (quick == 255).astype(np.float32)
    unknown = quick == UNKNOWN
    alpha[unknown] = rng.uniform(0, 1, int(unknown.sum())).astype(np.float32) ** 3
    t, _ = timed(lambda: qs.tighten(quick, alpha))
    rows.append(["tighten", f"{t:.3f}"])
    print(f"synthetic {w}x{h} ({w * h / 1e6:.0f} MP), GrabCut at {seg.small.shape[1]}x{seg.small.shape[0]}:")
    table(["step", "seconds"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--trimap-set", default="Trimap1")
    parser.add_argument("--engine", default="closed-form")
    parser.add_argument("--max-side", type=int, default=qs.DEFAULT_MAX_SIDE)
    parser.add_argument("--band", type=int, default=None, help="default: quickselect.default_band")
    parser.add_argument("--out", default=None, help="write the alphas and quick trimaps here")
    parser.add_argument("--only", default=None, help="comma-separated photo names")
    parser.add_argument("--big", default=None, help="also time a synthetic photo of this size, e.g. 6000x4000")
    args = parser.parse_args(argv)
    print(f"machine: {cpu_name()}; GrabCut working size <= {args.max_side} px\n")
    if args.big:
        bench_big(args)
    bench_photos(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
