"""Matting quality on the alphamatting.com training set (low resolution).

    python bench/quality.py DATA_DIR [--trimaps Trimap1 Trimap2]
        [--engines closed-form lkm knn] [--limit N] [--reference]

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


if __name__ == "__main__":
    sys.exit(main())
