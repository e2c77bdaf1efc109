"""The automatic preview resolution: the region cap alone against the region and unknown-pixel caps.

    python bench/preview_scale.py [FOLDER] [--trimap-sets Trimap1,Trimap2] [--engine closed-form]

FOLDER defaults to ../shared/data/alphamatting_training_lowres (the
alphamatting.com training layout: ``input_training_lowres/``,
``trimap_training_lowres/TrimapK/``). Per photo whose scale the unknown cap
changes, side by side in one run: the scale ``preview_scale.choose_scale``
picks with the solved-region cap only (``auto_pixel_budget``) and with the
unknown-pixel cap as well (``auto_unknown_budget``, what the window uses),
the preview's time at each (``estimate_alpha_scaled``, as
``workflows.preview`` runs it), and how far each preview is from the
engine's full-resolution alpha (mean |dA| over the photo). A summary line per
trimap set gives the medians and the largest time. Photos whose scale the
cap leaves alone are only counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dim_studio.engines import create_engine  # noqa: E402
from dim_studio.images import read_image, read_trimap  # noqa: E402
from dim_studio.trimap import FOREGROUND, UNKNOWN  # noqa: E402
from dim_studio.workflows.preview_scale import (  # noqa: E402
    AUTO, auto_pixel_budget, auto_unknown_budget, choose_scale, estimate_alpha_scaled,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dim_speed import cpu_name, table  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alphamatting_training_lowres"


def timed_preview(engine, image, trimap, scale, full) -> tuple[float, float]:
    """(seconds, mean |preview alpha - full alpha|) of the preview at ``scale``."""
    start = time.perf_counter()
    alpha = estimate_alpha_scaled(engine, image, trimap, scale).alpha
    return time.perf_counter() - start, float(np.mean(np.abs(alpha - full)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--trimap-sets", default="Trimap1,Trimap2")
    parser.add_argument("--engine", default="closed-form")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    photos = sorted((folder / "input_training_lowres").glob("*.png"))
    if not photos:
        raise SystemExit(f"no photos in {folder / 'input_training_lowres'}")
    engine = create_engine(args.engine)
    budget, unknown_budget = auto_pixel_budget(args.engine, None), auto_unknown_budget(args.engine)
    warm = np.zeros((16, 16), np.uint8)  # compile the solver's kernels before any clock starts
    warm[4:12, 4:12] = UNKNOWN
    warm[7:9, 7:9] = FOREGROUND
    engine.estimate(np.zeros((16, 16, 3), np.float32), warm)
    print(f"machine: {cpu_name()}; engine {args.engine}; region cap {budget} px, unknown cap {unknown_budget} px\n")
    for trimap_set in args.trimap_sets.split(","):
        rows, before, after = [], [], []
        for path in photos:
            image = read_image(path)
            trimap = read_trimap(folder / "trimap_training_lowres" / trimap_set / path.name, image.shape)
            region_only = choose_scale(trimap, AUTO, budget, engine.context_margin)
            both = choose_scale(trimap, AUTO, budget, engine.context_margin, unknown_budget)
            if both == region_only:
                continue
            full = engine.estimate(image, trimap)
            (t0, d0), (t1, d1) = (timed_preview(engine, image, trimap, s, full) for s in (region_only, both))
            before.append((t0, d0))
            after.append((t1, d1))
            rows.append([path.stem, str(int(np.count_nonzero(trimap == UNKNOWN))), f"{region_only:.2f}",
                         f"{both:.2f}", f"{t0:.2f}", f"{t1:.2f}", f"{d0:.4f}", f"{d1:.4f}"])
        print(f"{trimap_set}: the unknown cap changes the scale on {len(rows)} of {len(photos)} photos")
        if not rows:
            continue
        table(["photo", "unknown px", "scale region cap", "scale both caps", "s region cap", "s both caps",
               "|dA| region cap", "|dA| both caps"], rows)
        for name, runs in (("region cap", before), ("both caps", after)):
            print(f"  {name}: median {statistics.median(t for t, _ in runs):.2f} s (max "
                  f"{max(t for t, _ in runs):.2f}), median |dA| vs full {statistics.median(d for _, d in runs):.4f} "
                  f"(max {max(d for _, d in runs):.4f})")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
