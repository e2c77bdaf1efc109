"""``dim-studio matte``: one photo and its trimap to an alpha (and cutout/composite)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import add_background_option, add_engine_options, engine_choice
from .progress import ProgressBar


# compose.DEFAULT_DECONTAMINATION, written out so that --help imports nothing heavy
# (tests/test_decontaminate.py checks that the two agree).
DECONTAMINATE_DEFAULT = 1.0


def _strength(text: str) -> float:
    """argparse ``type=`` for --decontaminate: a number (its range is checked when the command runs)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got '{text}'") from None


def add_decontaminate_option(parser: argparse.ArgumentParser) -> None:
    """``--decontaminate 0..1`` (shared with ``batch``)."""
    parser.add_argument(
        "--decontaminate", type=_strength, default=DECONTAMINATE_DEFAULT, metavar="0..1",
        help="edge colours of the cutout and composite: 0 keeps the photo's own colours "
        "(the old background's cast stays in soft edges), 1 uses the estimated foreground "
        f"colours (default {DECONTAMINATE_DEFAULT:g}); the alpha is the same either way",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "matte",
        help="matte one photo with its trimap",
        description="Predict the alpha matte of IMAGE from TRIMAP and write it as a PNG; "
        "optionally also an RGBA cutout and a composite over a new background.",
    )
    p.add_argument("image", metavar="IMAGE", help="the photo")
    p.add_argument("--trimap", required=True, metavar="TRIMAP",
                   help="trimap: black = background, white = foreground, grey = unknown")
    p.add_argument("-o", "--output", required=True, metavar="ALPHA.png", help="alpha output file")
    add_engine_options(p)
    p.add_argument("--cutout", metavar="CUTOUT.png",
                   help="also write an RGBA cutout with estimated foreground colours")
    p.add_argument("--composite", metavar="OUT.png",
                   help="also write a composite over --background")
    add_background_option(p)
    add_decontaminate_option(p)
    p.add_argument("--alpha-depth", type=int, choices=(8, 16), default=8,
                   help="bit depth of the written PNGs (default 8)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: registering the command must not load NumPy or OpenCV.
    from ..atomic import check_outputs
    from ..export import check_decontamination, resolve_background
    from ..images import read_image, read_trimap
    from ..workflows.export import ExportRequest, run_export
    from ..workflows.jobs import JobContext

    image_path = Path(args.image)
    # A --background that names a file is an input even without --composite.
    bg_file = args.background if args.background and os.path.isfile(args.background) else None
    inputs = {"the photo": args.image, "the trimap": args.trimap, "the --background image": bg_file}
    outputs = {"alpha": args.output, "cutout": args.cutout, "composite": args.composite}
    check_outputs(outputs, inputs)  # before the slow part; run_export checks again
    strength = check_decontamination(args.decontaminate)
    # Parse the background before the slow part so a typo fails at once.
    background = resolve_background(args.background) if args.composite else None

    trimap = read_trimap(args.trimap, image_path=image_path)  # sizes from both headers first
    image = read_image(image_path)
    choice = engine_choice(args)
    request = ExportRequest(
        image, trimap, choice, alpha_path=args.output, cutout_path=args.cutout,
        composite_path=args.composite, background=background, depth=args.alpha_depth,
        decontaminate=strength, inputs=inputs,
    )
    with ProgressBar(choice.name, enabled=not args.quiet) as bar:
        result = run_export(JobContext.standalone(progress=bar.update), request)

    print(f"{image_path.name}: {result.engine_label} in {result.alpha_seconds:.2f} s")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in result.paths:
        print(f"wrote {path}")
    return 0
