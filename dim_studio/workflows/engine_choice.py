"""From what the user chose (engine, weights, device) to an engine name and its options.

The command line's ``--engine/--weights/--device`` and the window's toolbar go
through ``choose_engine``, the batch dialog (whose engine list is its own)
through ``engine_options``: the same choices build the same engine everywhere.

Precision is decided per purpose: exports, batches and evaluations use the
engine's default (fp32 on the CPU) unless the user asks for one
(``precision=``); the live preview asks for ``PREVIEW_PRECISION`` through
``preview_options`` (bf16 autocast on a CPU with native bf16, fp16 on CUDA,
else fp32). The preview's engine and the export's are then different
``EngineCache`` entries, but they share one loaded network: the DIM engine's
precision is an autocast setting, and ``engines.dim.load_model`` keeps one
copy of the weights per file and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engines import engine_info

#: The engine used when there are no network weights: it needs no download.
#: Information-flow matting: on the 27 alphamatting training photos its mean
#: SAD is 19.8 % (Trimap1) and 20.0 % (Trimap2) below closed-form's, in 2.4x
#: and 1.9x the time (README, "Engines").
OFFLINE_DEFAULT = "ifm"
AUTO_DEVICE = "auto"
#: What the live preview asks a network engine for: the fastest precision
#: that is good enough to judge a matte (``engines.dim.PRECISIONS``).
PREVIEW_PRECISION = "auto"
#: Engines too slow to re-solve after every stroke, and the faster engine the
#: live preview shows first while they compute. ifm takes about twice to three
#: times closed-form's time on the same pixels (README, "Engines"), and its
#: matte differs mostly in fine detail, so closed-form's comes first and ifm's
#: replaces it once the user pauses; a new stroke cancels the refinement.
PREVIEW_STAND_INS: dict[str, str] = {"ifm": "closed-form"}


@dataclass(frozen=True)
class EngineChoice:
    """An engine to create: ``EngineCache.get(choice.name, choice.options)``."""

    name: str
    options: dict[str, Any]
    #: What the user should know about the choice: the default is not dim
    #: because the weights file found (or named) cannot be used, and why.
    notes: tuple[str, ...] = ()


def engine_options(
    name: str, *, weights: str | None = None, device: str | None = None, precision: str | None = None
) -> dict[str, Any]:
    """Constructor options for engine ``name``: weights, device and precision matter only to engines that load a network.

    ``precision`` None keeps the engine's default (fp32 on the CPU, fp16 on CUDA).
    """
    if not engine_info(name).needs_weights:
        return {}
    options: dict[str, Any] = {}
    if weights:
        options["weights"] = str(weights)
    if device and device != AUTO_DEVICE:
        options["device"] = device
    if precision:
        options["precision"] = precision
    return options


def preview_options(choice: EngineChoice) -> dict[str, Any]:
    """``choice``'s options for a live preview: a network engine gets ``PREVIEW_PRECISION``.

    A precision the user chose explicitly is kept. Classical engines' options
    are returned unchanged.
    """
    if not engine_info(choice.name).needs_weights or choice.options.get("precision"):
        return dict(choice.options)
    return {**choice.options, "precision": PREVIEW_PRECISION}


def preview_stand_in(choice: EngineChoice) -> EngineChoice | None:
    """The engine the live preview shows first for ``choice`` (``PREVIEW_STAND_INS``), or None."""
    stand_in = PREVIEW_STAND_INS.get(choice.name)
    return None if stand_in is None else EngineChoice(stand_in, engine_options(stand_in))


def default_engine(weights: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The default engine and the notes that explain it.

    ``dim`` when usable weights are found (``weights`` first), else the
    offline default. A weights file that is found or named but cannot be used
    (damaged, invalid metadata, wrong shapes, missing) never breaks the
    offline engines: the default falls back, with a note saying which file
    and why. Imports torch (through the weights search) only when there is a
    network engine to look for.
    """
    from .weights import weights_status

    status = weights_status(weights)
    if status.path is not None:
        return "dim", ()
    if status.unusable is not None:
        return OFFLINE_DEFAULT, (f"{status.problem}; using the {OFFLINE_DEFAULT} engine instead of dim",)
    return OFFLINE_DEFAULT, ()


def default_engine_name(weights: str | None = None) -> str:
    """``dim`` when usable weights can be found (``weights`` first), else the offline default."""
    return default_engine(weights)[0]


def choose_engine(
    name: str | None, *, weights: str | None = None, device: str | None = None, precision: str | None = None
) -> EngineChoice:
    """The engine the user asked for (or the default, with its notes) and its options.

    A device other than auto given with an engine that runs on the CPU (the
    classical solvers) adds a note saying so: the device is not silently ignored.
    """
    notes: tuple[str, ...] = ()
    resolved = name
    if not resolved:
        resolved, notes = default_engine(weights)
    if device and device != AUTO_DEVICE and not engine_info(resolved).needs_weights:
        notes += (f"the {resolved} engine runs on the CPU; the device ({device}) applies only to the dim engine",)
    return EngineChoice(
        resolved, engine_options(resolved, weights=weights, device=device, precision=precision), notes
    )


__all__ = [
    "AUTO_DEVICE", "OFFLINE_DEFAULT", "PREVIEW_PRECISION", "PREVIEW_STAND_INS", "EngineChoice", "choose_engine",
    "default_engine", "default_engine_name", "engine_options", "preview_options", "preview_stand_in",
]
