"""TrimapCanvas driven by synthetic mouse, wheel and key events.

Widget positions are mapped to image coordinates with Qt's own view
transform (``viewportTransform()``), and the expected pixels come from the
geometric definitions in test_trimap_doc (tolerance explained there: only
centres within 1e-6 px of a boundary may go either way). Zooming and linked
views are tested in test_image_view, whose event helpers these tests share.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import PySide6
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest

from dim_studio.errors import TrimapError
from dim_studio.gui.canvas import DEFAULT_OVERLAY_COLORS, TrimapCanvas
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box
from test_trimap_doc import TIE, assert_matches, polygon_inside, segment_distance

from .test_image_view import L, M, NO, drag, photo, send_mouse, send_wheel, to_image, zoomed


@pytest.fixture
def canvas(qtbot):
    c = TrimapCanvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    c.show()
    qtbot.waitExposed(c)
    c.set_image(photo())
    return c


# -- painting -----------------------------------------------------------------------


def test_stroke_changes_exactly_the_pixels_along_its_path(canvas):
    zoomed(canvas, 3.0)
    canvas.set_brush_size(7)
    canvas.set_label(FOREGROUND)
    path = [(40, 50), (90, 62), (210, 160), (215, 240), (380, 250)]
    drag(canvas, path)
    image_pts = [to_image(canvas, p) for p in path]
    r = 7 / 2
    d = np.min([segment_distance((150, 200), a, b) for a, b in zip(image_pts, image_pts[1:])], axis=0)
    assert_matches(canvas.document.trimap == FOREGROUND, d <= r, np.abs(d - r) <= TIE)
    others = canvas.document.trimap[canvas.document.trimap != FOREGROUND]
    assert (others == BACKGROUND).all()


def test_very_fast_stroke_has_no_gaps(canvas):
    zoomed(canvas, 2.5)
    canvas.set_brush_size(2)
    canvas.set_label(UNKNOWN)
    drag(canvas, [(10, 15), (390, 285)])  # one move event across the whole view
    (ax, ay), (bx, by) = to_image(canvas, (10, 15)), to_image(canvas, (390, 285))
    t = np.linspace(0, 1, 4000)
    xs, ys = ax + t * (bx - ax), ay + t * (by - ay)
    on = (xs >= 0) & (xs < 200) & (ys >= 0) & (ys < 150)
    assert on.sum() > 1000
    cols, rows = np.floor(xs[on]).astype(int), np.floor(ys[on]).astype(int)
    assert (canvas.document.trimap[rows, cols] == UNKNOWN).all()


def test_undo_redo_through_the_canvas_restore_exactly(canvas):
    canvas.set_brush_size(15)
    before = canvas.document.copy_trimap()
    drag(canvas, [(100, 100), (200, 150), (300, 100)])
    after = canvas.document.copy_trimap()
    assert not np.array_equal(before, after)
    assert canvas.document.undo_text() == "Paint foreground"
    canvas.undo()
    assert np.array_equal(canvas.document.trimap, before)
    overlay = canvas.overlay_image()
    y, x = np.argwhere(after != before)[0]
    bg = overlay.pixelColor(int(x), int(y))
    canvas.redo()
    assert np.array_equal(canvas.document.trimap, after)
    # The overlay followed: the pixel now shows the foreground colour, not background.
    fg = canvas.overlay_image().pixelColor(int(x), int(y))
    assert fg.alpha() == 0 and bg.alpha() == 255


def test_trimap_edited_once_per_stroke(canvas, qtbot):
    edited, started, finished = [], [], []
    canvas.trimapEdited.connect(edited.append)
    canvas.strokeStarted.connect(lambda: started.append(1))
    canvas.strokeFinished.connect(finished.append)
    before = canvas.document.copy_trimap()
    drag(canvas, [(50, 50), (60, 55), (80, 70), (120, 90), (160, 95), (200, 130)])
    assert len(edited) == 1 and started == [1] and finished == [True]
    box = edited[0]
    assert isinstance(box, Box)
    changed = np.argwhere(canvas.document.trimap != before)
    assert (box.y0, box.x0) == tuple(changed.min(axis=0))
    assert (box.y1, box.x1) == tuple(changed.max(axis=0) + 1)
    # A stroke that changes nothing still finishes, but reports no edit.
    drag(canvas, [(50, 50), (60, 55)])
    assert len(edited) == 1 and finished == [True, False]
    canvas.undo()
    canvas.redo()
    assert len(edited) == 3


def test_escape_cancels_a_stroke(canvas):
    drag_points = [(50, 50), (150, 150)]
    send_mouse(canvas, QEvent.Type.MouseButtonPress, drag_points[0], L, L)
    send_mouse(canvas, QEvent.Type.MouseMove, drag_points[1], NO, L)
    assert canvas.document.trimap.any()
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, drag_points[1], L, NO)
    assert not canvas.document.trimap.any() and not canvas.document.can_undo()


def test_lasso_fills_its_outline(canvas):
    zoomed(canvas, 2.4)
    canvas.set_tool("lasso")
    canvas.set_label(UNKNOWN)
    outline = [(60, 40), (250, 55), (330, 200), (150, 260), (90, 180), (75, 120)]
    edited = []
    canvas.trimapEdited.connect(edited.append)
    drag(canvas, outline)
    inside, dist = polygon_inside((150, 200), [to_image(canvas, p) for p in outline])
    assert_matches(canvas.document.trimap == UNKNOWN, inside, dist <= TIE)
    assert len(edited) == 1 and canvas.document.undo_text() == "Lasso unknown"


def test_outline_tool_sets_background_outside_and_unknown_inside(canvas):
    canvas.set_tool("outline")
    outline = [(100, 60), (300, 70), (310, 240), (90, 230)]
    drag(canvas, outline)
    inside, dist = polygon_inside((150, 200), [to_image(canvas, p) for p in outline])
    assert_matches(canvas.document.trimap, np.where(inside, UNKNOWN, BACKGROUND), dist <= TIE)
    canvas.undo()
    assert not canvas.document.trimap.any()


def test_space_drag_and_middle_drag_pan_without_painting(canvas):
    zoomed(canvas, 3.0)
    start = canvas.view_state()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [(200, 150), (170, 130)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    moved = canvas.view_state()
    assert moved.center_x == pytest.approx(start.center_x + 30 / 3, abs=0.34)
    assert moved.center_y == pytest.approx(start.center_y + 20 / 3, abs=0.34)
    drag(canvas, [(200, 150), (230, 150)], button=M)
    assert canvas.view_state().center_x == pytest.approx(moved.center_x - 10, abs=0.34)
    assert not canvas.document.trimap.any()


# -- brush size -----------------------------------------------------------------------


def test_bracket_keys_and_shift_wheel_change_brush_size(canvas):
    sizes = []
    canvas.brushSizeChanged.connect(sizes.append)
    canvas.set_brush_size(20)
    QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > 20
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < 20
    assert sizes[0] == 20 and len(sizes) == 4
    canvas.set_brush_size(1)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 1
    QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size == 2  # small brushes still grow by whole pixels
    zoom = canvas.zoom()
    send_wheel(canvas, (200, 150), 120, Qt.KeyboardModifier.ShiftModifier)
    assert canvas.brush_size > 2 and canvas.zoom() == zoom


def test_brush_outline_is_drawn_at_true_size(canvas):
    canvas.set_brush_size(10)
    zoomed(canvas, 3.0)
    send_mouse(canvas, QEvent.Type.MouseMove, (120, 80))
    cursor = canvas.brush_cursor_item()
    assert cursor.isVisible()
    assert cursor.screen_radius() == pytest.approx(10 / 2 * 3.0)
    assert cursor.pos().x() == pytest.approx(to_image(canvas, (120, 80))[0])
    canvas.set_tool("lasso")
    assert not cursor.isVisible()


# -- overlay ----------------------------------------------------------------------------


def test_overlay_colours_opacity_and_trimap_only(canvas):
    t = np.zeros((150, 200), np.uint8)
    t[:, 100:] = UNKNOWN
    t[:, 150:] = FOREGROUND
    canvas.set_trimap(t)
    img = canvas.overlay_image()
    assert img.pixelColor(10, 10).alpha() == 255
    shown, default = img.pixelColor(120, 10), DEFAULT_OVERLAY_COLORS[UNKNOWN]
    assert shown.alpha() == default.alpha() < 200  # translucent, so hair shows through the band
    assert all(abs(a - b) <= 3 for a, b in zip(shown.getRgb()[:3], default.getRgb()[:3]))
    assert img.pixelColor(170, 10).alpha() == 0
    canvas.set_overlay_colors({UNKNOWN: QColor(255, 0, 0, 128)})
    assert canvas.overlay_image().pixelColor(120, 10).red() == 255
    canvas.set_overlay_opacity(0.3)
    assert canvas.overlay_item().opacity() == pytest.approx(0.3)
    canvas.set_show_trimap_only(True)
    img = canvas.overlay_image()
    assert [img.pixelColor(x, 10).getRgb() for x in (10, 120, 170)] == [
        (0, 0, 0, 255), (128, 128, 128, 255), (255, 255, 255, 255)
    ]
    assert canvas.overlay_item().opacity() == 1.0
    canvas.set_show_trimap_only(False)
    assert canvas.overlay_item().opacity() == pytest.approx(0.3)


def test_small_stroke_repaints_only_a_small_region(qtbot):
    c = TrimapCanvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    c.show()
    qtbot.waitExposed(c)
    h, w = 3000, 4000
    c.set_image(np.full((h, w), 90, np.uint8))
    c.zoom_100()
    qtbot.waitUntil(lambda: c.overlay_item().last_paint_rect is not None)
    c.overlay_item().last_paint_rect = None
    c.set_brush_size(9)
    drag(c, [(200, 150), (205, 152), (212, 155)])
    box = c.last_overlay_update
    assert box is not None and box.height * box.width < 1e-4 * h * w
    qtbot.waitUntil(lambda: c.overlay_item().last_paint_rect is not None)
    painted = c.overlay_item().last_paint_rect
    assert painted.width() * painted.height() < 1e-3 * h * w
    item = c.document.undo_items[-1]
    assert item.nbytes < 1e-3 * h * w


def test_set_image_rejects_a_trimap_of_another_size(canvas):
    before = canvas.document.copy_trimap()
    with pytest.raises(TrimapError, match="200x150"):
        canvas.set_image(photo(150, 200), np.zeros((100, 100), np.uint8))
    with pytest.raises(TrimapError):
        canvas.set_trimap(np.zeros((150, 201), np.uint8))
    assert np.array_equal(canvas.document.trimap, before)


def test_apply_trimap_is_one_undo_step(canvas):
    edited = []
    canvas.trimapEdited.connect(edited.append)
    new = np.zeros((150, 200), np.uint8)
    new[50:100, 60:140] = UNKNOWN
    canvas.apply_trimap(new, "Trimap from mask")
    assert edited == [Box(50, 100, 60, 140)] and canvas.document.undo_text() == "Trimap from mask"
    canvas.undo()
    assert not canvas.document.trimap.any()


# -- the Qt binding itself ---------------------------------------------------------------


def test_qt_binding_does_not_leak_references_to_none():
    """PySide6 6.12.0 on Python < 3.12 drops a reference to None on every call
    of a method returning nothing; None's count reaches zero after a few
    thousand paint calls and the app aborts ("deallocating None"). Pin the
    binding (6.11.3 is fine) or run Python >= 3.12, where None is immortal."""
    from PySide6.QtCore import QObject

    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(500):
        obj.setObjectName("x")
    lost = before - sys.getrefcount(None)
    assert lost < 100, (
        f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} lost {lost} references "
        "to None in 500 calls: painting will crash the app; use another PySide6 version"
    )
