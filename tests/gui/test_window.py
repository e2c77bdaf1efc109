"""The main window end to end (pytest-qt, offscreen): preview, export, autosave, prompts, settings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton

from dim_studio import engines
from dim_studio.autosave import AutosaveStore
from dim_studio.cli import main as cli_main
from dim_studio.engines import create_engine
from dim_studio.engines.classical import ClosedFormEngine
from dim_studio.errors import Cancelled
from dim_studio.gui import dialogs
from dim_studio.gui.main_window import MainWindow, quick_start_hint
from dim_studio.images import read_image, read_trimap
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

H, W = 90, 120
TIMEOUT = 120_000  # ms; generous for a 2-core machine shared with other jobs (waits end early)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


class DialogRecorder:
    """Stands in for every dialog; records what the window asked and answers as told."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.unsaved: list[str] = []
        self.unsaved_answer = dialogs.DISCARD
        self.restores: list[str] = []
        self.restore_answer = True
        self.open_paths: list[str] = []
        self.save_paths: list[str] = []
        self.band = 10
        self.export_options: dialogs.ExportOptions | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: self.errors.append((title, msg)))
        monkeypatch.setattr(dialogs, "show_info", lambda *a: None)
        monkeypatch.setattr(dialogs, "ask_unsaved_changes", self._unsaved)
        monkeypatch.setattr(dialogs, "ask_restore_autosave", self._restore)
        monkeypatch.setattr(dialogs, "get_open_path", lambda *a, **k: self.open_paths.pop(0))
        monkeypatch.setattr(dialogs, "get_save_path", lambda *a, **k: self.save_paths.pop(0))
        monkeypatch.setattr(dialogs, "ask_band_width", lambda *a, **k: self.band)
        monkeypatch.setattr(dialogs, "ask_export_options", lambda *a, **k: self.export_options)

    def _unsaved(self, parent, what):
        self.unsaved.append(what)
        return self.unsaved_answer

    def _restore(self, parent, name, age):
        self.restores.append(name)
        return self.restore_answer


@pytest.fixture
def dlg(monkeypatch):
    recorder = DialogRecorder()
    recorder.install(monkeypatch)
    return recorder


def _scene_arrays(h=H, w=W):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((24.0 - r) / 4.0 + 0.5, 0, 1)
    fg = np.array([235, 190, 60], float)
    bg = np.dstack([30 + 90 * (xx % 9) / 9, 60 + 0 * xx, 150 + 60 * (yy % 7) / 7])
    img = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    tri = np.full((h, w), UNKNOWN, np.uint8)
    tri[r > 31] = BACKGROUND
    tri[r < 16] = FOREGROUND
    return img, tri


@pytest.fixture
def scene(tmp_path):
    img, tri = _scene_arrays()
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(img).save(folder / "photo.png")
    Image.fromarray(tri).save(folder / "photo_trimap.png")
    return folder / "photo.png", folder / "photo_trimap.png"


@pytest.fixture
def make_window(qtbot, dlg):
    def make(**kwargs) -> MainWindow:
        kwargs.setdefault("probe", False)  # no torch import in the background during tests
        window = MainWindow(**kwargs)
        window.resize(900, 600)
        qtbot.addWidget(window)
        window.show()
        return window

    return make


class RecordingEngine(ClosedFormEngine):
    """Closed-form that notes which threads it ran on."""

    name = "recording"
    threads: list[int] = []

    def _estimate_crop(self, image, trimap, progress, cancel):
        RecordingEngine.threads.append(threading.get_ident())
        return super()._estimate_crop(image, trimap, progress, cancel)


class SlowEngine(ClosedFormEngine):
    """Closed-form after a delay spent polling ``cancel`` in small steps, like a real solver."""

    name = "slow"
    delay = 1.5
    started = threading.Event()
    cancelled = 0
    completed = 0

    def _estimate_crop(self, image, trimap, progress, cancel):
        SlowEngine.started.set()
        end = time.monotonic() + SlowEngine.delay
        while time.monotonic() < end:
            if cancel is not None and cancel():
                SlowEngine.cancelled += 1
                raise Cancelled()
            time.sleep(0.01)
        SlowEngine.completed += 1
        return super()._estimate_crop(image, trimap, progress, cancel)


class FailingEngine(ClosedFormEngine):
    name = "failing"

    def _estimate_crop(self, image, trimap, progress, cancel):
        raise RuntimeError("boom in the solver")


@pytest.fixture
def test_engines(monkeypatch):
    """Register the test engines (before the window builds its engine list)."""
    for cls in (RecordingEngine, SlowEngine, FailingEngine):
        monkeypatch.setitem(engines._REGISTRY, cls.name, engines.EngineInfo(cls.name, "tests", cls.__doc__ or ""))
        monkeypatch.setitem(engines._FACTORIES, cls.name, cls)
    RecordingEngine.threads = []
    SlowEngine.started = threading.Event()
    SlowEngine.cancelled = SlowEngine.completed = 0


def drag(window: MainWindow, points: list[tuple[float, float]]) -> None:
    """A real mouse drag over the canvas, in image coordinates."""
    canvas = window.canvas
    vp = canvas.viewport()
    pos = [canvas.map_from_image(QPointF(x, y)).toPoint() for x, y in points]
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[0])
    for p in pos[1:]:
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[-1])


def wait_preview_of_current_trimap(qtbot, window: MainWindow) -> None:
    def ready() -> bool:
        result = window.preview.last_result
        return (
            result is not None
            and result.final
            and window.preview.displayed_id == window.preview.latest_id
            and np.array_equal(result.trimap, window.canvas.document.trimap)
        )

    qtbot.waitUntil(ready, timeout=TIMEOUT)


# --------------------------------------------------------------------------
# live preview
# --------------------------------------------------------------------------


def test_preview_updates_after_stroke_off_the_gui_thread(make_window, scene, test_engines, qtbot, dlg):
    window = make_window(engine="recording")
    assert window.open_image(str(scene[0]), str(scene[1]))
    wait_preview_of_current_trimap(qtbot, window)
    first = window.preview_pane.alpha.copy()
    shown_before = window.preview.displayed_count

    window.canvas.set_label(FOREGROUND)
    window.canvas.set_brush_size(8)
    drag(window, [(60, 20), (70, 24), (80, 30)])  # into the unknown band
    assert window.is_modified()
    wait_preview_of_current_trimap(qtbot, window)

    assert window.preview.displayed_count > shown_before
    assert not np.array_equal(window.preview_pane.alpha, first)
    assert RecordingEngine.threads, "the engine never ran"
    assert threading.get_ident() not in RecordingEngine.threads, "matting ran on the GUI thread"
    assert "Preview:" in window.ui.preview_label.text() and " s at " in window.ui.preview_label.text()
    assert window.ui.device_label.text() == "Device: CPU"
    assert window.ui.engine_label.text() == "Engine: recording"
    assert dlg.errors == []


def test_stroke_during_preview_cancels_it_and_latest_wins(make_window, scene, test_engines, qtbot, dlg):
    window = make_window(engine="slow")
    assert window.open_image(str(scene[0]), str(scene[1]))
    qtbot.waitUntil(SlowEngine.started.is_set, timeout=TIMEOUT)
    stale_id = window.preview.latest_id
    assert stale_id is not None
    shown_ids: list[int] = []
    window.preview.shown.connect(lambda request_id, _result: shown_ids.append(request_id))

    # Two strokes while the first preview is still running.
    window.canvas.set_label(FOREGROUND)
    window.canvas.set_brush_size(6)
    drag(window, [(60, 20), (62, 24)])
    window.canvas.set_label(BACKGROUND)
    drag(window, [(5, 5), (20, 8)])
    final_trimap = window.canvas.document.copy_trimap()

    wait_preview_of_current_trimap(qtbot, window)
    qtbot.waitUntil(window.preview_lane.is_idle, timeout=TIMEOUT)

    assert stale_id not in shown_ids, "a stale preview reached the screen"
    assert SlowEngine.cancelled >= 1, "the running preview was not cancelled"
    image = read_image(scene[0])
    expected = create_engine("closed-form").estimate(image, final_trimap)
    np.testing.assert_array_equal(window.preview_pane.alpha, expected)
    # Everything displayed after the strokes belongs to the final trimap.
    assert shown_ids[-1] == window.preview.latest_id == window.preview.displayed_id
    assert dlg.errors == []


def test_preview_waits_for_a_usable_trimap_and_shows_the_hint(make_window, scene, qtbot, dlg):
    window = make_window()
    assert window.open_image(str(scene[0]))  # no trimap: all background
    assert np.all(window.canvas.document.trimap == BACKGROUND)
    assert window.ui.hint.isVisibleTo(window) and "O" in window.ui.hint.text()
    assert window.preview.latest_id is None and window.preview_pane.alpha is None

    # The quick path: outline, then foreground.
    window.canvas.set_tool("outline")
    drag(window, [(25, 10), (95, 10), (95, 80), (25, 80), (25, 11)])
    assert "foreground" in window.ui.hint.text()
    window.canvas.set_tool("brush")
    window.canvas.set_label(FOREGROUND)
    window.canvas.set_brush_size(10)
    drag(window, [(55, 40), (65, 45)])
    assert not window.ui.hint.isVisibleTo(window)
    wait_preview_of_current_trimap(qtbot, window)
    assert dlg.errors == []


def test_preview_modes_and_foreground_estimate(make_window, scene, qtbot, dlg):
    window = make_window()
    assert window.open_image(str(scene[0]), str(scene[1]))
    wait_preview_of_current_trimap(qtbot, window)
    assert window.preview_pane.displayed_pixels().ndim == 2  # alpha
    alpha = window.preview_pane.alpha.copy()
    window.preview_pane.set_mode("color")
    # The new view is composed in the preview lane, never on the GUI thread.
    qtbot.waitUntil(lambda: window.preview_pane.foreground is not None
                    and window.preview_pane.displayed_pixels().ndim == 3, timeout=TIMEOUT)
    px = window.preview_pane.displayed_pixels()
    assert px.shape == (H, W, 3) and tuple(px[0, 0]) == (255, 255, 255)  # white background
    window.preview_pane.set_mode("checkerboard")
    qtbot.waitUntil(lambda: window.preview_pane.displayed_pixels().shape == (H, W, 4), timeout=TIMEOUT)
    # Only the view changed: the same matte, no new solve.
    np.testing.assert_array_equal(window.preview_pane.alpha, alpha)
    np.testing.assert_array_equal(window.preview_pane.displayed_pixels()[..., 3], np.round(alpha * 255).astype(np.uint8))


def test_engine_failure_shows_a_dialog_and_the_window_keeps_working(make_window, scene, test_engines, qtbot, dlg):
    window = make_window(engine="failing")
    assert window.open_image(str(scene[0]), str(scene[1]))
    qtbot.waitUntil(lambda: bool(dlg.errors), timeout=TIMEOUT)
    title, message = dlg.errors[0]
    assert "RuntimeError" in message and "boom in the solver" in message
    window.set_engine("closed-form")
    wait_preview_of_current_trimap(qtbot, window)
    assert len(dlg.errors) == 1


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------


def test_export_equals_the_matte_command(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window(engine="closed-form")
    assert window.open_image(str(scene[0]), str(scene[1]))
    gui_out, cli_out = tmp_path / "gui", tmp_path / "cli"
    dlg.export_options = dialogs.ExportOptions(
        alpha_path=str(gui_out / "a.png"), cutout_path=str(gui_out / "c.png"),
        composite_path=str(gui_out / "m.png"), depth=8,
        background_kind=dialogs.BG_COLOR, background_color="#00ff00",
    )
    with qtbot.waitSignal(window.exportFinished, timeout=TIMEOUT):
        window.export_dialog()
    assert window._export_progress is None  # the progress dialog closed

    code = cli_main([
        "matte", str(scene[0]), "--trimap", str(scene[1]), "--engine", "closed-form", "-q",
        "-o", str(cli_out / "a.png"), "--cutout", str(cli_out / "c.png"),
        "--composite", str(cli_out / "m.png"), "--background", "#00ff00",
    ])
    assert code == 0
    for name in ("a.png", "c.png", "m.png"):
        assert (gui_out / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert dlg.errors == []


def test_export_16_bit_alpha_equals_the_matte_command(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window(engine="closed-form")
    assert window.open_image(str(scene[0]), str(scene[1]))
    dlg.export_options = dialogs.ExportOptions(str(tmp_path / "g16.png"), None, None, depth=16)
    with qtbot.waitSignal(window.exportFinished, timeout=TIMEOUT):
        window.export_dialog()
    assert cli_main(["matte", str(scene[0]), "--trimap", str(scene[1]), "--engine", "closed-form", "-q",
                     "-o", str(tmp_path / "c16.png"), "--alpha-depth", "16"]) == 0
    assert (tmp_path / "g16.png").read_bytes() == (tmp_path / "c16.png").read_bytes()


def test_export_never_writes_over_an_input(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window(engine="closed-form")
    assert window.open_image(str(scene[0]), str(scene[1]))
    background = scene[0].parent / "bg.png"
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(background)
    before = {p: p.read_bytes() for p in (scene[0], scene[1], background)}
    for options in (
        dialogs.ExportOptions(str(tmp_path / "a.png"), None, str(background),
                              background_kind=dialogs.BG_IMAGE, background_image=str(background)),
        dialogs.ExportOptions(str(scene[1]), None, None),
    ):
        dlg.errors.clear()
        dlg.export_options = options
        window.export_dialog()
        qtbot.waitUntil(lambda: window._export_id is None, timeout=TIMEOUT)
        assert len(dlg.errors) == 1 and "refusing to overwrite" in dlg.errors[0][1]
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "a.png").exists()


def test_export_dialog_names_the_clash(qtbot, scene, tmp_path):
    background = tmp_path / "bg.png"
    dialog = dialogs.ExportDialog(None, str(scene[0]), str(tmp_path), protected=(str(scene[0]), str(scene[1])))
    qtbot.addWidget(dialog)
    assert dialog.problem() is None
    dialog.composite_row.check.setChecked(True)
    dialog.composite_row.edit.setText(str(background))
    dialog.bg_kind.setCurrentIndex(dialog.bg_kind.findData(dialogs.BG_IMAGE))
    dialog.bg_image.setText(str(background))
    assert "background image" in dialog.problem()
    dialog.composite_row.edit.setText(dialog.alpha_row.edit.text())
    assert "both the alpha and the composite" in dialog.problem()
    dialog.composite_row.edit.setText(str(scene[1]))
    assert "its trimap" in dialog.problem()


def test_export_can_be_cancelled(make_window, scene, tmp_path, test_engines, qtbot, dlg):
    window = make_window(engine="slow")
    assert window.open_image(str(scene[0]), str(scene[1]))
    qtbot.waitUntil(window.export_lane.is_idle, timeout=TIMEOUT)
    SlowEngine.started.clear()
    dlg.export_options = dialogs.ExportOptions(str(tmp_path / "x.png"), None, None)
    window.export_dialog()
    qtbot.waitUntil(SlowEngine.started.is_set, timeout=TIMEOUT)
    cancel_button = window._export_progress.findChild(QPushButton)
    qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window._export_id is None, timeout=TIMEOUT)
    assert not (tmp_path / "x.png").exists()
    assert dlg.errors == []


# --------------------------------------------------------------------------
# unsaved changes, autosave
# --------------------------------------------------------------------------


def _paint_something(window: MainWindow) -> None:
    window.canvas.set_label(UNKNOWN)
    window.canvas.set_brush_size(12)
    drag(window, [(30, 30), (60, 50), (90, 60)])


def test_autosave_is_offered_back_after_a_crash(qtbot, scene, tmp_path, dlg):
    store = AutosaveStore()
    assert str(store.folder).startswith(str(tmp_path))  # not the real user folder
    crashed = MainWindow(probe=False)
    crashed.resize(900, 600)
    crashed.show()
    crashed.autosave_timer.setInterval(50)
    assert crashed.open_image(str(scene[0]))
    crashed.canvas.set_tool("outline")
    drag(crashed, [(25, 10), (95, 10), (95, 80), (25, 80)])
    crashed.canvas.set_tool("brush")
    crashed.canvas.set_label(FOREGROUND)
    drag(crashed, [(55, 40), (65, 45)])
    painted = crashed.canvas.document.copy_trimap()

    def autosaved_final() -> bool:
        entry = store.find(scene[0])
        return entry is not None and np.array_equal(store.load(entry), painted)

    qtbot.waitUntil(autosaved_final, timeout=TIMEOUT)
    # The "crash": the window goes away without closeEvent and its prompt.
    crashed.preview_lane.shutdown()
    crashed.export_lane.shutdown()
    crashed.hide()
    crashed.deleteLater()
    QApplication.processEvents()

    window = MainWindow(probe=False)
    qtbot.addWidget(window)
    window.show()
    assert window.open_image(str(scene[0]))
    assert dlg.restores == ["photo.png"]
    np.testing.assert_array_equal(window.canvas.document.trimap, painted)
    assert window.is_modified()  # recovered work is unsaved until the user saves it
    assert window.canvas.document.undo_text() == "Recovered trimap"

    # A clean save removes the autosave.
    dlg.save_paths.append(str(tmp_path / "saved_trimap.png"))
    assert window.save_trimap()
    window.tasks.flush(10)
    assert store.find(scene[0]) is None
    np.testing.assert_array_equal(read_trimap(tmp_path / "saved_trimap.png"), painted)
    assert not window.is_modified()


def test_declined_autosave_is_deleted(qtbot, make_window, scene, dlg):
    store = AutosaveStore()
    _, tri = _scene_arrays()
    store.save(scene[0], tri)
    dlg.restore_answer = False
    window = make_window()
    assert window.open_image(str(scene[0]))
    assert dlg.restores == ["photo.png"]
    assert np.all(window.canvas.document.trimap == BACKGROUND)
    assert store.find(scene[0]) is None


def test_close_prompts_for_unsaved_changes(make_window, scene, qtbot, dlg):
    window = make_window()
    window.autosave_timer.setInterval(20)
    assert window.open_image(str(scene[0]), str(scene[1]))
    assert window.close()  # nothing changed: no question
    assert dlg.unsaved == []

    window = make_window()
    window.autosave_timer.setInterval(20)
    assert window.open_image(str(scene[0]), str(scene[1]))
    _paint_something(window)
    qtbot.waitUntil(lambda: AutosaveStore().find(scene[0]) is not None, timeout=TIMEOUT)

    dlg.unsaved_answer = dialogs.CANCEL
    assert not window.close()
    assert window.isVisible() and dlg.unsaved == ["photo.png"]
    # Opening another photo asks too, and Cancel keeps the current one.
    other = scene[0].with_name("other.png")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(other)
    assert not window.open_image(str(other))
    assert Path(window.image_path).name == "photo.png"

    dlg.unsaved_answer = dialogs.DISCARD
    assert window.close()
    window.tasks.flush(10)
    assert AutosaveStore().find(scene[0]) is None  # discarded work leaves no autosave


def test_undoing_back_to_the_saved_state_drops_the_autosave(make_window, scene, qtbot, dlg):
    store = AutosaveStore()
    window = make_window()
    window.autosave_timer.setInterval(20)
    assert window.open_image(str(scene[0]), str(scene[1]))
    _paint_something(window)
    qtbot.waitUntil(lambda: store.find(scene[0]) is not None, timeout=TIMEOUT)
    window.ui.undo_action.trigger()
    assert not window.is_modified()
    window.tasks.flush(10)
    assert store.find(scene[0]) is None
    assert window.close() and dlg.unsaved == []
    # The next window is not asked to restore anything.
    again = make_window()
    assert again.open_image(str(scene[0]), str(scene[1]))
    assert dlg.restores == []


def test_save_from_the_prompt_writes_the_trimap(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window()
    assert window.open_image(str(scene[0]), str(scene[1]))
    _paint_something(window)
    painted = window.canvas.document.copy_trimap()
    dlg.unsaved_answer = dialogs.SAVE
    assert window.close()  # Save writes the trimap it was opened with
    np.testing.assert_array_equal(read_trimap(scene[1]), painted)


# --------------------------------------------------------------------------
# errors, files, drops
# --------------------------------------------------------------------------


def test_wrong_size_trimap_shows_an_error_and_the_window_keeps_working(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window()
    assert window.open_image(str(scene[0]))
    small = tmp_path / "small_trimap.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(small)
    assert not window.open_trimap(str(small))
    assert len(dlg.errors) == 1
    title, message = dlg.errors[0]
    assert "120x90" in message and "12x10" in message
    # Still usable: the right trimap loads and the preview runs.
    assert window.open_trimap(str(scene[1]))
    wait_preview_of_current_trimap(qtbot, window)
    assert len(dlg.errors) == 1


def test_unreadable_photo_shows_an_error(make_window, tmp_path, dlg):
    window = make_window()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert not window.open_image(str(bad))
    assert dlg.errors and "broken.png" in dlg.errors[0][1]
    assert window.image is None


def test_drop_opens_photo_then_grey_image_as_trimap(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(scene[0]))])
    # As a real drag does it: enter over the canvas (Qt finds the widget that
    # accepts drops: the window), then drop.
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.canvas.viewport(), enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.canvas.viewport(), drop)
    qtbot.waitUntil(lambda: window.image is not None, timeout=TIMEOUT)
    assert Path(window.image_path).name == "photo.png"

    # A grey 3-level image of the same size, not named "trimap", is a trimap.
    _, tri = _scene_arrays()
    grey = tmp_path / "labels.png"
    Image.fromarray(tri).save(grey)
    window.handle_dropped_paths([str(grey)])
    np.testing.assert_array_equal(window.canvas.document.trimap, tri)
    assert Path(window.image_path).name == "photo.png"
    assert dlg.errors == []


def test_trimap_from_mask_is_one_undo_step(make_window, scene, tmp_path, qtbot, dlg):
    window = make_window()
    assert window.open_image(str(scene[0]))
    mask = np.zeros((H, W), np.uint8)
    mask[30:60, 40:80] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    dlg.open_paths.append(str(tmp_path / "mask.png"))
    dlg.band = 5
    window.trimap_from_mask_dialog()
    trimap = window.canvas.document.trimap
    assert set(np.unique(trimap)) == {BACKGROUND, UNKNOWN, FOREGROUND}
    assert window.ui.undo_action.text().startswith("&Undo Trimap from mask")
    window.ui.undo_action.trigger()
    assert np.all(window.canvas.document.trimap == BACKGROUND)
    assert window.ui.redo_action.isEnabled()


def test_keys_and_menus(make_window, scene, dlg):
    window = make_window()
    ui = window.ui
    assert ui.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert ui.open_trimap_action.shortcut() == QKeySequence("Ctrl+Shift+O")
    assert ui.save_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Save)
    assert ui.export_action.shortcut() == QKeySequence("Ctrl+E")
    assert QKeySequence("Ctrl+Shift+Z") in ui.redo_action.shortcuts()
    assert ui.fit_action.shortcut() == QKeySequence("Ctrl+0")
    assert ui.zoom100_action.shortcut() == QKeySequence("Ctrl+1")
    keys = {"1": FOREGROUND, "2": BACKGROUND, "3": UNKNOWN}
    for key, label in keys.items():
        assert ui.label_actions[label].shortcut() == QKeySequence(key)
        ui.label_actions[label].trigger()
        assert window.canvas.label == label
    for tool, key in (("brush", "B"), ("lasso", "L"), ("outline", "O")):
        assert ui.tool_actions[tool].shortcut() == QKeySequence(key)
        ui.tool_actions[tool].trigger()
        assert window.canvas.tool == tool
    size = window.canvas.brush_size
    ui.bigger_action.trigger()
    assert window.canvas.brush_size > size and ui.brush_spin.value() == window.canvas.brush_size
    ui.trimap_only_action.trigger()
    assert window.canvas.show_trimap_only()
    assert ui.trimap_only_action.shortcut() == QKeySequence("T")
    ui.opacity_slider.setValue(30)
    assert window.canvas.overlay_opacity() == pytest.approx(0.3)


def test_recent_files_menu(make_window, scene, dlg):
    window = make_window()
    assert window.open_image(str(scene[0]))
    actions = [a for a in window.ui.recent_menu.actions() if a.statusTip()]
    assert actions and actions[0].statusTip() == str(scene[0].resolve())


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------


def test_settings_persist_across_windows(make_window, tmp_path, dlg):
    first = make_window()
    first.canvas.set_brush_size(77)
    first.set_engine("knn")
    first.ui.opacity_slider.setValue(35)
    first.preview_pane.set_mode("checkerboard")
    first.ui.resolution_actions["1/2"].trigger()
    assert first.close()
    assert (tmp_path / "config" / "dim-studio.ini").is_file()

    second = make_window()
    assert second.canvas.brush_size == 77
    assert second.engine_name == "knn"
    assert second.canvas.overlay_opacity() == pytest.approx(0.35)
    assert second.preview_pane.mode == "checkerboard"
    assert second.ui.preview_resolution() == "1/2"


def test_dim_without_weights_is_disabled_with_instructions(qtbot, dlg, monkeypatch):
    from dim_studio.gui import main_window as mw
    from dim_studio.workflows.environment import Environment
    from dim_studio.workflows.weights import WeightsStatus

    env = Environment([("auto", "Auto"), ("cpu", "CPU")],
                      WeightsStatus(None, "No weights found.", "run `dim-studio weights download`"))
    monkeypatch.setattr(mw, "probe_environment", lambda weights=None: env)
    window = MainWindow(probe=True)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.environmentReady, timeout=TIMEOUT):
        pass
    index = window.ui.engine_combo.findData("dim")
    item = window.ui.engine_combo.model().item(index)
    assert not item.isEnabled() and "weights download" in item.toolTip()
    assert "weights download" in window.ui.weights_note.toolTip()
    assert window.engine_name == "ifm"  # the offline default


def test_quick_start_hint_texts():
    assert "Open a photo" in quick_start_hint(None)
    t = np.zeros((4, 4), np.uint8)
    assert "press O" in quick_start_hint(t)
    t[1, 1] = UNKNOWN
    assert "foreground" in quick_start_hint(t)
    t[2, 2] = FOREGROUND
    assert quick_start_hint(t) == ""


def test_batch_dialog_and_weights_menu_are_reachable(make_window, monkeypatch, dlg):
    from dim_studio.gui.batch_dialog import BatchDialog

    window = make_window()
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert "Weights" in titles and titles.index("Weights") < titles.index("Help")
    weight_actions = [a.text() for a in window.weights_menu.actions() if a.text()]
    assert any("Import" in t for t in weight_actions) and any("Download" in t for t in weight_actions)
    window.batch_action.trigger()
    dialog = window.findChild(BatchDialog)
    assert dialog is not None and dialog.isVisible()
    window.batch_action.trigger()  # a second time brings back the same dialog
    assert window.findChildren(BatchDialog) == [dialog]
    dialog.close()


def test_installed_weights_are_used(make_window, tmp_path, monkeypatch, dlg):
    window = make_window()
    probed = []
    monkeypatch.setattr(window, "refresh_environment", lambda: probed.append(window.weights))
    from dim_studio.gui.jobs import announce_weights_changed

    announce_weights_changed(tmp_path / "mine.safetensors")
    assert probed == [str(tmp_path / "mine.safetensors")]
