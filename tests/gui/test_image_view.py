"""ImageView: wheel zoom about the cursor, fit/100%, and linked views.

The zoom tests run on a plain ImageView (the preview pane) and on the
TrimapCanvas built on it, whose wheel and mouse hooks must leave zooming
alone. Widget positions are mapped to image coordinates with Qt's own view
transform (``viewportTransform()``), never with the view's helpers. The event
helpers here are shared with test_canvas.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from dim_studio.gui.canvas import TrimapCanvas
from dim_studio.gui.image_view import ImageView, ViewState

L, M, NO = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton, Qt.MouseButton.NoButton


def send_mouse(view, kind, pos, button=NO, buttons=NO, modifiers=Qt.KeyboardModifier.NoModifier):
    vp = view.viewport()
    local = QPointF(*pos)
    event = QMouseEvent(kind, local, QPointF(vp.mapToGlobal(local)), button, buttons, modifiers)
    QApplication.sendEvent(vp, event)


def drag(view, points, button=L, modifiers=Qt.KeyboardModifier.NoModifier):
    send_mouse(view, QEvent.Type.MouseButtonPress, points[0], button, button, modifiers)
    for p in points[1:]:
        send_mouse(view, QEvent.Type.MouseMove, p, NO, button, modifiers)
    send_mouse(view, QEvent.Type.MouseButtonRelease, points[-1], button, NO, modifiers)


def send_wheel(view, pos, delta, modifiers=Qt.KeyboardModifier.NoModifier):
    vp = view.viewport()
    local = QPointF(*pos)
    event = QWheelEvent(
        local, QPointF(vp.mapToGlobal(local)), QPoint(0, 0), QPoint(0, delta),
        NO, modifiers, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(vp, event)


def to_image(view, pos):
    """Viewport -> image coordinates with Qt's transform, not the canvas helper."""
    inverse, ok = view.viewportTransform().inverted()
    assert ok
    p = inverse.map(QPointF(*pos))
    return (p.x(), p.y())


def photo(h=150, w=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((h, w, 3), dtype=np.float32)


def show(qtbot, widget, size=(400, 300)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture(params=[ImageView, TrimapCanvas])
def view(request, qtbot):
    v = show(qtbot, request.param())
    v.set_image(photo())
    return v


@pytest.fixture
def canvas(qtbot):
    c = show(qtbot, TrimapCanvas())
    c.set_image(photo())
    return c


def zoomed(c, zoom=3.0):
    c.set_zoom(zoom)
    t = c.viewportTransform()
    assert (t.m11(), t.m22()) == (zoom, zoom)
    assert t.dx() != 0 or t.dy() != 0  # scrolled: the mapping is not trivial
    return c


# -- zoom -----------------------------------------------------------------------------


def test_wheel_zoom_keeps_the_point_under_the_cursor(view):
    zoomed(view, 2.5)
    zooms = []
    view.zoomChanged.connect(zooms.append)
    for pos, delta in [((123, 87), 120), ((123, 87), 240), ((301, 211), 120), ((301, 211), -120)]:
        target = to_image(view, pos)
        before = view.zoom()
        send_wheel(view, pos, delta)
        assert view.zoom() == pytest.approx(before * 1.25 ** (delta / 120))
        back = view.viewportTransform().map(QPointF(*target))
        assert abs(back.x() - pos[0]) <= 1 and abs(back.y() - pos[1]) <= 1
    assert len(zooms) == 4


def test_fit_and_100_percent(view):
    view.zoom_100()
    assert view.zoom() == 1.0 and not view.is_fit_mode()
    view.zoom_fit()
    assert view.zoom() == pytest.approx(2.0)  # 200x150 into 400x300
    view.resize(300, 300)
    QApplication.processEvents()
    assert view.zoom() == pytest.approx(1.5) and view.is_fit_mode()


def test_linked_image_view_mirrors_zoom_and_pan(canvas, qtbot):
    preview = ImageView()
    qtbot.addWidget(preview)
    preview.resize(300, 200)
    preview.show()
    qtbot.waitExposed(preview)
    canvas.link_view(preview)
    preview.set_image(np.zeros((150, 200), np.float32))  # same size: adopts the canvas view
    zoomed(canvas, 3.0)
    changes = []
    preview.viewChanged.connect(lambda: changes.append(1))
    drag(canvas, [(200, 150), (260, 120)], button=M)
    a, b = canvas.view_state(), preview.view_state()
    assert b.zoom == a.zoom == 3.0 and changes
    assert abs(a.center_x - b.center_x) <= 0.5 / 3 and abs(a.center_y - b.center_y) <= 0.5 / 3
    preview.set_view_state(ViewState(4.0, 50.0, 60.0))
    a = canvas.view_state()
    assert a.zoom == 4.0 and a.center_x == pytest.approx(50, abs=0.2) and a.center_y == pytest.approx(60, abs=0.2)
    # Clearing the preview leaves the canvas alone; a new matte adopts the canvas view.
    preview.set_image(None)
    assert canvas.view_state() == a
    # A preview computed at half size still lines up with the canvas.
    preview.set_image(np.zeros((75, 100), np.float32), display_size=(200, 150))
    assert preview.image_size().width() == 200 and preview.view_state().zoom == 4.0
    assert abs(preview.view_state().center_x - a.center_x) <= 0.5 / 4
