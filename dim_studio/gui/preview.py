"""The preview pane: the matte as alpha, or the cutout over a checkerboard, a colour or a photo.

It sits beside the canvas and shows the same part of the photo at the same
zoom (the canvas's ``ImageView.link_view`` keeps the two in step, either one
can drive). The pane only displays; ``PreviewController`` decides when to
recompute and which result may be shown, and the preview lane computes.
Composing for display reuses ``dim_studio.export.composite``, so the preview
looks like what export writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QToolButton, QVBoxLayout, QWidget

from dim_studio.workflows.jobs import JobContext
from dim_studio.workflows.preview import (
    Display, PreviewMode, PreviewRequest, PreviewResult, redisplay, run_preview,
)

from .image_view import ImageView, numpy_to_qimage
from .jobs import JobLane

#: both panes' title rows are this tall, so the two pictures line up
PANE_HEADER_HEIGHT = 34

PREVIEW_MODES: tuple[tuple[str, str], ...] = tuple((m.value, m.label) for m in PreviewMode)


@dataclass(frozen=True)
class ShownPreview:
    """A preview result with its display pixels as a QImage, made in the lane's thread:
    converting a 24 MP frame takes long enough to stall painting if the GUI thread did it."""

    result: PreviewResult
    image: QImage | None

    @classmethod
    def of(cls, result: PreviewResult) -> "ShownPreview":
        return cls(result, None if result.pixels is None else numpy_to_qimage(result.pixels))


def _displaying(ctx: JobContext) -> JobContext:
    """``ctx`` whose intermediate results carry their QImage too."""
    def partial(payload: Any) -> None:
        ctx.partial(ShownPreview.of(payload) if isinstance(payload, PreviewResult) else payload)

    return replace(ctx, partial=partial)


class PreviewImageView(ImageView):
    """The canvas's read-only ``ImageView`` plus a hint drawn while there is no matte."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = ""

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt naming
        super().drawForeground(painter, rect)
        if self.placeholder and not self.has_image():
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor(190, 190, 190))
            r = self.viewport().rect().adjusted(32, 32, -32, -32)
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            painter.restore()


class PreviewPane(QWidget):
    """Header (mode, colour, background, busy indicator) above a ``PreviewImageView``."""

    modeChanged = Signal(str)
    #: mode, colour or background changed: the matte must be composed again (in the lane)
    displayChanged = Signal()
    colorRequested = Signal()
    backgroundRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = PreviewImageView(self)
        self.view.placeholder = "The matte appears here once the trimap has foreground, background and unknown pixels."
        self.mode_combo = QComboBox()
        for key, label in PREVIEW_MODES:
            self.mode_combo.addItem(label, key)
        self.mode_combo.setToolTip("What the preview shows")
        self.color_button = QToolButton()
        self.color_button.setToolTip("Preview background colour")
        self.color_button.clicked.connect(self.colorRequested)
        self.image_button = QToolButton()
        self.image_button.setText("Background…")
        self.image_button.setToolTip("Choose the photo the cutout is previewed on")
        self.image_button.clicked.connect(self.backgroundRequested)
        self.busy = QProgressBar()
        self.busy.setRange(0, 100)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.info = QLabel()
        self.info.setStyleSheet("color: palette(mid);")

        title = QLabel("<b>Preview</b>")
        self.header = QWidget()
        self.header.setObjectName("paneHeader")
        self.header.setFixedHeight(PANE_HEADER_HEIGHT)
        header = QHBoxLayout(self.header)
        header.setContentsMargins(8, 2, 8, 2)
        header.addWidget(title)
        header.addSpacing(8)
        header.addWidget(self.mode_combo)
        header.addWidget(self.color_button)
        header.addWidget(self.image_button)
        header.addStretch(1)
        header.addWidget(self.info)
        header.addWidget(self.busy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)

        self._image: np.ndarray | None = None
        self._result: PreviewResult | None = None
        self._color = QColor(255, 255, 255)
        self._background: np.ndarray | None = None
        self.background_path = ""
        self.mode_combo.currentIndexChanged.connect(self._on_mode_index)
        self._update_controls()

    # -- state --------------------------------------------------------------

    @property
    def mode(self) -> str:
        return str(self.mode_combo.currentData())

    def set_mode(self, mode: str) -> None:
        index = self.mode_combo.findData(str(mode))
        if index >= 0:
            self.mode_combo.setCurrentIndex(index)

    @property
    def color(self) -> QColor:
        return QColor(self._color)

    def set_color(self, color: QColor) -> None:
        self._color = QColor(color)
        self._update_controls()
        self.displayChanged.emit()

    def set_background(self, image: np.ndarray | None, path: str = "") -> None:
        """The photo the cutout is shown on (decoded by the caller, off the GUI thread)."""
        self._background = image
        self.background_path = path
        self._update_controls()
        self.displayChanged.emit()

    @property
    def background(self) -> np.ndarray | None:
        return self._background

    def display(self) -> Display:
        """What the next preview job composes: mode, colour and background photo."""
        c = self._color
        return Display(PreviewMode(self.mode), (c.redF(), c.greenF(), c.blueF()), self._background)

    @property
    def result(self) -> PreviewResult | None:
        """The result on display (None when there is none)."""
        return self._result

    @property
    def alpha(self) -> np.ndarray | None:
        """The alpha on display (None when there is none)."""
        return None if self._result is None else self._result.alpha

    @property
    def foreground(self) -> np.ndarray | None:
        return None if self._result is None else self._result.foreground

    def set_photo(self, image: np.ndarray | None) -> None:
        """A new photo: the old matte no longer applies."""
        self._image = image
        self.clear()

    def clear(self) -> None:
        self._result = None
        self.view.set_image(None)

    def show_result(self, result: PreviewResult, image: QImage | None = None) -> None:
        """Show a result: ``image`` is its pixels as made in the lane (without it, the pixels are converted here)."""
        self._result = result
        self.view.set_checkerboard(result.display.mode is PreviewMode.CHECKERBOARD)
        self.view.set_image(image if image is not None else result.pixels)

    def set_busy(self, busy: bool, fraction: float = 0.0) -> None:
        self.busy.setVisible(busy)
        self.busy.setValue(int(round(100 * fraction)))

    def displayed_pixels(self) -> np.ndarray | None:
        """What the pane shows, as uint8 (tests compare it)."""
        return None if self._result is None else self._result.pixels

    # -- internals ---------------------------------------------------------------

    def _on_mode_index(self, _index: int) -> None:
        self._update_controls()
        self.modeChanged.emit(self.mode)
        self.displayChanged.emit()

    def _update_controls(self) -> None:
        mode = self.mode
        self.color_button.setVisible(mode == PreviewMode.COLOR)
        self.image_button.setVisible(mode == PreviewMode.IMAGE)
        pix = QPixmap(14, 14)
        pix.fill(self._color)
        self.color_button.setIcon(pix)
        name = Path(self.background_path).name if self.background_path else "none chosen"
        self.image_button.setText(f"Background: {name}")


class PreviewController(QObject):
    """Debounced, latest-wins live preview: trimap edits in, displayed mattes out.

    The window calls ``schedule()`` after each finished edit and
    ``interrupt()`` when a new stroke starts; ``make_request`` (given by the
    window) snapshots the photo, trimap and engine choice, or returns a
    sentence saying why there is nothing to compute yet. Only the result of
    the newest request is ever shown: older ones are cancelled in the lane
    and, should one finish anyway, dropped here by its request id. A change
    of preview mode, colour or background recomposes the current matte in
    the lane too (never on the GUI thread).
    """

    #: a preview was displayed: (request id, PreviewResult)
    shown = Signal(int, object)
    #: the newest preview failed: JobError
    failed = Signal(object)
    #: nothing to compute: the reason (e.g. "no foreground yet"), or "" once computing again
    waiting = Signal(str)
    #: a preview job started (True) or the newest one ended (False)
    busyChanged = Signal(bool)

    def __init__(
        self,
        lane: JobLane,
        pane: PreviewPane,
        make_request: Callable[[], PreviewRequest | str | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.lane = lane
        self.pane = pane
        self.make_request = make_request
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(150)  # "after the stroke", but not after every keystroke of undo
        self.timer.timeout.connect(self.request_now)
        self.latest_id: int | None = None
        self.last_result: PreviewResult | None = None
        #: id of the result on screen (tests check no stale one got there)
        self.displayed_id: int | None = None
        #: how many results reached the screen since the photo was opened
        self.displayed_count = 0
        self._image: np.ndarray | None = None
        self._in_flight = False  # the newest request has not finished, failed or been cancelled
        self._owed = False  # a stroke interrupted a preview that must be redone
        self._computing_alpha = False  # the newest job solves for the alpha (not just recomposes)
        lane.partial.connect(self._on_result)
        lane.finished.connect(self._on_result)
        lane.failed.connect(self._on_failed)
        lane.cancelled.connect(self._on_cancelled)
        lane.progressed.connect(self._on_progress)
        pane.displayChanged.connect(self.redisplay)

    @property
    def in_flight(self) -> bool:
        return self._in_flight

    # -- inputs ---------------------------------------------------------------

    def set_photo(self, image: np.ndarray | None) -> None:
        self.interrupt()
        self.latest_id = None
        self.last_result = None
        self.displayed_id = None
        self._set_in_flight(False)
        self._owed = False
        self._image = image
        self.pane.set_photo(image)

    def schedule(self) -> None:
        """Recompute shortly (restarts the debounce)."""
        self.timer.start()

    def interrupt(self) -> None:
        """A stroke began: the running preview is about to be out of date, stop it.

        If the stroke then changes nothing, ``stroke_finished`` brings back
        the preview that was cancelled or still waiting for its debounce.
        """
        if self.timer.isActive() or self._in_flight:
            self._owed = True
        self.timer.stop()
        if self.latest_id is not None:
            self.lane.cancel(self.latest_id)

    def stroke_finished(self, changed: bool) -> None:
        """The canvas's ``strokeFinished``; an edit that changed pixels schedules via ``trimapEdited``."""
        if not changed and self._owed:
            self.schedule()

    def request_now(self) -> int | None:
        """Submit a preview of the current state; returns its request id (None if nothing to do)."""
        self.timer.stop()
        self._owed = False
        request = self.make_request()
        if not isinstance(request, PreviewRequest):
            # Nothing sensible to show: drop the old matte rather than show a wrong one.
            self.interrupt()
            self.latest_id = None
            self.last_result = None
            self._owed = False
            self._set_in_flight(False)
            self.pane.clear()
            self.waiting.emit(request or "")
            return None
        self.waiting.emit("")
        return self._submit(lambda ctx: ShownPreview.of(run_preview(_displaying(ctx), request)), alpha=True)

    def redisplay(self) -> int | None:
        """Show the current matte with the pane's mode, colour and background (computing the
        foreground first if the new mode needs it)."""
        if self._image is None or self.timer.isActive():
            return None  # a preview is about to be built, and it reads the display then
        if self._in_flight and self._computing_alpha:
            return self.request_now()  # the running one was built with the old display
        result, image = self.last_result, self._image
        if result is None:
            return None
        display = self.pane.display()
        return self._submit(lambda ctx: ShownPreview.of(redisplay(ctx, image, result, display)), alpha=False)

    def _submit(self, job: Callable[[JobContext], Any], *, alpha: bool) -> int:
        self._computing_alpha = alpha
        self.latest_id = self.lane.submit(job)
        self._set_in_flight(True)
        self.pane.set_busy(True, 0.0)
        return self.latest_id

    def _set_in_flight(self, busy: bool) -> None:
        if busy != self._in_flight:
            self._in_flight = busy
            self.busyChanged.emit(busy)
        if not busy:
            self.pane.set_busy(False)

    # -- lane signals ----------------------------------------------------------

    def _on_result(self, request_id: int, shown: object) -> None:
        if request_id != self.latest_id or not isinstance(shown, ShownPreview):
            return  # stale: never shown
        result = shown.result
        if self._image is None or result.alpha.shape != self._image.shape[:2]:
            return
        self.last_result = result
        self.displayed_id = request_id
        self.displayed_count += 1
        self.pane.show_result(result, shown.image)
        if result.final:
            self._set_in_flight(False)
        self.shown.emit(request_id, result)

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id == self.latest_id:
            self._set_in_flight(False)
            self.failed.emit(error)

    def _on_cancelled(self, request_id: int) -> None:
        if request_id == self.latest_id:
            self._set_in_flight(False)

    def _on_progress(self, request_id: int, fraction: float) -> None:
        if request_id == self.latest_id:
            self.pane.set_busy(True, fraction)
