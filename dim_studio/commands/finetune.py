"""``dim-studio finetune``: teach the network one photo (argument parsing and printing only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .progress import StepBar
from .common import positive_number, whole_number

EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune the network on one photo and its correct alpha",
        description="Teach the network one hard photo: samples are drawn from the photo "
        "(random crops, flips and trimaps, over its own background or new ones), the network "
        "trains with the paper's losses, and the weights with the lowest SAD on the photo are "
        "written to -o. Without --weights it starts from He-initialised weights. Ctrl-C keeps "
        "the best weights so far. Use the result with --engine dim --weights OUT.",
    )
    p.add_argument("image", metavar="IMAGE", help="the photo")
    p.add_argument("--alpha", required=True, metavar="ALPHA", help="its correct alpha")
    p.add_argument("--trimap", metavar="TRIMAP", help="the trimap you use for it (also used in training)")
    p.add_argument("--weights", metavar="BASE", help="weights to start from (default: none, He init)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=whole_number(1), metavar="N", help="training steps (default 200)")
    length.add_argument("--minutes", type=positive_number, metavar="M", help="train for M minutes")
    p.add_argument("--lr", type=positive_number, metavar="LR",
                   help="Adam learning rate (default 3e-5 from scratch, 1e-5 from --weights)")
    p.add_argument("--backgrounds", metavar="DIR", help="folder of other backgrounds to composite over")
    p.add_argument("--device", metavar="DEVICE", help="auto (default), cuda, mps or cpu")
    p.add_argument("--seed", type=whole_number(0), default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors", help="weights file to write")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _postfix(update: Any) -> dict[str, str]:
    shown = {"loss": f"{update.loss:.4f}"}
    if update.best_sad is not None:
        shown["best SAD"] = f"{update.best_sad:.2f}"
    return shown


def run(args: argparse.Namespace) -> int:
    from ..workflows.finetune import FinetuneRequest, run_finetune
    from ..workflows.jobs import JobContext

    request = FinetuneRequest(
        image=args.image, alpha=args.alpha, out=args.output, trimap=args.trimap, weights=args.weights,
        steps=args.steps, minutes=args.minutes, lr=args.lr, backgrounds=args.backgrounds,
        device=args.device, seed=args.seed,
    )
    bar = StepBar(not args.quiet, _postfix)
    try:
        outcome = run_finetune(JobContext.standalone(partial=bar), request)
    finally:
        bar.close()
    r = outcome.result
    for note in r.notes:
        print(f"dim-studio: note: {note}", file=sys.stderr)
    rows = [("before (starting weights)", r.sad_before), (f"after ({r.best_step} of {r.steps} steps)", r.sad_after)]
    if outcome.closed_form_sad is not None:
        rows.append(("closed-form (no training)", outcome.closed_form_sad))
    width = max(len(name) for name, _ in rows)
    print(f"SAD on {args.image} (lower is better; {r.steps} steps in {r.seconds:.0f} s on {r.device}, "
          f"{r.precision}, lr {r.lr:g})")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value:8.3f}")
    print(f"wrote {r.out}")
    if r.cancelled:
        print("dim-studio: stopped early; the file holds the best weights so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
