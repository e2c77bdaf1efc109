"""Crash recovery: autosaved copies of the trimap being edited (Qt-free).

The GUI writes the trimap here a second after each stroke; when the same
photo is opened again after a crash, the copy is offered back. A clean save
or an explicit "discard" removes it.

An entry is keyed by the photo's absolute path, file size and modification
time: if the photo itself changed since, the old trimap may no longer fit it,
so it is not offered. Each entry is two files in the autosave folder:
``<key>.png`` (the trimap, written with ``images.write_trimap``, atomic) and
``<key>.json`` (what it belongs to and when it was saved), written after the
PNG so that a crash between the two leaves an entry that is simply ignored.

The folder is not trusted: a record that is not exactly what ``save`` writes
(wrong types, numbers out of range, keys missing, another format version, a
trimap PNG that is unreadable or of the wrong size) is discarded with a log
line, never raised, so a damaged autosave cannot stop a photo from opening.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DimStudioError, ImageReadError, ImageWriteError
from .atomic import atomic_output, resolve_path
from .images import image_size, read_trimap, write_trimap
from .limits import max_pixels
from .paths import autosave_dir

log = logging.getLogger(__name__)

_FORMAT = 1
# What save() writes is a few hundred bytes; anything far bigger is not ours.
_MAX_RECORD_BYTES = 64 * 1024
# A clock set back after saving may date a record a little ahead; far ahead is forged.
_MAX_FUTURE_S = 366 * 86400


@dataclass(frozen=True)
class PhotoKey:
    """What identifies "the same photo": absolute path, size and mtime."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, image_path: str | os.PathLike[str]) -> "PhotoKey":
        try:
            path = resolve_path(Path(image_path).expanduser())
        except DimStudioError as exc:  # a link loop: no photo to key on
            raise OSError(str(exc)) from None
        st = path.stat()
        return cls(str(path), int(st.st_size), int(st.st_mtime_ns))

    @property
    def digest(self) -> str:
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class AutosaveEntry:
    """One autosaved trimap: its file, the photo it belongs to, when it was saved."""

    trimap_path: Path
    photo: PhotoKey
    shape: tuple[int, int]
    saved_at: float  # seconds since the epoch

    def describe_age(self, now: float | None = None) -> str:
        """'saved 5 minutes ago (2024-05-01 14:03)' for the restore prompt."""
        now = time.time() if now is None else now
        if not (math.isfinite(self.saved_at) and math.isfinite(now)):
            return "saved at an unknown time"
        age = max(0.0, now - self.saved_at)
        if age < 90:
            rel = f"{int(age)} seconds ago"
        elif age < 90 * 60:
            rel = f"{int(round(age / 60))} minutes ago"
        elif age < 36 * 3600:
            rel = f"{int(round(age / 3600))} hours ago"
        else:
            rel = f"{int(round(age / 86400))} days ago"
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        except (OverflowError, OSError, ValueError):  # beyond what the C library can date
            return f"saved {rel}"
        return f"saved {rel} ({stamp})"


class AutosaveStore:
    """The autosave folder. Safe to call from a worker thread (no shared state)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else autosave_dir()

    def _paths(self, key: PhotoKey) -> tuple[Path, Path]:
        return self.folder / f"{key.digest}.png", self.folder / f"{key.digest}.json"

    def save(self, image_path: str | os.PathLike[str], trimap: np.ndarray) -> Path:
        """Write ``trimap`` as the autosave of ``image_path``; returns the PNG's path."""
        key = PhotoKey.of(image_path)
        png, meta = self._paths(key)
        write_trimap(png, trimap)
        record = {
            "format": _FORMAT,
            "photo": key.path,
            "size": key.size,
            "mtime_ns": key.mtime_ns,
            "height": int(trimap.shape[0]),
            "width": int(trimap.shape[1]),
            "saved_at": time.time(),
        }
        try:
            with atomic_output(meta) as tmp:
                tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
        except OSError as exc:
            raise ImageWriteError(f"{meta}: cannot write ({exc.strerror or exc})") from None
        return png

    def find(self, image_path: str | os.PathLike[str]) -> AutosaveEntry | None:
        """The autosave of this exact photo (same path, size, mtime), or None.

        A damaged or forged entry is discarded (both files removed, one log
        line) and None returned: this never raises.
        """
        try:
            key = PhotoKey.of(image_path)
        except OSError:
            return None
        png, meta = self._paths(key)
        if not os.path.lexists(meta):
            return None  # nothing saved, or a crash before the record: the PNG alone is ignored
        record, problem = _read_record(meta)
        if problem is None:
            problem = _record_problem(record, key)
        if problem is None:
            problem = _png_problem(png, (record["height"], record["width"]))
        if problem == _NEWER:
            log.info("autosave %s was written by a newer DIM Studio; left alone", meta)
            return None
        if problem is not None:
            self._drop(key, problem)
            return None
        return AutosaveEntry(png, key, (record["height"], record["width"]), float(record["saved_at"]))

    def load(self, entry: AutosaveEntry, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Read an entry's trimap; raises a DimStudioError if it is damaged or does not fit.

        A trimap that cannot be used is discarded first, so it is not offered again.
        """
        try:
            return read_trimap(entry.trimap_path, shape if shape is not None else entry.shape)
        except Exception as exc:  # noqa: BLE001 - any failure means this autosave is unusable
            reason = str(exc) if isinstance(exc, DimStudioError) else f"{type(exc).__name__}: {exc}"
            self._drop(entry.photo, reason)
            raise ImageReadError(f"the autosaved trimap cannot be used ({reason})") from None

    def discard(self, image_path: str | os.PathLike[str]) -> None:
        """Remove the autosave of ``image_path`` if there is one (never raises)."""
        try:
            key = PhotoKey.of(image_path)
        except OSError:
            return
        self._discard_key(key)

    def discard_entry(self, entry: AutosaveEntry) -> None:
        self._discard_key(entry.photo)

    def _drop(self, key: PhotoKey, problem: str) -> None:
        log.warning("discarded the autosave %s of %s: %s", key.digest, key.path, problem)
        self._discard_key(key)

    def _discard_key(self, key: PhotoKey) -> None:
        # The sidecar first: without it the PNG is never offered, so a crash
        # halfway through cannot resurrect a discarded trimap.
        for path in reversed(self._paths(key)):
            with contextlib.suppress(OSError):
                path.unlink()

    def load_for(self, image_path: str | os.PathLike[str], shape: tuple[int, int]) -> np.ndarray | None:
        """Convenience: the autosaved trimap of ``image_path`` or None (damaged ones are dropped)."""
        entry = self.find(image_path)
        if entry is None:
            return None
        try:
            return self.load(entry, shape)
        except DimStudioError:
            self.discard_entry(entry)
            return None


_NEWER = "newer format"


def _read_record(meta: Path) -> tuple[Any, str | None]:
    """The parsed sidecar, or the reason it cannot be read."""
    try:
        st = meta.stat()
        if not stat.S_ISREG(st.st_mode):  # a pipe would block the GUI thread forever
            return None, "the record is not a regular file"
        if st.st_size > _MAX_RECORD_BYTES:
            return None, f"the record is over {_MAX_RECORD_BYTES} bytes"
        return json.loads(meta.read_text(encoding="utf-8")), None
    except OSError as exc:
        return None, f"cannot read the record ({exc.strerror or exc})"
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8; absurd nesting
        return None, f"the record is not valid JSON ({type(exc).__name__})"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _record_problem(record: Any, key: PhotoKey) -> str | None:
    """Why ``record`` is not a sidecar ``save`` wrote for ``key``, or None."""
    if not isinstance(record, dict):
        return "the record is not a JSON object"
    version = record.get("format")
    if not _is_int(version):
        return "the record has no format version"
    if version > _FORMAT:
        return _NEWER
    if version != _FORMAT:
        return f"unknown format version {version}"
    for name in ("size", "mtime_ns", "height", "width"):
        if not _is_int(record.get(name)):
            return f'"{name}" is not a whole number'
    if not isinstance(record.get("photo"), str):
        return '"photo" is not a file name'
    if (record["photo"], record["size"], record["mtime_ns"]) != (key.path, key.size, key.mtime_ns):
        return "the record belongs to another photo"
    height, width = record["height"], record["width"]
    if not (0 < height and 0 < width and height * width <= max_pixels()):
        return f"the trimap size {width}x{height} is out of range"
    saved_at = record.get("saved_at")
    if not (isinstance(saved_at, (int, float)) and not isinstance(saved_at, bool)
            and math.isfinite(saved_at) and 0 <= saved_at <= time.time() + _MAX_FUTURE_S):
        return '"saved_at" is not a time'
    return None


def _png_problem(png: Path, shape: tuple[int, int]) -> str | None:
    """Why the trimap PNG cannot be the one ``save`` wrote for ``shape``: header only, no decoding."""
    try:
        if not stat.S_ISREG(png.stat().st_mode):
            return "the trimap PNG is not a regular file"
        with open(png, "rb") as fh:
            signature = fh.read(8)
    except FileNotFoundError:
        return "the trimap PNG is missing"
    except OSError as exc:
        return f"the trimap PNG is unreadable ({exc.strerror or exc})"
    if signature != b"\x89PNG\r\n\x1a\n":
        return "the trimap file is not a PNG"
    try:
        size = image_size(png)  # our limit and message, not Pillow's own bomb check
    except DimStudioError as exc:
        return f"the trimap PNG is unusable ({exc})"
    if size != tuple(shape):
        return f"the trimap PNG is {size[1]}x{size[0]}, the record says {shape[1]}x{shape[0]}"
    return None
