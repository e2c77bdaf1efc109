"""A read-only, zoomable and pannable view of one picture, and numpy -> QImage.

:class:`ImageView` shows a numpy image with wheel zoom about the cursor,
fit/100%, and panning (middle button, space + left drag, or left drag in a
read-only view), with an optional checkerboard behind transparent pictures.
Two views can be linked with :meth:`ImageView.link_view` so the preview pane
always shows the same part of the picture at the same zoom as the canvas.

It lives apart from the painting canvas (``canvas.py``) because it knows
nothing about trimaps: the preview pane uses it as it is, and
:class:`~dim_studio.gui.canvas.TrimapCanvas` builds the painting tools on it
through a few hooks (``_wheel_special``, ``_is_pan_press``, ``_tool_cursor``,
``_on_view_changed``). :func:`numpy_to_qimage`, :func:`view32` and
:class:`ImageItem` are shared with the canvas, which draws its overlay with
them.

Scene coordinates are image pixel coordinates: pixel (row i, column j)
covers [j, j+1) x [i, i+1).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)
from shiboken6 import isValid

__all__ = [
    "CHUNK_PIXELS",
    "ImageItem",
    "ImageView",
    "ViewState",
    "numpy_to_qimage",
    "view32",
]

_WHEEL_ZOOM_STEP = 1.25  # per wheel notch (120 units)
_MAX_ZOOM = 64.0
CHUNK_PIXELS = 1 << 20  # convert big images in ~1-megapixel bands


# --------------------------------------------------------------------------
# numpy <-> QImage


def view32(image: QImage) -> np.ndarray:
    """Writable (H, W) uint32 view of a 32-bit QImage's pixels.

    ``bits()`` detaches a shared image first, so writes never leak into a
    copy held elsewhere. Take a fresh view per use; do not keep it.
    """
    h, w, bpl = image.height(), image.width(), image.bytesPerLine()
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=np.uint32)
    arr = np.frombuffer(image.bits(), dtype=np.uint32, count=h * bpl // 4)
    return arr.reshape(h, bpl // 4)[:, :w]


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.clip(a, 0, 255).astype(np.uint8)


def numpy_to_qimage(image: np.ndarray) -> QImage:
    """An owned QImage of a numpy picture, converted band by band.

    Accepts (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, as float in [0, 1],
    uint8, uint16 or bool. RGB/grey give Format_RGB32 and RGBA gives
    ARGB32_Premultiplied: the formats Qt draws fastest. Converting in bands
    keeps the float temporaries small on 24-megapixel photos.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    h, w = arr.shape[:2]
    has_alpha = arr.ndim == 3 and arr.shape[2] == 4
    fmt = QImage.Format.Format_ARGB32_Premultiplied if has_alpha else QImage.Format.Format_RGB32
    out = QImage(w, h, fmt)
    if h == 0 or w == 0:
        return out
    view = view32(out)
    step = max(1, CHUNK_PIXELS // max(w, 1))
    for r0 in range(0, h, step):
        band = _to_uint8(arr[r0 : r0 + step]).astype(np.uint32)
        if band.ndim == 2:
            r = g = b = band
            a = np.uint32(255)
        else:
            r, g, b = band[..., 0], band[..., 1], band[..., 2]
            a = band[..., 3] if has_alpha else np.uint32(255)
            if has_alpha:
                r, g, b = ((c * a + 127) // 255 for c in (r, g, b))
        view[r0 : r0 + step] = (a << 24) | (r << 16) | (g << 8) | b
    return out


@lru_cache(maxsize=1)
def _checker_texture() -> QImage:
    cell = 8
    tex = QImage(2 * cell, 2 * cell, QImage.Format.Format_RGB32)
    tex.fill(QColor(204, 204, 204))
    painter = QPainter(tex)
    painter.fillRect(0, 0, cell, cell, QColor(153, 153, 153))
    painter.fillRect(cell, cell, cell, cell, QColor(153, 153, 153))
    painter.end()
    return tex


# --------------------------------------------------------------------------
# the picture item


class ImageItem(QGraphicsItem):
    """Draws a QImage with its top-left at the item origin, only where exposed."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        # Qt then tells paint() which part is exposed, so a small update
        # redraws a small part of a huge image.
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        #: Item-coordinate rect of the last paint() (instrumentation for tests/benchmarks).
        self.last_paint_rect: QRectF | None = None

    def qimage(self) -> QImage:
        return self._image

    def set_qimage(self, image: QImage) -> None:
        if image.size() != self._image.size():
            self.prepareGeometryChange()
        self._image = image
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._image.width(), self._image.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image.isNull():
            return
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        # Whole pixels of the source, so nearest-neighbour zoom stays on the grid.
        # Zoomed out, filter so fine detail does not shimmer; zoomed in, show
        # crisp pixels: a retoucher needs to see exactly which pixel is which.
        scale = math.hypot(painter.worldTransform().m11(), painter.worldTransform().m12())
        smooth = scale < 1.0
        src = exposed.toAlignedRect()
        if smooth:
            # Filtering only samples inside the source rect; a margin of
            # neighbours, clipped off again, keeps partial repaints seamless.
            painter.setClipRect(exposed, Qt.ClipOperation.IntersectClip)
            src = src.adjusted(-2, -2, 2, 2)
        src = src.intersected(self._image.rect())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawImage(QRectF(src), self._image, QRectF(src))
        self.last_paint_rect = QRectF(src)


# --------------------------------------------------------------------------
# the read-only view


@dataclass(frozen=True)
class ViewState:
    """Zoom (screen px per image px) and the image point at the viewport centre."""

    zoom: float
    center_x: float
    center_y: float


class ImageView(QGraphicsView):
    """Zoom/pan view of one image; linkable to other views.

    Signals: ``zoomChanged(float)`` when the zoom changes, ``viewChanged()``
    when zoom or scroll position changes.
    """

    zoomChanged = Signal(float)
    viewChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._photo = ImageItem()
        self._scene.addItem(self._photo)
        self._scene_size = QSize(0, 0)
        self._zoom = 1.0
        self._emitted_zoom: float | None = None
        self._fit_mode = True
        self._batch = 0
        self._following = False
        self._linked: list[ImageView] = []
        self._pan_last: QPoint | None = None
        self._space_held = False
        self._checkerboard = False

        # We place the view ourselves (zoom about cursor); Qt's anchors would fight that.
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        # Scroll bars would change the viewport size as the zoom changes and
        # upset "fit"; panning is by mouse as in other image editors.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(48, 48, 48))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.horizontalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self._update_cursor_shape()

    # -- image -----------------------------------------------------------------

    def set_image(self, image: np.ndarray | QImage | None, display_size: tuple[int, int] | None = None) -> None:
        """Show ``image`` (see numpy_to_qimage for accepted arrays).

        ``display_size`` = (width, height) stretches the picture to that scene
        size, so a preview computed on a downscaled copy still lines up with a
        full-size canvas it is linked to. The view keeps its zoom and position
        when the size is unchanged (a refreshed preview), and fits otherwise.
        """
        if image is None:
            qimage = QImage()
        elif isinstance(image, QImage):
            qimage = image
        else:
            qimage = numpy_to_qimage(image)
        self._photo.set_qimage(qimage)
        w, h = qimage.width(), qimage.height()
        dw, dh = display_size if display_size is not None else (w, h)
        if w and h and (dw, dh) != (w, h):
            self._photo.setTransform(QTransform.fromScale(dw / w, dh / h))
        else:
            self._photo.setTransform(QTransform())
        self._set_scene_size(QSize(int(dw), int(dh)))

    def has_image(self) -> bool:
        return not self._scene_size.isEmpty()

    def photo_image(self) -> QImage:
        """The picture shown (the same QImage, no conversion)."""
        return self._photo.qimage()

    def image_size(self) -> QSize:
        """Size of the shown picture in scene (image) pixels."""
        return QSize(self._scene_size)

    def _set_scene_size(self, size: QSize) -> None:
        changed = size != self._scene_size
        self._scene_size = QSize(size)
        rect = QRectF(0, 0, size.width(), size.height())
        self._scene.setSceneRect(rect)
        self.setSceneRect(rect)
        if changed:
            # A preview linked to a canvas of the same size adopts its view
            # instead of fitting (and dragging the canvas along).
            twin = next((v for v in self._linked if isValid(v) and v.image_size() == size), None)
            if twin is not None:
                self._follow(twin.view_state())
            else:
                self.zoom_fit()

    def set_checkerboard(self, on: bool) -> None:
        """Draw a checkerboard behind the picture (for pictures with transparency)."""
        self._checkerboard = bool(on)
        self.viewport().update()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawBackground(painter, rect)
        if not (self._checkerboard and self.has_image()):
            return
        area = rect.intersected(QRectF(0, 0, self._scene_size.width(), self._scene_size.height()))
        if area.isEmpty():
            return
        painter.save()
        # Squares of constant screen size, like every image editor.
        painter.resetTransform()
        painter.fillRect(self.mapFromScene(area).boundingRect(), QBrush(_checker_texture()))
        painter.restore()

    # -- mapping ---------------------------------------------------------------

    def map_to_image(self, viewport_pos: QPointF | QPoint) -> QPointF:
        """Viewport position -> image (scene) coordinates, with sub-pixel precision."""
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(viewport_pos))

    def map_from_image(self, image_pos: QPointF) -> QPointF:
        """Image (scene) coordinates -> viewport position."""
        return self.viewportTransform().map(QPointF(image_pos))

    # -- zoom and pan ----------------------------------------------------------

    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return self._zoom

    def fit_zoom(self) -> float:
        if not self.has_image():
            return 1.0
        vp = self.viewport().size()
        return max(1e-4, min(vp.width() / self._scene_size.width(), vp.height() / self._scene_size.height()))

    def _clamp_zoom(self, zoom: float) -> float:
        low = max(1e-3, min(self.fit_zoom() * 0.5, 1.0))
        return min(max(float(zoom), low), _MAX_ZOOM)

    def is_fit_mode(self) -> bool:
        """True after zoom_fit() until the user zooms or pans; the view then refits on resize."""
        return self._fit_mode

    def set_zoom(self, zoom: float, anchor: QPointF | QPoint | None = None) -> None:
        """Zoom so the image point under ``anchor`` (viewport coords; default centre) stays put."""
        anchor = self._viewport_center() if anchor is None else QPointF(anchor)
        with self._view_change():
            target = self.map_to_image(anchor)
            self._apply_zoom(self._clamp_zoom(zoom))
            self._scroll_image_point_to(target, anchor)
            self._fit_mode = False

    def zoom_in(self) -> None:
        self.set_zoom(self._zoom * _WHEEL_ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self._zoom / _WHEEL_ZOOM_STEP)

    def zoom_100(self) -> None:
        """One image pixel per screen pixel, keeping the centre of the view."""
        self.set_zoom(1.0)

    def zoom_fit(self) -> None:
        """Show the whole picture; stays fitted when the window is resized."""
        with self._view_change():
            self._apply_zoom(self.fit_zoom())
            centre = QPointF(self._scene_size.width() / 2, self._scene_size.height() / 2)
            self._scroll_image_point_to(centre, self._viewport_center())
            self._fit_mode = True

    def pan_by(self, dx: int, dy: int) -> None:
        """Move the picture by (dx, dy) screen pixels."""
        with self._view_change():
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(dx))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(dy))
            self._fit_mode = False

    def view_state(self) -> ViewState:
        c = self.map_to_image(self._viewport_center())
        return ViewState(self._zoom, c.x(), c.y())

    def set_view_state(self, state: ViewState) -> None:
        with self._view_change():
            self._apply_zoom(self._clamp_zoom(state.zoom))
            self._scroll_image_point_to(QPointF(state.center_x, state.center_y), self._viewport_center())
            self._fit_mode = False

    def _viewport_center(self) -> QPointF:
        vp = self.viewport().size()
        return QPointF(vp.width() / 2, vp.height() / 2)

    def _apply_zoom(self, zoom: float) -> None:
        self._zoom = zoom
        self.setTransform(QTransform.fromScale(zoom, zoom))

    def _scroll_image_point_to(self, image_pt: QPointF, viewport_pt: QPointF) -> None:
        # Scroll values are integers, so the point lands within half a screen pixel.
        now = self.map_from_image(image_pt)
        hbar, vbar = self.horizontalScrollBar(), self.verticalScrollBar()
        hbar.setValue(hbar.value() + round(now.x() - viewport_pt.x()))
        vbar.setValue(vbar.value() + round(now.y() - viewport_pt.y()))

    @contextmanager
    def _view_change(self) -> Iterator[None]:
        """Group scroll/zoom steps so listeners hear one viewChanged at the end."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if self._batch == 0:
                self._view_moved()

    def _on_scrolled(self, _value: int) -> None:
        # Scrolls we make are batched; this is Qt adjusting ranges (resize, scene rect).
        if self._batch == 0:
            self._view_moved()

    def _view_moved(self) -> None:
        if self._emitted_zoom != self._zoom:
            self._emitted_zoom = self._zoom
            self.zoomChanged.emit(self._zoom)
        self._on_view_changed()
        self.viewChanged.emit()
        # An empty view (a cleared preview) has no meaningful view to impose.
        if not self._following and self.has_image():
            state = self.view_state()
            for other in list(self._linked):
                if not isValid(other):
                    self._linked.remove(other)
                    continue
                other._follow(state)

    def _on_view_changed(self) -> None:
        """Hook for subclasses (the canvas resizes its brush outline)."""

    # -- linking ---------------------------------------------------------------

    def link_view(self, other: "ImageView") -> None:
        """Keep ``other`` at the same zoom and centre as this view, both ways.

        ``other`` takes this view's current state immediately.
        """
        if other is self or other in self._linked:
            return
        self._linked.append(other)
        other._linked.append(self)
        other._follow(self.view_state())

    def unlink_view(self, other: "ImageView") -> None:
        if other in self._linked:
            self._linked.remove(other)
        if self in other._linked:
            other._linked.remove(self)

    def linked_views(self) -> tuple["ImageView", ...]:
        return tuple(self._linked)

    def _follow(self, state: ViewState) -> None:
        if self._following or not self.has_image():
            return
        self._following = True
        try:
            self.set_view_state(state)
        finally:
            self._following = False

    # -- Qt events -------------------------------------------------------------

    def resizeEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        with self._view_change():
            super().resizeEvent(event)
            if self._fit_mode:
                self.zoom_fit()

    def showEvent(self, event) -> None:  # noqa: ANN001
        super().showEvent(event)
        if self._fit_mode:
            self.zoom_fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            event.ignore()
            return
        if not self._wheel_special(event, delta):
            self.set_zoom(self._zoom * _WHEEL_ZOOM_STEP ** (delta / 120.0), event.position())
        event.accept()

    def _wheel_special(self, event: QWheelEvent, delta: int) -> bool:
        """Hook: handle a modified wheel event; return True if used."""
        return False

    def _is_pan_press(self, event: QMouseEvent) -> bool:
        return event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._pan_last is None and self._is_pan_press(event):
            self._pan_last = event.position().toPoint()
            self._pan_button = event.button()
            self._update_cursor_shape()
            event.accept()
            return
        event.ignore()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_last is not None:
            pos = event.position().toPoint()
            delta = pos - self._pan_last
            self._pan_last = pos
            self.pan_by(delta.x(), delta.y())
            event.accept()
            return
        event.ignore()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_last is not None and event.button() == self._pan_button:
            self._pan_last = None
            self._update_cursor_shape()
            event.accept()
            return
        event.ignore()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held = True
                self._update_cursor_shape()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held = False
                self._update_cursor_shape()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: ANN001
        # A space released while another widget had focus never reaches us.
        self._space_held = False
        self._update_cursor_shape()
        super().focusOutEvent(event)

    def _tool_cursor(self) -> Qt.CursorShape:
        return Qt.CursorShape.OpenHandCursor

    def _update_cursor_shape(self) -> None:
        if self._pan_last is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space_held:
            shape = Qt.CursorShape.OpenHandCursor
        else:
            shape = self._tool_cursor()
        self.viewport().setCursor(shape)
