"""DIM Studio's weights format and where the app looks for weights.

Format: safetensors, with one metadata entry ``dim_studio`` holding JSON:

    {
      "format": "dim-studio-weights", "format_version": 1,
      "architecture": {"name": "dim", "conv6": "1x1", "refine": true},
      "normalization": {"channel_order": "RGB", "input_range": 255.0,
                        "mean": [...], "std": [...], "trimap_divisor": 255.0},
      "provenance": {"kind": "import", "source": "openmmlab",
                     "source_file": "...pth", "source_sha256": "..."}
                  | {"kind": "fine-tune", "base_weights": {...}, "image": "...", "steps": 200}
                  | {"kind": "vgg16-init", ...} | {"kind": "training", ...},
      "metrics": {"Composition-1k": {"SAD": 50.6, ...}, ...},
      "created": "2024-01-01T00:00:00Z"
    }

Search order (README, "dim-studio weights"): an explicit path, ``DIM_STUDIO_WEIGHTS``, the
user data folder, then ``model/`` beside the package.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
import time
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dim_studio.atomic import atomic_output
from dim_studio.errors import WeightsError
from dim_studio.paths import DATA_DIR_ENV, model_dir, user_data_dir

from .model import (
    DEFAULT_NORMALIZATION, MAX_WIDTH, MIN_WIDTH, DIMConfig, DIMNet, build_dim, check_state_dict,
    config_from_state_dict,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HOW_TO_GET_WEIGHTS",
    "OPENMMLAB_WEIGHTS_LICENCE",
    "PREFERRED_WEIGHTS_NAME",
    "WeightsInfo",
    "WeightsWriteError",
    "check_weights",
    "describe_format",
    "find_weights",
    "how_to_get_weights",
    "load_weights",
    "model_dir",
    "printable",
    "read_weights_info",
    "save_weights",
    "user_data_dir",
    "weights_search_locations",
]

FORMAT_NAME = "dim-studio-weights"
FORMAT_VERSION = 1
METADATA_KEY = "dim_studio"
PREFERRED_WEIGHTS_NAME = "dim-stage3.safetensors"
ENV_WEIGHTS = "DIM_STUDIO_WEIGHTS"
ENV_DATA_DIR = DATA_DIR_ENV

#: The terms of OpenMMLab's published DIM checkpoints: the code's licence is not the weights'.
OPENMMLAB_WEIGHTS_LICENCE = (
    "code: Apache-2.0 (OpenMMLab mmediting); weights trained on Adobe's Composition-1k, whose "
    "licence allows non-commercial research use only: check before any commercial use"
)

#: How each front end names the two ways to get weights: the command line's
#: commands, the window's Weights menu entries (``gui.weights_dialogs``).
_GET_WEIGHTS_WAYS = {
    False: (
        "run `dim-studio weights download dim-stage3`",
        "`dim-studio weights import FILE.pth` (it installs the converted file in the user data folder)",
    ),
    True: (
        "choose Weights > Download published DIM weights…",
        "Weights > Import weights file… (it installs the converted file in the user data folder)",
    ),
}


def _how_to_get_weights(gui: bool) -> str:
    download, convert = _GET_WEIGHTS_WAYS[gui]
    text = (
        f"To get weights for the DIM engine: {download} (OpenMMLab's published stage-3 model, "
        f"about 100 MB), or convert a checkpoint you already have with {convert}."
    )
    if not gui:
        text += (
            " A .safetensors file elsewhere can be used with --weights FILE or the "
            f"{ENV_WEIGHTS} environment variable, or moved into the user data folder."
        )
    return text + " The classical engines (closed-form, ifm, lkm, knn) need no weights."


#: The command line's advice (shell commands); ``how_to_get_weights(gui=True)`` names menu entries instead.
HOW_TO_GET_WEIGHTS = _how_to_get_weights(False)


def how_to_get_weights(gui: bool = False) -> str:
    """How to get weights, with this machine's actual folders.

    ``gui``: name the window's Weights menu entries instead of shell commands.
    """
    text = _how_to_get_weights(gui)
    if gui:
        return f"{text} The user data folder is {user_data_dir()}."
    folders = [("user data folder", user_data_dir())]
    shipped = model_dir()
    if shipped is not None and _resolved(shipped) != _resolved(user_data_dir()):
        folders.append(("model folder", shipped))
    return f"{text} ({'; '.join(f'{label}: {place}' for label, place in folders)})"


# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------


def weights_search_locations(explicit: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """The places :func:`find_weights` looks, in order, as (label, path); each place once.

    A place named twice (by resolved path) keeps its first label.
    """
    places: list[tuple[str, Path]] = []
    if explicit:
        places.append(("--weights", Path(explicit).expanduser()))
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        places.append((ENV_WEIGHTS, Path(env).expanduser()))
    places.append(("user data folder", user_data_dir()))
    shipped = model_dir()
    if shipped is not None:
        places.append(("model folder", shipped))
    # One place named twice (the model folder moved onto the user data folder,
    # --weights naming a search folder) is looked at, and listed, once.
    seen: set[Path] = set()
    unique: list[tuple[str, Path]] = []
    for label, place in places:
        key = _resolved(place)
        if key not in seen:
            seen.add(key)
            unique.append((label, place))
    return unique


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop, an unreadable folder: compare as written
        return path.absolute()


def _pick_in_folder(folder: Path) -> Path | None:
    preferred = folder / PREFERRED_WEIGHTS_NAME
    if preferred.is_file():
        return preferred
    found = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    return found[0] if found else None


def find_weights(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """First weights file in the search order, or None when there is none.

    A folder is searched for ``dim-stage3.safetensors`` first, then the first
    ``*.safetensors`` by name. An explicit path or ``DIM_STUDIO_WEIGHTS`` that
    does not exist raises WeightsError (the user asked for it by name).
    """
    for label, place in weights_search_locations(explicit):
        user_named = label in ("--weights", ENV_WEIGHTS)
        if place.is_file():
            return place
        if place.is_dir():
            found = _pick_in_folder(place)
            if found is not None:
                return found
            if user_named:
                raise WeightsError(f"{label} points to {place}, a folder with no .safetensors file. {HOW_TO_GET_WEIGHTS}")
        elif user_named:
            raise WeightsError(f"{label} points to {place}, which does not exist. {HOW_TO_GET_WEIGHTS}")
    return None


# --------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------


def printable(text: object, limit: int | None = 300) -> str:
    """``text`` safe to print on a terminal or show in a dialog: one line, no control sequences.

    Metadata comes from files of any origin: an ANSI escape in it could
    rewrite the terminal, a carriage return hide what came before, a
    right-to-left override reorder what follows, a lone surrogate make the
    print itself fail. Such characters (Unicode categories Cc, Cf, Cs, Zl,
    Zp) are shown as Python escapes (``\\x1b``); text over ``limit``
    characters is cut.
    """
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "..."
    return "".join(
        ch if unicodedata.category(ch) not in _UNPRINTABLE else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in s
    )


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# The normalisation's numbers must lie within these magnitudes: far beyond any
# real normalisation (pixels scaled to 255, means ~124, stds ~58), and far
# enough from float32's limits that normalising a pixel cannot overflow.
_NORM_MAX = 1e6
_NORM_MIN_POSITIVE = 1e-6
#: Entries of a provenance or metrics mapping shown by ``describe``.
_MAX_SHOWN_ENTRIES = 30


def _shown(value: Any) -> str:
    """A bad value as the error message quotes it (JSON, escaped, short)."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Schema:
    """Checks one file's metadata; every complaint names the file and the field."""

    def __init__(self, path: Path | None) -> None:
        self.where = printable(path, None) if path is not None else "these weights"

    def error(self, field: str, expected: str, value: Any) -> WeightsError:
        return WeightsError(
            f"{self.where}: the DIM Studio metadata is invalid: {field} must be {expected}, not {_shown(value)}"
        )

    def mapping(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        """An optional JSON object (missing or null: empty)."""
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, "a JSON object", value)
        return value

    def number(self, value: Any, field: str, *, positive: bool) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            try:
                number = float(value)  # a JSON integer may be too large for a float
            except OverflowError:
                number = math.inf
            ok = _NORM_MIN_POSITIVE <= number <= _NORM_MAX if positive else abs(number) <= _NORM_MAX
        if not ok:
            expected = (
                f"a number from {_NORM_MIN_POSITIVE:g} to {_NORM_MAX:g}" if positive
                else f"a number from {-_NORM_MAX:g} to {_NORM_MAX:g}"
            )
            raise self.error(field, expected, value)
        return number

    def triple(self, value: Any, field: str, *, positive: bool) -> list[float]:
        if not isinstance(value, list) or len(value) != 3:
            raise self.error(field, "a list of 3 numbers (R, G, B)", value)
        return [self.number(v, f"{field}[{i}]", positive=positive) for i, v in enumerate(value)]

    def normalization(self, data: Mapping[str, Any]) -> dict[str, Any]:
        given = self.mapping(data, "normalization")
        norm = {**DEFAULT_NORMALIZATION, **given}  # unknown extra keys are kept, and ignored
        order = norm["channel_order"]
        if not isinstance(order, str) or order.upper() != "RGB":
            raise self.error("normalization.channel_order", '"RGB" (the only order supported)', order)
        norm["input_range"] = self.number(norm["input_range"], "normalization.input_range", positive=True)
        norm["trimap_divisor"] = self.number(norm["trimap_divisor"], "normalization.trimap_divisor", positive=True)
        norm["mean"] = self.triple(norm["mean"], "normalization.mean", positive=False)
        norm["std"] = self.triple(norm["std"], "normalization.std", positive=True)
        return norm


@dataclass
class WeightsInfo:
    """What a weights file says about itself."""

    config: DIMConfig = field(default_factory=DIMConfig)
    normalization: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_NORMALIZATION))
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    created: str | None = None
    path: Path | None = None
    parameter_count: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "architecture": {"name": "dim", **self.config.to_dict()},
            "normalization": self.normalization,
            "provenance": self.provenance,
            "metrics": self.metrics,
            "created": self.created,
        }

    @classmethod
    def from_metadata(cls, data: Mapping[str, Any], path: Path | None = None) -> WeightsInfo:
        """Validate ``data`` (the file's ``dim_studio`` JSON) and build the info.

        Types, ranges and finiteness are checked for every field the program
        uses; unknown extra keys are tolerated (a newer DIM Studio of the same
        format version may add some). The first problem raises WeightsError
        naming the file and the field.
        """
        check = _Schema(path)
        fmt = data.get("format", FORMAT_NAME)
        if fmt != FORMAT_NAME:
            raise check.error("format", f'"{FORMAT_NAME}"', fmt)
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise check.error("format_version", "a whole number from 1", version)
        if version > FORMAT_VERSION:
            raise WeightsError(
                f"{check.where} was written by a newer DIM Studio (weights format {version}; this "
                f"version reads up to {FORMAT_VERSION}): update DIM Studio"
            )
        arch = check.mapping(data, "architecture")
        name = arch.get("name", "dim")
        if not isinstance(name, str):
            raise check.error("architecture.name", '"dim"', name)
        if name != "dim":
            raise WeightsError(f"{check.where} holds a {_shown(name)} network, not DIM")
        conv6 = arch.get("conv6", "1x1")
        if conv6 not in ("1x1", "7x7"):
            raise check.error("architecture.conv6", '"1x1" or "7x7"', conv6)
        refine = arch.get("refine", True)
        if not isinstance(refine, bool):
            raise check.error("architecture.refine", "true or false", refine)
        width = arch.get("width", 1.0)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not (
            MIN_WIDTH <= width <= MAX_WIDTH
        ):
            raise check.error("architecture.width", f"a number from {MIN_WIDTH:g} to {MAX_WIDTH:g}", width)
        created = data.get("created")
        if created is not None and not isinstance(created, str):
            raise check.error("created", "a date in a string", created)
        return cls(
            config=DIMConfig(conv6=conv6, refine=refine, width=width),
            normalization=check.normalization(data),
            provenance=dict(check.mapping(data, "provenance")),
            metrics=dict(check.mapping(data, "metrics")),
            format_version=version,
            created=created,
            path=path,
        )

    def describe(self) -> str:
        """Human-readable multi-line summary (used by `dim-studio weights info`).

        Every value from the file goes through :func:`printable`.
        """
        lines = []
        if self.path is not None:
            lines.append(f"File:           {printable(self.path, None)}")
        lines.append(f"Architecture:   {self.config.describe()}")
        if self.parameter_count is not None:
            lines.append(f"Parameters:     {self.parameter_count:,}")
        n = self.normalization
        lines.append(printable(
            f"Normalisation:  {n.get('channel_order', 'RGB')} x {n.get('input_range')}, "
            f"mean {_as_list(n.get('mean'))}, std {_as_list(n.get('std'))}; "
            f"trimap / {n.get('trimap_divisor')}",
            None,
        ))
        provenance = {k: v for k, v in self.provenance.items() if k != "source_licence"}
        lines.append("Provenance:     " + (_fmt_mapping(provenance, 16) or "unknown"))
        licence = _licence(self.provenance)
        if licence:
            lines.append(f"Licence:        {printable(licence)}")
        lines.append("Metrics:        " + (_fmt_mapping(self.metrics, 16) or "none recorded"))
        if self.created:
            lines.append(f"Created:        {printable(self.created, 60)}")
        lines.append(f"Format:         {FORMAT_NAME} version {self.format_version}")
        lines.extend(f"Note:           {printable(note)}" for note in self.notes)
        return "\n".join(lines)


def _licence(provenance: Mapping[str, Any]) -> str:
    """The terms of the weights a provenance describes ("" when unknown).

    OpenMMLab imports made before the licence text was corrected say only
    "Apache-2.0", the code's licence: they get today's text.
    """
    if provenance.get("source") == "openmmlab":
        return OPENMMLAB_WEIGHTS_LICENCE
    licence = provenance.get("source_licence")
    return str(licence) if licence else ""


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _fmt_mapping(data: Mapping[str, Any], indent: int) -> str:
    parts = []
    items = list(data.items())
    for key, value in items[:_MAX_SHOWN_ENTRIES]:
        if isinstance(value, Mapping):
            inner = ", ".join(f"{k} {v}" for k, v in list(value.items())[:_MAX_SHOWN_ENTRIES])
            parts.append(printable(f"{key}: {inner}"))
        else:
            parts.append(printable(f"{key}: {value}"))
    if len(items) > _MAX_SHOWN_ENTRIES:
        parts.append(f"... and {len(items) - _MAX_SHOWN_ENTRIES} more")
    return ("\n" + " " * indent).join(parts)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------


def describe_format(path: str | os.PathLike[str]) -> str:
    """Sniff a file: "safetensors", "torch-zip", "npz", "zip", "pickle", "empty" or "unknown"."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if not head:
        return "empty"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


_FORMAT_WORDS = {
    "torch-zip": "a PyTorch checkpoint (.pth, zip format)",
    "pickle": "a PyTorch/pickle checkpoint (.pth)",
    "npz": "a NumPy .npz archive",
    "zip": "a zip archive",
    "empty": "an empty file",
    "unknown": "not a format DIM Studio knows",
}


def _not_safetensors(path: Path, kind: str) -> WeightsError:
    hint = (
        f" Convert it first: `dim-studio weights import {path} -o {path.with_suffix('.safetensors').name}`."
        if kind in ("torch-zip", "pickle", "npz")
        else ""
    )
    return WeightsError(
        f"{path} is {_FORMAT_WORDS.get(kind, kind)}; DIM Studio loads weights from "
        f".safetensors files in its own format.{hint}"
    )


# --------------------------------------------------------------------------
# Save and load
# --------------------------------------------------------------------------


def _info_from_metadata(path: Path, raw: Mapping[str, str] | None, shapes: Mapping[str, list[int]]) -> WeightsInfo:
    blob = (raw or {}).get(METADATA_KEY)
    if blob is None:
        # A bare safetensors file with DIMNet keys: infer what we can.
        info = WeightsInfo(config=config_from_state_dict(shapes), path=path)
        info.notes.append("no DIM Studio metadata: architecture inferred, reference normalisation assumed")
        return info
    where = printable(path, None)
    try:
        data = json.loads(blob)
    except ValueError as e:  # JSONDecodeError, or an integer of thousands of digits
        raise WeightsError(f"{where}: the DIM Studio metadata is not valid JSON ({e})") from e
    except RecursionError:
        raise WeightsError(f"{where}: the DIM Studio metadata is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{where}: the DIM Studio metadata is not a JSON object")
    return WeightsInfo.from_metadata(data, path)


def _open_safetensors(path: Path) -> tuple[WeightsInfo, dict[str, list[int]]]:
    from safetensors import safe_open

    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist. {HOW_TO_GET_WEIGHTS}")
    try:
        kind = describe_format(path)
    except OSError as e:
        raise WeightsError(f"cannot read {printable(path, None)}: {e.strerror or e}") from e
    if kind != "safetensors":
        raise _not_safetensors(path, kind)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = f.metadata()
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types
        raise WeightsError(f"cannot read {path}: the safetensors file is damaged ({e})") from e
    return _info_from_metadata(path, raw, shapes), shapes


def read_weights_info(path: str | os.PathLike[str]) -> WeightsInfo:
    """Metadata of a weights file (validated), without loading the tensors."""
    path = Path(path)
    info, shapes = _open_safetensors(path)
    info.parameter_count = sum(_numel(s) for s in shapes.values())
    return info


def check_weights(path: str | os.PathLike[str]) -> WeightsInfo:
    """Everything about a weights file that can be checked without reading its tensors.

    The format, the metadata (see ``WeightsInfo.from_metadata``) and every
    key and shape against the network the metadata describes; raises
    WeightsError naming the file and the first problem. Reads only the
    file's header, so it is cheap enough to run before choosing an engine.
    """
    path = Path(path)
    info, shapes = _open_safetensors(path)
    with torch.device("meta"):
        probe = DIMNet(info.config)
    check_state_dict(probe, shapes, source=printable(path, None))
    info.parameter_count = sum(_numel(s) for s in shapes.values())
    return info


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def load_weights(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[DIMNet, WeightsInfo]:
    """Build the model a weights file describes and load it (eval mode, float32).

    Every key and shape is checked before any data is read; the first missing
    key, unexpected key or differing shape raises WeightsError naming it.
    """
    from safetensors.torch import load_file

    path = Path(path)
    info, shapes = _open_safetensors(path)
    with torch.device("meta"):
        probe = DIMNet(info.config)
    check_state_dict(probe, shapes, source=path.name)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:
        raise WeightsError(f"cannot read {path}: the safetensors file is damaged ({e})") from e
    _check_finite(tensors, f"{printable(path, None)} is broken")
    model = build_dim(info.config, tensors, device=device)
    info.parameter_count = sum(p.numel() for p in model.parameters())
    return model, info


def _check_finite(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise WeightsError naming the first tensor with a NaN or an infinity.

    Such weights (a training run that diverged, a damaged conversion) make
    every alpha NaN; refusing them says why instead of matting garbage.
    """
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsError(
                f"{what}: {key} holds NaN or infinite values, so the network could only produce "
                "garbage (did the training diverge?)"
            )


class WeightsWriteError(WeightsError):
    """A weights file could not be written (full disk, read-only folder); the input is fine."""


def _write_failure(path: Path, exc: BaseException, size: int | None = None) -> WeightsWriteError:
    """One line for a failed write: which file, why, and what to do about a full disk."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None)
    if code is None:
        # safetensors' own error: "Error while serializing: I/O error: No space left on device (os error 28)"
        m = re.search(r"\(os error (\d+)\)", str(exc))
        code = int(m.group(1)) if m else None
        reason = os.strerror(code) if code is not None else first_line(exc)
    advice = ""
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        needs = f" (the file needs about {size / 1e6:,.0f} MB)" if size else ""
        advice = f"; free some space on that disk{needs} or write the file elsewhere"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "; choose a folder you can write to"
    return WeightsWriteError(f"cannot write {printable(path, None)}: {reason or exc}{advice}")


def first_line(e: BaseException) -> str:
    """An exception's first line (library messages often carry several), or its type's name."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def save_weights(
    path: str | os.PathLike[str],
    model: nn.Module,
    metadata: Mapping[str, Any] | WeightsInfo | None = None,
) -> WeightsInfo:
    """Write ``model`` to ``path`` atomically (``atomic.atomic_output``).

    ``metadata`` may hold "normalization", "provenance" and "metrics" (a dict or
    a WeightsInfo); the architecture comes from ``model.config``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    config = getattr(model, "config", None)
    if not isinstance(config, DIMConfig):
        raise WeightsError("save_weights needs a DIMNet (a model with a DIMConfig)")
    if isinstance(metadata, WeightsInfo):
        meta: Mapping[str, Any] = {
            "normalization": metadata.normalization,
            "provenance": metadata.provenance,
            "metrics": metadata.metrics,
        }
    else:
        meta = metadata or {}
    norm = dict(DEFAULT_NORMALIZATION)
    norm.update(meta.get("normalization") or {})
    info = WeightsInfo(
        config=config,
        normalization=norm,
        provenance=dict(meta.get("provenance") or {}),
        metrics=dict(meta.get("metrics") or {}),
        created=_now(),
        path=path,
    )
    try:
        blob = json.dumps(info.to_metadata(), sort_keys=False)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"weights metadata must be plain JSON values ({e})") from e
    # The app never writes a file it would refuse to read.
    WeightsInfo.from_metadata(json.loads(blob), path)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    _check_finite(tensors, f"refusing to write {printable(path, None)}")
    info.parameter_count = sum(t.numel() for t in tensors.values())
    try:
        with atomic_output(path, WeightsWriteError) as tmp:
            save_file(tensors, str(tmp), metadata={METADATA_KEY: blob, "format": "pt"})
    except WeightsError:
        raise
    except Exception as e:  # OSError, or safetensors' SafetensorError wrapping one
        raise _write_failure(path, e, 4 * info.parameter_count) from e
    return info
