"""Matting quality on the alphamatting.com training set (low resolution).

    python bench/quality.py DATA_DIR [--trimaps Trimap1 Trimap2]
        [--engines closed-form lkm knn] [--limit N] [--reference]
        [--tile N [--tile-context C]] [--per-image]

DATA_DIR has the alphamatting layout: ``input_training_lowres/``,
``trimap_training_lowres/TrimapK/`` and ``gt_training_lowres/`` (ground truth
stored as grey RGB). Prints one row per engine and trimap set with the mean
SAD, MSE, Gradient and Connectivity over the unknown region and the mean time
per image.

``--reference`` also runs PyMatting's whole-image ``estimate_alpha_cf``
(image as float64, trimap / 255, default settings, known pixels forced) on the
same photos in the same run (alternating with our engines photo by photo, so
the times compare under the same load), and prints our closed-form engine's mean SAD as a
ratio to it (target: within 2 %). The data's README quotes 5.31 (Trimap1) and
7.60 (Trimap2) for that reference.

``--per-image`` prints, per trimap set, every photo's SAD, MSE, Gradient,
Connectivity and time for each engine, each engine's SAD change relative
to the first engine named (negative: fewer errors), how many photos it wins
and loses, and its time as a multiple of the first engine's (mean of the
per-photo times, and the largest per-photo ratio).

``--tile N`` also runs every engine forced into tiles with an N px core
(``tile_above_bytes=0``; ``--tile-context`` sets the context, default the
engine's), photo by photo next to the untiled engine, and prints the mean SAD
of both, the relative change (target: under 1 %), the largest per-photo SAD
change and the largest alpha difference on unknown pixels, with the mean number
of solves per photo. On these small photos the engines never tile by
themselves; forcing small tiles shows what tiling does to the result on real
photos at the scale where a 24-megapixel photo is tiled.

The data are for evaluation only: read them where they are, never copy them
into the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dim_studio.engines import Engine, create_engine, engine_names  # noqa: E402
from dim_studio.errors import DimStudioError  # noqa: E402
from dim_studio.evaluation import EvalResults, EvalRow, evaluate_folder  # noqa: E402
from dim_studio.trimap import force_known  # noqa: E402

REFERENCE = "pymatting-cf (whole image)"
README_SAD = {"Trimap1": 5.31, "Trimap2": 7.60}
WARMUP_PIXELS = 48 * 48


class WholeImageClosedForm(Engine):
    """The reference: PyMatting's own ``estimate_alpha_cf`` on the whole photo.

    Image as float64, trimap / 255, default settings, known pixels forced.
    Run through ``evaluate_folder`` next to our engines, so both see the same
    photos, alternately, under the same machine load.
    """

    name = REFERENCE

    def estimate(self, image, trimap, *, progress=None, cancel=None):
        from pymatting import estimate_alpha_cf

        alpha = estimate_alpha_cf(np.asarray(image, np.float64), trimap.astype(np.float64) / 255.0)
        return force_known(np.clip(alpha, 0.0, 1.0).astype(np.float32), trimap)

    def _estimate_crop(self, image, trimap, progress, cancel):  # pragma: no cover - unused
        raise NotImplementedError


class Recorded(Engine):
    """Runs ``engine`` and keeps its last alpha and tiling stats (for ``--tile``).

    With ``against`` (the untiled engine's Recorded, run first on each photo)
    it also records how far this alpha is from that one on the unknown pixels.
    """

    def __init__(self, engine: Engine, against: "Recorded | None" = None) -> None:
        self.engine = engine
        self.name = engine.name
        self.against = against
        self.last: np.ndarray | None = None
        self.diffs: list[tuple[float, float]] = []  # (max, mean) |alpha - untiled| per photo
        self.solves: list[int] = []

    def estimate(self, image, trimap, *, progress=None, cancel=None):
        alpha = self.engine.estimate(image, trimap, progress=progress, cancel=cancel)
        if trimap.size <= WARMUP_PIXELS:  # evaluate_folder's warm-up disc, not a photo
            return alpha
        self.last = alpha
        stats = getattr(self.engine, "last_run_stats", {}) or {}
        self.solves.append(int(stats.get("solves", 1)))
        if self.against is not None and self.against.last is not None \
                and self.against.last.shape == alpha.shape:
            unknown = trimap == 128
            d = np.abs(alpha[unknown] - self.against.last[unknown])
            self.diffs.append((float(d.max(initial=0.0)), float(d.mean()) if d.size else 0.0))
        return alpha

    def _estimate_crop(self, image, trimap, progress, cancel):  # pragma: no cover - unused
        raise NotImplementedError


def tiled_name(name: str, tile: int) -> str:
    return f"{name} tiled {tile}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, metavar="DATA_DIR")
    parser.add_argument("--trimaps", nargs="+", default=["Trimap1", "Trimap2"], metavar="SET")
    parser.add_argument("--engines", nargs="+", default=["closed-form"], metavar="NAME",
                        choices=engine_names())
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the first N photos")
    parser.add_argument("--reference", action="store_true",
                        help="also run PyMatting's whole-image estimate_alpha_cf")
    parser.add_argument("--tile", type=int, default=None, metavar="N",
                        help="also run each engine forced into N px tiles and compare with untiled")
    parser.add_argument("--tile-context", type=int, default=None, metavar="C",
                        help="context around each tile (default: the engine's)")
    parser.add_argument("--per-image", action="store_true",
                        help="print every photo's metrics per engine, relative to the first engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every image")
    args = parser.parse_args(argv)

    images = args.data / "input_training_lowres"
    alphas = args.data / "gt_training_lowres"
    for folder in (images, alphas):
        if not folder.is_dir():
            parser.error(f"{folder} not found: DATA_DIR must have the alphamatting layout")

    def log(row: EvalRow) -> None:
        if args.verbose:
            print(f"  {row.engine:<28} {row.image:<10} SAD {row.SAD:8.3f}  "
                  f"MSE {row.MSE:.5f}  {row.seconds:6.2f} s", file=sys.stderr, flush=True)

    engines: dict[str, Engine] = {name: create_engine(name) for name in args.engines}
    if args.tile:
        for name in args.engines:
            untiled = engines[name] = Recorded(engines[name])
            engines[tiled_name(name, args.tile)] = Recorded(
                create_engine(name, tile_size=args.tile, tile_context=args.tile_context,
                              tile_above_bytes=0),
                against=untiled)
    if args.reference:
        engines[REFERENCE] = WholeImageClosedForm()
    table: list[tuple[str, EvalRow]] = []
    ratios: list[tuple[str, float, float, float]] = []
    per_image: dict[str, EvalResults] = {}
    wall = time.perf_counter()
    # PyMatting prints preconditioner warnings on stdout: keep them out of the table.
    with contextlib.redirect_stdout(sys.stderr):
        status = _run(args, engines, images, alphas, log, table, ratios, per_image)
    if status:
        return status
    _print_table(per_image, table, ratios, full=args.limit is None)
    if args.per_image:
        _print_per_image(per_image, [name for name in engines if name != REFERENCE])
    if args.tile:
        _print_tiled(args, engines, per_image)
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s")
    return 0


def _run(args, engines, images, alphas, log, table, ratios, per_image) -> int:
    try:
        for trimap_set in args.trimaps:
            trimaps = args.data / "trimap_training_lowres" / trimap_set
            print(f"[{trimap_set}] engines: {', '.join(engines)}", file=sys.stderr, flush=True)
            results = evaluate_folder(images, trimaps, alphas, engines, on_result=log,
                                      limit=args.limit)
            for name in engines:
                table.append((trimap_set, results.mean(name)))
            per_image[trimap_set] = results
            if REFERENCE in engines and "closed-form" in engines:
                ours = results.mean("closed-form").SAD
                ref = results.mean(REFERENCE).SAD
                ratios.append((trimap_set, ours, ref, ours / ref))
                diffs = [abs(a.SAD - b.SAD) for a, b in
                         zip(results.rows_for("closed-form"), results.rows_for(REFERENCE))]
                print(f"[{trimap_set}] largest per-image SAD difference to the reference: "
                      f"{max(diffs):.4f}", file=sys.stderr, flush=True)
    except DimStudioError as exc:
        print(f"quality: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_table(per_image, table, ratios, full: bool) -> None:
    n = len(per_image[next(iter(per_image))].images) if per_image else 0
    print(f"\nalphamatting training set (lowres), {n} images per trimap set; "
          "errors over the unknown region; time = mean seconds per image")
    header = f"{'trimap':<8}  {'engine':<28}  {'SAD':>7}  {'MSE':>8}  {'Grad':>7}  {'Conn':>7}  {'time':>6}"
    print(header)
    print("-" * len(header))
    for trimap_set, row in table:
        print(f"{trimap_set:<8}  {row.engine:<28}  {row.SAD:7.3f}  {row.MSE:8.5f}  "
              f"{row.Gradient:7.3f}  {row.Connectivity:7.3f}  {row.seconds:6.2f}")
    if ratios:
        print("\nclosed-form mean SAD relative to PyMatting's whole-image estimate_alpha_cf "
              "(target: within 2 %):")
        for trimap_set, ours, ref, ratio in ratios:
            readme = README_SAD.get(trimap_set)
            note = f"; data README: {readme:.2f}" if readme is not None and full else ""
            print(f"  {trimap_set}: {ours:.3f} / {ref:.3f} = {ratio:.4f} "
                  f"({(ratio - 1) * 100:+.2f} %){note}")


def _print_per_image(per_image: dict[str, EvalResults], names: list[str]) -> None:
    """Every photo's metrics per engine, and each engine against the first (``names[0]``)."""
    first = names[0]
    for trimap_set, results in per_image.items():
        base = {row.image: row for row in results.rows_for(first)}
        print(f"\n[{trimap_set}] per photo (SAD, Gradient, Connectivity in thousands; "
              f"dSAD relative to {first})")
        header = (f"{'photo':<10}  {'engine':<12}  {'SAD':>7}  {'dSAD':>7}  {'MSE':>8}  {'Grad':>7}  "
                  f"{'Conn':>7}  {'time':>6}")
        print(header)
        print("-" * len(header))
        for image in results.images:
            for name in names:
                row = next((r for r in results.rows_for(name) if r.image == image), None)
                if row is None:
                    continue
                ref = base.get(image)
                change = f"{(row.SAD / ref.SAD - 1) * 100:+6.1f}%" if ref is not None and ref.SAD > 0 else ""
                print(f"{Path(image).stem:<10}  {name:<12}  {row.SAD:7.3f}  {change:>7}  {row.MSE:8.5f}  "
                      f"{row.Gradient:7.3f}  {row.Connectivity:7.3f}  {row.seconds:6.2f}")
        for name in names[1:]:
            pairs = [(base[r.image], r) for r in results.rows_for(name) if r.image in base]
            if not pairs:
                continue
            wins = sum(r.SAD < b.SAD for b, r in pairs)
            worst = max(pairs, key=lambda p: p[1].SAD / max(p[0].SAD, 1e-9))
            time_ratio = np.mean([r.seconds for _, r in pairs]) / max(np.mean([b.seconds for b, _ in pairs]), 1e-9)
            max_ratio = max(r.seconds / max(b.seconds, 1e-9) for b, r in pairs)
            print(f"[{trimap_set}] {name} against {first}: mean SAD "
                  f"{(results.mean(name).SAD / results.mean(first).SAD - 1) * 100:+.1f}%, "
                  f"wins {wins} of {len(pairs)}, worst {Path(worst[1].image).stem} "
                  f"({(worst[1].SAD / worst[0].SAD - 1) * 100:+.1f}%); time {time_ratio:.2f}x "
                  f"(largest per photo {max_ratio:.2f}x)")


def _print_tiled(args, engines, per_image) -> None:
    """Tiled against untiled, per engine and trimap set."""
    context = args.tile_context if args.tile_context is not None else "engine default"
    print(f"\ntiled ({args.tile} px cores, context {context}) against untiled, same photos; "
          "alpha differences over the unknown pixels")
    header = (f"{'trimap':<8}  {'engine':<12}  {'SAD untiled':>11}  {'SAD tiled':>9}  {'change':>8}  "
              f"{'max photo dSAD':>14}  {'max |da|':>8}  {'mean |da|':>9}  {'solves':>6}")
    print(header)
    print("-" * len(header))
    offset = 0
    for trimap_set, results in per_image.items():
        n = len(results.images)
        for name in args.engines:
            tiled = engines[tiled_name(name, args.tile)]
            a, b = results.mean(name).SAD, results.mean(tiled_name(name, args.tile)).SAD
            per = [abs(x.SAD - y.SAD) for x, y in zip(results.rows_for(name),
                                                       results.rows_for(tiled_name(name, args.tile)))]
            diffs = tiled.diffs[offset:offset + n]
            solves = tiled.solves[offset:offset + n]
            print(f"{trimap_set:<8}  {name:<12}  {a:11.3f}  {b:9.3f}  {(b / a - 1) * 100:+7.2f}%  "
                  f"{max(per, default=0):14.3f}  {max((d[0] for d in diffs), default=0):8.4f}  "
                  f"{np.mean([d[1] for d in diffs]) if diffs else 0:9.5f}  "
                  f"{np.mean(solves) if solves else 0:6.1f}")
        offset += n


if __name__ == "__main__":
    sys.exit(main())
