"""Quick selection in the window: box or outline -> GrabCut -> trimap, the band slider, tighten.

The segmentation itself is ``dim_studio.quickselect`` (no Qt); this module
runs it in a ``JobLane`` of its own and turns each result into one undo step
of the canvas's ``TrimapDocument``:

- The box tool (Q) emits the dragged rectangle, the outline tool (O) its
  outline after applying it as today; either is segmented in the lane and
  the trimap replaces the document's as one step (for an outline the
  "Outline" step is undone first, so the outline and its segmentation are
  one step together).
- A selection stays active while the history above it holds only brush and
  lasso strokes. The state of each applied result (segmentation, hint map,
  band) is kept by the undo step's serial, so undo and redo bring back the
  matching state; undoing past the first step, opening a photo, loading a
  trimap, clearing, a trimap from a mask or tighten end it.
- Sure-foreground/-background strokes on an active selection are GrabCut
  hints: the pixels each stroke's undo step changed, newest last, on top of
  the hint map of the selection below. The re-run keeps the strokes as known
  pixels (it starts afresh: see ``run_refresh`` for why not from ``previous=``),
  and only in the strokes' direction: background strokes only take away,
  foreground strokes only add (``quickselect.keep_stroke_direction``).
  Unknown strokes (brush or lasso, over hair or a net) do not re-run GrabCut
  but go into the hint map too, so later re-runs and band changes keep them
  unknown; the trimap is made again in the lane after each, which leaves
  unknown the slivers of sure foreground the stroke cut off from the
  subject (``quickselect.cut_off_by_unknown``), one more undo step when it
  changes anything.
- The band is adaptive (``quickselect.Segmentation.trimap``): the slider's
  width on a hard edge, up to ``quickselect.MAX_WIDENING`` times it where the
  edge looks soft; the slider scales both.
- The Band slider re-thresholds the stored distance map in the lane (after
  the release of a dragged slider, or a short pause for the keyboard), one
  undo step per change.
- Tighten makes the trimap from the preview's current alpha
  (``quickselect.tighten``), in the lane too.

A result is applied only if the document is still at the state the job was
asked for; otherwise the user has moved on and it is dropped. A re-run after
strokes that ends while the next stroke is being painted is dropped
silently and run again, with every stroke, when that stroke ends (even one
that changed nothing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QMainWindow, QSlider, QToolBar

from dim_studio import quickselect as qs
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box
from dim_studio.workflows.jobs import JobContext, JobError

from . import dialogs
from .canvas import LASSO_STEP, PAINT_STEP
from .jobs import JobLane

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow

__all__ = ["QuickSelectBar", "QuickSelectController", "create_quick_select_toolbar"]

#: Pause after a keyboard/wheel change of the band before it is applied (ms).
BAND_DEBOUNCE_MS = 300
DEFAULT_TIGHTEN_THRESHOLD = 0.02
_STROKE_PREFIXES = (f"{PAINT_STEP} ", f"{LASSO_STEP} ")


# --------------------------------------------------------------------------
# the toolbar
# --------------------------------------------------------------------------


class QuickSelectBar(QToolBar):
    """Band slider (shown while a quick selection is active), Tighten and its threshold."""

    #: the band width the user settled on (slider released, or a pause after a key)
    bandChosen = Signal(int)

    def __init__(self, window: QMainWindow, tighten_action: QAction) -> None:
        super().__init__("Quick selection", window)
        self.setObjectName("quickSelectToolbar")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, 64)
        self.slider.setFixedWidth(140)
        self.slider.setToolTip("Width of the unknown band each side of the selection's edge, in photo "
                               f"pixels; up to {qs.MAX_WIDENING:g}× wider where the edge looks soft "
                               "(hair, fur)")
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(44)
        self._band_actions = [
            self.addWidget(QLabel(" Band ")),
            self.addWidget(self.slider),
            self.addWidget(self.value_label),
            self.addSeparator(),
        ]
        self.addAction(tighten_action)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.1, 20.0)
        self.threshold_spin.setDecimals(1)
        self.threshold_spin.setSingleStep(0.5)
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setValue(DEFAULT_TIGHTEN_THRESHOLD * 100)
        self.threshold_spin.setToolTip("Tighten makes unknown pixels known where the alpha is within "
                                       "this of 0 or 1")
        self.addWidget(QLabel(" within "))
        self.addWidget(self.threshold_spin)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(BAND_DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit_band)
        self._silent = False
        self.slider.valueChanged.connect(self._on_value)
        self.slider.sliderReleased.connect(self._emit_band)
        self._show_value()
        self.set_band_visible(False)

    def threshold(self) -> float:
        """The tighten threshold as a fraction (0.02 = 2 %)."""
        return float(self.threshold_spin.value()) / 100.0

    def band(self) -> int:
        return int(self.slider.value())

    def set_band(self, band: int, maximum: int | None = None) -> None:
        """Show ``band`` (and a new range) without asking for it to be applied."""
        self._silent = True
        try:
            if maximum is not None:
                self.slider.setRange(1, int(maximum))
            self.slider.setValue(int(band))
        finally:
            self._silent = False
        self._timer.stop()
        self._show_value()

    def set_band_visible(self, visible: bool) -> None:
        for action in self._band_actions:
            action.setVisible(visible)
        self.slider.setEnabled(visible)

    def band_visible(self) -> bool:
        return self.slider.isEnabled()

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.slider.value()} px")

    def _on_value(self, _value: int) -> None:
        self._show_value()
        if self._silent:
            return
        if self.slider.isSliderDown():
            self._timer.stop()  # applied on release: one undo step per drag
        else:
            self._timer.start()

    def _emit_band(self) -> None:
        self._timer.stop()
        self.bandChosen.emit(self.band())


def create_quick_select_toolbar(window: QMainWindow, tighten_action: QAction) -> QuickSelectBar:
    """The quick-selection toolbar, added to ``window`` (window_ui lists it under View > Toolbars)."""
    bar = QuickSelectBar(window, tighten_action)
    window.addToolBar(bar)
    return bar


# --------------------------------------------------------------------------
# the jobs (run in the lane; no Qt)
# --------------------------------------------------------------------------


@dataclass
class _Entry:
    """The state behind one applied quick-selection step."""

    region: tuple[str, Any]  # ("box", (x0, y0, x1, y1)) or ("outline", [(x, y), ...])
    seg: qs.Segmentation
    hints: np.ndarray | None  # hint map used (None: no strokes yet)
    band: int


@dataclass
class _Outcome:
    trimap: np.ndarray
    entry: _Entry | None
    seconds: float
    note: str = ""
    unknown_before: int = 0
    unknown_after: int = 0


Patch = tuple[Box, np.ndarray, np.ndarray]


def _region_kwargs(region: tuple[str, Any]) -> dict[str, Any]:
    kind, value = region
    return {"box": value} if kind == "box" else {"outline": value}


def run_selection(image: np.ndarray, region: tuple[str, Any], band: int) -> _Outcome:
    start = time.perf_counter()
    seg = qs.segment(image, **_region_kwargs(region))
    trimap = seg.trimap(band)
    return _Outcome(trimap, _Entry(region, seg, None, band), time.perf_counter() - start)


def sure_labels(patches: Sequence[Patch]) -> set[int]:
    """The sure labels (``FOREGROUND``, ``BACKGROUND``) that ``patches`` changed pixels to.

    Called on the GUI thread when a stroke ends, so each patch is read in
    linear passes (no sort: a lasso's patch can be most of the photo).
    """
    sure: set[int] = set()
    for _box, old, new in patches:
        sure |= _sure_among(new[old != new])
    return sure


def _sure_among(painted: np.ndarray) -> set[int]:
    return {label for label in (FOREGROUND, BACKGROUND) if (painted == label).any()}


def run_refresh(image: np.ndarray, entry: _Entry, patches: Sequence[Patch], band: int) -> _Outcome:
    """The selection ``entry`` with the strokes ``patches`` painted since, at ``band``.

    Sure strokes re-run GrabCut with them as hints; unknown strokes are only kept.
    """
    start = time.perf_counter()
    hints = None if entry.hints is None else entry.hints.copy()
    sure: set[int] = set()  # the sure labels painted since ``entry`` (``sure_labels``)
    for box, old, new in patches:
        changed = old != new
        if not changed.any():
            continue
        if hints is None:
            hints = np.full(image.shape[:2], qs.NO_HINT, np.uint8)
        part = hints[box.slices]
        part[changed] = new[changed]
        sure |= _sure_among(new[changed])
    seg = entry.seg
    if sure:
        # From scratch, not ``previous=entry.seg``: continuing from the last labels is
        # faster but on the two-disc scene of tests/test_quickselect.py a background stroke
        # across the wrongly included disc left it included for 132 of 256 boxes a few
        # pixels apart (from scratch: 18), so the stroke often seemed to do nothing.
        seg = qs.segment(image, **_region_kwargs(entry.region), hints=hints)
        # A fresh run may move the line the wrong way far from the strokes; a background
        # stroke only takes away and a foreground stroke only adds (see keep_stroke_direction).
        seg = qs.keep_stroke_direction(seg, entry.seg, sure)
    trimap = seg.trimap(band, hints=hints)
    return _Outcome(trimap, _Entry(entry.region, seg, hints, band), time.perf_counter() - start,
                    note="re-segmented with your strokes" if sure else "")


def run_tighten(current: np.ndarray, result: Any, threshold: float) -> _Outcome:
    """Tighten ``current`` with the alpha of a preview ``result`` (scaled up if needed)."""
    start = time.perf_counter()
    h, w = current.shape
    alpha = np.asarray(result.alpha, np.float32)
    notes = []
    if alpha.shape != (h, w):
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    if result.scale < 1.0:
        notes.append(f"the preview's alpha, computed at ×{result.scale:.2f} and scaled up")
    if not np.array_equal(np.asarray(result.trimap), current):
        notes.append("the preview's alpha, which belongs to an earlier trimap")
    new = qs.tighten(current, alpha, threshold)
    return _Outcome(new, None, time.perf_counter() - start, note="; ".join(notes),
                    unknown_before=int(np.count_nonzero(current == UNKNOWN)),
                    unknown_after=int(np.count_nonzero(new == UNKNOWN)))


# --------------------------------------------------------------------------
# the controller
# --------------------------------------------------------------------------


@dataclass
class _Job:
    kind: str  # "box", "outline", "refine", "band", "tighten"
    expected_state: int
    description: str


class QuickSelectController(QObject):
    """Runs quick selections and tighten for a ``MainWindow`` and keeps the band slider in step."""

    #: a result became the trimap: the kind ("box", "outline", "refine", "band", "tighten")
    applied = Signal(str)
    #: the newest job ended (applied, dropped, failed or cancelled)
    idle = Signal()

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.w = window
        self.canvas = window.canvas
        self.doc = self.canvas.document
        self.bar: QuickSelectBar = window.ui.quick_bar
        self.tighten_action: QAction = window.ui.tighten_action
        self.lane = JobLane(self, "quick-select")
        self._entries: dict[int, _Entry] = {}
        self._current: _Entry | None = None
        self._patches: list[Patch] = []
        self._latest: int | None = None
        self._job: _Job | None = None
        self._applying = False
        #: a re-run dropped because a stroke was being painted: that stroke's end runs it again
        self._rerun = False
        self._max_state = self.doc.state()
        #: seconds the last job took in the lane (benchmarks)
        self.last_seconds = 0.0

        c = self.canvas
        c.boxSelected.connect(self.select_box)
        c.outlineCompleted.connect(self.select_outline)
        c.trimapEdited.connect(self._on_edited)
        c.strokeFinished.connect(self._on_stroke_finished)
        self.bar.bandChosen.connect(self.set_band)
        self.tighten_action.triggered.connect(lambda *_: self.tighten())
        self.lane.finished.connect(self._on_finished)
        self.lane.failed.connect(self._on_failed)
        self.lane.cancelled.connect(self._on_cancelled)
        window.preview.shown.connect(lambda *_: self.update_tighten_action())
        window.preview.waiting.connect(lambda *_: self.update_tighten_action())
        self.update_tighten_action()

    # -- state ----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """A quick selection is on the trimap (the band slider is shown)."""
        return self._current is not None

    @property
    def band(self) -> int | None:
        return None if self._current is None else self._current.band

    @property
    def busy(self) -> bool:
        return self._job is not None

    def end(self) -> None:
        """Forget the selection (its undo steps stay ordinary steps)."""
        self._entries.clear()
        self._current = None
        self._patches = []
        self._rerun = False
        self._cancel_job()
        self._show_state()

    def shutdown(self) -> None:
        self.lane.shutdown()

    def _locate(self) -> tuple[_Entry | None, list[Patch]]:
        """The selection under the strokes on top of the history, and those strokes (oldest first)."""
        patches: list[Patch] = []
        items = self.doc.undo_items
        for item in reversed(items):
            entry = self._entries.get(item.serial)
            if entry is not None:
                return entry, patches[::-1]
            if not item.description.startswith(_STROKE_PREFIXES):
                return None, []
            patches.append((item.box, item.old, item.new))
        entry = self._entries.get(self.doc.state()) if not items else None
        return entry, patches[::-1]

    def _sync(self) -> None:
        state = self.doc.state()
        if state > self._max_state:  # a new step: forget states nobody can go back to
            self._max_state = state
            live = {i.serial for i in self.doc.undo_items} | {i.serial for i in self.doc.redo_items}
            for serial in [s for s in self._entries if s not in live and s != state]:
                del self._entries[serial]
        self._current, self._patches = self._locate()
        if self._current is None and not self.doc.undo_items and not self.doc.redo_items:
            self._entries.clear()  # a new photo or a loaded trimap: the history was cleared
        self._show_state()

    def _show_state(self) -> None:
        entry = self._current
        self.bar.set_band_visible(entry is not None)
        if entry is not None:
            default = qs.default_band(entry.seg.image_shape)
            self.bar.set_band(entry.band, max(64, 3 * default))
        self.update_tighten_action()

    def update_tighten_action(self) -> None:
        ready = self.w.image is not None and self.w.preview.last_result is not None
        self.tighten_action.setEnabled(ready)
        tip = ("Make the unknown pixels whose alpha is confidently 0 or 1 known (Ctrl+T)" if ready else
               "Tighten needs a preview: it reads the matte shown on the right")
        self.tighten_action.setToolTip(tip)
        self.tighten_action.setStatusTip(tip)

    # -- user actions ----------------------------------------------------------------

    def select_box(self, box: object) -> int | None:
        """Segment the subject inside ``box`` (x0, y0, x1, y1 in photo pixels)."""
        image = self.w.image
        if image is None:
            return None
        x0, y0, x1, y1 = (float(v) for v in box)  # type: ignore[union-attr]
        if x1 - x0 < 2 or y1 - y0 < 2:
            self._status("Drag a box round the subject to select it")
            return None
        band = qs.default_band(image.shape)
        region = ("box", (x0, y0, x1, y1))
        return self._submit("box", lambda ctx: run_selection(image, region, band), "Quick selection (box)")

    def select_outline(self, points: object) -> int | None:
        """The outline tool finished: segment inside it, replacing the "Outline" step."""
        image = self.w.image
        if image is None:
            return None
        pts = [(float(x), float(y)) for x, y in points]  # type: ignore[union-attr]
        band = qs.default_band(image.shape)
        region = ("outline", pts)
        return self._submit("outline", lambda ctx: run_selection(image, region, band),
                            "Quick selection (outline)")

    def set_band(self, band: int) -> int | None:
        """Change the unknown band of the active selection (one undo step once applied)."""
        self._sync()
        entry, image = self._current, self.w.image
        if entry is None or image is None or (band == entry.band and not self._patches):
            return None
        patches, band = list(self._patches), int(band)
        return self._submit("band", lambda ctx: run_refresh(image, entry, patches, band),
                            f"Quick selection band {band} px")

    def refine(self) -> int | None:
        """Re-run the active selection with the strokes painted on it.

        When they are all unknown strokes GrabCut does not re-run; the
        trimap is only made again, so that the slivers of sure foreground
        they cut off become unknown too (``quickselect.cut_off_by_unknown``).
        """
        self._sync()
        entry, image = self._current, self.w.image
        if entry is None or image is None or not self._patches:
            return None
        patches, band = list(self._patches), entry.band
        sure = bool(sure_labels(patches))
        return self._submit("refine", lambda ctx: run_refresh(image, entry, patches, band),
                            "Quick selection with strokes" if sure else "Slivers cut off by the unknown stroke",
                            status=None if sure else "Updating the trimap…")

    def tighten(self) -> int | None:
        """Edit > Tighten: the trimap from the preview's alpha (unknown pixels confidently 0 or 1 become known)."""
        result = self.w.preview.last_result
        if self.w.image is None or result is None:
            self._status("Tighten needs a preview of the matte first")
            return None
        threshold = self.bar.threshold()
        snapshot = self.doc.snapshot()
        return self._submit("tighten", lambda ctx: run_tighten(snapshot.materialize(), result, threshold),
                            f"Tighten ({threshold * 100:g} %)")

    # -- jobs ---------------------------------------------------------------------------

    def _submit(self, kind: str, fn: Callable[[JobContext], _Outcome], description: str,
                status: str | None = None) -> int:
        self._job = _Job(kind, self.doc.state(), description)
        self._latest = self.lane.submit(fn)
        self._status(status or ("Tightening…" if kind == "tighten" else "Finding the subject…"), 0)
        return self._latest

    def _cancel_job(self) -> None:
        if self._latest is not None:
            self.lane.cancel(self._latest)
        self._latest = None
        if self._job is not None:
            self._job = None
            self.idle.emit()

    def _on_finished(self, request_id: int, outcome: object) -> None:
        if request_id != self._latest or self._job is None:
            return
        job, self._job, self._latest = self._job, None, None
        assert isinstance(outcome, _Outcome)
        self.last_seconds = outcome.seconds
        try:
            if self.doc.state() != job.expected_state or self.doc.in_stroke or self.w.image is None \
                    or outcome.trimap.shape != self.doc.shape:
                if job.kind == "refine" and self.doc.in_stroke:
                    # Painting on: the stroke's end re-runs the selection with every stroke.
                    self._rerun = True
                else:
                    self._status("The trimap changed meanwhile; that result was dropped")
                return
            if job.kind == "tighten":
                self._apply_tighten(job, outcome)
                return
            self._applying = True
            try:
                if job.kind == "outline":
                    self.canvas.undo()  # the outline and its segmentation: one step
                self.canvas.apply_trimap(outcome.trimap, job.description)
            finally:
                self._applying = False
            assert outcome.entry is not None
            self._entries[self.doc.state()] = outcome.entry
            self._sync()
            band = outcome.entry.band
            self._status(f"Quick selection ({outcome.seconds:.2f} s{', ' + outcome.note if outcome.note else ''}): "
                         f"unknown band {band} px (wider where the edge looks soft). Drag the Band slider to "
                         "change it; paint with 1 or 2 to correct it, 3 over hair or see-through parts.",
                         10000)
            self.applied.emit(job.kind)
        finally:
            self.idle.emit()

    def _apply_tighten(self, job: _Job, outcome: _Outcome) -> None:
        used = f" (used {outcome.note})" if outcome.note else ""
        if outcome.unknown_after == 0 and outcome.unknown_before > 0:
            message = ("Tighten would leave no unknown pixel, so the trimap was kept as it is. "
                       "Lower the threshold or paint an unknown band first.")
            self._status(message, 10000)
            dialogs.show_info(self.w, "Tighten", message)
            return
        if outcome.unknown_after == outcome.unknown_before:
            self._status(f"Nothing to tighten: every unknown pixel's alpha is fractional{used}", 10000)
            return
        self.canvas.apply_trimap(outcome.trimap, job.description)
        self._status(f"Tightened: unknown {outcome.unknown_before} → {outcome.unknown_after} pixels{used}",
                     10000)
        self.applied.emit(job.kind)

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id != self._latest or self._job is None:
            return
        job, self._job, self._latest = self._job, None, None
        message = error.message if isinstance(error, JobError) else str(error)
        self._status("")
        dialogs.show_error(self.w, "Tighten" if job.kind == "tighten" else "Quick selection", message)
        self.idle.emit()

    def _on_cancelled(self, request_id: int) -> None:
        if request_id == self._latest:
            self._job, self._latest = None, None
            self.idle.emit()

    # -- canvas events -------------------------------------------------------------------

    def _on_edited(self, _box: object) -> None:
        if not self._applying:
            self._sync()

    def _on_stroke_finished(self, changed: bool) -> None:
        rerun, self._rerun = self._rerun, False
        if self._applying or self.canvas.tool not in ("brush", "lasso") or not (changed or rerun):
            return
        self.refine()

    def _status(self, text: str, timeout: int = 5000) -> None:
        bar = self.w.statusBar()
        if text:
            bar.showMessage(text, timeout)
        else:
            bar.clearMessage()
