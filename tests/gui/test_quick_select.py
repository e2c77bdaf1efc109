"""Quick selection in the window, driven as a user would: box (Q) or outline (O) -> GrabCut
-> trimap, the Band slider, strokes as hints, undo, and Tighten from the preview's alpha."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from dim_studio import quickselect as qs
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN
from test_quickselect import subject_and_piece, subject_with_an_eye, two_objects

from .test_window import TIMEOUT, dlg, drag, make_window, wait_preview_of_current_trimap  # noqa: F401 - fixtures

SUBJECT_CENTRE = (50, 45)  # (x, y) of the orange disc, radius 22
OTHER_CENTRE = (112, 45)  # the green disc, radius 18
SUBJECT_BOX = (20, 15, 82, 76)
BOTH_BOX = (20, 15, 140, 75)


def save_photo(path, image: np.ndarray):
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def open_window(make_window, qtbot, path):
    """A window with closed-form previews showing the photo at ``path``."""
    w = make_window(engine="closed-form")
    assert w.open_image(str(path))
    w.activateWindow()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def photo(tmp_path):
    image, alpha, other, _box = two_objects()
    return save_photo(tmp_path / "discs.png", image), alpha, other


@pytest.fixture
def window(make_window, photo, qtbot):
    return open_window(make_window, qtbot, photo[0])


def key(window, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(window.canvas, k, modifier)


def undo(window) -> None:
    key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def drag_box(qtbot, window, box, kind="box") -> None:
    x0, y0, x1, y1 = box
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT) as blocker:
        drag(window, [(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2), (x1, y1)])
    assert blocker.args == [kind]


def paint_and_wait(qtbot, window, points) -> None:
    """A drag with the brush or lasso as set; waits for the re-run it starts
    (GrabCut's after a sure stroke, the trimap's after an unknown one)."""
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT) as blocker:
        drag(window, points)
    assert blocker.args == ["refine"]


def trimap(window) -> np.ndarray:
    return window.canvas.document.copy_trimap()


def only_labels(t: np.ndarray) -> bool:
    return set(np.unique(t).tolist()) <= {BACKGROUND, UNKNOWN, FOREGROUND}


def test_box_round_the_subject_makes_the_trimap_in_one_undo_step(window, photo, qtbot, dlg):
    _path, alpha, _other = photo
    before = trimap(window)
    steps = len(window.canvas.document.undo_items)
    key(window, Qt.Key.Key_Q)
    assert window.canvas.tool == "box"
    assert not window.ui.quick_bar.band_visible()
    drag_box(qtbot, window, SUBJECT_BOX)

    t = trimap(window)
    cx, cy = SUBJECT_CENTRE
    assert t[cy, cx] == FOREGROUND
    assert all(t[y, x] == BACKGROUND for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)))
    soft = (alpha > 0.05) & (alpha < 0.95)
    assert (t[soft] == UNKNOWN).mean() > 0.9  # the band covers the disc's soft edge
    assert (t == UNKNOWN).sum() < 0.25 * t.size
    assert only_labels(t)
    assert len(window.canvas.document.undo_items) == steps + 1
    assert window.quick_select.active and window.ui.quick_bar.band_visible()
    assert window.ui.quick_bar.band() == qs.default_band(t.shape)

    undo(window)
    assert np.array_equal(trimap(window), before)
    assert not window.quick_select.active and not window.ui.quick_bar.band_visible()
    window.ui.redo_action.trigger()  # redo brings the selection back, slider and all
    assert np.array_equal(trimap(window), t) and window.quick_select.active
    assert dlg.errors == []


def test_band_slider_changes_the_unknown_area_as_one_undo_step(window, qtbot, dlg):
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, SUBJECT_BOX)
    first = trimap(window)
    steps = len(window.canvas.document.undo_items)
    slider = window.ui.quick_bar.slider
    band = slider.value()
    assert slider.maximum() >= 64

    # A drag of the slider: many values on the way, one application on release.
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT):
        slider.setSliderDown(True)
        for value in range(band + 1, band + 7):
            slider.setValue(value)
        assert len(window.canvas.document.undo_items) == steps
        slider.setSliderDown(False)
    wide = trimap(window)
    assert (wide == UNKNOWN).sum() > (first == UNKNOWN).sum()
    assert len(window.canvas.document.undo_items) == steps + 1
    assert window.quick_select.band == band + 6

    # The keyboard: applied after a short pause, again one step.
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT):
        slider.setValue(1)
    narrow = trimap(window)
    assert (narrow == UNKNOWN).sum() < (first == UNKNOWN).sum()
    assert len(window.canvas.document.undo_items) == steps + 2

    undo(window)
    assert np.array_equal(trimap(window), wide) and slider.value() == band + 6
    undo(window)
    assert np.array_equal(trimap(window), first) and slider.value() == band
    assert window.quick_select.active
    assert dlg.errors == []


def test_background_stroke_removes_a_wrongly_included_object(window, photo, qtbot, dlg):
    _path, alpha, other = photo
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, BOTH_BOX)
    selected = trimap(window)
    assert (selected[other >= 0.5] == FOREGROUND).mean() > 0.6  # GrabCut took the green disc too

    key(window, Qt.Key.Key_B)
    key(window, Qt.Key.Key_2)
    assert window.canvas.tool == "brush" and window.canvas.label == BACKGROUND
    window.canvas.set_brush_size(3)
    paint_and_wait(qtbot, window, [(104, 45), (112, 45), (120, 45)])
    stroked_only = window.canvas.document.undo_items[-2]
    refined = trimap(window)
    assert (refined[other >= 0.5] == BACKGROUND).mean() > 0.9
    assert (refined[alpha >= 0.5] != BACKGROUND).mean() > 0.95  # the subject stays
    assert refined[SUBJECT_CENTRE[1], SUBJECT_CENTRE[0]] == FOREGROUND
    assert refined[45, 112] == BACKGROUND  # the stroke itself is kept
    assert only_labels(refined)
    assert window.quick_select.active

    undo(window)  # the re-run, then the stroke
    assert window.canvas.document.undo_items[-1] is stroked_only
    undo(window)
    assert np.array_equal(trimap(window), selected)
    assert window.quick_select.active
    assert dlg.errors == []


def test_unknown_strokes_stay_unknown_when_grabcut_runs_again(window, photo, qtbot, dlg, monkeypatch):
    """The unknown brush and lasso (over hair, a net) are the user's word: a later
    sure stroke re-runs GrabCut, and a band change re-thresholds, without undoing them."""
    _path, _alpha, other = photo
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, BOTH_BOX)
    runs = []
    segment = qs.segment
    monkeypatch.setattr(qs, "segment", lambda *a, **k: runs.append(1) or segment(*a, **k))

    key(window, Qt.Key.Key_B)
    key(window, Qt.Key.Key_3)
    assert window.canvas.label == UNKNOWN
    window.canvas.set_brush_size(3)
    before = trimap(window)
    paint_and_wait(qtbot, window, [(36, 45), (50, 45), (64, 45)])  # across the subject, which GrabCut made foreground
    key(window, Qt.Key.Key_L)
    paint_and_wait(qtbot, window, [(44, 24), (56, 24), (56, 30), (44, 30), (44, 25)])
    after = trimap(window)
    painted = (after == UNKNOWN) & (before != UNKNOWN)
    assert painted[45, 50] and painted[27, 50] and painted.sum() > 60
    assert runs == []  # unknown strokes alone do not re-run GrabCut

    key(window, Qt.Key.Key_B)
    key(window, Qt.Key.Key_2)
    paint_and_wait(qtbot, window, [(104, 45), (112, 45), (120, 45)])
    refined = trimap(window)
    assert (refined[other >= 0.5] == BACKGROUND).mean() > 0.9  # the re-run happened ...
    assert (refined[painted] == UNKNOWN).all()  # ... and kept both unknown strokes

    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT) as blocker:
        window.ui.quick_bar.slider.setValue(1)
    assert blocker.args == ["band"]
    assert (trimap(window)[painted] == UNKNOWN).all()
    assert dlg.errors == []


def test_a_re_run_that_ends_while_the_next_stroke_is_painted_runs_again_when_it_ends(window, photo, qtbot, dlg,
                                                                                      monkeypatch):
    """Painting fast: GrabCut's re-run after a stroke ends while the next stroke is still
    being painted, so its result is stale; the next stroke's release runs it again with
    every stroke, even when that stroke changed nothing, and no "dropped" message shows."""
    _path, _alpha, other = photo
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, BOTH_BOX)
    go = threading.Event()
    segment = qs.segment
    monkeypatch.setattr(qs, "segment", lambda *a, **k: go.wait(TIMEOUT / 1000) and segment(*a, **k))

    window.canvas.set_tool("brush")
    window.canvas.set_label(BACKGROUND)
    window.canvas.set_brush_size(3)
    drag(window, [(104, 45), (112, 45), (120, 45)])  # on the green disc: GrabCut re-runs (held back)
    assert window.quick_select.busy
    vp = window.canvas.viewport()
    corner = window.canvas.map_from_image(QPointF(2, 2)).toPoint()  # background already: no change
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corner)
    assert window.canvas.document.in_stroke
    with qtbot.waitSignal(window.quick_select.idle, timeout=TIMEOUT):
        go.set()  # the re-run ends mid-stroke: its result is dropped
    assert (trimap(window)[other >= 0.5] == FOREGROUND).mean() > 0.5
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT) as blocker:
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corner)
    assert blocker.args == ["refine"]
    assert (trimap(window)[other >= 0.5] == BACKGROUND).mean() > 0.9
    assert "dropped" not in window.statusBar().currentMessage()
    assert window.canvas.document.undo_items[-1].description == "Quick selection with strokes"
    assert dlg.errors == []


def test_a_sliver_a_lasso_cuts_off_the_subject_becomes_unknown_in_one_more_undo_step(window, qtbot, dlg):
    """A lasso over the top half of the subject (a see-through part) that stops a few
    pixels short of its edge: the cap of sure foreground left above it would force
    alpha 1 there, so it becomes unknown too, as a step of its own."""
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, SUBJECT_BOX)
    selected = trimap(window)
    cx, cy = SUBJECT_CENTRE
    cap = (selected == FOREGROUND) & (np.arange(selected.shape[0])[:, None] < 30)
    assert cap.sum() > 20 and (selected[cy + 10, cx - 5:cx + 5] == FOREGROUND).all()

    key(window, Qt.Key.Key_L)
    window.canvas.set_label(UNKNOWN)
    paint_and_wait(qtbot, window, [(20, 31), (80, 31), (80, 42), (20, 42), (20, 32)])
    cut = trimap(window)
    assert (cut[cap] == UNKNOWN).all()
    assert (cut[cy + 10, cx - 5:cx + 5] == FOREGROUND).all()  # the body below stays sure
    assert (cut[35:40, 30:70] == UNKNOWN).all()
    wait_preview_of_current_trimap(qtbot, window)
    assert (window.preview.last_result.trimap[cap] == UNKNOWN).all()

    undo(window)  # the cap comes back, the lasso stays
    back = trimap(window)
    assert (back[cap] == FOREGROUND).all() and (back[35:40, 30:70] == UNKNOWN).all()
    undo(window)
    assert np.array_equal(trimap(window), selected)
    assert dlg.errors == []


def test_a_small_look_alike_beside_the_subject_is_left_unknown_until_painted(make_window, tmp_path, qtbot, dlg):
    """A box round a toy that also holds a small object of its colour: the object is
    left unknown, so the preview shows it transparent; a foreground stroke on it keeps it."""
    image, subject, piece, box = subject_and_piece()
    window = open_window(make_window, qtbot, save_photo(tmp_path / "toy_and_book.png", image))
    window.canvas.set_tool("box")
    drag_box(qtbot, window, box)
    selected = trimap(window)
    assert (selected[piece > 0] == UNKNOWN).all()
    assert selected[45, 60] == FOREGROUND
    wait_preview_of_current_trimap(qtbot, window)
    preview = window.preview.last_result.alpha
    assert preview.shape == selected.shape
    assert preview[piece >= 0.5].max() < 0.1  # the preview shows it transparent
    assert preview[subject >= 0.99].min() > 0.9

    window.canvas.set_tool("brush")
    window.canvas.set_label(FOREGROUND)
    window.canvas.set_brush_size(2)
    paint_and_wait(qtbot, window, [(116, 30), (118, 30), (120, 30)])
    kept = trimap(window)
    assert kept[30, 118] == FOREGROUND and kept[45, 60] == FOREGROUND
    wait_preview_of_current_trimap(qtbot, window)
    assert window.preview.last_result.alpha[30, 118] > 0.9
    assert dlg.errors == []


def test_a_hole_a_background_stroke_punches_elsewhere_is_left_unknown_until_painted(make_window, tmp_path,
                                                                                    qtbot, dlg):
    """A background stroke on the green disc re-learns green as background and takes the
    subject's green eye out too: the eye is left unknown, so the preview shows no hole,
    and a foreground stroke on it makes it sure again."""
    image, alpha, other, eye, box = subject_with_an_eye()
    window = open_window(make_window, qtbot, save_photo(tmp_path / "face_and_curtain.png", image))
    window.canvas.set_tool("box")
    drag_box(qtbot, window, box)
    assert (trimap(window)[eye >= 0.5] == FOREGROUND).all()

    window.canvas.set_tool("brush")
    window.canvas.set_label(BACKGROUND)
    window.canvas.set_brush_size(7)  # a thinner stroke leaves the eye in for some boxes
    paint_and_wait(qtbot, window, [(104, 45), (112, 45), (120, 45)])
    refined = trimap(window)
    assert (refined[other >= 0.5] == BACKGROUND).mean() > 0.9
    assert (refined[eye >= 0.5] == UNKNOWN).all()
    wait_preview_of_current_trimap(qtbot, window)
    preview = window.preview.last_result.alpha
    assert preview[eye >= 0.5].min() > 0.9 and preview[other >= 0.5].max() < 0.1

    window.canvas.set_label(FOREGROUND)
    window.canvas.set_brush_size(2)
    paint_and_wait(qtbot, window, [(49, 45), (50, 45), (51, 45)])
    kept = trimap(window)
    assert (kept[eye >= 0.9] == FOREGROUND).all()
    assert (kept[other >= 0.5] == BACKGROUND).mean() > 0.9
    assert dlg.errors == []


def test_a_box_over_nothing_that_stands_out_says_so_and_keeps_the_trimap(make_window, tmp_path, qtbot, dlg):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((90, 160, 3), 128, np.uint8)).save(path)
    window = make_window(engine="closed-form")
    assert window.open_image(str(path))
    qtbot.waitExposed(window)
    before = trimap(window)
    steps = len(window.canvas.document.undo_items)
    window.canvas.set_tool("box")
    drag(window, [(30, 20), (80, 45), (130, 70)])
    qtbot.waitUntil(lambda: dlg.errors != [], timeout=TIMEOUT)
    assert dlg.errors[0][0] == "Quick selection" and "selected nothing" in dlg.errors[0][1]
    assert np.array_equal(trimap(window), before)
    assert len(window.canvas.document.undo_items) == steps
    assert not window.quick_select.active and not window.quick_select.busy


def test_outline_is_segmented_too_in_one_undo_step(window, photo, qtbot, dlg):
    _path, alpha, _other = photo
    before = trimap(window)
    key(window, Qt.Key.Key_O)
    x0, y0, x1, y1 = SUBJECT_BOX
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT) as blocker:
        drag(window, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)])
    assert blocker.args == ["outline"]
    t = trimap(window)
    assert t[SUBJECT_CENTRE[1], SUBJECT_CENTRE[0]] == FOREGROUND and t[0, 0] == BACKGROUND
    assert (t[(alpha > 0.05) & (alpha < 0.95)] == UNKNOWN).mean() > 0.9
    undo(window)
    assert np.array_equal(trimap(window), before)
    assert dlg.errors == []


def test_tighten_is_disabled_without_a_preview(window, dlg):
    action = window.ui.tighten_action
    assert window.preview.last_result is None
    assert not action.isEnabled() and "preview" in action.toolTip()
    assert action.shortcut().toString() == "Ctrl+T"
    assert action in window.ui.edit_menu.actions()


def test_tighten_after_a_preview_narrows_the_band(window, qtbot, dlg):
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, SUBJECT_BOX)
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT):
        window.ui.quick_bar.slider.setValue(10)  # a generous band, as a user unsure of the edge
    wait_preview_of_current_trimap(qtbot, window)  # the preview follows the selection by itself
    before = trimap(window)
    steps = len(window.canvas.document.undo_items)
    action = window.ui.tighten_action
    assert action.isEnabled()
    assert window.ui.quick_bar.threshold() == pytest.approx(0.02)
    with qtbot.waitSignal(window.quick_select.applied, timeout=TIMEOUT) as blocker:
        key(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == ["tighten"]
    after = trimap(window)
    assert 0 < (after == UNKNOWN).sum() < (before == UNKNOWN).sum()
    assert only_labels(after)
    assert np.array_equal(after[before != UNKNOWN], before[before != UNKNOWN])  # known pixels kept
    assert len(window.canvas.document.undo_items) == steps + 1
    assert not window.quick_select.active  # the trimap now follows the matte, not GrabCut
    undo(window)
    assert np.array_equal(trimap(window), before) and window.quick_select.active
    assert dlg.errors == []


def test_opening_another_photo_ends_the_selection(window, photo, qtbot, dlg):
    key(window, Qt.Key.Key_Q)
    drag_box(qtbot, window, SUBJECT_BOX)
    assert window.quick_select.active
    assert window.open_image(str(photo[0]))  # unsaved changes: the recorder answers Discard
    assert not window.quick_select.active and not window.ui.quick_bar.band_visible()
    assert not window.ui.tighten_action.isEnabled()


def test_a_click_with_the_box_tool_changes_nothing(window, qtbot, dlg):
    before = trimap(window)
    key(window, Qt.Key.Key_Q)
    drag(window, [(40, 40), (40.5, 40.5)])
    qtbot.wait(50)
    assert np.array_equal(trimap(window), before) and not window.quick_select.busy
    assert dlg.errors == []
