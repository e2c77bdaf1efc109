"""Convert published checkpoints into DIM Studio weights files.

Sources (auto-detected by content, or chosen by name):

- ``openmmlab``: OpenMMLab mmediting/mmagic DIM checkpoints, stages 1-3
  (``{'state_dict': ..., 'meta': ...}``).
- ``torchvision-vgg16``: torchvision's ImageNet VGG-16 state dict, used to
  initialise the encoder for training.
- ``vgg16-npz``: the seed project's ``vgg16_weights.npz`` (TensorFlow layout),
  for the same purpose.

PyTorch files are read with ``torch.load(weights_only=True)`` only, after a
scan of their pickles (which runs nothing) has found no Python object outside
what checkpoints of these sources are made of; torch's own allow-list is
wider than that (it admits ``bytearray``, so a 33-byte file can make it build
a 1.5 GB object before it notices that the file is not a checkpoint).

Before any of that, sizes are checked against ``limits.max_weights_bytes()``
(``DIM_STUDIO_MAX_WEIGHTS_MB``): the file's size on disk and, for a zip (a
torch zip checkpoint, an .npz), the uncompressed sizes its central directory
declares and how many times each member would inflate. A 1 MB zip that would
inflate to gigabytes is refused without decompressing a byte of it, and the
pickle scan reads at most ``MAX_PICKLE_BYTES``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
import re
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING  # what torch's unpickler maps names with
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from dim_studio.errors import WeightsError
from dim_studio.limits import HOW_TO_RAISE_WEIGHTS, MAX_ZIP_RATIO, MIN_RATIO_CHECKED_BYTES, max_weights_bytes

from .model import (
    DEFAULT_NORMALIZATION,
    DIMConfig,
    DIMNet,
    build_dim,
    check_state_dict,
    config_from_state_dict,
    remap_openmmlab_state_dict,
    remap_torchvision_vgg16,
    remap_vgg16_npz,
)
from .weights import OPENMMLAB_WEIGHTS_LICENCE, WeightsInfo, describe_format, first_line, save_weights

__all__ = [
    "KNOWN_OPENMMLAB_CHECKPOINTS",
    "MAX_PICKLE_BYTES",
    "SOURCES",
    "CheckpointTooLargeError",
    "UnsafeCheckpointError",
    "check_checkpoint_size",
    "check_zip_sizes",
    "detect_source",
    "import_weights",
    "load_torch_checkpoint",
    "sha256_file",
]

SOURCES = ("openmmlab", "torchvision-vgg16", "vgg16-npz")

_OPENMMLAB_README = "OpenMMLab mmediting configs/dim/README.md (best validation during training)"

#: Published OpenMMLab DIM checkpoints, by the sha256 prefix in their names,
#: with the Composition-1k results their README reports.
KNOWN_OPENMMLAB_CHECKPOINTS: dict[str, dict[str, Any]] = {
    "979a420f": {"stage": 1, "metrics": {"SAD": 53.8, "MSE": 0.017, "Grad": 32.7, "Conn": 54.5}},
    "d83c4775": {"stage": 2, "metrics": {"SAD": 52.3, "MSE": 0.016, "Grad": 29.4, "Conn": 52.4}},
    "647f24b6": {"stage": 3, "metrics": {"SAD": 50.6, "MSE": 0.015, "Grad": 29.0, "Conn": 50.7}},
}

# The VGG-16 weights in .npz format (vgg16_weights.npz) come from the original Caffe VGG-16, which expects RGB in
# 0-255 minus the ImageNet mean pixel, not divided by a std.
CAFFE_VGG_NORMALIZATION: dict[str, Any] = {
    "channel_order": "RGB",
    "input_range": 255.0,
    "mean": [123.68, 116.779, 103.939],
    "std": [1.0, 1.0, 1.0],
    "trimap_divisor": 255.0,
}

_LICENCES = {
    "openmmlab": OPENMMLAB_WEIGHTS_LICENCE,
    "torchvision-vgg16": "BSD-3-Clause (torchvision)",
    "vgg16-npz": "CC BY 4.0 (VGG-16 by K. Simonyan and A. Zisserman, converted by D. Frossard)",
}


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class UnsafeCheckpointError(WeightsError):
    """A checkpoint needs a Python object that no supported checkpoint contains; it was not loaded."""


#: The Python objects that checkpoints of the supported sources are made of,
#: as their pickles name them. Each is in torch's own weights-only allow-list
#: too; anything else torch would admit (bytearray, set, complex, Counter,
#: _codecs.encode, ...) is refused here before torch reads the file.
_ALLOWED_GLOBALS = frozenset(
    {
        "collections.OrderedDict",  # a state_dict
        "torch._utils._rebuild_tensor_v2",  # a tensor, as torch >= 0.4 saves it
        "torch._utils._rebuild_tensor",  # a tensor, as torch < 0.4 saved it (torchvision's 2017 VGG-16)
        # tensor data, by dtype: the published files are float32; fine-tunes may be saved in half
        "torch.FloatStorage",
        "torch.HalfStorage",
        "torch.BFloat16Storage",
        "torch.DoubleStorage",
    }
)

# Opcodes that name a global in a way a linear scan cannot read (pickle
# protocol 4+ and the copyreg extension registry); torch.save at its default
# protocol 2 never writes them.
_UNNAMED_GLOBAL_OPS = frozenset({"STACK_GLOBAL", "EXT1", "EXT2", "EXT4"})

# torch.save's legacy (non-zip) format is five pickles in a row: magic number,
# protocol version, system info, the object, the storage keys; raw tensor data follows.
_LEGACY_PICKLES = 5


class CheckpointTooLargeError(WeightsError):
    """A checkpoint is (or would inflate to) more than the weights-file limit; nothing was decompressed."""


#: The most bytes one pickle of a checkpoint may take. A pickle holds only the
#: structure (key names, tensor shapes, storage references, a little meta):
#: about 20 kB for DIM, a few MB for a training checkpoint with optimizer
#: state. The tensor data lives outside it, so 64 MiB is generous, and it
#: bounds what the scan reads even from a data.pkl that is itself a bomb.
MAX_PICKLE_BYTES = 64 << 20


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def _too_large(name: str, what: str, size: int) -> CheckpointTooLargeError:
    return CheckpointTooLargeError(
        f"refusing to read {name}: {what} {_mb(size)}, more than the {_mb(max_weights_bytes())} "
        "limit for weights files (real DIM and VGG-16 checkpoints are 100-600 MB); nothing in it was "
        f"decompressed or loaded. If the file is genuine, {HOW_TO_RAISE_WEIGHTS}"
    )


def check_checkpoint_size(path: str | os.PathLike[str], size: int | None = None) -> None:
    """Refuse a checkpoint whose size on disk is over ``limits.max_weights_bytes()``."""
    path = Path(path)
    size = path.stat().st_size if size is None else size
    if size > max_weights_bytes():
        raise _too_large(path.name, "it is", size)


def check_zip_sizes(zf: zipfile.ZipFile, name: str) -> None:
    """Refuse a zip by what its central directory declares, before anything is decompressed.

    The total of the declared uncompressed sizes (and so every member) must
    fit ``limits.max_weights_bytes()``, and no member above
    ``MIN_RATIO_CHECKED_BYTES`` may inflate more than ``MAX_ZIP_RATIO``
    times. Declared sizes are what bound the memory: Python's zipfile stops
    at a member's declared size, and torch's reader (miniz) inflates into a
    buffer of exactly that size, failing on anything longer.
    """
    cap = max_weights_bytes()
    members = zf.infolist()
    total = sum(info.file_size for info in members)
    if total > cap:
        biggest = max(members, key=lambda info: info.file_size)
        what = (
            f"its member {biggest.filename!r} would inflate to" if biggest.file_size > cap
            else f"its {len(members)} members would inflate to"
        )
        raise _too_large(name, what, total if biggest.file_size <= cap else biggest.file_size)
    # Each member, and all of them together (many small bombs add up too).
    stored_total = sum(info.compress_size for info in members)
    for what, size, stored in [
        *((f"its member {info.filename!r}", info.file_size, info.compress_size) for info in members),
        (f"its {len(members)} members", total, stored_total),
    ]:
        stored = max(stored, 1)
        if size > MIN_RATIO_CHECKED_BYTES and size > MAX_ZIP_RATIO * stored:
            raise CheckpointTooLargeError(
                f"refusing to read {name}: {what} would inflate {size / stored:,.0f}-fold, from "
                f"{_mb(stored)} to {_mb(size)}; weights files do not compress like that, so this looks "
                "like a zip bomb. Nothing in it was decompressed or loaded"
            )


class _PickleTooLarge(CheckpointTooLargeError):
    pass


class _Bounded:
    """A read-only view of ``raw`` that refuses to read past ``limit`` bytes.

    pickletools reads an opcode's argument with one ``read(n)`` of the length
    the pickle declares, so the request itself is refused before any buffer
    of that size is made.
    """

    def __init__(self, raw: IO[bytes], limit: int, name: str) -> None:
        self.raw, self.left, self.name, self.limit = raw, limit, name, limit
        self.pos = 0

    def _refuse(self) -> _PickleTooLarge:
        return _PickleTooLarge(
            f"refusing to read {self.name}: its pickle would take more than {_mb(self.limit)}, far more "
            "than any checkpoint's structure needs (the tensor data is stored outside it); nothing in it "
            "was loaded"
        )

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            data = self.raw.read(self.left + 1)
            if len(data) > self.left:
                raise self._refuse()
        elif n > self.left:
            raise self._refuse()
        else:
            data = self.raw.read(n)
        self.left -= len(data)
        self.pos += len(data)
        return data

    def readline(self) -> bytes:
        line = self.raw.readline(self.left + 1)
        if len(line) > self.left:
            raise self._refuse()
        self.left -= len(line)
        self.pos += len(line)
        return line

    def tell(self) -> int:
        return self.pos


def _pickle_globals(stream: IO[bytes], source: str = "the checkpoint") -> list[str]:
    """The globals one pickle names, in order; reads ``stream`` up to its STOP opcode.

    Only parses opcodes (nothing is built or called), and reads at most
    ``MAX_PICKLE_BYTES``. Names are mapped from Python 2 spellings as torch's
    unpickler maps them, so that both see the same name.
    """
    found: list[str] = []
    for op, arg, _pos in pickletools.genops(_Bounded(stream, MAX_PICKLE_BYTES, source)):
        if op.name in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
            if (module, name) in NAME_MAPPING:
                module, name = NAME_MAPPING[(module, name)]
            elif module in IMPORT_MAPPING:
                module = IMPORT_MAPPING[module]
            found.append(f"{module}.{name}")
        elif op.name in _UNNAMED_GLOBAL_OPS:
            found.append(f"named by a {op.name} opcode (pickle protocol 4 or later)")
    return found


def _zip_globals(f: IO[bytes], name: str) -> list[str]:
    found: list[str] = []
    with zipfile.ZipFile(f) as zf:
        check_zip_sizes(zf, name)
        # every data.pkl, duplicates included: torch reads one of them
        for info in zf.infolist():
            if info.filename.rpartition("/")[2] == "data.pkl":
                if info.file_size > MAX_PICKLE_BYTES:
                    raise _Bounded(f, MAX_PICKLE_BYTES, name)._refuse()
                with zf.open(info) as pkl:
                    found += _pickle_globals(pkl, name)
    return found


def _legacy_globals(f: IO[bytes], name: str) -> list[str]:
    f.seek(0)
    found = _pickle_globals(f, name)
    # a plain pickle ends here; a legacy checkpoint goes on
    for _ in range(_LEGACY_PICKLES - 1):
        if not f.read(1):
            break
        f.seek(-1, os.SEEK_CUR)
        found += _pickle_globals(f, name)
    return found


def _refusal(path: Path, names: list[str]) -> UnsafeCheckpointError:
    unique = list(dict.fromkeys(names))
    listed = ", ".join(unique[:5]) + (f" and {len(unique) - 5} more" if len(unique) > 5 else "")
    return UnsafeCheckpointError(
        f"refusing to load {path.name}: it needs the Python object{'s' if len(unique) > 1 else ''} {listed}, "
        "which no supported checkpoint contains. The file was not loaded and nothing in it ran. "
        "Import only checkpoints from the supported sources: an OpenMMLab DIM .pth, torchvision's "
        "VGG-16 .pth or VGG-16 weights in .npz format (vgg16_weights.npz)"
    )


def _torch_refusal(path: Path, error: Exception) -> UnsafeCheckpointError:
    """Turn torch's weights-only refusal (several lines of advice) into one line."""
    detail = str(error).rpartition("WeightsUnpickler error:")[2].strip()
    if m := re.search(r"GLOBAL (\S+)", detail):
        # torch drops the "builtins." of the names it reports
        name = m.group(1) if "." in m.group(1) else f"builtins.{m.group(1)}"
        return _refusal(path, [name])
    first = detail.splitlines()[0] if detail else type(error).__name__
    return UnsafeCheckpointError(
        f"refusing to load {path.name}: torch's weights-only loader refused it ({first}). "
        "The file was not loaded and nothing in it ran. Import only checkpoints from the supported sources"
    )


def load_torch_checkpoint(path: str | os.PathLike[str]) -> Any:
    """Read a PyTorch checkpoint (zip or legacy format) with ``torch.load(weights_only=True)``.

    Raises :class:`UnsafeCheckpointError` naming the Python objects outside
    ``_ALLOWED_GLOBALS`` that the file needs (found by a scan before torch
    reads anything), :class:`CheckpointTooLargeError` for a file over the
    weights-file limit (on disk, or as its zip declares it would inflate), and
    WeightsError for a file that is damaged or not a checkpoint.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise WeightsError(f"cannot read {path}: {e.strerror or e}") from e
    with f:
        check_checkpoint_size(path, os.fstat(f.fileno()).st_size)
        try:
            # torch tells zip from legacy by these 4 bytes alone; so must we, or a
            # legacy file with a zip appended would have the wrong pickles scanned.
            found = _zip_globals(f, path.name) if f.read(4) == b"PK\x03\x04" else _legacy_globals(f, path.name)
        except WeightsError:
            raise
        except Exception as e:  # any parse failure of an untrusted file means the same to the user
            raise WeightsError(f"cannot read {path.name}: it is damaged or not a PyTorch checkpoint ({first_line(e)})") from e
        if refused := [name for name in found if name not in _ALLOWED_GLOBALS]:
            raise _refusal(path, refused)
        # torch reads the very file object that was scanned, so a file swapped in
        # at the same path meanwhile is not what gets loaded.
        f.seek(0)
        try:
            return torch.load(f, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise _torch_refusal(path, e) from None
        except Exception as e:
            raise WeightsError(f"cannot read {path.name}: it is damaged or not a PyTorch checkpoint ({first_line(e)})") from e


# --------------------------------------------------------------------------
# Reading a source file
# --------------------------------------------------------------------------


def _read(path: Path) -> tuple[str, Any]:
    """(format, payload): payload is a dict of arrays (npz) or the loaded object."""
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    check_checkpoint_size(path)
    kind = describe_format(path)
    if kind == "npz":
        try:
            # the same file object for the check and the load: no swap in between
            with open(path, "rb") as f:
                with zipfile.ZipFile(f) as zf:
                    check_zip_sizes(zf, path.name)
                f.seek(0)
                with np.load(f, allow_pickle=False) as npz:
                    return kind, {k: npz[k] for k in npz.files}
        except WeightsError:
            raise
        except ValueError as e:
            raise WeightsError(f"{path.name}: the npz holds Python objects, which are not read ({e})") from e
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise WeightsError(f"cannot read {path.name}: it is damaged or not an .npz archive ({first_line(e)})") from e
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return kind, load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise WeightsError(f"cannot read {path.name}: the safetensors file is damaged ({first_line(e)})") from e
    if kind in ("torch-zip", "pickle"):
        return kind, load_torch_checkpoint(path)
    raise WeightsError(
        f"{path.name} is not a checkpoint DIM Studio can import (found: {kind}); expected an "
        "OpenMMLab DIM .pth, a torchvision VGG-16 .pth or VGG-16 weights in .npz format (vgg16_weights.npz)"
    )


def _unwrap(obj: Any, name: str) -> tuple[dict[str, Any], Any]:
    """(state_dict, meta) from a loaded checkpoint object."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{name} holds a {type(obj).__name__}, not a state dict")
    meta = None
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        meta = obj.get("meta")
        obj = obj["state_dict"]
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise WeightsError(f"{name} holds no tensors")
    return sd, meta


def detect_source(keys: list[str] | Mapping[str, Any]) -> str | None:
    """Which importer fits these keys ("openmmlab", ...), or None."""
    names = [k[len("module."):] if k.startswith("module.") else k for k in keys]
    if any(k.startswith("backbone.encoder.") for k in names):
        return "openmmlab"
    if "features.0.weight" in names:
        return "torchvision-vgg16"
    if "conv1_1_W" in names:
        return "vgg16-npz"
    return None


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Plain JSON values only (for copying checkpoint meta into provenance)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value if not isinstance(value, str) else value[:200]
    if depth < 3 and isinstance(value, Mapping):
        out = {str(k): _json_safe(v, depth + 1) for k, v in list(value.items())[:20]}
        return {k: v for k, v in out.items() if v is not None}
    if depth < 3 and isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value[:20]]
    return None


# --------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------


def _fresh_model(config: DIMConfig, seed: int) -> DIMNet:
    # A fixed seed makes an import reproducible: same file in, same weights out.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DIMNet(config)


def _openmmlab(
    sd: dict[str, torch.Tensor], meta: Any, config: DIMConfig | None, name: str, sha: str
) -> tuple[DIMNet, dict[str, Any], dict[str, Any], dict[str, Any]]:
    mapped = remap_openmmlab_state_dict(sd)
    detected = config_from_state_dict(mapped)
    notes = []
    if config is not None:
        if config.conv6 != detected.conv6:
            raise WeightsError(
                f"{name} has a {detected.conv6} conv6; the requested --conv6 {config.conv6} does not fit"
            )
        if config.refine and not detected.refine:
            raise WeightsError(f"{name} is a stage-1 checkpoint without a refinement stage; import it with refinement off")
        if not config.refine and detected.refine:
            mapped = {k: v for k, v in mapped.items() if not k.startswith("refine.")}
            notes.append("refinement stage dropped on request")
        detected = config
    model = build_dim(detected, mapped)
    known = KNOWN_OPENMMLAB_CHECKPOINTS.get(sha[:8])
    stage = known["stage"] if known else None
    if stage is None and (m := re.search(r"stage([123])", name)):
        stage = int(m.group(1))
    provenance: dict[str, Any] = {"kind": "import", "source": "openmmlab"}
    if stage is not None:
        provenance["stage"] = stage
    checkpoint_meta = _json_safe({k: meta.get(k) for k in ("mmedit_version", "mmcv_version", "time", "iter", "epoch")}) if isinstance(meta, Mapping) else None
    if checkpoint_meta:
        provenance["checkpoint_meta"] = checkpoint_meta
    if notes:
        provenance["notes"] = notes
    metrics: dict[str, Any] = {}
    if known:
        metrics["Composition-1k"] = {**known["metrics"], "reported_by": _OPENMMLAB_README}
    elif m := re.search(r"SAD-(\d+(?:\.\d+)?)", name):
        metrics["Composition-1k"] = {"SAD": float(m.group(1)), "reported_by": "checkpoint file name"}
    return model, dict(DEFAULT_NORMALIZATION), provenance, metrics


def _vgg_init(
    mapped: dict[str, torch.Tensor], initialised: list[str], source: str, config: DIMConfig, seed: int
) -> tuple[DIMNet, dict[str, Any]]:
    model = _fresh_model(config, seed)
    full = dict(model.state_dict())
    full.update({k: v.to(torch.float32) for k, v in mapped.items()})
    check_state_dict(model, full, source=f"converted {source} weights")
    model = build_dim(config, full)
    layers = sorted({k.rsplit(".", 1)[0] for k in initialised})
    fresh = sorted({k.rsplit(".", 1)[0] for k in full} - set(layers))
    provenance = {
        "kind": "vgg16-init",
        "source": source,
        "initialised": layers,
        "fresh_init": fresh,
        "fresh_init_method": f"xavier normal weights, zero biases, seed {seed}",
        "notes": ["conv1_1 weights for the 4th (trimap) input channel start at zero"]
        + (["conv6 is VGG-16's fc6 reshaped to a 7x7 convolution"] if config.conv6 == "7x7" else []),
    }
    return model, provenance


def import_weights(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    source: str | None = None,
    config: DIMConfig | None = None,
    *,
    source_name: str | None = None,
    extra_provenance: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> WeightsInfo:
    """Convert ``src`` into a DIM Studio weights file at ``dst`` (atomic write).

    source: "openmmlab", "torchvision-vgg16" or "vgg16-npz"; detected from the
        keys when None.
    config: architecture for VGG-16 initialisation (default 1x1 conv6 with a
        refiner); for OpenMMLab it is detected, and a given config must fit.
    source_name: the name recorded in provenance (e.g. the downloaded file's
        name when ``src`` is a temporary ``.part`` file).
    """
    src, dst = Path(src), Path(dst)
    if source is not None and source not in SOURCES:
        raise WeightsError(f"unknown import source {source!r}; choose one of {', '.join(SOURCES)}")
    if src.resolve() == dst.resolve():
        raise WeightsError("the output file must differ from the input file")
    name = source_name or src.name
    if not src.is_file():
        raise WeightsError(f"{src} does not exist")
    check_checkpoint_size(src)  # before hashing what may be gigabytes
    sha = sha256_file(src)
    kind, payload = _read(src)
    if kind == "npz":
        arrays, meta = payload, None
        keys: list[str] = list(arrays)
    else:
        arrays, meta = _unwrap(payload, name)
        keys = list(arrays)
    detected = detect_source(keys)
    if source is None:
        if detected is None:
            raise WeightsError(
                f"cannot tell what {name} is (first keys: {', '.join(keys[:5])}); "
                f"name the source with --from ({'|'.join(SOURCES)})"
            )
        source = detected
    elif detected is not None and detected != source:
        raise WeightsError(f"{name} looks like a {detected} checkpoint, not {source}")

    if source == "openmmlab":
        model, norm, provenance, metrics = _openmmlab(arrays, meta, config, name, sha)
    elif source == "torchvision-vgg16":
        cfg = config or DIMConfig()
        mapped, init = remap_torchvision_vgg16(arrays, cfg)
        model, provenance = _vgg_init(mapped, init, source, cfg, seed)
        norm, metrics = dict(DEFAULT_NORMALIZATION), {}
    else:
        if kind != "npz":
            raise WeightsError(f"{name} is not an .npz archive; the vgg16-npz importer reads VGG-16 weights in .npz format (vgg16_weights.npz)")
        cfg = config or DIMConfig()
        mapped, init = remap_vgg16_npz({k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}, cfg)
        model, provenance = _vgg_init(mapped, init, source, cfg, seed)
        norm, metrics = dict(CAFFE_VGG_NORMALIZATION), {}

    provenance = {
        **provenance,
        "source_file": name,
        "source_sha256": sha,
        "source_licence": _LICENCES[source],
        **dict(extra_provenance or {}),
    }
    return save_weights(dst, model, {"normalization": norm, "provenance": provenance, "metrics": metrics})
