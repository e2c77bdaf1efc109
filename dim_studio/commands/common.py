"""Argument helpers shared by several subcommands.

Importing a command module must stay cheap: ``build_parser`` imports every
one of them, so ``dim-studio --help`` and ``--version`` would otherwise pay
for NumPy, OpenCV and the engines. The engine registry is therefore read
only when ``--engine`` is parsed or its help is shown, and heavy modules are
imported inside the functions that run a command.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..workflows.engine_choice import EngineChoice

# The offline default is named here, not imported: --help must not import NumPy
# (tests/test_launch.py checks it matches engine_choice.OFFLINE_DEFAULT).
_ENGINE_HELP = "matting engine: {names} (default: dim if weights are found, else ifm)"


def _engine_names() -> list[str]:
    from ..engines import engine_names  # NumPy and OpenCV: only when --engine is used or explained

    return engine_names()


class _EngineOption:
    """``--engine``'s choices and help, read from the engine registry when argparse needs them."""

    _help_suffix = ""

    @property
    def choices(self) -> list[str]:
        return _engine_names()

    @choices.setter
    def choices(self, value: Any) -> None:  # set by argparse.Action.__init__; the registry decides
        pass

    @property
    def help(self) -> str:
        return _ENGINE_HELP.format(names=", ".join(_engine_names())) + self._help_suffix

    @help.setter
    def help(self, value: Any) -> None:
        pass


class _StoreEngine(_EngineOption, argparse._StoreAction):
    pass


class _AppendEngine(_EngineOption, argparse._AppendAction):
    _help_suffix = "; repeat to compare engines"


def add_engine_options(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    """``--engine`` (default: dim when weights are found, else ifm),
    ``--weights`` and ``--device``."""
    if multiple:
        parser.add_argument("--engine", dest="engines", action=_AppendEngine, metavar="NAME")
    else:
        parser.add_argument("--engine", action=_StoreEngine, metavar="NAME")
    parser.add_argument("--weights", metavar="FILE", help="weights file for the dim engine")
    parser.add_argument("--device", metavar="DEVICE", default=None,
                        help="dim engine device: auto (default), cuda, mps or cpu")


def engine_choice(args: argparse.Namespace, name: str | None = None) -> EngineChoice:
    """The engine ``--engine`` (or ``name``) names, configured from ``--weights`` and ``--device``.

    The choice's notes (a weights file that cannot be used, so the default is
    not dim) go to stderr, one line each.
    """
    from ..workflows.engine_choice import choose_engine

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
