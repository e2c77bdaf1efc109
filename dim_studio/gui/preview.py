"""The preview pane: the matte as alpha, as a tint over the photo, or the cutout over a background.

It sits beside the canvas and shows the same part of the photo at the same
zoom (the canvas's ``ImageView.link_view`` keeps the two in step, either one
can drive). The pane only displays; ``PreviewController`` decides when to
recompute and which result may be shown, and the preview lane computes.
Composing for display reuses ``dim_studio.export.composite``, so the preview
looks like what export writes.

While a preview computes, the pane says so on the picture itself: a
translucent "Computing preview…" box (with a percentage once it has taken
longer than ``PROGRESS_AFTER_S``), and the last timing in the header marked
stale. Holding the compare key (``COMPARE_KEY``) shows the original photo
in place of the preview until it is released.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import time

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QApplication, QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QVBoxLayout, QWidget,
)

from dim_studio.workflows.jobs import JobContext
from dim_studio.compose import DEFAULT_DECONTAMINATION
from dim_studio.workflows.preview import (
    DEFAULT_OVERLAY_COLOR, DEFAULT_OVERLAY_OPACITY, Display, PreviewMode, PreviewRequest, PreviewResult,
    redisplay, run_preview,
)

from .image_view import ImageView, numpy_to_qimage
from .jobs import JobLane

#: both panes' title rows are this tall, so the two pictures line up
PANE_HEADER_HEIGHT = 34

PREVIEW_MODES: tuple[tuple[str, str], ...] = tuple((m.value, m.label) for m in PreviewMode)
ALPHA, OVERLAY, CHECKERBOARD, BLACK, WHITE, COLOR, IMAGE = (
    PreviewMode.ALPHA.value, PreviewMode.OVERLAY.value, PreviewMode.CHECKERBOARD.value, PreviewMode.BLACK.value,
    PreviewMode.WHITE.value, PreviewMode.COLOR.value, PreviewMode.IMAGE.value,
)
#: a preview that has computed this long shows how far it has got
PROGRESS_AFTER_S = 1.0
#: hold to see the original photo in the preview pane; release to return
COMPARE_KEY = "\\"
#: one key per preview mode (F1 is Help > Keyboard shortcuts); F cycles through them, Shift+F backwards
PREVIEW_MODE_KEYS: dict[str, str] = {
    ALPHA: "F2", OVERLAY: "F3", CHECKERBOARD: "F4", BLACK: "F5", WHITE: "F6", COLOR: "F7", IMAGE: "F8",
}
CYCLE_MODE_KEY = "F"


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
    """The canvas's read-only ``ImageView`` plus a hint drawn while there is no matte,
    a busy overlay while a preview computes, and a label while it shows the original."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = ""
        #: "" when idle, else what the busy overlay says ("Computing preview… 42 %")
        self.busy_text = ""
        #: a corner label (e.g. "Original") drawn over the picture, "" for none
        self.badge = ""

    def set_busy_text(self, text: str) -> None:
        if text != self.busy_text:
            self.busy_text = text
            self.viewport().update()

    def set_badge(self, text: str) -> None:
        if text != self.badge:
            self.badge = text
            self.viewport().update()

    def busy_overlay_visible(self) -> bool:
        return bool(self.busy_text)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt naming
        super().drawForeground(painter, rect)
        if not (self.busy_text or self.badge or (self.placeholder and not self.has_image())):
            return
        painter.save()
        painter.resetTransform()
        vp = self.viewport().rect()
        if self.busy_text:
            # Dim the stale picture, and say plainly what is happening, centred on the pane.
            painter.fillRect(vp, QColor(20, 20, 24, 110))
            font = QFont(painter.font())
            font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.25)
            font.setBold(True)
            painter.setFont(font)
            metrics = painter.fontMetrics()
            w = metrics.horizontalAdvance(self.busy_text) + 40
            h = metrics.height() + 24
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            _draw_label(painter, QRectF(vp.center().x() - w / 2, vp.center().y() - h / 2, w, h),
                        self.busy_text, opacity=225, radius=8)
        elif self.placeholder and not self.has_image():
            painter.setPen(QColor(190, 190, 190))
            r = vp.adjusted(32, 32, -32, -32)
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        if self.badge:
            metrics = painter.fontMetrics()
            _draw_label(painter, QRectF(10, 10, metrics.horizontalAdvance(self.badge) + 20, metrics.height() + 10),
                        self.badge, opacity=215, radius=6)
        painter.restore()


def _draw_label(painter: QPainter, box: QRectF, text: str, *, opacity: int, radius: float) -> None:
    """Light text centred on a dark rounded box (the busy overlay, the "Original" badge)."""
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(24, 24, 28, opacity))
    painter.drawRoundedRect(box, radius, radius)
    painter.setPen(QColor(245, 245, 245))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


def _swatch(color: QColor) -> QPixmap:
    """A 14 px square of ``color``, for a colour button's icon."""
    pix = QPixmap(14, 14)
    pix.fill(color)
    return pix


class PreviewPane(QWidget):
    """Header (mode, colour, background, decontamination, timing) above a ``PreviewImageView``."""

    modeChanged = Signal(str)
    #: mode, colour, background, overlay or decontamination changed: the matte must be composed again (in the lane)
    displayChanged = Signal()
    colorRequested = Signal()
    backgroundRequested = Signal()
    overlayColorRequested = Signal()
    #: the decontamination slider moved: strength 0-1
    decontaminationChanged = Signal(float)
    #: "" when idle, else what the busy overlay says ("Computing preview…", "Computing preview… 42 %",
    #: "Refining with ifm… 60 %" over a stand-in engine's matte)
    busyTextChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = PreviewImageView(self)
        self.view.placeholder = "The matte appears here once the trimap has foreground, background and unknown pixels."
        self.mode_combo = QComboBox()
        for key, label in PREVIEW_MODES:
            self.mode_combo.addItem(label, key)
        self.mode_combo.setToolTip("What the preview shows (F cycles; View > Preview shows lists the keys)")
        self.color_button = QToolButton()
        self.color_button.setToolTip("Preview background colour")
        self.color_button.clicked.connect(self.colorRequested)
        self.image_button = QToolButton()
        self.image_button.setText("Background…")
        self.image_button.setToolTip("Choose the photo the cutout is previewed on")
        self.image_button.clicked.connect(self.backgroundRequested)
        self.overlay_button = QToolButton()
        self.overlay_button.setToolTip("Colour and opacity of the mask overlay")
        self.overlay_button.clicked.connect(self.overlayColorRequested)
        self.decontaminate_label = QLabel("Decontaminate")
        self.decontaminate_slider = QSlider(Qt.Orientation.Horizontal)
        self.decontaminate_slider.setRange(0, 100)
        self.decontaminate_slider.setValue(int(round(100 * DEFAULT_DECONTAMINATION)))
        self.decontaminate_slider.setFixedWidth(90)
        self.decontaminate_slider.setToolTip(
            "Colour decontamination of the cut-out's soft edge: 0 % keeps the photo's colours "
            "(with the old background's cast), 100 % uses the estimated foreground colours")
        self.decontaminate_value = QLabel()
        self.decontaminate_value.setMinimumWidth(34)
        self.info = QLabel()
        self.info.setToolTip("Time the last preview took, and the size it was computed at")

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
        header.addWidget(self.overlay_button)
        header.addSpacing(6)
        header.addWidget(self.decontaminate_label)
        header.addWidget(self.decontaminate_slider)
        header.addWidget(self.decontaminate_value)
        header.addStretch(1)
        header.addWidget(self.info)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)

        self._image: np.ndarray | None = None
        self._result: PreviewResult | None = None
        self._shown_image: QImage | None = None
        self._color = QColor(255, 255, 255)
        self._overlay_color = QColor.fromRgbF(*DEFAULT_OVERLAY_COLOR)
        self._overlay_opacity = DEFAULT_OVERLAY_OPACITY
        self._background: np.ndarray | None = None
        self.background_path = ""
        #: gives the original photo as a QImage for the compare key (the window passes the canvas's)
        self.photo_provider: Callable[[], QImage | None] | None = None
        self._comparing = False
        self._timing = ""
        self._busy_since: float | None = None
        self._fraction = 0.0
        self._busy_text = ""
        self._busy_tick = QTimer(self)
        self._busy_tick.setInterval(250)  # the percentage appears after PROGRESS_AFTER_S even without progress
        self._busy_tick.timeout.connect(self._update_busy)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_index)
        self.decontaminate_slider.valueChanged.connect(self._on_decontaminate)
        self._update_controls()
        self._update_info()

    # -- state --------------------------------------------------------------

    @property
    def mode(self) -> str:
        return str(self.mode_combo.currentData())

    def set_mode(self, mode: str) -> None:
        index = self.mode_combo.findData(str(mode))
        if index >= 0:
            self.mode_combo.setCurrentIndex(index)

    def cycle_mode(self, step: int = 1) -> None:
        """The next (or previous) preview mode, wrapping around."""
        n = self.mode_combo.count()
        self.mode_combo.setCurrentIndex((self.mode_combo.currentIndex() + step) % n)

    @property
    def color(self) -> QColor:
        return QColor(self._color)

    def set_color(self, color: QColor) -> None:
        self._color = QColor(color)
        self._update_controls()
        self.displayChanged.emit()

    @property
    def overlay_color(self) -> QColor:
        """The mask overlay's tint (opaque; the opacity is ``overlay_opacity``)."""
        return QColor(self._overlay_color)

    @property
    def overlay_opacity(self) -> float:
        return self._overlay_opacity

    def set_overlay(self, color: QColor, opacity: float | None = None) -> None:
        """The mask overlay's tint and opacity (0-1; None keeps the current one)."""
        c = QColor(color)
        c.setAlpha(255)
        self._overlay_color = c
        if opacity is not None:
            self._overlay_opacity = min(max(float(opacity), 0.0), 1.0)
        self._update_controls()
        self.displayChanged.emit()

    @property
    def decontamination(self) -> float:
        """Colour decontamination strength for cut-outs, 0-1 (export defaults to it)."""
        return self.decontaminate_slider.value() / 100.0

    def set_decontamination(self, strength: float) -> None:
        self.decontaminate_slider.setValue(int(round(100 * min(max(float(strength), 0.0), 1.0))))

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
        """What the next preview job composes: mode, colours, background photo, decontamination."""
        c, o = self._color, self._overlay_color
        return Display(
            PreviewMode(self.mode), (c.redF(), c.greenF(), c.blueF()), self._background,
            overlay_color=(o.redF(), o.greenF(), o.blueF()), overlay_opacity=self._overlay_opacity,
            decontaminate=self.decontamination,
        )

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
        self._shown_image = None
        self._timing = ""
        if not self._comparing:
            self.view.set_image(None)
        self._update_info()

    def show_result(self, result: PreviewResult, image: QImage | None = None) -> None:
        """Show a result: ``image`` is its pixels as made in the lane (without it, the pixels are converted here)."""
        self._result = result
        self._update_busy()  # a stand-in's matte: the overlay says what is refining it
        self._shown_image = image if image is not None else (
            None if result.pixels is None else numpy_to_qimage(result.pixels))
        if not self._comparing:
            self._show_current()

    def _show_current(self) -> None:
        result = self._result
        self.view.set_checkerboard(result is not None and result.display.mode is PreviewMode.CHECKERBOARD)
        self.view.set_image(self._shown_image)

    # -- compare with the original ------------------------------------------------

    @property
    def comparing(self) -> bool:
        return self._comparing

    def set_comparing(self, on: bool) -> None:
        """Show the original photo (True) in place of the preview, or the preview again (False)."""
        on = bool(on)
        photo = self.photo_provider() if (on and self.photo_provider is not None) else None
        if on and (photo is None or photo.isNull()):
            return  # no photo open: nothing to compare with
        if on == self._comparing:
            return
        self._comparing = on
        if on:
            self.view.set_checkerboard(False)
            self.view.set_image(photo)
            self.view.set_badge("Original")
        else:
            self.view.set_badge("")
            self._show_current()

    # -- busy ---------------------------------------------------------------------

    def set_busy(self, busy: bool, fraction: float = 0.0) -> None:
        """A preview is computing (``fraction`` done), or not."""
        if busy:
            if self._busy_since is None:
                self._busy_since = time.monotonic()
                self._busy_tick.start()
            self._fraction = min(max(float(fraction), 0.0), 1.0)
        else:
            self._busy_since = None
            self._fraction = 0.0
            self._busy_tick.stop()
        self._update_busy()

    @property
    def is_busy(self) -> bool:
        return self._busy_since is not None

    def busy_text(self) -> str:
        """What the busy overlay says ("" when idle)."""
        return self._busy_text

    @property
    def refining(self) -> str:
        """The engine computing to replace the stand-in matte on screen, else ""."""
        return self._result.refining if self.is_busy and self._result is not None else ""

    def progress_text(self) -> str:
        """" 42 %" once a computation has run ``PROGRESS_AFTER_S``, else "" (also when idle)."""
        if self._busy_since is None or time.monotonic() - self._busy_since < PROGRESS_AFTER_S:
            return ""
        return f" {int(100 * self._fraction)} %"

    def set_timing(self, text: str) -> None:
        """The last preview's timing ("0.42 s · 640×480"), shown fresh in the header."""
        self._timing = text
        self._update_info()

    def timing_text(self) -> str:
        return self.info.text()

    def timing_is_stale(self) -> bool:
        return self.is_busy

    def _update_busy(self) -> None:
        if self._busy_since is None:
            text = ""
        else:
            refining = self.refining
            text = (f"Refining with {refining}…" if refining else "Computing preview…") + self.progress_text()
        self.view.set_busy_text(text)
        changed = text != self._busy_text
        self._busy_text = text
        self._update_info()
        if changed:
            self.busyTextChanged.emit(text)

    def _update_info(self) -> None:
        if self.is_busy:
            self.info.setText(f"{self._timing} (stale)" if self._timing else "computing…")
            self.info.setStyleSheet("color: palette(mid); font-style: italic;")
        else:
            self.info.setText(self._timing)
            self.info.setStyleSheet("")

    def displayed_pixels(self) -> np.ndarray | None:
        """What the pane shows, as uint8 (tests compare it)."""
        return None if self._result is None else self._result.pixels

    # -- internals ---------------------------------------------------------------

    def _on_mode_index(self, _index: int) -> None:
        self._update_controls()
        self.modeChanged.emit(self.mode)
        self.displayChanged.emit()

    def _on_decontaminate(self, value: int) -> None:
        self._update_controls()
        self.decontaminationChanged.emit(value / 100.0)
        if PreviewMode(self.mode).is_cutout:
            self.displayChanged.emit()

    def _update_controls(self) -> None:
        mode = PreviewMode(self.mode)
        self.color_button.setVisible(mode is PreviewMode.COLOR)
        self.image_button.setVisible(mode is PreviewMode.IMAGE)
        self.overlay_button.setVisible(mode is PreviewMode.OVERLAY)
        for w in (self.decontaminate_label, self.decontaminate_slider, self.decontaminate_value):
            w.setVisible(mode.is_cutout)
        self.decontaminate_value.setText(f"{self.decontaminate_slider.value()} %")
        self.color_button.setIcon(_swatch(self._color))
        tint = QColor(self._overlay_color)
        tint.setAlphaF(max(self._overlay_opacity, 0.15))
        self.overlay_button.setIcon(_swatch(tint))
        self.overlay_button.setText(f"{round(100 * self._overlay_opacity)} %")
        self.overlay_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        name = Path(self.background_path).name if self.background_path else "none chosen"
        self.image_button.setText(f"Background: {name}")


class CompareKey(QObject):
    """Holding a key shows the original photo in the pane; releasing it (or leaving the window) returns.

    ``press()`` is called when the key goes down (from a QAction's shortcut, so
    the key is listed with the others and works whichever child has focus);
    an application-wide filter then waits for the key's release.
    """

    def __init__(self, pane: PreviewPane, key: Qt.Key = Qt.Key.Key_Backslash, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pane = pane
        self.key = key
        self._installed = False

    def press(self) -> None:
        self.pane.set_comparing(True)
        if self.pane.comparing and not self._installed:
            app = QApplication.instance()
            if app is not None:
                app.installEventFilter(self)
                self._installed = True

    def release(self) -> None:
        if self._installed:
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
            self._installed = False
        self.pane.set_comparing(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        kind = event.type()
        if kind == QEvent.Type.KeyRelease and isinstance(event, QKeyEvent):
            if event.key() == self.key and not event.isAutoRepeat():
                self.release()
        elif kind == QEvent.Type.ApplicationDeactivate:
            self.release()  # the release would go to another application
        return False


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
        self._display_owed = False  # the display changed while the alpha was solving: recompose after
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
        self._display_owed = False
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
            # The running solve was built with the old display; its alpha is still
            # right, so let it finish and compose the new display from it then.
            self._display_owed = True
            return self.latest_id
        result, image = self.last_result, self._image
        if result is None:
            return None
        if self._in_flight and self.latest_id is not None:
            self.lane.cancel(self.latest_id)  # an older recompose (a slider being dragged): superseded
        display = self.pane.display()
        return self._submit(lambda ctx: ShownPreview.of(redisplay(ctx, image, result, display)), alpha=False)

    def _submit(self, job: Callable[[JobContext], Any], *, alpha: bool) -> int:
        self._computing_alpha = alpha
        if alpha:
            self._display_owed = False  # this job reads the current display
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
        if result.final and self._display_owed:
            self._display_owed = False
            self.redisplay()

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id == self.latest_id:
            self._display_owed = False
            self._set_in_flight(False)
            self.failed.emit(error)

    def _on_cancelled(self, request_id: int) -> None:
        if request_id == self.latest_id:
            self._set_in_flight(False)

    def _on_progress(self, request_id: int, fraction: float) -> None:
        if request_id == self.latest_id:
            self.pane.set_busy(True, fraction)
