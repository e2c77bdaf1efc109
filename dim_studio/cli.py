"""The ``dim-studio`` command line.

Each subcommand lives in its own module with a ``register(subparsers)``
function; this file only assembles them and turns ``DimStudioError`` into one
clear line on stderr and a non-zero exit code, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .errors import Cancelled, DimStudioError

EXIT_ERROR = 1
EXIT_CANCELLED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dim-studio",
        description="Cut subjects out of photos with a soft alpha matte "
        "(Deep Image Matting and classical solvers). Without a subcommand the "
        "desktop application opens.",
    )
    parser.add_argument("--version", action="version", version=f"dim-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from .commands import batch, evaluate, gui, matte, weights

    for module in (gui, matte, batch, evaluate, weights):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *(argv or sys.argv[1:])])
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("dim-studio: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("dim-studio: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except DimStudioError as exc:
        print(f"dim-studio: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
