"""``dim-studio gui``: the desktop application (also the default command)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui",
        help="open the desktop application (the default)",
        description="Open the DIM Studio window, optionally on IMAGE with its trimap.",
    )
    p.add_argument("image", nargs="?", metavar="IMAGE", help="photo to open")
    p.add_argument("--trimap", metavar="TRIMAP", help="trimap to load with the photo")
    p.add_argument("--engine", metavar="NAME", help="engine to start with")
    p.add_argument("--weights", metavar="FILE", help="weights file for the dim engine")
    p.add_argument("--device", metavar="DEVICE", help="auto, cuda, mps or cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that the command line never loads Qt unless asked to.
    from ..gui.app import run_app

    return run_app(args)
