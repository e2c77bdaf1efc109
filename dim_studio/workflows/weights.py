"""Network weights as the user meets them: which file is used (or exactly why none), installing, downloading.

Both front ends call these: ``dim-studio weights import|download|info`` and
the window's Weights menu, the toolbar's engine list and the batch dialog.
Everything that needs torch imports it inside the function, so asking for
the status of a missing torch install gives an answer, not an ImportError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import DimStudioError, WeightsError
from ..paths import user_data_dir

if TYPE_CHECKING:  # the network module imports torch; only the type is needed here
    from ..net.model import DIMConfig

NO_TORCH_PROBLEM = "The dim engine needs torch, which is not installed in this environment."
CLASSICAL_NEED_NO_WEIGHTS = "The classical engines (closed-form, ifm, lkm, knn) need no weights."
NO_TORCH_HELP = f"{NO_TORCH_PROBLEM} {CLASSICAL_NEED_NO_WEIGHTS}"


@dataclass(frozen=True)
class WeightsStatus:
    """The weights the dim engine would use, or exactly why there are none and how to get some."""

    path: Path | None
    problem: str = ""  # a named file that is missing, a broken file, a folder with no weights, no torch
    help: str = ""     # how to get weights, with this machine's folders: shell commands (the CLI)
    gui_help: str = ""  # the same, naming the window's Weights menu entries (``explain(gui=True)``)
    searched: tuple[tuple[str, Path], ...] = field(default_factory=tuple)
    #: A weights file that the user named, or the search found, but that
    #: cannot be used (missing, damaged, invalid metadata, wrong shapes);
    #: ``problem`` says why. The dim engine is then not offered, and the
    #: default engine is the offline one, with a note saying so.
    unusable: Path | None = None

    @property
    def found(self) -> bool:
        return self.path is not None

    def explain(self, gui: bool = False) -> str:
        """Why there are no weights, where we looked, and the fix: one paragraph for the CLI or a dialog.

        ``gui``: the fix names the window's Weights menu entries, not shell commands.
        """
        if self.path is not None:
            return f"The dim engine uses {self.path}."
        lines = [self.problem or "No weights found for the dim engine."]
        if self.searched and self.unusable is None:
            lines.append("Looked in:")
            lines.extend(f"  {label}: {place}" for label, place in self.searched)
        advice = (self.gui_help or self.help) if gui else self.help
        if advice:
            lines.append(advice)
        return "\n".join(lines)


def weights_status(explicit: str | os.PathLike[str] | None = None) -> WeightsStatus:
    """Search for weights in the documented order (README, "dim-studio weights") and check the file found.

    Never raises: a missing, damaged or invalid file is a status with its
    ``problem``, never an exception, so that a broken file on the search
    path cannot break the engines that need no weights. The check reads the
    file's header only (format, metadata, every key and shape), not its
    tensors. Imports torch (the weights module needs it): call it off the
    GUI thread.
    """
    try:
        from ..net.weights import (
            ENV_WEIGHTS, HOW_TO_GET_WEIGHTS, check_weights, find_weights, how_to_get_weights,
            weights_search_locations,
        )
    except ImportError:
        return WeightsStatus(None, NO_TORCH_PROBLEM, CLASSICAL_NEED_NO_WEIGHTS, gui_help=CLASSICAL_NEED_NO_WEIGHTS)
    searched = tuple(weights_search_locations(explicit))
    advice = {"help": how_to_get_weights(), "gui_help": how_to_get_weights(gui=True)}
    try:
        path = find_weights(explicit)
    except DimStudioError as exc:
        # find_weights fails only for the first place the user named; its message
        # ends with the generic advice, which ``help`` gives with this machine's folders
        named = next((place for label, place in searched if label in ("--weights", ENV_WEIGHTS)), None)
        problem = str(exc).removesuffix(" " + HOW_TO_GET_WEIGHTS)
        return WeightsStatus(None, problem, searched=searched, unusable=named, **advice)
    if path is None:
        return WeightsStatus(None, "No weights found for the dim engine.", searched=searched, **advice)
    try:
        check_weights(path)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, it is a status, not a crash
        problem = str(exc) if isinstance(exc, DimStudioError) else f"cannot read {path}: {exc}"
        return WeightsStatus(None, problem, searched=searched, unusable=path, **advice)
    return WeightsStatus(path, "", searched=searched, **advice)


def search_note(path: str | os.PathLike[str], explicit: str | os.PathLike[str] | None = None) -> str:
    """Whether the weights search finds ``path`` (a file just installed), and if not, how to use it.

    "" when the dim engine will use it, or when it is a VGG-16 start for
    training kept out of the search (one line when the search would pick such a
    file for matting). Otherwise one line: the file the
    engine uses instead (``path`` is in a searched folder, but another file
    there or earlier comes first), or, for a folder the app never looks in,
    the three ways to use it. Imports torch: call it off the GUI thread.
    """
    from ..net.weights import ENV_WEIGHTS, read_weights_info, weights_search_locations

    path = Path(path)
    target = _resolved(path)
    status = weights_status(explicit)
    used = status.path is not None and _resolved(status.path) == target
    try:
        training_start = read_weights_info(path).provenance.get("kind") == "vgg16-init"
    except DimStudioError:
        training_start = False
    if training_start:  # for `dim-studio train --init`, wherever it is; never for matting
        return (
            f"note: {path.name} is a starting point for training, not for matting, yet the dim engine "
            f"would use it: move it out of {path.parent}"
        ) if used else ""
    if used:
        return ""
    looked = {_resolved(place) for _, place in weights_search_locations(explicit)}
    if target in looked or target.parent in looked:
        instead = f"to use {path.name} instead, pass --weights {path} or set {ENV_WEIGHTS}={path}"
        if status.path is not None:
            return f"note: the dim engine uses {status.path} first; {instead}"
        if status.unusable is not None:
            return f"note: the weights search stops at {status.unusable}, which cannot be used; {instead}"
        return ""  # pragma: no cover - a searched file that the search does not find
    return (
        f"note: DIM Studio does not look for weights in {path.parent}; to use this file, pass "
        f"--weights {path}, set {ENV_WEIGHTS}={path}, or move it into {user_data_dir()}"
    )


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


@dataclass(frozen=True)
class InstalledWeights:
    """A weights file now in place, with its summary (``WeightsInfo.describe``)."""

    path: Path
    summary: str


def install_target(src: str | os.PathLike[str], dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where installing ``src`` puts it: ``<user data folder>/<stem>.safetensors``."""
    folder = Path(dest_dir) if dest_dir is not None else user_data_dir()
    return folder / f"{Path(src).stem}.safetensors"


def install_weights(
    src: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    source: str | None = None,
    config: DIMConfig | None = None,
) -> InstalledWeights:
    """Convert a checkpoint (or check a DIM Studio weights file) and install it at ``output``.

    ``output`` defaults to ``install_target(src)``. A checkpoint is converted
    by ``net.importers.import_weights``; a ``.safetensors`` file already in
    DIM Studio's format is loaded once (every key and shape is checked) and
    copied. Either way the file appears whole or not at all.
    """
    from ..atomic import atomic_copy
    from ..net.importers import import_weights
    from ..net.weights import WeightsWriteError, describe_format, load_weights, read_weights_info

    src_path = Path(src)
    if not src_path.is_file():
        raise WeightsError(f"{src_path} does not exist")
    dst = Path(output) if output is not None else install_target(src_path)
    if dst.suffix != ".safetensors":
        dst = dst.with_name(dst.name + ".safetensors")
    if source is None and config is None and describe_format(src_path) == "safetensors":
        load_weights(src_path)
        if src_path.resolve() != dst.resolve():
            atomic_copy(src_path, dst, WeightsWriteError)
    else:
        import_weights(src_path, dst, source=source, config=config)
    return InstalledWeights(dst, read_weights_info(dst).describe())


def download_weights(
    name: str,
    *,
    url: str | None = None,
    dest_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    progress_bar: bool = False,
    deadline: float | None = None,
) -> InstalledWeights:
    """Download, verify, convert and install published weights (resumes a partial download).

    ``deadline``: seconds the whole transfer may take (None: the default, an hour).
    """
    from ..net.download import DEFAULT_DEADLINE_S, download_checkpoint
    from ..net.weights import read_weights_info

    path = download_checkpoint(
        name, url=url, dest_dir=dest_dir, progress=progress, cancel=cancel, progress_bar=progress_bar,
        deadline=DEFAULT_DEADLINE_S if deadline is None else deadline,
    )
    return InstalledWeights(path, read_weights_info(path).describe())


def download_target(name: str, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``download_weights(name)`` installs its file."""
    from ..net.download import KNOWN_DOWNLOADS

    if name not in KNOWN_DOWNLOADS:
        raise WeightsError(f"unknown download {name!r}; available: {', '.join(KNOWN_DOWNLOADS)}")
    folder = Path(dest_dir) if dest_dir is not None else user_data_dir()
    return folder / KNOWN_DOWNLOADS[name].install_as


def describe_weights(path: str | os.PathLike[str]) -> str:
    """A weights file's summary, or why it cannot be read (never raises: a summary is never worth an error box)."""
    try:
        from ..net.weights import read_weights_info

        return read_weights_info(path).describe()
    except Exception as exc:  # noqa: BLE001 - see above
        return str(exc)


__all__ = [
    "KnownWeights",
    "known_weights",
    "InstalledWeights", "WeightsStatus", "describe_weights", "download_target", "download_weights",
    "install_target", "install_weights", "search_note", "weights_status",
]


@dataclass(frozen=True)
class KnownWeights:
    """A weights file the app knows of, for a chooser: where it is and what it is."""

    path: Path
    description: str  # "tuned on doll.png, 300 steps, SAD 41.2 -> 6.3", "OpenMMLab DIM stage 3 (import)"
    usable: bool = True

    @property
    def label(self) -> str:
        return f"{self.path.name}: {self.description}"


def _describe_known(path: Path) -> KnownWeights:
    from ..net.weights import check_weights
    from ..training.finetune import describe_tuned

    try:
        info = check_weights(path)
    except Exception as exc:  # noqa: BLE001 - a broken file is listed as unusable, never a crash
        return KnownWeights(path, f"unusable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", False)
    prov = info.provenance
    tuned = describe_tuned(info)
    if tuned is not None:
        return KnownWeights(path, tuned)
    kind = prov.get("kind")
    if kind == "training":
        return KnownWeights(path, f"trained, stage {prov.get('stage', '?')}, {prov.get('steps', '?')} steps")
    if kind == "import":
        stage = f" stage {prov['stage']}" if prov.get("stage") else ""
        return KnownWeights(path, f"{prov.get('source', 'imported')} DIM{stage} (import)")
    if kind == "vgg16-init":
        return KnownWeights(path, "VGG-16 initialisation (a start for training, not for matting)")
    return KnownWeights(path, info.config.describe())


def known_weights(explicit: str | os.PathLike[str] | None = None) -> list[KnownWeights]:
    """Every weights file in the search locations (the one in use first), each described.

    Lists the files named by ``--weights`` / ``$DIM_STUDIO_WEIGHTS`` and every
    ``*.safetensors`` in the user data folder (where imports, downloads and
    fine-tunes are saved) and in ``model/``. Reads headers only; imports torch:
    call it off the GUI thread.
    """
    from ..net.weights import weights_search_locations

    seen: set[Path] = set()
    found: list[Path] = []
    for _, place in weights_search_locations(explicit):
        candidates = [place] if place.is_file() else sorted(place.glob("*.safetensors")) if place.is_dir() else []
        for path in candidates:
            key = path.resolve()
            if path.is_file() and key not in seen:
                seen.add(key)
                found.append(path)
    status = weights_status(explicit)
    if status.path is not None:
        found.sort(key=lambda p: p.resolve() != status.path.resolve())
    return [_describe_known(p) for p in found]
