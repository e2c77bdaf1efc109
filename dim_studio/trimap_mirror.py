"""Snapshots of the trimap being edited, copied out in the thread that uses them.

A preview, an autosave or a save needs the trimap as it is now, while the user
goes on painting. Copying a 24-megapixel trimap on the GUI thread for each of
them stalls the brush, so the document instead keeps a *mirror*: a second
array that only background threads touch, plus a log of the finished edits
(each the box it changed, with the values before and after, the same arrays
the undo history holds). A ``TrimapSnapshot`` is a version number: taking one
costs nothing, and ``materialize()`` (in the worker) brings the mirror to
that version, forwards or backwards through the log, and copies it.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .trimap import Box


@dataclass(frozen=True)
class Patch:
    """One finished edit: ``box`` held ``before`` and now holds ``after`` (never mutated)."""

    box: Box
    before: np.ndarray
    after: np.ndarray


class TrimapMirror:
    """The document's history as seen from background threads (one per loaded trimap).

    The GUI thread only appends patches and hands out snapshots (both O(1));
    the array is read and written only under ``_array_lock``, by the threads
    that materialize snapshots, so a slow copy never holds up the GUI thread.
    """

    def __init__(self, base: np.ndarray) -> None:
        self._array = base          # at version self._version; background threads only
        self._version = 0
        self._array_lock = threading.Lock()
        self._log_lock = threading.RLock()  # a snapshot's finalizer may run inside a locked block (GC)
        self._first = 0             # version of self._log[0]'s "before" side
        self._log: list[Patch] = []
        self._head = 0              # the document's current version
        self._live: Counter[int] = Counter()  # versions of snapshots not yet materialized

    def record(self, patch: Patch) -> None:
        """A finished edit on the GUI thread: the document moved one version on."""
        with self._log_lock:
            self._log.append(patch)
            self._head += 1

    def snapshot(self) -> "TrimapSnapshot":
        with self._log_lock:
            version = self._head
            self._live[version] += 1
        return TrimapSnapshot(self, version)

    def _forget(self, version: int) -> None:
        with self._log_lock:
            self._live[version] -= 1
            if self._live[version] <= 0:
                del self._live[version]

    def materialize(self, version: int) -> np.ndarray:
        """The trimap at ``version``, as a new array (call it off the GUI thread)."""
        with self._array_lock:
            with self._log_lock:
                lo, hi = sorted((self._version, version))
                patches = self._log[lo - self._first:hi - self._first]
            forward = version > self._version
            for patch in patches if forward else reversed(patches):
                self._array[patch.box.slices] = patch.after if forward else patch.before
            self._version = version
            out = self._array.copy()
            self._trim()
        return out

    def _trim(self) -> None:
        # Patches older than the mirror and than every outstanding snapshot are
        # never needed again; dropping them lets the undo history free its arrays.
        with self._log_lock:
            oldest = min([self._version, *self._live])
            drop = oldest - self._first
            if drop > 0:
                del self._log[:drop]
                self._first = oldest


class TrimapSnapshot:
    """The trimap at one point of its history; ``materialize()`` copies it out."""

    def __init__(self, mirror: TrimapMirror, version: int) -> None:
        self._mirror = mirror
        self.version = version
        self._array: np.ndarray | None = None
        # A snapshot dropped unused (a superseded preview) must not pin the log.
        self._release = weakref.finalize(self, mirror._forget, version)

    def materialize(self) -> np.ndarray:
        """The trimap as a new uint8 array; the first call copies, later calls return the same array."""
        if self._array is None:
            self._array = self._mirror.materialize(self.version)
            self._release()
        return self._array




def as_trimap(value: np.ndarray | TrimapSnapshot) -> np.ndarray:
    """An array from either an array or a snapshot (jobs accept both)."""
    return value.materialize() if isinstance(value, TrimapSnapshot) else value


__all__ = ["Patch", "TrimapMirror", "TrimapSnapshot", "as_trimap"]
