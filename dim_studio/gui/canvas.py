"""The trimap painting canvas and a read-only image view that can mirror it.

:class:`ImageView` shows a numpy image with wheel zoom about the cursor,
fit/100%, and panning (middle button, space + left drag, or left drag in a
read-only view). Two views can be linked with :meth:`ImageView.link_view` so
the preview pane always shows the same part of the picture at the same zoom.

:class:`TrimapCanvas` adds the trimap: a coloured overlay over the photo and
the painting tools (brush, lasso fill, outline). All pixel edits go through
its :class:`~dim_studio.gui.trimap_doc.TrimapDocument`, which reports the
changed box; only that box of the overlay image is recomputed and repainted,
so painting costs the same on a 24-megapixel photo as on a thumbnail.

Scene coordinates are image pixel coordinates: pixel (row i, column j)
covers [j, j+1) x [i, i+1).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Mapping, Union

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPolygonF,
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

from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box, check_same_size

from .trimap_doc import LABELS, Point, TrimapDocument

__all__ = [
    "DEFAULT_OVERLAY_COLORS",
    "DEFAULT_OVERLAY_OPACITY",
    "ImageView",
    "TOOLS",
    "TrimapCanvas",
    "ViewState",
    "numpy_to_qimage",
]

ColorLike = Union[QColor, str, Qt.GlobalColor, tuple]

TOOLS: tuple[str, str, str] = ("brush", "lasso", "outline")

# Retouchers read "clear = kept": foreground leaves the photo untouched,
# background is darkened with a deep blue, and the unknown band is amber so
# the edge to be matted stands out on skin, hair and sky alike.
DEFAULT_OVERLAY_COLORS: dict[int, QColor] = {
    BACKGROUND: QColor(16, 24, 80, 255),
    UNKNOWN: QColor(255, 196, 0, 255),
    FOREGROUND: QColor(0, 0, 0, 0),
}
DEFAULT_OVERLAY_OPACITY = 0.55

_LABEL_NAMES = {BACKGROUND: "background", UNKNOWN: "unknown", FOREGROUND: "foreground"}

_MIN_BRUSH, _MAX_BRUSH = 1, 4000
_BRUSH_STEP = 1.15  # per key press or wheel notch
_WHEEL_ZOOM_STEP = 1.25  # per wheel notch (120 units)
_MAX_ZOOM = 64.0
_ROWS_PER_CHUNK_PIXELS = 1 << 20  # convert big images in ~1-megapixel bands


# --------------------------------------------------------------------------
# numpy <-> QImage


def _view32(image: QImage) -> np.ndarray:
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
    view = _view32(out)
    step = max(1, _ROWS_PER_CHUNK_PIXELS // max(w, 1))
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


def _premultiplied(color: QColor) -> int:
    a = color.alpha()
    r, g, b = ((c * a + 127) // 255 for c in (color.red(), color.green(), color.blue()))
    return (a << 24) | (r << 16) | (g << 8) | b


# --------------------------------------------------------------------------
# scene items


class _ImageItem(QGraphicsItem):
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


class _BrushCursor(QGraphicsItem):
    """The brush outline at its true size; drawn in screen pixels so it stays 1 px thin."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._radius = 0.0

    def set_screen_radius(self, radius: float) -> None:
        if radius != self._radius:
            self.prepareGeometryChange()
            self._radius = radius

    def screen_radius(self) -> float:
        return self._radius

    def boundingRect(self) -> QRectF:
        m = max(self._radius, 5.0) + 2.0
        return QRectF(-m, -m, 2 * m, 2 * m)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        r = self._radius
        # Black outside, white inside: visible on any photo.
        painter.setPen(QPen(QColor(0, 0, 0, 200), 1.0))
        painter.drawEllipse(QPointF(0, 0), r + 0.5, r + 0.5)
        if r > 1.5:
            painter.setPen(QPen(QColor(255, 255, 255, 220), 1.0))
            painter.drawEllipse(QPointF(0, 0), r - 0.5, r - 0.5)
        if r < 4.0:
            # A tiny brush needs a crosshair to be found at all.
            painter.setPen(QPen(QColor(255, 255, 255, 220), 1.0))
            painter.drawLine(QPointF(-5, 0), QPointF(5, 0))
            painter.drawLine(QPointF(0, -5), QPointF(0, 5))


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
        self._photo = _ImageItem()
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


# --------------------------------------------------------------------------
# the painting canvas


class TrimapCanvas(ImageView):
    """Photo + trimap overlay with brush, lasso and outline tools.

    Signals:
      ``trimapEdited(Box)``  after each finished edit that changed pixels
        (stroke, lasso, outline, apply_trimap, undo, redo, set_trimap/set_image),
        with the box of changed pixels. Not emitted for a stroke that changed nothing.
      ``strokeStarted()``    mouse pressed with a painting tool (cancel a running preview).
      ``strokeFinished(bool)`` the press/drag/release ended; True if pixels changed.
      ``historyChanged()``   undo/redo availability or texts may have changed.
      ``brushSizeChanged(int)``, ``labelChanged(int)``, ``toolChanged(str)``.
      ``pixelHovered(int, int)`` image pixel (x, y) under the mouse; (-1, -1) off the image.
      plus ImageView's ``zoomChanged(float)`` and ``viewChanged()``.
    """

    trimapEdited = Signal(object)
    strokeStarted = Signal()
    strokeFinished = Signal(bool)
    historyChanged = Signal()
    brushSizeChanged = Signal(int)
    labelChanged = Signal(int)
    toolChanged = Signal(str)
    pixelHovered = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tool = "brush"
        self._label = FOREGROUND
        self._brush_size = 40
        self._brush_exact = 40.0  # fractional size so touchpad wheel steps add up
        self._stroke_last: QPointF | None = None
        self._lasso: list[QPointF] | None = None
        self._hover_pixel = (-1, -1)
        self._mouse_inside = False
        self._doc = TrimapDocument()
        self._doc.add_listener(self._on_document_changed)
        self._overlay = _ImageItem()
        self._overlay.setZValue(1)
        self._scene.addItem(self._overlay)
        self._cursor_item = _BrushCursor()
        self._cursor_item.setZValue(10)
        self._cursor_item.setVisible(False)
        self._scene.addItem(self._cursor_item)
        self._colors = {k: QColor(v) for k, v in DEFAULT_OVERLAY_COLORS.items()}
        self._opacity = DEFAULT_OVERLAY_OPACITY
        self._trimap_only = False
        self._lut = self._make_lut()
        self._overlay.setOpacity(self._opacity)
        #: Box of the last overlay refresh (instrumentation: proves updates stay local).
        self.last_overlay_update: Box | None = None

    # -- document --------------------------------------------------------------

    @property
    def document(self) -> TrimapDocument:
        """The trimap and its history. Changes made directly on it are shown too."""
        return self._doc

    def set_image(
        self,
        image: np.ndarray | QImage | None,
        trimap: np.ndarray | None = None,
        display_size: tuple[int, int] | None = None,
        *,
        fit: bool = True,
    ) -> None:
        """Show a new photo with ``trimap`` (uint8 0/128/255) or an all-background one.

        History is cleared and the view fits the photo (unless ``fit`` is
        False). Raises TrimapError, changing nothing, if the trimap has the
        wrong size or values.
        """
        if display_size is not None:
            raise ValueError("the painting canvas always shows the photo at its own size")
        if image is not None and trimap is not None:
            shape = (image.height(), image.width()) if isinstance(image, QImage) else np.shape(image)[:2]
            check_same_size(tuple(shape), np.shape(trimap))
            TrimapDocument(trimap)  # validates values before anything changes
        self._abort_active_operation()
        super().set_image(image)
        size = self.image_size()
        if trimap is None:
            trimap = np.full((size.height(), size.width()), BACKGROUND, dtype=np.uint8)
        self._doc.set_trimap(trimap)
        if fit:
            self.zoom_fit()

    def set_trimap(self, trimap: np.ndarray) -> None:
        """Replace the trimap (a loaded file); clears history and marks it saved."""
        size = self.image_size()
        check_same_size((size.height(), size.width()), np.shape(trimap))
        self._abort_active_operation()
        self._doc.set_trimap(trimap)

    def apply_trimap(self, trimap: np.ndarray, description: str = "Trimap from mask") -> Box | None:
        """Replace the trimap as one undo step (e.g. from trimap_from_mask)."""
        self._abort_active_operation()
        return self._doc.apply_trimap(trimap, description)

    def undo(self) -> Box | None:
        self._abort_active_operation(keep_stroke=True)
        return self._doc.undo()

    def redo(self) -> Box | None:
        self._abort_active_operation(keep_stroke=True)
        return self._doc.redo()

    def _on_document_changed(self, box: Box, final: bool) -> None:
        h, w = self._doc.shape
        img = self._overlay.qimage()
        if (img.height(), img.width()) != (h, w):
            self._rebuild_overlay()
        else:
            self._refresh_overlay(box)
        if final:
            self.trimapEdited.emit(box)
            self.historyChanged.emit()

    # -- overlay ---------------------------------------------------------------

    def set_overlay_opacity(self, opacity: float) -> None:
        """0 = photo only, 1 = opaque labels. Ignored while showing the trimap alone."""
        self._opacity = min(max(float(opacity), 0.0), 1.0)
        if not self._trimap_only:
            self._overlay.setOpacity(self._opacity)

    def overlay_opacity(self) -> float:
        return self._opacity

    def set_overlay_colors(self, colors: Mapping[int, ColorLike]) -> None:
        """Change the colours of some labels (label -> QColor/name/(r, g, b[, a]))."""
        for label, color in colors.items():
            if label not in LABELS:
                raise ValueError(f"unknown trimap label {label!r}; labels are {LABELS}")
            self._colors[label] = QColor(*color) if isinstance(color, tuple) else QColor(color)
        self._relabel()

    def overlay_colors(self) -> dict[int, QColor]:
        return {k: QColor(v) for k, v in self._colors.items()}

    def set_show_trimap_only(self, on: bool) -> None:
        """Show the trimap alone in grey (0/128/255) instead of over the photo."""
        on = bool(on)
        if on == self._trimap_only:
            return
        self._trimap_only = on
        self._photo.setVisible(not on)
        self._overlay.setOpacity(1.0 if on else self._opacity)
        self._relabel()

    def show_trimap_only(self) -> bool:
        return self._trimap_only

    def overlay_image(self) -> QImage:
        """The overlay as drawn (premultiplied ARGB, photo size). Do not modify."""
        return self._overlay.qimage()

    def overlay_item(self) -> QGraphicsItem:
        return self._overlay

    def brush_cursor_item(self) -> QGraphicsItem:
        return self._cursor_item

    def _make_lut(self) -> np.ndarray:
        lut = np.zeros(256, dtype=np.uint32)
        for label in LABELS:
            if self._trimap_only:
                lut[label] = _premultiplied(QColor(label, label, label))
            else:
                lut[label] = _premultiplied(self._colors[label])
        return lut

    def _relabel(self) -> None:
        # A colour or mode change is the one time the whole overlay is redrawn.
        self._lut = self._make_lut()
        self._refresh_overlay(self._doc.full_box)

    def _rebuild_overlay(self) -> None:
        h, w = self._doc.shape
        self._overlay.set_qimage(QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied))
        self._refresh_overlay(self._doc.full_box)

    def _refresh_overlay(self, box: Box) -> None:
        """Recolour only ``box`` of the overlay from the trimap and repaint only it."""
        if box.height <= 0 or box.width <= 0:
            return
        view = _view32(self._overlay.qimage())
        trimap = self._doc.trimap
        step = max(1, _ROWS_PER_CHUNK_PIXELS // max(box.width, 1))
        for y in range(box.y0, box.y1, step):
            rows = slice(y, min(y + step, box.y1))
            cols = slice(box.x0, box.x1)
            view[rows, cols] = self._lut[trimap[rows, cols]]
        self.last_overlay_update = box
        # One pixel of margin: when zoomed out, filtering spreads a pixel's colour.
        self._overlay.update(QRectF(box.x0 - 1, box.y0 - 1, box.width + 2, box.height + 2))

    # -- tools -----------------------------------------------------------------

    @property
    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        """"brush", "lasso" (fill the outline with the label) or "outline" (outside
        -> background, inside -> unknown, existing foreground kept)."""
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, not {tool!r}")
        if tool == self._tool:
            return
        self._abort_active_operation(keep_stroke=True)
        self._tool = tool
        self._update_brush_cursor()
        self._update_cursor_shape()
        self.toolChanged.emit(tool)

    @property
    def label(self) -> int:
        return self._label

    def set_label(self, label: int) -> None:
        """The label the brush and lasso paint: 0, 128 or 255."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, not {label!r}")
        if label != self._label:
            self._label = int(label)
            self.labelChanged.emit(self._label)

    @property
    def brush_size(self) -> int:
        """Brush diameter in image pixels."""
        return self._brush_size

    def set_brush_size(self, size: float) -> None:
        self._brush_exact = min(max(float(size), _MIN_BRUSH), _MAX_BRUSH)
        new = int(round(self._brush_exact))
        if new != self._brush_size:
            self._brush_size = new
            self._update_brush_cursor()
            self.brushSizeChanged.emit(new)

    def grow_brush(self) -> None:
        """One step bigger (the ']' key): +15 %, at least one pixel."""
        self.set_brush_size(max(self._brush_size + 1, round(self._brush_size * _BRUSH_STEP)))

    def shrink_brush(self) -> None:
        """One step smaller (the '[' key)."""
        self.set_brush_size(min(self._brush_size - 1, round(self._brush_size / _BRUSH_STEP)))

    def is_painting(self) -> bool:
        """True between the press and the release of a brush stroke or lasso."""
        return self._stroke_last is not None or self._lasso is not None

    # stroke -------------------------------------------------------------------

    def _radius(self) -> float:
        return self._brush_size / 2.0

    def _begin_stroke(self, pos: QPointF) -> None:
        self.strokeStarted.emit()
        self._doc.begin_stroke()
        self._stroke_last = pos
        self._doc.paint_segment((pos.x(), pos.y()), (pos.x(), pos.y()), self._radius(), self._label)

    def _continue_stroke(self, pos: QPointF) -> None:
        last = self._stroke_last
        assert last is not None
        # One capsule from the previous position: continuous however fast the mouse.
        self._doc.paint_segment((last.x(), last.y()), (pos.x(), pos.y()), self._radius(), self._label)
        self._stroke_last = pos

    def _end_stroke(self) -> None:
        self._stroke_last = None
        box = self._doc.end_stroke(f"Paint {_LABEL_NAMES[self._label]}")
        self.strokeFinished.emit(box is not None)

    # lasso --------------------------------------------------------------------

    def _begin_lasso(self, pos: QPointF) -> None:
        self.strokeStarted.emit()
        self._lasso = [pos]

    def _continue_lasso(self, pos: QPointF) -> None:
        assert self._lasso is not None
        last = self._lasso[-1]
        if last == pos:
            return
        self._lasso.append(pos)
        # Repaint just the new segment of the outline.
        a, b = self.map_from_image(last), self.map_from_image(pos)
        rect = QRectF(a, b).normalized().toAlignedRect().adjusted(-3, -3, 3, 3)
        self.viewport().update(rect)

    def _end_lasso(self) -> None:
        points: list[Point] = [(p.x(), p.y()) for p in self._lasso or []]
        self._lasso = None
        self.viewport().update()
        box = None
        if len(points) >= 3:
            if self._tool == "outline":
                box = self._doc.outline_polygon(points, "Outline")
            else:
                box = self._doc.fill_polygon(points, self._label, f"Lasso {_LABEL_NAMES[self._label]}")
        self.strokeFinished.emit(box is not None)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        if not self._lasso or len(self._lasso) < 2:
            return
        poly = QPolygonF(self._lasso)
        painter.save()
        dark = QPen(QColor(0, 0, 0), 1.0)
        dark.setCosmetic(True)
        light = QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine)
        light.setCosmetic(True)
        painter.setPen(dark)
        painter.drawPolyline(poly)
        painter.setPen(light)
        painter.drawPolyline(poly)
        painter.restore()

    def _abort_active_operation(self, keep_stroke: bool = False) -> None:
        """End a stroke (committing it when ``keep_stroke``) or drop a lasso in progress."""
        if self._stroke_last is not None:
            self._stroke_last = None
            if keep_stroke:
                box = self._doc.end_stroke(f"Paint {_LABEL_NAMES[self._label]}")
                self.strokeFinished.emit(box is not None)
            else:
                self._doc.cancel_stroke()
                self.strokeFinished.emit(False)
        if self._lasso is not None:
            self._lasso = None
            self.viewport().update()
            self.strokeFinished.emit(False)

    def cancel_operation(self) -> None:
        """Abandon the stroke or lasso in progress, restoring the pixels (Escape)."""
        self._abort_active_operation(keep_stroke=False)

    # -- cursor ----------------------------------------------------------------

    def _tool_cursor(self) -> Qt.CursorShape:
        return Qt.CursorShape.CrossCursor

    def _update_brush_cursor(self, image_pos: QPointF | None = None) -> None:
        item = self._cursor_item
        if image_pos is not None:
            item.setPos(image_pos)
        show = (
            self._tool == "brush"
            and self._mouse_inside
            and self._pan_last is None
            and not self._space_held
            and self.has_image()
        )
        item.set_screen_radius(self._radius() * self._zoom)
        item.setVisible(show)

    def _on_view_changed(self) -> None:
        if hasattr(self, "_cursor_item"):  # not during ImageView.__init__
            self._update_brush_cursor()

    def _update_cursor_shape(self) -> None:
        super()._update_cursor_shape()
        if hasattr(self, "_cursor_item"):
            self._update_brush_cursor()

    def _set_hover_pixel(self, pos: QPointF | None) -> None:
        size = self.image_size()
        if pos is None:
            pixel = (-1, -1)
        else:
            x, y = math.floor(pos.x()), math.floor(pos.y())
            pixel = (x, y) if 0 <= x < size.width() and 0 <= y < size.height() else (-1, -1)
        if pixel != self._hover_pixel:
            self._hover_pixel = pixel
            self.pixelHovered.emit(*pixel)

    # -- Qt events -------------------------------------------------------------

    def _is_pan_press(self, event: QMouseEvent) -> bool:
        return event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space_held
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.is_painting() or self._pan_last is not None:
            event.accept()  # a second button during a drag does nothing
            return
        if self._is_pan_press(event):
            super().mousePressEvent(event)
            return
        if event.button() == Qt.MouseButton.LeftButton and self.has_image():
            pos = self.map_to_image(event.position())
            if self._tool == "brush":
                self._begin_stroke(pos)
            else:
                self._begin_lasso(pos)
            event.accept()
            return
        event.ignore()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._mouse_inside = True
        if self._pan_last is not None:
            super().mouseMoveEvent(event)
            return
        pos = self.map_to_image(event.position())
        if self._stroke_last is not None:
            self._continue_stroke(pos)
        elif self._lasso is not None:
            self._continue_lasso(pos)
        self._update_brush_cursor(pos)
        self._set_hover_pixel(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_last is not None:
            super().mouseReleaseEvent(event)
            return
        if event.button() == Qt.MouseButton.LeftButton:
            if self._stroke_last is not None:
                pos = self.map_to_image(event.position())
                if pos != self._stroke_last:
                    self._continue_stroke(pos)
                self._end_stroke()
            elif self._lasso is not None:
                self._continue_lasso(self.map_to_image(event.position()))
                self._end_lasso()
            event.accept()
            return
        event.ignore()

    def _wheel_special(self, event: QWheelEvent, delta: int) -> bool:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            exact = self._brush_exact * _BRUSH_STEP ** (delta / 120.0)
            if abs(delta) >= 120 and round(exact) == self._brush_size:
                # A whole notch must visibly change a small brush.
                exact = self._brush_size + (1 if delta > 0 else -1)
            self.set_brush_size(exact)
            return True
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, text = event.key(), event.text()
        if key == Qt.Key.Key_BracketLeft or text == "[":
            self.shrink_brush()
        elif key == Qt.Key.Key_BracketRight or text == "]":
            self.grow_brush()
        elif key == Qt.Key.Key_Escape and self.is_painting():
            self.cancel_operation()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def enterEvent(self, event) -> None:  # noqa: ANN001
        self._mouse_inside = True
        self._update_brush_cursor()
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: ANN001
        self._mouse_inside = False
        self._update_brush_cursor()
        self._set_hover_pixel(None)
        super().leaveEvent(event)
