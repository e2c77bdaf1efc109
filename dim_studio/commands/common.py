"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable

from ..engines import engine_names
from ..workflows.engine_choice import EngineChoice, choose_engine


def add_engine_options(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    """``--engine`` (default: dim when weights are found, else closed-form),
    ``--weights`` and ``--device``."""
    help_text = "matting engine: " + ", ".join(engine_names()) + " (default: dim if weights are found, else closed-form)"
    if multiple:
        parser.add_argument("--engine", dest="engines", action="append", metavar="NAME",
                            choices=engine_names(), help=help_text + "; repeat to compare engines")
    else:
        parser.add_argument("--engine", metavar="NAME", choices=engine_names(), help=help_text)
    parser.add_argument("--weights", metavar="FILE", help="weights file for the dim engine")
    parser.add_argument("--device", metavar="DEVICE", default=None,
                        help="dim engine device: auto (default), cuda, mps or cpu")


def engine_choice(args: argparse.Namespace, name: str | None = None) -> EngineChoice:
    """The engine ``--engine`` (or ``name``) names, configured from ``--weights`` and ``--device``.

    The choice's notes (a weights file that cannot be used, so the default is
    not dim) go to stderr, one line each.
    """
    choice = choose_engine(
        name if name is not None else getattr(args, "engine", None),
        weights=getattr(args, "weights", None), device=getattr(args, "device", None),
    )
    for note in choice.notes:
        print(f"dim-studio: note: {note}", file=sys.stderr)
    return choice


def add_background_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--background", metavar="COLOR|IMAGE", default="white",
        help="composite background: a colour (#rrggbb, r,g,b or a name), an image file, "
        "or 'checkerboard' (default: white)",
    )


def positive_number(text: str) -> float:
    """argparse ``type=`` for options that must be a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    """argparse ``type=`` for a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value
    return parse
