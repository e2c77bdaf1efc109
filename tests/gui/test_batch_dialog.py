"""The batch dialog (pytest-qt, offscreen): a mixed folder, errors, Stop, settings, engine list.

The photos are tiny synthetic scenes (a soft disc over a textured background,
40x30) from the shared ``conftest.make_scene``; the engine is closed-form (no
weights), or a deliberately slow closed-form for the Stop test.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QUrl

from conftest import make_scene, save_gray, save_rgb
from dim_studio import batch as batchlib
from dim_studio.batch import FileStatus
from dim_studio import engines
from dim_studio.engines.base import check_cancel
from dim_studio.engines.classical import ClosedFormEngine
from dim_studio.gui import batch_dialog, dialogs
from dim_studio.gui.batch_dialog import BatchDialog, open_batch_dialog
from dim_studio.gui.settings import Settings
from dim_studio.workflows import batch as batch_workflow
from dim_studio.workflows.engine_choice import OFFLINE_DEFAULT

TIMEOUT = 120_000  # ms; the test machine is small and shared (waits end as soon as the work does)


class Recorder:
    """Stands in for the modal dialogs the batch dialog may show."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.errors: list[tuple[str, str]] = []
        self.opened: list[str] = []
        self.questions: list[str] = []
        self.answer = True
        monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: self.errors.append((title, msg)))
        monkeypatch.setattr(dialogs, "ask_yes_no", self._ask)
        # The real QDesktopServices.openUrl would start a file manager.
        monkeypatch.setattr(batch_dialog.QDesktopServices, "openUrl", self._open)

    def _ask(self, parent, title, text) -> bool:
        self.questions.append(text)
        return self.answer

    def _open(self, url: QUrl) -> bool:
        self.opened.append(url.toLocalFile())
        return True


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    return Recorder(monkeypatch)


@pytest.fixture
def make_dialog(qtbot, tmp_path):
    made: list[BatchDialog] = []

    def make(settings: Settings | None = None, **kwargs) -> BatchDialog:
        dialog = BatchDialog(None, settings, **kwargs)
        qtbot.addWidget(dialog)
        made.append(dialog)
        # The weights probe runs in the background; wait for it so the engine list is final.
        qtbot.waitUntil(dialog.tasks.is_idle, timeout=TIMEOUT)
        return dialog

    yield make
    for dialog in made:
        if dialog.is_running():
            dialog.stop()
            qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
        dialog.worker.shutdown()


def fill(dialog: BatchDialog, images: Path, trimaps: Path, out: Path, engine: str = "closed-form") -> None:
    dialog.images_row.set_text(str(images))
    dialog.partners_row.set_text(str(trimaps))
    dialog.output_row.set_text(str(out))
    index = dialog.engine.findData(engine)
    assert index >= 0, f"{engine} not offered: {[dialog.engine.itemData(i) for i in range(dialog.engine.count())]}"
    dialog.engine.setCurrentIndex(index)


def mixed_folder(root: Path) -> tuple[Path, Path]:
    """2 good photos with trimaps, a text file named .png (with a trimap), a photo without trimap."""
    images, trimaps = root / "images", root / "trimaps"
    for i, name in enumerate(("good1", "good2")):
        scene = make_scene(seed=i)
        save_rgb(images / f"{name}.png", scene.image)
        save_gray(trimaps / f"{name}_trimap.png", scene.trimap)
    (images / "notes.png").write_text("this is not a picture\n", encoding="utf-8")
    save_gray(trimaps / "notes_trimap.png", make_scene().trimap)
    save_rgb(images / "lonely.png", make_scene(seed=5).image)
    return images, trimaps


def wait_done(qtbot, dialog: BatchDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)


# --------------------------------------------------------------------------


def test_mixed_folder_lists_failures_writes_outputs_and_runs_off_the_gui_thread(
    qtbot, tmp_path, recorder, make_dialog, monkeypatch
):
    images, trimaps = mixed_folder(tmp_path)
    out = tmp_path / "out"
    event_threads: set[int] = set()
    forward = batch_workflow.EventForwarder.__call__

    def spy(self, event):  # on_event must be called on the worker thread, never the GUI's
        event_threads.add(threading.get_ident())
        forward(self, event)

    monkeypatch.setattr(batch_workflow.EventForwarder, "__call__", spy)
    dialog = make_dialog()
    fill(dialog, images, trimaps, out)
    dialog.composite_check.setChecked(True)
    values: list[int] = []
    dialog.progress.valueChanged.connect(values.append)

    qtbot.mouseClick(dialog.start_button, batch_dialog.Qt.MouseButton.LeftButton)
    assert dialog.is_running() and not dialog.start_button.isEnabled() and dialog.stop_button.isEnabled()
    wait_done(qtbot, dialog)

    assert recorder.errors == []
    results = dialog.results()
    assert set(results) == {"good1.png", "good2.png", "notes.png", "lonely.png"}
    assert results["good1.png"][0] == FileStatus.DONE and results["good2.png"][0] == FileStatus.DONE
    assert results["good1.png"][1] == "good1_alpha.png, good1_composite.png"
    state, reason = results["notes.png"]
    # The Details column drops the photo's path (the File column names it); the tooltip keeps it.
    report_reason = next(e["reason"] for e in json.loads((out / batchlib.REPORT_NAME).read_text())["failed"]
                         if e["image"] == "notes.png")
    assert state == FileStatus.FAILED and reason and report_reason.endswith(reason)
    assert str(images / "notes.png") in dialog.table.item(dialog._rows["notes.png"], batch_dialog.COL_DETAILS).toolTip()
    state, reason = results["lonely.png"]
    assert state == FileStatus.FAILED and "no trimap found" in reason
    # The reason is in the Details column and in the tooltips.
    row = dialog._rows["lonely.png"]
    assert "no trimap found" in dialog.table.item(row, batch_dialog.COL_STATUS).toolTip()
    assert "no trimap found" in dialog.table.item(row, batch_dialog.COL_FILE).toolTip()

    for name in ("good1", "good2"):
        alpha = np.asarray(Image.open(out / f"{name}_alpha.png"))
        assert alpha.shape == (30, 40)
        assert (out / f"{name}_composite.png").is_file()
    assert not list(out.glob("notes_*")) and not list(out.glob("lonely_*"))
    report = json.loads((out / batchlib.REPORT_NAME).read_text(encoding="utf-8"))
    assert report["totals"] == {"images": 4, "done": 2, "skipped": 0, "failed": 2, "not_processed": 0}
    assert dialog.report_path == str(out / batchlib.REPORT_NAME)

    # Progress reached the total, counting every file.
    assert dialog.progress.value() == dialog.progress.maximum() == 4 * batch_dialog.PROGRESS_STEPS
    assert values == sorted(values) and values[-1] == dialog.progress.maximum()
    assert dialog.progress.text().startswith("4 of 4 files")
    assert "2 done, 0 skipped, 2 failed" in dialog.current_label.text()

    # Planning, matting and the events all happened on the worker thread.
    gui = threading.get_ident()
    assert dialog.worker_thread_ident not in (None, gui)
    assert event_threads == {dialog.worker_thread_ident}

    # "Show only problems" hides the finished files.
    dialog.only_problems.setChecked(True)
    hidden = {name for name, row in dialog._rows.items() if dialog.table.isRowHidden(row)}
    assert hidden == {"good1.png", "good2.png"}

    assert dialog.open_button.isEnabled()
    qtbot.mouseClick(dialog.open_button, batch_dialog.Qt.MouseButton.LeftButton)
    assert recorder.opened == [str(out)]

    # A second run skips what is done (resuming), with the same dialog.
    dialog.start()
    wait_done(qtbot, dialog)
    results = dialog.results()
    assert results["good1.png"][0] == FileStatus.SKIPPED and results["notes.png"][0] == FileStatus.FAILED


def test_errors_go_to_the_error_dialog_and_the_dialog_stays_usable(qtbot, tmp_path, recorder, make_dialog):
    dialog = make_dialog()
    dialog.start()
    assert recorder.errors == [("Process a folder", "Choose the folder of photos.")]
    assert not dialog.is_running()

    empty = tmp_path / "empty"
    empty.mkdir()
    fill(dialog, empty, empty, tmp_path / "out")
    dialog.start()
    wait_done(qtbot, dialog)
    title, message = recorder.errors[-1]
    assert "no images found" in message
    assert dialog.start_button.isEnabled() and not dialog.stop_button.isEnabled()

    # An output folder that cannot be created (below a file): a clear message, nothing matted.
    images, trimaps = mixed_folder(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    fill(dialog, images, trimaps, blocker / "out")
    dialog.start()
    wait_done(qtbot, dialog)
    assert "cannot create the output folder" in recorder.errors[-1][1]
    assert dialog.images_row.isEnabled() and dialog.start_button.isEnabled()

    # Nothing to write.
    dialog.alpha_check.setChecked(False)
    dialog.start()
    assert "at least one output" in recorder.errors[-1][1]

    # And it still works afterwards.
    dialog.alpha_check.setChecked(True)
    fill(dialog, images, trimaps, tmp_path / "out2")
    dialog.start()
    wait_done(qtbot, dialog)
    assert (tmp_path / "out2" / "good1_alpha.png").is_file()


class SlowEngine(ClosedFormEngine):
    """Closed-form after a long pause that polls cancel, as a slow network would."""

    name = "slow-test"
    started = threading.Event()

    def _estimate_crop(self, image, trimap, progress, cancel):
        SlowEngine.started.set()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            check_cancel(cancel)
            if progress is not None:
                progress(0.1)
            time.sleep(0.01)
        return super()._estimate_crop(image, trimap, progress, cancel)


@pytest.fixture
def slow_engine(monkeypatch):
    # A private copy of the registry: the test engine never leaks into other tests.
    monkeypatch.setattr(engines, "_REGISTRY", dict(engines._REGISTRY))
    monkeypatch.setattr(engines, "_FACTORIES", dict(engines._FACTORIES))
    engines.register_engine("slow-test", SlowEngine, "closed-form, slowly (tests)")
    SlowEngine.started.clear()
    return "slow-test"


def test_stop_abandons_the_current_file_and_lists_the_rest_as_not_processed(
    qtbot, tmp_path, recorder, make_dialog, slow_engine
):
    images, trimaps = tmp_path / "images", tmp_path / "trimaps"
    for i in range(3):
        scene = make_scene(seed=i)
        save_rgb(images / f"p{i}.png", scene.image)
        save_gray(trimaps / f"p{i}.png", scene.trimap)
    out = tmp_path / "out"
    dialog = make_dialog()
    fill(dialog, images, trimaps, out, engine=slow_engine)
    dialog.cutout_check.setChecked(True)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.results().get("p0.png", ("",))[0] == batch_dialog.WORKING, timeout=TIMEOUT)
    assert SlowEngine.started.wait(10)
    assert "p0.png" in dialog.current_label.text()

    qtbot.mouseClick(dialog.stop_button, batch_dialog.Qt.MouseButton.LeftButton)
    assert not dialog.stop_button.isEnabled()
    wait_done(qtbot, dialog)

    assert recorder.errors == []
    results = dialog.results()
    assert {name: state for name, (state, _) in results.items()} == {
        "p0.png": FileStatus.NOT_PROCESSED, "p1.png": FileStatus.NOT_PROCESSED,
        "p2.png": FileStatus.NOT_PROCESSED,
    }
    assert "cancelled" in results["p1.png"][1]
    # No partial output, not even a temporary file; the report is written and says so.
    assert sorted(p.name for p in out.iterdir()) == [batchlib.REPORT_NAME]
    report = json.loads((out / batchlib.REPORT_NAME).read_text(encoding="utf-8"))
    assert report["status"] == "cancelled" and report["totals"]["not_processed"] == 3
    assert dialog.report is not None and dialog.report.cancelled
    assert dialog.current_label.text().startswith("Stopped")
    assert dialog.start_button.isEnabled()


def test_closing_while_running_asks_and_stops(qtbot, tmp_path, recorder, make_dialog, slow_engine):
    images, trimaps = tmp_path / "images", tmp_path / "trimaps"
    scene = make_scene()
    save_rgb(images / "p.png", scene.image)
    save_gray(trimaps / "p.png", scene.trimap)
    dialog = make_dialog()
    fill(dialog, images, trimaps, tmp_path / "out", engine=slow_engine)
    dialog.show()
    dialog.start()
    assert SlowEngine.started.wait(30)

    recorder.answer = False
    dialog.close()
    assert dialog.isVisible() and dialog.is_running() and len(recorder.questions) == 1

    recorder.answer = True
    dialog.reject()  # Escape
    assert not dialog.isVisible()
    wait_done(qtbot, dialog)
    assert dialog.report is not None and dialog.report.cancelled


def test_masks_band_and_settings_are_remembered(qtbot, tmp_path, recorder, make_dialog):
    images, masks = tmp_path / "images", tmp_path / "masks"
    scene = make_scene()
    save_rgb(images / "m.png", scene.image)
    save_gray(masks / "m_mask.png", scene.mask)
    out = tmp_path / "out"
    settings = Settings(tmp_path / "settings.ini")
    dialog = make_dialog(settings)
    dialog.masks_radio.setChecked(True)
    assert dialog.band.isEnabled() and dialog.partners_label.text() == "Masks:"
    dialog.band.setValue(3)
    fill(dialog, images, masks, out)
    dialog.start()
    wait_done(qtbot, dialog)
    assert recorder.errors == []
    assert dialog.results()["m.png"][0] == FileStatus.DONE
    report = json.loads((out / batchlib.REPORT_NAME).read_text(encoding="utf-8"))
    assert report["settings"]["band"] == 3 and report["masks"] == str(masks)

    again = make_dialog(Settings(tmp_path / "settings.ini"))
    assert again.images_row.text() == str(images)
    assert again.partners_row.text() == str(masks)
    assert again.output_row.text() == str(out)
    assert again.masks_radio.isChecked() and again.band.value() == 3
    assert again.engine.currentData() == "closed-form"


def test_dim_is_offered_only_when_weights_are_found(qtbot, tmp_path, recorder, make_dialog):
    dialog = make_dialog(engine="dim")
    names = [dialog.engine.itemData(i) for i in range(dialog.engine.count())]
    assert "dim" not in names and "closed-form" in names and OFFLINE_DEFAULT in names
    assert dialog.engine.currentData() == OFFLINE_DEFAULT
    assert "weights" in dialog.engine_note.text()

    data = tmp_path / "data"
    data.mkdir()
    (data / "dim-stage3.safetensors").write_bytes(b"")  # a broken file is not offered
    dialog.refresh_weights()
    qtbot.wait(300)
    assert dialog.engine.findData("dim") < 0
    from dim_studio.net.model import random_dim
    from dim_studio.net.weights import save_weights

    save_weights(data / "dim-stage3.safetensors", random_dim())
    dialog.refresh_weights()
    qtbot.waitUntil(lambda: dialog.engine.findData("dim") >= 0, timeout=TIMEOUT)
    # The window's engine was dim: it is chosen as soon as it is available.
    assert dialog.engine.currentData() == "dim"
    assert dialog.engine_options("dim") == {"weights": str(data / "dim-stage3.safetensors")}
    assert dialog.engine_options("closed-form") == {}


def test_open_batch_dialog_reuses_the_windows_dialog(qtbot, tmp_path, recorder):
    from PySide6.QtWidgets import QMainWindow

    window = QMainWindow()
    qtbot.addWidget(window)
    window.settings = Settings(tmp_path / "s.ini")  # as MainWindow has
    first = open_batch_dialog(window)
    try:
        assert first.isVisible() and first.parent() is window and first.settings is window.settings
        assert open_batch_dialog(window) is first
    finally:
        qtbot.waitUntil(first.tasks.is_idle, timeout=TIMEOUT)
        first.worker.shutdown()
