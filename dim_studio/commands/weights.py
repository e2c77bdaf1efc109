"""`dim-studio weights ...`: import, inspect and download DIM weights.

``register(subparsers)`` adds the ``weights`` command to the main parser;
each handler takes the parsed ``args`` and returns an exit code. Errors are
raised as DimStudioError for the CLI to print. torch is imported only when a
handler runs, so registering the commands keeps ``dim-studio --help`` fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import positive_number

__all__ = ["register"]

_SOURCES = ("openmmlab", "torchvision-vgg16", "vgg16-npz")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``weights`` (with ``import``, ``info``, ``download``) to ``subparsers``."""
    parser = subparsers.add_parser(
        "weights",
        help="import, inspect and download DIM network weights",
        description="Import, inspect and download weights for the DIM engine.",
    )
    sub = parser.add_subparsers(dest="weights_command", metavar="{import,info,download}")
    sub.required = True

    p = sub.add_parser(
        "import",
        help="convert a checkpoint (OpenMMLab DIM, torchvision VGG-16, vgg16_weights.npz) to .safetensors",
        description=(
            "Convert a checkpoint into DIM Studio's weights format. The source is detected "
            "from the file's contents unless --from names it."
        ),
    )
    p.add_argument("src", type=Path, help="checkpoint to convert (.pth or .npz)")
    p.add_argument(
        "-o", "--output", type=Path, default=None,
        help="output .safetensors file (default: SRC's name in the user data folder, where the dim "
        "engine looks for weights; elsewhere, use the file with --weights or $DIM_STUDIO_WEIGHTS)",
    )
    p.add_argument("--from", dest="source", choices=_SOURCES, default=None, help="checkpoint kind (default: detect)")
    p.add_argument(
        "--conv6", choices=("1x1", "7x7"), default=None,
        help="conv6 for VGG-16 initialisation: 1x1 512 (default) or the paper's 7x7 4096 converted fc6",
    )
    p.add_argument("--no-refine", action="store_true", help="leave out the refinement stage")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "info",
        help="show a weights file's architecture, normalisation, provenance and size",
        description="Describe a weights file; without FILE, the one the app would use.",
    )
    p.add_argument("file", type=Path, nargs="?", default=None, help=".safetensors weights file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "download",
        help="download, verify and install published weights",
        description=(
            "Download OpenMMLab's published DIM stage-3 checkpoint (about 100 MB), check its "
            "sha256, convert it and install it as dim-stage3.safetensors in the user data folder. "
            "An interrupted download resumes when run again."
        ),
    )
    p.add_argument("name", choices=("dim-stage3",), help="which weights")
    p.add_argument("--url", default=None, help="download from this address instead (e.g. a mirror)")
    p.add_argument("--dest", type=Path, default=None, help="install folder (default: the user data folder)")
    p.add_argument(
        "--deadline", type=positive_number, default=None, metavar="MINUTES",
        help="give up after this many minutes, keeping what arrived for a resume (default 60)",
    )
    p.set_defaults(func=cmd_download)
    return parser


def cmd_import(args: argparse.Namespace) -> int:
    from ..net.model import DIMConfig
    from ..workflows.weights import install_weights, search_note

    config = None
    if args.conv6 is not None or args.no_refine:
        config = DIMConfig(conv6=args.conv6 or "1x1", refine=not args.no_refine)
    installed = install_weights(args.src, args.output, source=args.source, config=config)
    print(f"Wrote {installed.path}")
    print(installed.summary)
    note = search_note(installed.path)
    if note:
        print(f"dim-studio: {note}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..errors import WeightsError
    from ..net.weights import read_weights_info
    from ..workflows.weights import weights_status

    path = args.file
    if path is None:
        status = weights_status()
        if status.unusable is not None:
            raise WeightsError(status.problem)  # names the file and what is wrong with it
        if status.path is None:
            raise WeightsError(status.explain())
        path = status.path
        print(f"Weights the app would use: {path}")
    print(read_weights_info(path).describe())
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from ..workflows.weights import download_weights

    deadline = None if args.deadline is None else 60.0 * args.deadline
    installed = download_weights(args.name, url=args.url, dest_dir=args.dest, progress_bar=True, deadline=deadline)
    print(f"Installed {installed.path}")
    print(installed.summary)
    return 0
