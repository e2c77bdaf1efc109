"""The trimap being edited, and its undo history (no Qt here).

The canvas (``gui/canvas.py``) paints into a :class:`TrimapDocument`;
everything that changes the trimap goes through it so that every change is
one undo step and listeners (the canvas overlay) learn which rectangle
changed. It sits outside ``gui/`` because it needs no Qt: only ``gui/``
imports Qt (README, "Layout"), and this model is used and tested headless.

Coordinates
-----------
Points are ``(x, y)`` floats in image pixel coordinates, the same as the Qt
scene coordinates of an image item placed at the origin: pixel ``(row i,
column j)`` covers ``[j, j+1) x [i, i+1)`` and its centre is ``(j + 0.5,
i + 0.5)``. A pixel is painted when its *centre* is inside the painted shape.

Rectangles are :class:`dim_studio.trimap.Box` ``(y0, y1, x0, x1)``, half-open.

Undo cost
---------
An undo step stores only the bounding box of the pixels it changed, with the
old and the new values of that box, never the whole trimap. The sum of all
stored boxes is kept under ``undo_limit_bytes`` by dropping the oldest steps
(the newest step is always kept, so the last action can always be undone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from dim_studio.errors import TrimapError
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box
from dim_studio.trimap_mirror import Patch, TrimapMirror, TrimapSnapshot

__all__ = [
    "DEFAULT_UNDO_LIMIT_BYTES",
    "LABELS",
    "MIN_BRUSH_RADIUS",
    "Point",
    "TrimapDocument",
    "UndoItem",
    "capsule_spans",
]


Point = tuple[float, float]
Listener = Callable[[Box, bool], None]

LABELS: tuple[int, int, int] = (BACKGROUND, UNKNOWN, FOREGROUND)
DEFAULT_UNDO_LIMIT_BYTES = 512 * 1024 * 1024

# Any point of the plane is at most sqrt(0.5) from some pixel centre, so a
# brush at least this big always marks the pixel under the cursor, and a
# 1-pixel brush clicked near a pixel centre marks exactly that pixel.
MIN_BRUSH_RADIUS = math.sqrt(0.5) + 1e-6

# Pre-stroke backups are kept per tile: memory stays bounded by one copy of
# the image however long the stroke or big the brush.
_TILE = 256


def _label_counts(values: np.ndarray) -> np.ndarray:
    """Pixels of each of LABELS in ``values``; cost follows the size of ``values``."""
    return np.array([np.count_nonzero(values == label) for label in LABELS], np.int64)

# True for the three legal label values, indexed by grey level.
_VALID = np.zeros(256, dtype=bool)
_VALID[list(LABELS)] = True


def _check_label(label: int) -> int:
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS} (background/unknown/foreground), not {label!r}")
    return int(label)


def _check_trimap(arr: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise TrimapError(f"a trimap must be a single-channel uint8 array, got {arr.dtype} {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        h, w = shape
        raise TrimapError(
            f"the new trimap is {arr.shape[1]}x{arr.shape[0]} but the document is {w}x{h} "
            "(width x height); they must be the same size"
        )
    if arr.size and not _VALID[arr].all():
        raise TrimapError("a trimap may only contain 0 (background), 128 (unknown) and 255 (foreground)")
    return arr


def _changed_box(old: np.ndarray, new: np.ndarray) -> Box | None:
    """The tight box, relative to the arrays, of the pixels that differ."""
    diff = old != new
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    return Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def _offset(box: Box, dy: int, dx: int) -> Box:
    return Box(box.y0 + dy, box.y1 + dy, box.x0 + dx, box.x1 + dx)


def capsule_spans(
    p0: Point, p1: Point, radius: float, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and inclusive column ranges of the pixels within ``radius`` of a segment.

    The set of points within ``radius`` of the segment p0-p1 (a capsule) is
    convex, so each pixel row crosses it in one interval: the union of the
    intervals cut from the two end disks and from the rectangle swept by the
    segment. Working per row keeps the cost proportional to the rows touched,
    and the geometry is exact rather than a rasteriser's approximation.
    Returns ``(rows, first_col, last_col)`` clipped to ``shape``.
    """
    h, w = shape
    (ax, ay), (bx, by) = (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))
    r = float(radius)
    empty = np.zeros(0, dtype=np.intp)
    if not all(math.isfinite(v) for v in (ax, ay, bx, by, r)) or r < 0 or h == 0 or w == 0:
        return empty, empty, empty
    i0 = max(0, math.ceil(min(ay, by) - r - 0.5))
    i1 = min(h - 1, math.floor(max(ay, by) + r - 0.5))
    if i1 < i0:
        return empty, empty, empty
    rows = np.arange(i0, i1 + 1)
    yc = rows + 0.5
    left = np.full(rows.shape, np.inf)
    right = np.full(rows.shape, -np.inf)

    for cx, cy in ((ax, ay), (bx, by)):
        d = yc - cy
        hit = np.abs(d) <= r
        half = np.sqrt(np.maximum(r * r - d * d, 0.0))
        left = np.where(hit, np.minimum(left, cx - half), left)
        right = np.where(hit, np.maximum(right, cx + half), right)

    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)
    if length > 0:
        nx, ny = -dy / length * r, dx / length * r
        corners = ((ax + nx, ay + ny), (bx + nx, by + ny), (bx - nx, by - ny), (ax - nx, ay - ny))
        for k in range(4):
            (ux, uy), (vx, vy) = corners[k], corners[(k + 1) % 4]
            if uy == vy:
                # A horizontal edge's ends are also ends of its neighbours.
                continue
            t = (yc - uy) / (vy - uy)
            hit = (t >= 0.0) & (t <= 1.0)
            x = ux + t * (vx - ux)
            left = np.where(hit, np.minimum(left, x), left)
            right = np.where(hit, np.maximum(right, x), right)

    # Columns whose centre j + 0.5 lies in [left, right].
    c0 = np.ceil(left - 0.5)
    c1 = np.floor(right - 0.5)
    keep = (c0 <= c1) & (c1 >= 0) & (c0 <= w - 1)
    rows = rows[keep]
    c0 = np.clip(c0[keep], 0, w - 1).astype(np.intp)
    c1 = np.clip(c1[keep], 0, w - 1).astype(np.intp)
    return rows, c0, c1


def polygon_mask(points: Sequence[Point], shape: tuple[int, int]) -> tuple[Box, np.ndarray] | None:
    """Pixels whose centre is inside a closed outline, as (box, bool mask of box).

    Exact scanline fill with the non-zero winding rule (a lasso that loops
    over itself fills every loop). Crossings are found per edge, so the cost
    is the outline's length plus one pass over its bounding box. Returns None
    when no pixel centre is inside.
    """
    h, w = shape
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < 3 or h == 0 or w == 0:
        return None
    y0 = max(0, math.floor(pts[:, 1].min()))
    y1 = min(h, math.ceil(pts[:, 1].max()) + 1)
    x0 = max(0, math.floor(pts[:, 0].min()))
    x1 = min(w, math.ceil(pts[:, 0].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return None

    a = pts
    b = np.roll(pts, -1, axis=0)
    lo_y = np.minimum(a[:, 1], b[:, 1])
    hi_y = np.maximum(a[:, 1], b[:, 1])
    # Row i (centre i + 0.5) crosses an edge when lo_y <= i + 0.5 < hi_y;
    # the half-open test counts a shared vertex once.
    first = np.clip(np.ceil(lo_y - 0.5), y0, y1).astype(np.int64)
    stop = np.clip(np.ceil(hi_y - 0.5), y0, y1).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    total = int(counts.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(len(a)), counts)
    starts = np.cumsum(counts) - counts
    rows = first[edge] + (np.arange(total) - starts[edge])
    ax, ay, bx, by = a[edge, 0], a[edge, 1], b[edge, 0], b[edge, 1]
    xs = ax + (rows + 0.5 - ay) * (bx - ax) / (by - ay)
    winding = np.where(by > ay, 1, -1).astype(np.int16)
    # The crossing changes the winding of every centre at or right of it.
    cols = np.clip(np.ceil(xs - 0.5), x0, x1).astype(np.int64) - x0

    bh, bw = y1 - y0, x1 - x0
    mask = np.zeros((bh, bw), dtype=bool)
    chunk = max(1, (4 << 20) // (bw + 1))  # bound the int16 scratch to ~8 MB
    local_rows = rows - y0
    for r0 in range(0, bh, chunk):
        r1 = min(bh, r0 + chunk)
        sel = (local_rows >= r0) & (local_rows < r1)
        acc = np.zeros((r1 - r0, bw + 1), dtype=np.int16)
        np.add.at(acc, (local_rows[sel] - r0, cols[sel]), winding[sel])
        mask[r0:r1] = np.cumsum(acc, axis=1, dtype=np.int16)[:, :bw] != 0
    if not mask.any():
        return None
    return Box(y0, y1, x0, x1), mask


@dataclass(frozen=True)
class UndoItem:
    """One undo step: a box with the values before and after the change."""

    box: Box
    old: np.ndarray
    new: np.ndarray
    description: str
    serial: int

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes)


class TrimapDocument:
    """A trimap (uint8 H x W, 0/128/255) with stroke-based undo/redo.

    Listeners registered with :meth:`add_listener` are called as
    ``listener(box, final)`` after every change: ``final`` is False for the
    segments of a stroke still in progress and True once an edit is finished
    (stroke end, fill, outline, apply, undo, redo, set_trimap).
    """

    def __init__(
        self,
        trimap: np.ndarray | None = None,
        *,
        undo_limit_bytes: int = DEFAULT_UNDO_LIMIT_BYTES,
    ) -> None:
        self._t = np.zeros((0, 0), dtype=np.uint8)
        self._undo: list[UndoItem] = []
        self._redo: list[UndoItem] = []
        self._serial = 0
        self._base_state = 0  # state id when the undo stack is empty
        self._saved_state = 0
        self._revision = 0
        self._undo_limit = int(undo_limit_bytes)
        self._listeners: list[Listener] = []
        self._stroke_tiles: dict[tuple[int, int], np.ndarray] | None = None
        self._stroke_box: Box | None = None
        self._mirror = TrimapMirror(self._t.copy())
        self._counts = np.zeros(len(LABELS), np.int64)  # pixels of each of LABELS, as of the last finished edit
        if trimap is not None:
            self.set_trimap(trimap)

    @classmethod
    def blank(cls, shape: tuple[int, int], label: int = BACKGROUND, **kwargs: int) -> "TrimapDocument":
        """A document of the given (H, W) filled with one label."""
        return cls(np.full(shape, _check_label(label), dtype=np.uint8), **kwargs)

    # -- state ---------------------------------------------------------------

    @property
    def trimap(self) -> np.ndarray:
        """Read-only view of the live trimap; copy it before handing it to a thread."""
        view = self._t.view()
        view.flags.writeable = False
        return view

    def copy_trimap(self) -> np.ndarray:
        """An independent copy, safe to give to a worker thread."""
        return self._t.copy()

    def snapshot(self) -> TrimapSnapshot:
        """The trimap as of the last finished edit, for a worker thread to copy out.

        Costs nothing here, whatever the photo's size: the copy happens in
        ``TrimapSnapshot.materialize()``, in the thread that needs the pixels.
        """
        return self._mirror.snapshot()

    def labels_present(self) -> frozenset[int]:
        """The labels with at least one pixel, as of the last finished edit (no scan of the trimap)."""
        return frozenset(label for label, count in zip(LABELS, self._counts) if count > 0)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self._t.shape[0]), int(self._t.shape[1]))

    @property
    def full_box(self) -> Box:
        return Box(0, self.shape[0], 0, self.shape[1])

    @property
    def revision(self) -> int:
        """Increases on every change of the pixels (also during a stroke)."""
        return self._revision

    @property
    def in_stroke(self) -> bool:
        return self._stroke_tiles is not None

    @property
    def is_modified(self) -> bool:
        """True if the trimap differs, by history, from the last mark_saved()."""
        if self._stroke_box is not None:
            return True
        return self._state() != self._saved_state

    def state(self) -> int:
        """A token for the current point in history (equal tokens: equal trimaps)."""
        return self._state()

    def mark_saved(self, state: int | None = None) -> None:
        """The trimap at ``state`` (default: now) is what the file on disk holds.

        A save that encodes in the background passes the state it snapshotted,
        so strokes painted meanwhile still count as unsaved.
        """
        self._saved_state = self._state() if state is None else state

    def _state(self) -> int:
        return self._undo[-1].serial if self._undo else self._base_state

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _notify(self, box: Box, final: bool) -> None:
        self._revision += 1
        for listener in list(self._listeners):
            listener(box, final)

    # -- history -------------------------------------------------------------

    @property
    def undo_limit_bytes(self) -> int:
        return self._undo_limit

    @undo_limit_bytes.setter
    def undo_limit_bytes(self, value: int) -> None:
        self._undo_limit = int(value)
        self._enforce_limit()

    @property
    def undo_memory_bytes(self) -> int:
        """Bytes held by the undo and redo stacks together."""
        return sum(i.nbytes for i in self._undo) + sum(i.nbytes for i in self._redo)

    @property
    def undo_items(self) -> tuple[UndoItem, ...]:
        return tuple(self._undo)

    @property
    def redo_items(self) -> tuple[UndoItem, ...]:
        return tuple(self._redo)

    def can_undo(self) -> bool:
        return bool(self._undo) or self._stroke_box is not None

    def can_redo(self) -> bool:
        return bool(self._redo) and not self.in_stroke

    def undo_text(self) -> str:
        """Description of the step undo() would revert ('' if none)."""
        return self._undo[-1].description if self._undo else ""

    def redo_text(self) -> str:
        return self._redo[-1].description if self._redo else ""

    def undo(self) -> Box | None:
        """Revert the newest step; return the box it changed (None if nothing to undo).

        A stroke still open is finished first, so undo mid-stroke removes it.
        """
        self._finish_open_stroke()
        if not self._undo:
            return None
        item = self._undo.pop()
        self._t[item.box.slices] = item.old
        self._record(item.box, item.new, item.old)
        self._redo.append(item)
        self._notify(item.box, True)
        return item.box

    def redo(self) -> Box | None:
        self._finish_open_stroke()
        if not self._redo:
            return None
        item = self._redo.pop()
        self._t[item.box.slices] = item.new
        self._record(item.box, item.old, item.new)
        self._undo.append(item)
        self._notify(item.box, True)
        return item.box

    def clear_history(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._serial += 1
        self._base_state = self._serial

    def _record(self, box: Box, before: np.ndarray, after: np.ndarray) -> None:
        """A finished change of ``box``: keep the label counts and the snapshot mirror in step."""
        self._counts += _label_counts(after) - _label_counts(before)
        self._mirror.record(Patch(box, before, after))

    def _push(self, box: Box, old: np.ndarray, new: np.ndarray, description: str) -> None:
        self._record(box, old, new)
        self._serial += 1
        self._undo.append(UndoItem(box, old, new, description, self._serial))
        self._redo.clear()
        self._enforce_limit()

    def _enforce_limit(self) -> None:
        total = self.undo_memory_bytes
        # Keep the newest step even if it alone is over the limit.
        while total > self._undo_limit and len(self._undo) > 1:
            dropped = self._undo.pop(0)
            total -= dropped.nbytes
            self._base_state = dropped.serial
        while total > self._undo_limit and self._redo:
            total -= self._redo.pop(0).nbytes

    def _commit_box(self, box: Box, new_values: np.ndarray, description: str) -> Box | None:
        """Write ``new_values`` into ``box`` as one undo step, storing only what changed."""
        old = self._t[box.slices]
        local = _changed_box(old, new_values)
        if local is None:
            return None
        tight = _offset(local, box.y0, box.x0)
        old_part = old[local.slices].copy()
        new_part = new_values[local.slices].copy()
        self._t[tight.slices] = new_part
        self._push(tight, old_part, new_part, description)
        self._notify(tight, True)
        return tight

    # -- whole-trimap operations ------------------------------------------------

    def set_trimap(self, trimap: np.ndarray) -> None:
        """Replace the trimap (a newly loaded file): history is cleared, state is 'saved'."""
        arr = _check_trimap(trimap)
        self._stroke_tiles = None
        self._stroke_box = None
        self._t = np.array(arr, dtype=np.uint8, order="C", copy=True)
        self._mirror = TrimapMirror(self._t.copy())
        self._counts = _label_counts(self._t)
        self.clear_history()
        self.mark_saved()
        self._notify(self.full_box, True)

    def apply_trimap(self, new: np.ndarray, description: str = "Trimap from mask") -> Box | None:
        """Replace the pixels with ``new`` (same size) as one undo step; return the changed box."""
        self._finish_open_stroke()
        arr = _check_trimap(new, self.shape)
        return self._commit_box(self.full_box, arr, description)

    # -- strokes ---------------------------------------------------------------

    def begin_stroke(self) -> None:
        """Start a stroke: all paint_segment() calls until end_stroke() are one undo step."""
        self._finish_open_stroke()
        self._stroke_tiles = {}
        self._stroke_box = None

    def paint_segment(self, p0: Point, p1: Point, radius: float, label: int) -> Box | None:
        """Set every pixel whose centre is within ``radius`` of segment p0-p1 to ``label``.

        ``radius`` is raised to MIN_BRUSH_RADIUS so a click always marks a pixel.
        Returns the box painted (None if it missed the image). Cost is
        proportional to the segment's area, never to the image.
        """
        if self._stroke_tiles is None:
            raise RuntimeError("paint_segment() must be called between begin_stroke() and end_stroke()")
        label = _check_label(label)
        rows, c0, c1 = capsule_spans(p0, p1, max(float(radius), MIN_BRUSH_RADIUS), self.shape)
        if rows.size == 0:
            return None
        box = Box(int(rows[0]), int(rows[-1]) + 1, int(c0.min()), int(c1.max()) + 1)
        self._backup_tiles(box)
        t = self._t
        for i, a, b in zip(rows.tolist(), c0.tolist(), c1.tolist()):
            t[i, a : b + 1] = label
        self._stroke_box = box.union(self._stroke_box)
        self._notify(box, False)
        return box

    def _backup_tiles(self, box: Box) -> None:
        tiles = self._stroke_tiles
        assert tiles is not None
        for ty in range(box.y0 // _TILE, (box.y1 - 1) // _TILE + 1):
            for tx in range(box.x0 // _TILE, (box.x1 - 1) // _TILE + 1):
                if (ty, tx) not in tiles:
                    ys, xs = slice(ty * _TILE, (ty + 1) * _TILE), slice(tx * _TILE, (tx + 1) * _TILE)
                    tiles[(ty, tx)] = self._t[ys, xs].copy()

    def _pre_stroke_values(self, box: Box) -> np.ndarray:
        """The values ``box`` had when the stroke began."""
        tiles = self._stroke_tiles
        assert tiles is not None
        old = self._t[box.slices].copy()
        for (ty, tx), saved in tiles.items():
            ty0, tx0 = ty * _TILE, tx * _TILE
            y0, y1 = max(box.y0, ty0), min(box.y1, ty0 + saved.shape[0])
            x0, x1 = max(box.x0, tx0), min(box.x1, tx0 + saved.shape[1])
            if y0 < y1 and x0 < x1:
                old[y0 - box.y0 : y1 - box.y0, x0 - box.x0 : x1 - box.x0] = saved[
                    y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0
                ]
        return old

    def end_stroke(self, description: str = "Brush") -> Box | None:
        """Finish the stroke as one undo step; return the box of changed pixels (None if none)."""
        if self._stroke_tiles is None:
            return None
        box = self._stroke_box
        result: Box | None = None
        if box is not None:
            old = self._pre_stroke_values(box)
            new = self._t[box.slices]
            local = _changed_box(old, new)
            if local is not None:
                result = _offset(local, box.y0, box.x0)
                self._push(result, old[local.slices].copy(), new[local.slices].copy(), description)
        self._stroke_tiles = None
        self._stroke_box = None
        if result is not None:
            self._notify(result, True)
        return result

    def cancel_stroke(self) -> Box | None:
        """Abandon the open stroke, restoring the pixels it painted; no undo step."""
        if self._stroke_tiles is None:
            return None
        box = self._stroke_box
        if box is not None:
            self._t[box.slices] = self._pre_stroke_values(box)
        self._stroke_tiles = None
        self._stroke_box = None
        if box is not None:
            self._notify(box, False)
        return box

    def _finish_open_stroke(self) -> None:
        if self._stroke_tiles is not None:
            self.end_stroke()

    # -- outlines --------------------------------------------------------------

    def fill_polygon(self, points: Iterable[Point], label: int, description: str = "Lasso fill") -> Box | None:
        """Fill the inside of a closed outline with ``label`` as one undo step."""
        self._finish_open_stroke()
        label = _check_label(label)
        found = polygon_mask(list(points), self.shape)
        if found is None:
            return None
        box, inside = found
        new = self._t[box.slices].copy()
        new[inside] = label
        return self._commit_box(box, new, description)

    def outline_polygon(self, points: Iterable[Point], description: str = "Outline") -> Box | None:
        """Quick start: outside the outline becomes background, inside unknown.

        Pixels inside that are already foreground stay foreground, so an
        outline drawn after marking the subject does not erase that work
        (and redrawing a looser outline is harmless).
        """
        self._finish_open_stroke()
        h, w = self.shape
        if h == 0 or w == 0:
            return None
        new = np.full((h, w), BACKGROUND, dtype=np.uint8)
        found = polygon_mask(list(points), self.shape)
        if found is not None:
            box, inside = found
            keep_fg = self._t[box.slices] == FOREGROUND
            region = new[box.slices]
            region[inside] = UNKNOWN
            region[inside & keep_fg] = FOREGROUND
        return self._commit_box(self.full_box, new, description)
