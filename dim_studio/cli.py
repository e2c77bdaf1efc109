"""The ``dim-studio`` command line.

Each subcommand lives in its own module with a ``register(subparsers)``
function; this file only assembles them and turns ``DimStudioError`` into one
clear line on stderr and a non-zero exit code, without a traceback. Any
other exception also ends as one line (``DIM_STUDIO_DEBUG=1`` re-raises it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from . import __version__, numba_cache
from .errors import Cancelled, DimStudioError
from .limits import DEFAULT_MAX_MEGAPIXELS, MAX_MEGAPIXELS_ENV, set_max_megapixels

log = logging.getLogger(__name__)
DEBUG_ENV = "DIM_STUDIO_DEBUG"

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
    parser.add_argument("--self-test", action="store_true",
                        help="check this installation without a screen (Qt, the bundled sample, the "
                        "default engine, the device, the weights) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from .commands import batch, evaluate, finetune, gui, matte, train, weights
    from .commands.common import positive_number

    for module in (gui, matte, batch, evaluate, train, finetune, weights):
        module.register(sub)
    # Accepted before or after the subcommand, whichever the user tries first.
    for p in (parser, *sub.choices.values()):
        p.add_argument(
            "--max-megapixels", type=positive_number, metavar="MP", default=argparse.SUPPRESS,
            help=f"largest image to read, in megapixels (default {DEFAULT_MAX_MEGAPIXELS:g}, "
            f"or ${MAX_MEGAPIXELS_ENV})",
        )
    return parser


def _unexpected(exc: BaseException) -> str:
    """One line for an exception that is not a DimStudioError: a bug, or an OS failure."""
    if isinstance(exc, MemoryError):
        return "not enough memory for this job; close other programs, narrow the unknown band or use a smaller photo"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return (f"internal error ({type(exc).__name__}: {exc}); please report it, "
            f"and set {DEBUG_ENV}=1 to see the traceback")


def _as_gui_arguments(argv: list[str], commands: Sequence[str]) -> list[str]:
    """``dim-studio photo.png [--trimap T]`` means ``dim-studio gui photo.png [--trimap T]``.

    Like any desktop program given a file ("Open with", a file manager, a
    shell): when the first word after the program's own options is neither
    a command nor one of those options, the arguments are the window's.
    """
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--max-megapixels":
            i += 2
        elif word.startswith("--max-megapixels="):
            i += 1
        elif word in commands or word in ("-h", "--help", "--version", "--self-test"):
            return argv
        else:
            return [*argv[:i], "gui", *argv[i:]]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    # Before any thread or child process can import PyMatting: its compiled
    # kernels go to the per-user cache, so later launches skip the compile.
    numba_cache.configure()
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices
    args = parser.parse_args(_as_gui_arguments(words, list(commands)))
    if args.self_test:
        from .commands.selftest import run as self_test

        return self_test()
    if args.command is None:
        args = parser.parse_args([*words, "gui"])
    if getattr(args, "max_megapixels", None) is not None:
        set_max_megapixels(args.max_megapixels)
    try:
        return _run(args)
    finally:
        set_max_megapixels(None)  # a process-wide setting must not outlive its command


def _run(args: argparse.Namespace) -> int:
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
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        log.debug("unexpected error", exc_info=True)
        print(f"dim-studio: error: {_unexpected(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
