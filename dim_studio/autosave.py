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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DimStudioError, ImageWriteError
from .atomic import atomic_output
from .images import read_trimap, write_trimap
from .paths import autosave_dir

_FORMAT = 1


@dataclass(frozen=True)
class PhotoKey:
    """What identifies "the same photo": absolute path, size and mtime."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, image_path: str | os.PathLike[str]) -> "PhotoKey":
        path = Path(image_path).expanduser().resolve()
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
        age = max(0.0, now - self.saved_at)
        if age < 90:
            rel = f"{int(age)} seconds ago"
        elif age < 90 * 60:
            rel = f"{int(round(age / 60))} minutes ago"
        elif age < 36 * 3600:
            rel = f"{int(round(age / 3600))} hours ago"
        else:
            rel = f"{int(round(age / 86400))} days ago"
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
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
        """The autosave of this exact photo (same path, size, mtime), or None."""
        try:
            key = PhotoKey.of(image_path)
        except OSError:
            return None
        png, meta = self._paths(key)
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not png.is_file():
            return None
        try:
            matches = (
                record.get("format") == _FORMAT
                and record["photo"] == key.path
                and int(record["size"]) == key.size
                and int(record["mtime_ns"]) == key.mtime_ns
            )
            shape = (int(record["height"]), int(record["width"]))
            saved_at = float(record["saved_at"])
        except (KeyError, TypeError, ValueError):
            return None
        if not matches:
            return None
        return AutosaveEntry(png, key, shape, saved_at)

    def load(self, entry: AutosaveEntry, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Read an entry's trimap; raises a DimStudioError if it is damaged or does not fit."""
        return read_trimap(entry.trimap_path, shape if shape is not None else entry.shape)

    def discard(self, image_path: str | os.PathLike[str]) -> None:
        """Remove the autosave of ``image_path`` if there is one (never raises)."""
        try:
            key = PhotoKey.of(image_path)
        except OSError:
            return
        self._discard_key(key)

    def discard_entry(self, entry: AutosaveEntry) -> None:
        self._discard_key(entry.photo)

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
