"""The trimap painting canvas: the photo with a trimap overlay and the tools that edit it.

:class:`TrimapCanvas` is an :class:`~dim_studio.gui.image_view.ImageView`
(zoom, pan, linking to the preview live in ``image_view.py``) that adds the
trimap: a coloured overlay over the photo, the painting tools (brush, lasso
fill, outline), the brush outline under the mouse, and undo/redo. All pixel
edits go through its :class:`~dim_studio.trimap_doc.TrimapDocument` (the
Qt-free data model), which reports the changed box; only that box of the
overlay image is recomputed and repainted, so painting costs the same on a
24-megapixel photo as on a thumbnail.

Scene coordinates are image pixel coordinates: pixel (row i, column j)
covers [j, j+1) x [i, i+1).
"""

from __future__ import annotations

import math
from typing import Mapping, Union

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box, check_same_size
from dim_studio.trimap_doc import LABELS, Point, TrimapDocument

from .image_view import CHUNK_PIXELS, ImageItem, ImageView, view32

__all__ = [
    "DEFAULT_OVERLAY_COLORS",
    "DEFAULT_OVERLAY_OPACITY",
    "TOOLS",
    "TrimapCanvas",
]

ColorLike = Union[QColor, str, Qt.GlobalColor, tuple]

TOOLS: tuple[str, ...] = ("brush", "lasso", "outline", "box")

# Retouchers read "clear = kept": foreground leaves the photo untouched,
# background gets a light blue-violet tint (a dark one vanished on dark
# photos), and the unknown band a light, half-transparent yellow, so the edge
# to be matted stands out while hair still shows through it.
DEFAULT_OVERLAY_COLORS: dict[int, QColor] = {
    BACKGROUND: QColor(120, 110, 255, 255),
    UNKNOWN: QColor(255, 236, 110, 140),
    FOREGROUND: QColor(0, 0, 0, 0),
}
DEFAULT_OVERLAY_OPACITY = 0.55

_LABEL_NAMES = {BACKGROUND: "background", UNKNOWN: "unknown", FOREGROUND: "foreground"}
#: The undo-step names of brush and lasso strokes ("Paint foreground", "Lasso background"):
#: the quick selection recognises the user's strokes by them.
PAINT_STEP, LASSO_STEP = "Paint", "Lasso"

_MIN_BRUSH, _MAX_BRUSH = 1, 4000
_BRUSH_STEP = 1.15  # per key press or wheel notch


def _premultiplied(color: QColor) -> int:
    a = color.alpha()
    r, g, b = ((c * a + 127) // 255 for c in (color.red(), color.green(), color.blue()))
    return (a << 24) | (r << 16) | (g << 8) | b


# --------------------------------------------------------------------------
# the brush outline


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
# the painting canvas


class TrimapCanvas(ImageView):
    """Photo + trimap overlay with brush, lasso, outline and box tools.

    Signals:
      ``trimapEdited(Box)``  after each finished edit that changed pixels
        (stroke, lasso, outline, apply_trimap, undo, redo, set_trimap/set_image),
        with the box of changed pixels. Not emitted for a stroke that changed nothing.
      ``strokeStarted()``    mouse pressed with a painting tool (cancel a running preview).
      ``strokeFinished(bool)`` the press/drag/release ended; True if pixels changed.
      ``historyChanged()``   undo/redo availability or texts may have changed.
      ``brushSizeChanged(int)``, ``labelChanged(int)``, ``toolChanged(str)``.
      ``pixelHovered(int, int)`` image pixel (x, y) under the mouse; (-1, -1) off the image.
      ``boxSelected(object)`` the box tool's drag ended: (x0, y0, x1, y1) in image pixels
        (floats, x0 <= x1, y0 <= y1); the canvas itself changes nothing.
      ``outlineCompleted(object)`` the outline tool's outline was applied (after its
        ``trimapEdited``): the list of (x, y) points, for a quick selection.
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
    boxSelected = Signal(object)
    outlineCompleted = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tool = "brush"
        self._label = FOREGROUND
        self._brush_size = 40
        self._brush_exact = 40.0  # fractional size so touchpad wheel steps add up
        self._stroke_last: QPointF | None = None
        self._lasso: list[QPointF] | None = None
        self._box: list[QPointF] | None = None  # [start, current] while the box tool drags
        self._hover_pixel = (-1, -1)
        self._mouse_inside = False
        self._doc = TrimapDocument()
        self._doc.add_listener(self._on_document_changed)
        self._overlay = ImageItem()
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
        view = view32(self._overlay.qimage())
        trimap = self._doc.trimap
        step = max(1, CHUNK_PIXELS // max(box.width, 1))
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
        """"brush", "lasso" (fill the outline with the label), "outline" (outside
        -> background, inside -> unknown, existing foreground kept; then
        ``outlineCompleted``) or "box" (drag a rectangle: ``boxSelected``)."""
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
        return self._stroke_last is not None or self._lasso is not None or self._box is not None

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
        box = self._doc.end_stroke(f"{PAINT_STEP} {_LABEL_NAMES[self._label]}")
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
                if box is not None:
                    self.outlineCompleted.emit(points)
            else:
                box = self._doc.fill_polygon(points, self._label, f"{LASSO_STEP} {_LABEL_NAMES[self._label]}")
        self.strokeFinished.emit(box is not None)

    # box ----------------------------------------------------------------------

    def _begin_box(self, pos: QPointF) -> None:
        self.strokeStarted.emit()
        self._box = [pos, pos]

    def _continue_box(self, pos: QPointF) -> None:
        assert self._box is not None
        old = QRectF(self._box[0], self._box[1]).normalized()
        self._box[1] = pos
        new = QRectF(self._box[0], self._box[1]).normalized()
        a, b = self.map_from_image(old.united(new).topLeft()), self.map_from_image(old.united(new).bottomRight())
        self.viewport().update(QRectF(a, b).normalized().toAlignedRect().adjusted(-3, -3, 3, 3))

    def _end_box(self) -> None:
        start, end = self._box or (QPointF(), QPointF())
        self._box = None
        self.viewport().update()
        x0, x1 = sorted((start.x(), end.x()))
        y0, y1 = sorted((start.y(), end.y()))
        self.strokeFinished.emit(False)
        self.boxSelected.emit((x0, y0, x1, y1))

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        if self._box is not None:
            self._draw_box(painter)
            return
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

    def _draw_box(self, painter: QPainter) -> None:
        assert self._box is not None
        r = QRectF(self._box[0], self._box[1]).normalized()
        painter.save()
        dark = QPen(QColor(0, 0, 0), 1.0)
        dark.setCosmetic(True)
        light = QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine)
        light.setCosmetic(True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(dark)
        painter.drawRect(r)
        painter.setPen(light)
        painter.drawRect(r)
        painter.restore()

    def _abort_active_operation(self, keep_stroke: bool = False) -> None:
        """End a stroke (committing it when ``keep_stroke``) or drop a lasso or box in progress."""
        if self._stroke_last is not None:
            self._stroke_last = None
            if keep_stroke:
                box = self._doc.end_stroke(f"{PAINT_STEP} {_LABEL_NAMES[self._label]}")
                self.strokeFinished.emit(box is not None)
            else:
                self._doc.cancel_stroke()
                self.strokeFinished.emit(False)
        if self._lasso is not None:
            self._lasso = None
            self.viewport().update()
            self.strokeFinished.emit(False)
        if self._box is not None:
            self._box = None
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
            elif self._tool == "box":
                self._begin_box(pos)
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
        elif self._box is not None:
            self._continue_box(pos)
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
            elif self._box is not None:
                self._continue_box(self.map_to_image(event.position()))
                self._end_box()
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
