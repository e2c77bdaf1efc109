"""The one-photo fine-tune on real photos: SAD against steps, beside closed-form.

    python bench/finetune.py ../shared/data/alphamatting_training_lowres
        [--photos GT04,GT13] [--minutes 5 | --steps N] [--lrs 1e-4,3e-5] [--weights FILE]
        [--device auto] [--trimap Trimap1] [--png bench-finetune.png]

For each photo (with its ground-truth alpha and trimap) and each learning
rate, ``training.finetune.finetune`` trains the full network for a fixed
time budget (from He-initialised weights, or from ``--weights``) and the SAD
on the photo is measured every ``--evaluate-every`` steps. Printed: SAD
against steps and seconds, steps per second, closed-form's SAD on the same
photo and trimap, and whether a collapse was detected and recovered from.
The curves are drawn into ``--png`` (OpenCV; no plotting library needed).

This is a **training-set fit**, which is what a fine-tune is. The "similar
photo" row measures the promise beyond it: the photo's foreground (estimated
from its ground truth) composited over another photo's background, matted
with the starting and the tuned weights, beside closed-form.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dim_studio.compose import cover_resize, estimate_layers  # noqa: E402
from dim_studio.engines import create_engine  # noqa: E402
from dim_studio.images import read_alpha, read_image, read_trimap  # noqa: E402
from dim_studio.metrics import sad  # noqa: E402
from dim_studio.net import load_weights, random_dim  # noqa: E402
from dim_studio.net.model import DIMConfig  # noqa: E402
from dim_studio.training.finetune import FinetuneOptions, finetune  # noqa: E402

COLOURS = [(40, 40, 220), (40, 160, 40), (200, 120, 30), (150, 40, 150), (30, 150, 200)]


def plot(curves: dict[str, list[tuple[int, float]]], references: dict[str, float], path: Path) -> None:
    """SAD (y) against steps (x), one polyline per run, dashed lines for closed-form."""
    w, h, m = 900, 520, 60
    img = np.full((h, w, 3), 255, np.uint8)
    steps = max((s for c in curves.values() for s, _ in c), default=1) or 1
    top = max([v for c in curves.values() for _, v in c] + list(references.values()) + [1e-6])
    def xy(step: float, value: float) -> tuple[int, int]:
        return int(m + (w - 2 * m) * step / steps), int(h - m - (h - 2 * m) * min(value, top) / top)
    cv2.rectangle(img, (m, m), (w - m, h - m), (0, 0, 0), 1)
    for i, (label, curve) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = np.array([xy(s, v) for s, v in curve], np.int32)
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        cv2.putText(img, label, (m + 10, m + 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    for j, (label, value) in enumerate(references.items()):
        y = xy(0, value)[1]
        for x in range(m, w - m, 12):
            cv2.line(img, (x, y), (x + 6, y), (90, 90, 90), 1)
        cv2.putText(img, f"{label} {value:.1f}", (w - m - 230, y - 4 - 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(img, "SAD on the photo (lower is better) against steps", (m, m - 20),
                cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"0 .. {steps} steps; SAD 0 .. {top:.1f}", (m, h - m + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="alphamatting training folder (input_*, gt_*, trimap_*)")
    ap.add_argument("--photos", default="GT04,GT13")
    ap.add_argument("--trimap", default="Trimap1")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="time budget per run (default 5)")
    budget.add_argument("--steps", type=int, help="steps per run instead of a time budget (comparable "
                        "between runs on a busy machine)")
    ap.add_argument("--lrs", default=None, help="learning rates to compare (default: the fine-tune's default)")
    ap.add_argument("--weights", type=Path, help="start from these weights (default: He init)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--evaluate-every", type=int, default=5)
    ap.add_argument("--png", type=Path, default=Path("bench-finetune.png"))
    args = ap.parse_args()
    if args.steps is None and args.minutes is None:
        args.minutes = 5.0
    inputs = next(args.data.glob("input_*"))
    gts = next(args.data.glob("gt_*"))
    trimaps = next(args.data.glob("trimap_*")) / args.trimap
    lrs = [float(v) for v in args.lrs.split(",")] if args.lrs else [None]
    closed_form = create_engine("closed-form")
    curves: dict[str, list[tuple[int, float]]] = {}
    references: dict[str, float] = {}
    names = [n.strip() for n in args.photos.split(",") if n.strip()]
    backgrounds = sorted(inputs.glob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            image = read_image(inputs / f"{name}.png")
            alpha = read_alpha(gts / f"{name}.png", image.shape[:2])
            trimap = read_trimap(trimaps / f"{name}.png", image.shape[:2])
            cf = sad(closed_form.estimate(image, trimap), alpha, trimap)
            references[f"{name} closed-form"] = cf
            # A similar photo: the subject over another photo of the set.
            other = next(p for p in backgrounds if p.stem != name)
            fg, _ = estimate_layers(image, alpha)
            bg = cover_resize(read_image(other), *image.shape[:2])
            similar = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
            cf_similar = sad(closed_form.estimate(similar, trimap), alpha, trimap)
            print(f"\n{name}: {image.shape[1]}x{image.shape[0]}, closed-form SAD {cf:.2f}; "
                  f"similar photo (over {other.name}): closed-form SAD {cf_similar:.2f}")
            for lr in lrs:
                out = Path(tmp) / f"{name}-{lr}.safetensors"
                options = FinetuneOptions(minutes=args.minutes, steps=args.steps, lr=lr, device=args.device,
                                          evaluate_every=args.evaluate_every)
                start = time.perf_counter()
                times: dict[int, float] = {}

                def progress(update, times=times, start=start) -> None:  # noqa: ANN001
                    times[update.step] = time.perf_counter() - start

                r = finetune(image, alpha, out, trimap=trimap, base=args.weights, options=options,
                             image_name=f"{name}.png", progress=progress)
                label = f"{name} lr {r.lr:g}"
                curves[label] = r.sad_history
                print(f"  lr {r.lr:g}: {r.steps} steps in {r.seconds:.0f} s ({r.steps / r.seconds:.3f} steps/s, "
                      f"{r.device} {r.precision}); recoveries {r.recoveries}")
                print("     step   seconds      SAD")
                for step, value in r.sad_history:
                    print(f"   {step:6d}  {times.get(step, 0.0):8.0f}  {value:7.2f}")
                print(f"   before {r.sad_before:.2f} -> best {r.sad_after:.2f} at step {r.best_step}; "
                      f"closed-form {cf:.2f} ({'beats' if r.sad_after < cf else 'does not beat'} closed-form)")
                start_model = (load_weights(args.weights)[0] if args.weights else
                               random_dim(DIMConfig(refine=False), seed=0))
                tuned, info = load_weights(out)
                before = create_engine("dim", model=start_model, info=info, device=args.device)
                after = create_engine("dim", model=tuned, info=info, device=args.device)
                print(f"   similar photo: SAD start {sad(before.estimate(similar, trimap), alpha, trimap):.2f}, "
                      f"tuned {sad(after.estimate(similar, trimap), alpha, trimap):.2f}, "
                      f"closed-form {cf_similar:.2f}")
    plot(curves, references, args.png)
    print(f"\nwrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
