"""The preview pane as a user sees it: busy state, view modes and their keys, compare, decontamination, shortcuts."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor
from PySide6.QtTest import QTest

from dim_studio import engines
from dim_studio.engines.classical import ClosedFormEngine
from dim_studio.gui import dialogs
from dim_studio.gui import preview as preview_module
from dim_studio.gui.main_window import MainWindow
from dim_studio.gui.shortcuts import ShortcutsDialog, action_text
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

H, W = 40, 56
TIMEOUT = 120_000  # ms; a 2-core machine shared with other jobs (waits end early)


class BlockingEngine(ClosedFormEngine):
    """Closed-form that reports half its progress, then waits until the test releases it."""

    name = "blocking"
    release = threading.Event()
    started = threading.Event()
    runs = 0

    def _estimate_crop(self, image, trimap, progress, cancel):
        BlockingEngine.runs += 1
        BlockingEngine.started.set()
        if progress is not None:
            time.sleep(0.1)  # the lane sends progress at most every 50 ms: after the engine's own 0.0
            progress(0.5)
        while not BlockingEngine.release.wait(0.01):
            if cancel is not None and cancel():
                from dim_studio.errors import Cancelled

                raise Cancelled()
        return super()._estimate_crop(image, trimap, None, cancel)


@pytest.fixture
def blocking(monkeypatch):
    cls = BlockingEngine
    monkeypatch.setitem(engines._REGISTRY, cls.name, engines.EngineInfo(cls.name, "tests", cls.__doc__ or ""))
    monkeypatch.setitem(engines._FACTORIES, cls.name, cls)
    cls.release, cls.started, cls.runs = threading.Event(), threading.Event(), 0
    yield cls
    cls.release.set()


@pytest.fixture
def quiet_dialogs(monkeypatch):
    errors: list = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: errors.append((title, msg)))
    monkeypatch.setattr(dialogs, "show_info", lambda *a: None)
    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *a: dialogs.DISCARD)
    monkeypatch.setattr(dialogs, "ask_restore_autosave", lambda *a: False)
    return errors


@pytest.fixture
def scene(tmp_path):
    """A soft yellow disc on a blue-green background: the photo's edge pixels carry the background's cast."""
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot(yy - H / 2, xx - W / 2)
    alpha = np.clip((12.0 - r) / 4.0 + 0.5, 0, 1)
    fg = np.array([235, 190, 60], float)
    bg = np.dstack([20 + 0 * xx, 120 + 60 * (xx % 5) / 5, 170 + 0 * yy])
    img = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    tri = np.full((H, W), UNKNOWN, np.uint8)
    tri[r > 16] = BACKGROUND
    tri[r < 8] = FOREGROUND
    Image.fromarray(img).save(tmp_path / "photo.png")
    Image.fromarray(tri).save(tmp_path / "photo_trimap.png")
    return tmp_path / "photo.png", tmp_path / "photo_trimap.png"


@pytest.fixture
def window(qtbot, quiet_dialogs, blocking):  # the test engine is registered before the window lists engines
    win = MainWindow(probe=False)
    win.resize(900, 600)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.canvas.document.mark_saved()


def wait_final(qtbot, window: MainWindow) -> None:
    def ready() -> bool:
        result = window.preview.last_result
        return (result is not None and result.final and window.preview.displayed_id == window.preview.latest_id
                and not window.preview.in_flight and window.preview_lane.is_idle())

    qtbot.waitUntil(ready, timeout=TIMEOUT)


def set_mode_by_key(qtbot, window: MainWindow, mode: str) -> np.ndarray:
    """Trigger the mode's action (as its key does) and wait for the recomposed pixels."""
    before = window.preview.displayed_count
    action = window.ui.mode_actions[mode]
    assert not action.shortcut().isEmpty(), f"{mode} has no key"
    action.trigger()
    assert window.preview_pane.mode == mode
    qtbot.waitUntil(lambda: window.preview.displayed_count > before
                    and window.preview_pane.result.display.mode == mode and window.preview_lane.is_idle(),
                    timeout=TIMEOUT)
    wait_final(qtbot, window)
    return window.preview_pane.displayed_pixels()


def test_busy_overlay_and_status_while_computing(window, scene, blocking, qtbot, monkeypatch):
    monkeypatch.setattr(preview_module, "PROGRESS_AFTER_S", 0.3)
    window.set_engine("blocking")
    assert window.open_image(str(scene[0]), str(scene[1]))
    qtbot.waitUntil(blocking.started.is_set, timeout=30_000)
    pane, view = window.preview_pane, window.preview_pane.view
    assert view.busy_overlay_visible() and pane.busy_text().startswith("Computing preview")
    status = window.ui.preview_label.text()
    assert "waiting" not in status.lower() and "computing" in status.lower()
    # After a while the fraction the engine reported shows, on the pane and in the status bar.
    # (the engine's 0.5 of its crop is some share of the whole job: any reported progress will do)
    qtbot.waitUntil(lambda: pane.busy_text().endswith(" %") and not pane.busy_text().endswith(" 0 %"),
                    timeout=30_000)
    percent = pane.busy_text().rsplit(" ", 2)[-2]
    qtbot.waitUntil(lambda: window.ui.preview_label.text() == f"Preview: computing… {percent} %", timeout=5_000)
    blocking.release.set()
    wait_final(qtbot, window)
    assert not view.busy_overlay_visible() and pane.busy_text() == ""
    fresh = pane.timing_text()
    assert " s · " in fresh and "stale" not in fresh and not pane.timing_is_stale()
    assert " s at " in window.ui.preview_label.text()

    # The next computation marks that timing stale while it runs.
    blocking.release.clear()
    blocking.started.clear()
    window.canvas.document.begin_stroke()
    window.canvas.document.paint_segment((W / 2, H / 2 - 11), (W / 2 + 2, H / 2 - 11), 2, FOREGROUND)
    window.canvas.document.end_stroke("Paint")
    window.preview.request_now()
    qtbot.waitUntil(blocking.started.is_set, timeout=30_000)
    assert view.busy_overlay_visible()
    assert pane.timing_is_stale() and pane.timing_text() == f"{fresh} (stale)"
    assert "waiting" not in window.ui.preview_label.text().lower()
    blocking.release.set()
    wait_final(qtbot, window)
    assert not view.busy_overlay_visible() and "stale" not in pane.timing_text()


def test_waiting_only_without_a_usable_trimap(window, scene, qtbot):
    assert window.open_image(str(scene[0]))  # no trimap: all background
    window.preview.request_now()
    assert "waiting for the trimap" in window.ui.preview_label.text()
    assert not window.preview_pane.view.busy_overlay_visible()


def test_view_mode_keys_change_the_pixels(window, scene, qtbot):
    assert window.open_image(str(scene[0]), str(scene[1]))
    wait_final(qtbot, window)
    alpha = window.preview_pane.alpha.copy()
    transparent = alpha == 0
    assert transparent.any()
    photo = np.asarray(Image.open(scene[0]).convert("RGB"))

    black = set_mode_by_key(qtbot, window, "black")
    assert black.shape == (H, W, 3) and np.all(black[transparent] == 0)
    white = set_mode_by_key(qtbot, window, "white")
    assert np.all(white[transparent] == 255)

    window.ui.set_preview_overlay(QColor(0, 0, 255), 1.0)  # as the View-menu colour dialog does
    overlay = set_mode_by_key(qtbot, window, "overlay")
    assert np.all(overlay[transparent] == (0, 0, 255))  # alpha 0 fully tinted
    opaque = alpha == 1
    np.testing.assert_array_equal(overlay[opaque], photo[opaque])  # the subject untouched
    window.ui.set_preview_overlay(QColor(255, 0, 0), 0.5)
    qtbot.waitUntil(lambda: window.preview_pane.result.display.overlay_opacity == 0.5
                    and window.preview_lane.is_idle(), timeout=TIMEOUT)
    half = window.preview_pane.displayed_pixels()
    expected = np.round(photo[transparent] * 0.5 + np.array([255, 0, 0]) * 0.5)
    assert np.abs(half[transparent].astype(int) - expected).max() <= 1
    assert window.settings.get_str("preview/overlay_color") == "#ff0000"

    alpha_px = set_mode_by_key(qtbot, window, "alpha")
    assert alpha_px.ndim == 2
    # F cycles to the next mode.
    window.ui.cycle_mode_action.trigger()
    assert window.preview_pane.mode == "overlay"
    np.testing.assert_array_equal(window.preview_pane.alpha, alpha)  # only the view changed


def test_holding_the_compare_key_shows_the_original(window, scene, qtbot):
    assert window.open_image(str(scene[0]), str(scene[1]))
    wait_final(qtbot, window)
    view, pane = window.preview_pane.view, window.preview_pane
    preview_img = view._photo.qimage().copy()
    photo = window.canvas._photo.qimage()
    action = window.ui.compare_action
    assert action.shortcut().toString() == "\\"

    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    QTest.keyPress(window, Qt.Key.Key_Backslash)
    if not pane.comparing:  # the offscreen platform did not route the key to the shortcut
        action.trigger()
    assert pane.comparing and view.badge == "Original"
    assert view._photo.qimage() == photo
    QTest.keyRelease(window, Qt.Key.Key_Backslash)
    assert not pane.comparing and view.badge == ""
    assert view._photo.qimage() == preview_img


def test_decontamination_slider_redisplays_without_a_new_solve(window, scene, blocking, qtbot):
    blocking.release.set()  # counts engine runs, does not block
    window.set_engine("blocking")
    assert window.open_image(str(scene[0]), str(scene[1]))
    wait_final(qtbot, window)
    set_mode_by_key(qtbot, window, "black")
    runs = blocking.runs
    pane = window.preview_pane
    alpha = pane.alpha
    assert pane.foreground is not None
    soft = np.argwhere((alpha > 0.3) & (alpha < 0.7))
    assert len(soft)
    y, x = soft[0]
    photo = np.asarray(Image.open(scene[0]).convert("RGB")).astype(np.float64) / 255

    def shown_at(strength: float) -> np.ndarray:
        before = window.preview.displayed_count
        pane.decontaminate_slider.setValue(int(round(strength * 100)))
        qtbot.waitUntil(lambda: window.preview.displayed_count > before
                        and pane.result.display.decontaminate == strength and window.preview_lane.is_idle(),
                        timeout=TIMEOUT)
        return pane.displayed_pixels()[y, x].astype(np.float64)

    a = float(alpha[y, x])
    at0 = shown_at(0.0)
    np.testing.assert_allclose(at0, np.round(photo[y, x] * a * 255), atol=1.5)  # the photo's colour over black
    at1 = shown_at(1.0)
    np.testing.assert_allclose(at1, np.round(pane.foreground[y, x] * a * 255), atol=1.5)  # the estimate
    assert np.abs(at0 - at1).max() > 2
    assert pane.decontamination == 1.0
    assert blocking.runs == runs, "the slider re-solved the alpha"
    assert window.settings.get_str("preview/decontaminate") == "1.00"


def test_keyboard_shortcuts_dialog_lists_every_action(window, qtbot):
    window.ui.show_shortcuts()
    dialog = window.ui.shortcuts_dialog
    assert isinstance(dialog, ShortcutsDialog) and dialog.isVisible()
    rows = dialog.texts()
    listed = {(what, keys) for _where, what, keys in rows}
    missing = []
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            if key.isEmpty():
                continue
            text = key.toString(key.SequenceFormat.NativeText)
            if not any(what == action_text(action) and text in keys.split(", ") for what, keys in listed):
                missing.append((action.text(), text))
    assert missing == []
    whats = {what for _w, what, _k in rows}
    assert {"Cutout on black", "Cutout on white", "Mask overlay on photo", "Compare with the original (hold)"} <= whats
    assert any("wheel" in keys.lower() for _w, _what, keys in rows)
    qtbot.addWidget(dialog)
    dialog.close()


def test_a_slow_engine_shows_its_stand_ins_matte_first_then_its_own(window, scene, blocking, qtbot, monkeypatch):
    # As ifm does with closed-form: the fast engine's matte appears at once, marked as
    # being refined; the chosen engine's replaces it; a new stroke cancels the refinement.
    from dim_studio.workflows import engine_choice

    monkeypatch.setitem(engine_choice.PREVIEW_STAND_INS, "blocking", "closed-form")
    window.set_engine("blocking")
    assert window.open_image(str(scene[0]), str(scene[1]))
    pane = window.preview_pane
    qtbot.waitUntil(lambda: pane.result is not None and pane.result.refining == "blocking", timeout=TIMEOUT)
    assert pane.result.engine_label == "closed-form" and not pane.result.final
    assert pane.displayed_pixels() is not None  # the stand-in's matte is on screen
    assert pane.view.busy_overlay_visible() and pane.busy_text().startswith("Refining with blocking")
    status = window.ui.preview_label.text()
    assert status.startswith("Preview: closed-form, ") and "refining with blocking" in status, status

    # A stroke while refining: the refinement is cancelled and a new stand-in matte comes first.
    runs = blocking.runs
    qtbot.waitUntil(blocking.started.is_set, timeout=TIMEOUT)
    window.canvas.document.begin_stroke()
    window.canvas.document.paint_segment((W / 2, H / 2 - 11), (W / 2 + 2, H / 2 - 11), 2, FOREGROUND)
    window.canvas.document.end_stroke("Paint")
    first_id = window.preview.latest_id
    window.preview.request_now()
    qtbot.waitUntil(lambda: window.preview.displayed_id != first_id and pane.result.refining == "blocking",
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: blocking.runs > runs, timeout=TIMEOUT)  # the new request's own solve started

    blocking.release.set()
    wait_final(qtbot, window)
    assert pane.result.engine_label == "blocking" and pane.result.refining == ""
    assert not pane.view.busy_overlay_visible()
    status = window.ui.preview_label.text()
    assert status.startswith("Preview: blocking, ") and "refining" not in status, status
