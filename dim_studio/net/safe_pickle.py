"""A restricted reader for PyTorch checkpoints that ``weights_only=True`` refuses.

Real OpenMMLab checkpoints carry a ``meta`` dict that may hold numpy scalars
and dtypes, which ``torch.load(weights_only=True)`` refuses by default. This
module reads such files (the zip format of torch >= 1.6 and the legacy
single-stream format that mmediting's ``publish_model`` writes) with an
unpickler that admits only:

- tensor rebuild functions (``torch._utils._rebuild_tensor_v2`` / ``_v3``,
  ``_rebuild_parameter``, ``torch._tensor._rebuild_from_type_v2``), the storage
  types and dtypes, ``torch.Size``; all are replaced by our own code that only
  makes strided views of bytes read from the file;
- ``collections.OrderedDict``, ``set``, ``frozenset``, ``complex``,
  ``bytearray``, ``_codecs.encode`` (for latin-1 bytes);
- numpy scalars, dtypes and arrays of plain numeric types, decoded into inert
  values without calling numpy's unpickling code.

Any other global is refused with an :class:`UnsafeCheckpointError` naming it,
before anything from it is called. The pickle ``BUILD`` opcode (which calls
``__setstate__``) is limited to our own placeholders and to dicts, whose extra
state (the ``_metadata`` of a ``state_dict``) is dropped. Nothing here ever
calls ``pickle.load`` or ``torch.load(weights_only=False)``.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from dim_studio.errors import WeightsError

__all__ = ["UnsafeCheckpointError", "safe_load"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafeCheckpointError(WeightsError):
    """The checkpoint needs a Python object that could run code when unpickled."""


# --------------------------------------------------------------------------
# Inert stand-ins for the admitted globals
# --------------------------------------------------------------------------

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}

_TORCH_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "float32", "float", "float64", "double", "float16", "half", "bfloat16",
        "int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool",
        "complex64", "complex128",
    )
}

# numpy kinds whose bytes decode to plain numbers (no object dtype).
_NUMERIC_KINDS = frozenset("biufc")


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: only carries the dtype."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _TensorClass:
    """Stands in for ``torch.Tensor`` / ``torch.nn.Parameter`` as an argument."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Inert:
    """Base of placeholders that accept the ``BUILD`` opcode."""

    def set_state(self, state: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _NpDtype(_Inert):
    def __init__(self, name: Any, align: Any = False, copy: Any = False) -> None:
        self.name = str(name)
        self.byteorder = "<"

    def set_state(self, state: Any) -> None:
        # numpy's dtype state: (version, byteorder, subarray, names, fields, ...)
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]

    def to_numpy(self) -> np.dtype | None:
        try:
            dt = np.dtype(self.name)
        except TypeError:
            return None
        if dt.kind not in _NUMERIC_KINDS or dt.fields is not None or dt.subdtype is not None:
            return None
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" else dt


class _NdarrayClass:
    """Stands in for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""


class _NpArray(_Inert):
    def __init__(self, *args: Any) -> None:
        self.value: Any = None

    def set_state(self, state: Any) -> None:
        # ndarray state: (version, shape, dtype, is_fortran, raw bytes or list)
        if not (isinstance(state, tuple) and len(state) == 5):
            raise UnsafeCheckpointError("unexpected numpy array state in the checkpoint")
        _, shape, dtype, is_fortran, raw = state
        np_dtype = dtype.to_numpy() if isinstance(dtype, _NpDtype) else None
        if np_dtype is None or not isinstance(raw, (bytes, bytearray)):
            # object arrays hold already-unpickled (hence admitted) values
            self.value = list(raw) if isinstance(raw, (list, tuple)) else None
            return
        shape = tuple(int(s) for s in shape)
        count = int(np.prod(shape)) if shape else 1
        if count * np_dtype.itemsize != len(raw):
            raise UnsafeCheckpointError("a numpy array in the checkpoint has inconsistent size")
        arr = np.frombuffer(bytes(raw), dtype=np_dtype, count=count)
        self.value = arr.reshape(shape, order="F" if is_fortran else "C").astype(
            np_dtype.newbyteorder("="), copy=True
        )


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar`` -> a plain Python number (or the object)."""
    if isinstance(dtype, _NpDtype):
        np_dtype = dtype.to_numpy()
        if np_dtype is not None and isinstance(data, (bytes, bytearray)):
            if len(data) != np_dtype.itemsize:
                raise UnsafeCheckpointError("a numpy scalar in the checkpoint has the wrong size")
            return np.frombuffer(bytes(data), dtype=np_dtype)[0].item()
        if dtype.name in ("O", "object") and not isinstance(data, (bytes, bytearray)):
            return data
    return f"<numpy scalar {getattr(dtype, 'name', '?')}>"


def _np_reconstruct(cls: Any, shape: Any = None, dtype_char: Any = None) -> _NpArray:
    if not isinstance(cls, _NdarrayClass):
        raise UnsafeCheckpointError("numpy _reconstruct is only admitted for plain ndarrays")
    return _NpArray()


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as encode(str, 'latin1').
    if not isinstance(text, str) or str(encoding).lower() not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError("_codecs.encode is only admitted for latin-1 bytes")
    return text.encode("latin-1")


def _flat(storage: Any) -> torch.Tensor:
    if not (isinstance(storage, torch.Tensor) and storage.ndim == 1 and getattr(storage, "_dim_studio_storage", False)):
        raise UnsafeCheckpointError("a tensor in the checkpoint does not refer to stored data")
    return storage


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any,
    requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None,
) -> torch.Tensor:
    # as_strided checks the view against the storage's bounds.
    return _flat(storage).as_strided(tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset))


def _rebuild_tensor_v3(
    storage: Any, storage_offset: Any, size: Any, stride: Any,
    requires_grad: Any, backward_hooks: Any, dtype: Any, metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype):
        raise UnsafeCheckpointError("a tensor in the checkpoint has no valid dtype")
    flat = _flat(storage)
    typed = flat.view(torch.uint8).view(dtype) if flat.numel() else torch.empty(0, dtype=dtype)
    return typed.as_strided(tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset))


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafeCheckpointError("a parameter in the checkpoint does not hold a tensor")
    return data


_REBUILD_FUNCTIONS = (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    if func not in _REBUILD_FUNCTIONS or not isinstance(new_type, _TensorClass):
        raise UnsafeCheckpointError("a tensor subclass in the checkpoint is not admitted")
    return func(*args)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TensorClass("Tensor"),
    ("torch._tensor", "Tensor"): _TensorClass("Tensor"),
    ("torch.nn.parameter", "Parameter"): _TensorClass("Parameter"),
    ("torch", "Size"): tuple,
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _NpDtype,
    ("numpy", "ndarray"): _NdarrayClass(),
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "scalar")] = _np_scalar
    _ALLOWED[(_mod, "_reconstruct")] = _np_reconstruct


def _refuse(module: str, name: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"refusing to load: the checkpoint needs the Python object `{module}.{name}`, and "
        "unpickling it could run code. DIM Studio reads only tensors, containers and plain "
        "values from checkpoints. If you trust the file, save only its weights in a "
        "separate Python session, e.g. torch.save(ckpt['state_dict'], 'clean.pth'), "
        "and import clean.pth with `dim-studio weights import`."
    )


# --------------------------------------------------------------------------
# The unpickler
# --------------------------------------------------------------------------


def _load_build(self: _RestrictedUnpickler) -> None:
    state = self.stack.pop()
    inst = self.stack[-1]
    if isinstance(inst, _Inert):
        inst.set_state(state)
    elif isinstance(inst, dict):
        # An OrderedDict from state_dict() carries `_metadata`; we do not need it
        # and setting attributes from the file is exactly what we avoid.
        return
    else:
        raise UnsafeCheckpointError(
            f"refusing to load: the checkpoint sets the state of a {type(inst).__name__} object"
        )


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-Python unpickler (so BUILD can be restricted) with an allowlist."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BUILD[0]] = _load_build

    def __init__(self, file: BinaryIO, persistent: Any = None) -> None:
        super().__init__(file, encoding="latin1")
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:
            # Protocol-2 pickles (torch.save's default) name Python 2 modules,
            # e.g. __builtin__.set; map them as pickle's own find_class does.
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        obj = _ALLOWED.get((module, name))
        if obj is not None:
            return obj
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        raise _refuse(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafeCheckpointError("the pickle refers to external data it does not contain")
        return self._persistent(pid)


def _resolve(obj: Any, depth: int = 0) -> Any:
    """Replace numpy-array placeholders by their values (recursively)."""
    if depth > 100:
        return obj
    if isinstance(obj, _NpArray):
        return obj.value
    if isinstance(obj, _NpDtype):
        dt = obj.to_numpy()
        return str(dt) if dt is not None else obj.name
    if isinstance(obj, _Inert):
        return f"<{type(obj).__name__}>"
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _resolve(obj[k], depth + 1)
        return obj
    if isinstance(obj, list):
        return [_resolve(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, depth + 1) for v in obj)
    return obj


def _mark(t: torch.Tensor) -> torch.Tensor:
    t._dim_studio_storage = True  # type: ignore[attr-defined]
    return t


def _decode(pid: Any) -> tuple[str, Any]:
    if not isinstance(pid, tuple) or not pid:
        raise UnsafeCheckpointError("the checkpoint has an unknown external reference")
    kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if kind != "storage":
        raise UnsafeCheckpointError(f"the checkpoint refers to a {kind!r}, not to tensor data")
    return kind, pid[1:]


def _from_bytes(raw: bytes, dtype: torch.dtype, numel: int, byteorder: str) -> torch.Tensor:
    itemsize = torch.empty(0, dtype=dtype).element_size()
    if len(raw) < numel * itemsize:
        raise WeightsError("the checkpoint is truncated: a tensor's data is shorter than its size")
    buf = bytearray(raw[: numel * itemsize])
    if byteorder != sys.byteorder and itemsize > 1:
        if itemsize > 8:
            raise WeightsError("complex tensors in a checkpoint of the other byte order are not supported")
        swapped = np.frombuffer(buf, dtype=np.dtype(f"u{itemsize}"))
        buf = bytearray(swapped.byteswap().tobytes())
    if numel == 0:
        return _mark(torch.empty(0, dtype=dtype))
    return _mark(torch.frombuffer(buf, dtype=dtype))


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if not pkl:
            raise WeightsError(f"{path.name} is a zip archive but not a PyTorch checkpoint (no data.pkl)")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise WeightsError(f"{path.name}: unknown byte order {byteorder!r}")
        loaded: dict[str, torch.Tensor] = {}

        def persistent(pid: Any) -> torch.Tensor:
            _, data = _decode(pid)
            storage_type, key, _location, numel = data[:4]
            if not isinstance(storage_type, _StorageType):
                raise UnsafeCheckpointError("a tensor in the checkpoint has an unknown storage type")
            key = str(key)
            if key not in loaded:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise WeightsError(f"{path.name} is damaged: tensor data {key!r} is missing")
                loaded[key] = _from_bytes(zf.read(record), storage_type.dtype, int(numel), byteorder)
            return loaded[key]

        with zf.open(pkl[0]) as f:
            data = io.BytesIO(f.read())
        return _resolve(_RestrictedUnpickler(data, persistent).load())


def _load_legacy(path: Path) -> Any:
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = _RestrictedUnpickler(f).load()
        if magic != LEGACY_MAGIC_NUMBER:
            # A plain pickle, not a torch.save file: we can still read it
            # (safely) but it has no tensor data section.
            f.seek(0)
            return _resolve(_RestrictedUnpickler(f).load())
        version = _RestrictedUnpickler(f).load()
        if version != LEGACY_PROTOCOL_VERSION:
            raise WeightsError(f"{path.name}: unsupported PyTorch legacy format version {version!r}")
        sys_info = _RestrictedUnpickler(f).load()
        little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
        byteorder = "little" if little else "big"
        storages: dict[str, torch.Tensor] = {}
        views: dict[str, torch.Tensor] = {}
        budget = [size]

        def persistent(pid: Any) -> torch.Tensor:
            _, data = _decode(pid)
            storage_type, root_key, _location, numel, view_metadata = data[:5]
            if not isinstance(storage_type, _StorageType):
                raise UnsafeCheckpointError("a tensor in the checkpoint has an unknown storage type")
            root_key = str(root_key)
            if root_key not in storages:
                nbytes = int(numel) * torch.empty(0, dtype=storage_type.dtype).element_size()
                # Never allocate more than the file could possibly hold.
                budget[0] -= nbytes
                if nbytes < 0 or budget[0] < 0:
                    raise WeightsError(f"{path.name} is damaged: its tensors are larger than the file")
                storages[root_key] = _mark(torch.empty(int(numel), dtype=storage_type.dtype))
            root = storages[root_key]
            if view_metadata is None:
                return root
            view_key, offset, view_size = view_metadata
            view_key = str(view_key)
            if view_key not in views:
                offset, view_size = int(offset), int(view_size)
                if offset < 0 or view_size < 0 or offset + view_size > root.numel():
                    raise WeightsError(f"{path.name} is damaged: a storage view is out of bounds")
                views[view_key] = _mark(root[offset : offset + view_size])
            return views[view_key]

        result = _RestrictedUnpickler(f, persistent).load()
        keys = _RestrictedUnpickler(f).load()
        if not isinstance(keys, list):
            raise WeightsError(f"{path.name} is damaged: no tensor data list")
        for key in keys:
            key = str(key)
            if key not in storages:
                raise WeightsError(f"{path.name} is damaged: unknown tensor data {key!r}")
            storage = storages[key]
            head = f.read(8)
            if len(head) != 8:
                raise WeightsError(f"{path.name} is truncated")
            (numel,) = struct.unpack("<q" if little else ">q", head)
            if numel != storage.numel():
                raise WeightsError(f"{path.name} is damaged: tensor data of the wrong size")
            raw = f.read(numel * storage.element_size())
            storage.copy_(_from_bytes(raw, storage.dtype, numel, byteorder))
    return _resolve(result)


def safe_load(path: str | os.PathLike[str]) -> Any:
    """Read a PyTorch checkpoint (zip or legacy) or a plain pickle, admitting only data.

    Raises :class:`UnsafeCheckpointError` naming the first global that is not
    admitted (nothing from the file is executed), or WeightsError for a damaged
    or unsupported file.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] != b"\x80":
            raise WeightsError(
                f"{path.name} is neither a PyTorch checkpoint nor a pickle "
                "(the old tar-based torch format is not supported)"
            )
        return _load_legacy(path)
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, RuntimeError, struct.error, zipfile.BadZipFile, OverflowError, MemoryError) as e:
        raise WeightsError(f"cannot read {path.name}: it is damaged or not a checkpoint ({e})") from e
