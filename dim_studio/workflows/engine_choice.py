"""From what the user chose (engine, weights, device) to an engine name and its options.

The command line's ``--engine/--weights/--device`` and the window's toolbar go
through ``choose_engine``, the batch dialog (whose engine list is its own)
through ``engine_options``: the same choices build the same engine everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engines import engine_info

#: The engine used when there are no network weights: it needs no download.
OFFLINE_DEFAULT = "closed-form"
AUTO_DEVICE = "auto"


@dataclass(frozen=True)
class EngineChoice:
    """An engine to create: ``EngineCache.get(choice.name, choice.options)``."""

    name: str
    options: dict[str, Any]


def engine_options(name: str, *, weights: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Constructor options for engine ``name``: weights and device matter only to engines that load a network."""
    if not engine_info(name).needs_weights:
        return {}
    options: dict[str, Any] = {}
    if weights:
        options["weights"] = str(weights)
    if device and device != AUTO_DEVICE:
        options["device"] = device
    return options


def default_engine_name(weights: str | None = None) -> str:
    """``dim`` when weights can be found (``weights`` first), else the offline default.

    Imports torch (through the weights search) only when there is a network
    engine to look for.
    """
    from .weights import weights_status

    return "dim" if weights_status(weights).path is not None else OFFLINE_DEFAULT


def choose_engine(
    name: str | None, *, weights: str | None = None, device: str | None = None
) -> EngineChoice:
    """The engine the user asked for (or the default) with its options."""
    resolved = name or default_engine_name(weights)
    return EngineChoice(resolved, engine_options(resolved, weights=weights, device=device))


__all__ = ["AUTO_DEVICE", "OFFLINE_DEFAULT", "EngineChoice", "choose_engine", "default_engine_name", "engine_options"]
