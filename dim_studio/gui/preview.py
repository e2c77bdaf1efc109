"""The preview pane: the matte as alpha, or the cutout over a checkerboard, a colour or a photo.

It sits beside the canvas and shows the same part of the photo at the same
zoom (the canvas's ``ImageView.link_view`` keeps the two in step, either one
can drive). The pane only displays; ``PreviewController`` decides when to
recompute and which result may be shown, and the matting worker computes.
Composing for display reuses ``dim_studio.export.composite``, so the preview
looks like what export writes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QToolButton, QVBoxLayout, QWidget

from dim_studio.export import Background, composite
from dim_studio.preview_scale import estimate_foreground_scaled

from .canvas import ImageView
from .worker import JobContext, MattingWorker, PreviewRequest, PreviewResult, run_preview

#: both panes' title rows are this tall, so the two pictures line up
PANE_HEADER_HEIGHT = 34

ALPHA, CHECKERBOARD, COLOR, IMAGE = "alpha", "checkerboard", "color", "image"
PREVIEW_MODES: tuple[tuple[str, str], ...] = (
    (ALPHA, "Alpha"),
    (CHECKERBOARD, "Cutout on checkerboard"),
    (COLOR, "Cutout on colour"),
    (IMAGE, "Cutout on image"),
)


def needs_foreground(mode: str) -> bool:
    """Cutout modes show estimated foreground colours, which the worker computes."""
    return mode != ALPHA


def compose_preview(
    image: np.ndarray,
    alpha: np.ndarray,
    foreground: np.ndarray | None,
    mode: str,
    color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    background: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 display pixels for a mode.

    ALPHA: (H, W) grey. CHECKERBOARD: (H, W, 4) straight RGBA, which the view
    draws over its own checkerboard (squares of constant screen size, as in
    every image editor). COLOR / IMAGE: (H, W, 3), composed by
    ``export.composite`` exactly as an exported composite. Until the
    foreground estimate arrives the photo stands in for it, so the cutout
    appears at once and its edge colours clean up a moment later.
    """
    if mode == ALPHA:
        return np.round(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
    fg = foreground if foreground is not None else image
    if mode == CHECKERBOARD:
        rgba = np.dstack([fg, alpha])
        return np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
    if mode == IMAGE and background is not None:
        bg = Background(image=background)
    else:
        bg = Background(color=color)
    out = composite(fg, alpha, bg)
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


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
        self._alpha: np.ndarray | None = None
        self._foreground: np.ndarray | None = None
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
        index = self.mode_combo.findData(mode)
        if index >= 0:
            self.mode_combo.setCurrentIndex(index)

    @property
    def color(self) -> QColor:
        return QColor(self._color)

    def set_color(self, color: QColor) -> None:
        self._color = QColor(color)
        self._update_controls()
        self._refresh()

    def set_background(self, image: np.ndarray | None, path: str = "") -> None:
        self._background = image
        self.background_path = path
        self._update_controls()
        self._refresh()

    @property
    def alpha(self) -> np.ndarray | None:
        """The alpha on display (None when there is none)."""
        return self._alpha

    @property
    def foreground(self) -> np.ndarray | None:
        return self._foreground

    def set_photo(self, image: np.ndarray | None) -> None:
        """A new photo: the old matte no longer applies."""
        self._image = image
        self._alpha = None
        self._foreground = None
        self.view.set_image(None)

    def clear(self) -> None:
        self._alpha = None
        self._foreground = None
        self.view.set_image(None)

    def show_result(self, alpha: np.ndarray, foreground: np.ndarray | None) -> None:
        self._alpha = alpha
        self._foreground = foreground
        self._refresh()

    def set_busy(self, busy: bool, fraction: float = 0.0) -> None:
        self.busy.setVisible(busy)
        self.busy.setValue(int(round(100 * fraction)))

    # -- internals ---------------------------------------------------------------

    def _on_mode_index(self, _index: int) -> None:
        self._update_controls()
        self._refresh()
        self.modeChanged.emit(self.mode)

    def _update_controls(self) -> None:
        mode = self.mode
        self.color_button.setVisible(mode == COLOR)
        self.image_button.setVisible(mode == IMAGE)
        pix = QPixmap(14, 14)
        pix.fill(self._color)
        self.color_button.setIcon(pix)
        name = Path(self.background_path).name if self.background_path else "none chosen"
        self.image_button.setText(f"Background: {name}")

    def _refresh(self) -> None:
        if self._image is None or self._alpha is None:
            return
        if self.mode == IMAGE and self._background is None and self.background_path:
            self._load_background()
        c = self._color
        pixels = compose_preview(
            self._image, self._alpha, self._foreground, self.mode,
            (c.redF(), c.greenF(), c.blueF()), self._background,
        )
        self.view.set_checkerboard(self.mode == CHECKERBOARD)
        self.view.set_image(pixels)

    def _load_background(self) -> None:
        """The remembered background photo, read the first time it is needed."""
        from dim_studio.errors import DimStudioError
        from dim_studio.images import read_image

        try:
            self._background = read_image(self.background_path)
        except DimStudioError:
            self.background_path = ""  # gone or unreadable: fall back to the colour
            self._update_controls()

    def displayed_pixels(self) -> np.ndarray | None:
        """What the pane shows, as uint8 (tests compare it)."""
        if self._image is None or self._alpha is None:
            return None
        c = self._color
        return compose_preview(self._image, self._alpha, self._foreground, self.mode,
                               (c.redF(), c.greenF(), c.blueF()), self._background)



class PreviewController(QObject):
    """Debounced, latest-wins live preview: trimap edits in, displayed mattes out.

    The window calls ``schedule()`` after each finished edit and
    ``interrupt()`` when a new stroke starts; ``make_request`` (given by the
    window) snapshots the photo, trimap and engine choice, or returns a
    sentence saying why there is nothing to compute yet. Only the result of
    the newest request is ever shown: older ones are cancelled in the worker
    and, should one finish anyway, dropped here by its request id.
    """

    #: a preview was displayed: (request id, PreviewResult)
    shown = Signal(int, object)
    #: the newest preview failed: JobError
    failed = Signal(object)
    #: nothing to compute: the reason (e.g. "no foreground yet"), or "" once computing again
    waiting = Signal(str)

    def __init__(
        self,
        worker: MattingWorker,
        pane: PreviewPane,
        make_request: Callable[[], PreviewRequest | str | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.pane = pane
        self.make_request = make_request
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(150)  # "after the stroke", but not after every keystroke of undo
        self.timer.timeout.connect(self.request_now)
        self.latest_id: int | None = None
        self.last_result: PreviewResult | None = None
        self._last_result_id: int | None = None
        #: ids of the results that reached the screen, in order (tests check no stale one did)
        self.displayed_ids: list[int] = []
        self._image: np.ndarray | None = None
        self._in_flight = False  # the newest request has not finished, failed or been cancelled
        self._owed = False  # a stroke interrupted a preview that must be redone
        worker.partial.connect(self._on_result)
        worker.finished.connect(self._on_result)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.progressed.connect(self._on_progress)

    # -- inputs ---------------------------------------------------------------

    def set_photo(self, image: np.ndarray | None) -> None:
        self.interrupt()
        self.latest_id = None
        self.last_result = None
        self._in_flight = self._owed = False
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
            self.worker.cancel(self.latest_id)

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
            self._in_flight = self._owed = False
            self.pane.clear()
            self.pane.set_busy(False)
            self.waiting.emit(request or "")
            return None
        self.waiting.emit("")
        self.latest_id = self.worker.submit(lambda ctx: run_preview(ctx, request))
        self._in_flight = True
        self.pane.set_busy(True, 0.0)
        return self.latest_id

    def request_foreground(self) -> int | None:
        """The cutout modes need foreground colours the current result lacks: estimate only those."""
        result = self.last_result
        image = self._image
        if result is None or result.foreground is not None or image is None or self.timer.isActive():
            return None
        if self.latest_id != self._last_result_id:
            return None  # a newer preview is on its way; it reads the mode when it is built

        def job(ctx: JobContext) -> PreviewResult:
            start = time.perf_counter()
            fg = estimate_foreground_scaled(image, result.alpha, result.scale, cancel=ctx.cancelled)
            return replace(result, foreground=fg, final=True,
                           seconds=result.seconds + time.perf_counter() - start)

        self.latest_id = self.worker.submit(job)
        self._in_flight = True
        self.pane.set_busy(True, 0.0)
        return self.latest_id

    # -- worker signals ----------------------------------------------------------

    def _on_result(self, request_id: int, result: object) -> None:
        if request_id != self.latest_id or not isinstance(result, PreviewResult):
            return  # stale (or an export's result): never shown
        if self._image is None or result.alpha.shape != self._image.shape[:2]:
            return
        self.last_result = result
        self._last_result_id = request_id
        self.pane.show_result(result.alpha, result.foreground)
        if result.final:
            self._in_flight = False
            self.pane.set_busy(False)
        self.displayed_ids.append(request_id)
        self.shown.emit(request_id, result)
        if result.final and result.foreground is None and needs_foreground(self.pane.mode):
            # The mode changed to a cutout while this alpha was computed.
            self.request_foreground()

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id == self.latest_id:
            self._in_flight = False
            self.pane.set_busy(False)
            self.failed.emit(error)

    def _on_cancelled(self, request_id: int) -> None:
        if request_id == self.latest_id:
            self._in_flight = False
            self.pane.set_busy(False)

    def _on_progress(self, request_id: int, fraction: float) -> None:
        if request_id == self.latest_id:
            self.pane.set_busy(True, fraction)
