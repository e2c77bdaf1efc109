"""``dim-studio eval``: score engines on a folder with ground-truth alphas."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from .common import add_engine_options, engine_choice, whole_number

if TYPE_CHECKING:
    from ..evaluation import EvalRow


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="measure engines against ground-truth alphas (SAD, MSE, Gradient, Connectivity)",
        description="Matte every photo in --images with its trimap and compare the result with "
        "the ground-truth alpha of the same name. Prints a table per image and the mean per "
        "engine of SAD, MSE, Gradient and Connectivity (over the trimap's unknown region; SAD, "
        "Gradient and Connectivity are sums divided by 1000, MSE is the mean squared error of "
        "alpha in 0-1) and the engine's time in seconds. A photo that cannot be evaluated "
        "(unreadable, too large, a trimap or alpha of another size) is reported on stderr and "
        "left out of the table and the means; the others are still evaluated, and the exit "
        "status is 1. An engine that cannot run (no weights, out of memory) is shown as a row "
        "with the reason and the others are evaluated; the exit status is 1 only if no engine "
        "could run.",
    )
    p.add_argument("--images", required=True, metavar="DIR", help="folder of photos")
    p.add_argument("--trimaps", required=True, metavar="DIR", help="folder of trimaps")
    p.add_argument("--alphas", required=True, metavar="DIR",
                   help="folder of ground-truth alphas (greyscale, or grey stored as RGB)")
    add_engine_options(p, multiple=True)
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--limit", type=whole_number(1), metavar="N", help="only the first N photos")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: registering the command must not load NumPy or OpenCV.
    from tqdm import tqdm

    from ..engines import create_engine
    from ..evaluation import create_engines, evaluate_folder

    choices = [engine_choice(args, name) for name in dict.fromkeys(args.engines or [None])]
    engines, not_run = create_engines({
        choice.name: (lambda choice=choice: create_engine(choice.name, **choice.options)) for choice in choices
    })

    bar = tqdm(unit="run", file=sys.stderr, leave=False,
               disable=args.quiet or not sys.stderr.isatty())

    def on_result(row: EvalRow) -> None:
        bar.set_description_str(f"{row.engine} {row.image}")
        bar.update(1)

    try:
        # stdout is for the table: solver chatter (PyMatting prints warnings) goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            results = evaluate_folder(args.images, args.trimaps, args.alphas, engines,
                                      on_result=on_result, limit=args.limit, not_run=not_run)
    finally:
        bar.close()

    for name, why in results.skipped:
        print(f"dim-studio: note: skipped {name}: {why}", file=sys.stderr)
    for name, why in results.failed:
        print(f"dim-studio: error: failed {name}: {why}", file=sys.stderr)
    # The table shows each reason's first sentence; here is all of it (what to do about it).
    level = "warning" if results.engines else "error"
    for name, why in results.not_run:
        print(f"dim-studio: {level}: the {name} engine could not run: {' '.join(why.split())}", file=sys.stderr)
    print(results.format_table())
    if args.csv:
        print(f"wrote {results.write_csv(args.csv)}")
    if args.json:
        print(f"wrote {results.write_json(args.json)}")
    if not results.engines:
        print("dim-studio: error: no engine could run, so nothing was evaluated", file=sys.stderr)
        return 1
    if results.failed:
        total = len(results.failed) + len(results.images)
        print(f"dim-studio: error: {len(results.failed)} of {total} photos could not be "
              f"evaluated; the means cover the other {len(results.images)}", file=sys.stderr)
        return 1
    return 0
