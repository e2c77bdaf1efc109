"""Weights > Teach it this photo, Weights > Choose weights, and the batch dialog's weights combo (pytest-qt, offscreen).

A tiny narrow network (width 0.125) in the user data folder (a temporary
folder, ``isolated_user_folders``) and a 64x64 synthetic photo keep each run
to a few seconds on a small shared machine: the dialog's ``options`` passes
64-pixel samples to the training.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_scene, save_gray, save_rgb
from dim_studio.gui import dialogs
from dim_studio.gui.batch_dialog import BatchDialog
from dim_studio.gui.finetune_dialog import FinetuneDialog, LossCurve
from dim_studio.gui.main_window import MainWindow
from dim_studio.gui.weights_chooser import WeightsChooser
from dim_studio.net import random_dim, save_weights
from dim_studio.net.model import DIMConfig
from dim_studio.paths import user_data_dir
from dim_studio.training.finetune import FinetuneOptions
from dim_studio.training.samples import SampleOptions
from dim_studio.workflows.weights import known_weights

TIMEOUT = 120_000  # ms: loading torch and a few training steps on a busy 2-core machine
SMALL = FinetuneOptions(sample=SampleOptions(size=64, crop_sizes=(64,), max_kernel=6), device="cpu",
                        evaluate_every=2)


class Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.errors: list[tuple[str, str]] = []
        self.save_paths: list[str] = []
        self.questions: list[str] = []
        monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: self.errors.append((title, msg)))
        monkeypatch.setattr(dialogs, "show_info", lambda *a: None)
        monkeypatch.setattr(dialogs, "ask_yes_no", self._ask)
        monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *a: dialogs.DISCARD)
        monkeypatch.setattr(dialogs, "ask_restore_autosave", lambda *a: False)
        monkeypatch.setattr(dialogs, "get_save_path", self._save)

    def _ask(self, parent, title, text) -> bool:
        self.questions.append(title)
        return True

    def _save(self, parent, title, suggested, file_filter=""):
        assert "*.safetensors" in file_filter
        return self.save_paths.pop(0) if self.save_paths else suggested


@pytest.fixture
def rec(monkeypatch) -> Recorder:
    return Recorder(monkeypatch)


def tiny_weights(name: str, seed: int = 1) -> Path:
    folder = user_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    save_weights(path, random_dim(DIMConfig(width=0.125, refine=True), seed=seed))
    return path


@pytest.fixture
def photo(tmp_path) -> tuple[Path, Path, Path]:
    """(photo, trimap, ground-truth alpha) files of a 64x64 scene."""
    scene = make_scene(64, 64, seed=3)
    folder = tmp_path / "photos"
    return (save_rgb(folder / "doll.png", scene.image), save_gray(folder / "doll_trimap.png", scene.trimap),
            save_gray(folder / "doll_alpha.png", scene.alpha))


@pytest.fixture
def window(qtbot, rec, photo):
    win = MainWindow(probe=False)
    qtbot.addWidget(win)
    win.resize(800, 500)
    win.show()
    return win


def open_dialog(qtbot, window, photo) -> FinetuneDialog:
    assert window.open_image(str(photo[0]), str(photo[1])) is not False
    dialog = window.finetune_dialog(options=SMALL)
    assert isinstance(dialog, FinetuneDialog)
    qtbot.waitUntil(lambda: dialog.weights_loaded, timeout=TIMEOUT)
    return dialog


def test_menu_entries_and_the_action_waits_for_a_photo(window, photo):
    texts = [a.text().replace("&", "") for a in window.weights_menu.actions() if not a.isSeparator()]
    assert "Choose weights…" in texts and "Teach it this photo (fine-tune)…" in texts
    assert not window.finetune_action.isEnabled()
    window.open_image(str(photo[0]), str(photo[1]))
    assert window.finetune_action.isEnabled()


def test_finetune_from_a_ground_truth_file_then_save(qtbot, window, photo, rec):
    base = tiny_weights("base.safetensors")
    dialog = open_dialog(qtbot, window, photo)
    assert dialog.steps_radio.isChecked() and dialog.steps_spin.value() == 200
    assert dialog.select_base(base), "the base weights are listed"
    assert "base.safetensors" in dialog.base_combo.currentText()
    dialog.file_radio.setChecked(True)
    dialog.alpha_edit.setText(str(photo[2]))
    dialog.steps_spin.setValue(3)
    assert not dialog.save_button.isEnabled()
    dialog.start_button.click()
    assert dialog.is_running() and dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)

    assert rec.errors == []
    assert dialog.outcome is not None and dialog.outcome.result.steps == 3
    assert dialog.progress_updates >= 3 and dialog.progress.value() == 1000
    assert [s for s, _ in dialog.curve.points] == [1, 2, 3]
    text = dialog.summary.text()
    assert text.startswith("SAD before ") and " -> after " in text and "(closed-form " in text
    assert dialog.save_button.isEnabled() and dialog.use_button.isEnabled()
    dialog.curve.repaint()  # the painted curve draws without error

    # Save: the default name in the user's weights folder, then every listener hears of it.
    heard: list[object] = []
    from dim_studio.gui.jobs import app_events

    app_events().weightsChanged.connect(heard.append)
    dialog.save_button.click()
    qtbot.waitUntil(lambda: dialog.saved_path is not None, timeout=TIMEOUT)
    target = user_data_dir() / "doll-tuned.safetensors"
    assert dialog.saved_path == target and target.is_file()
    assert heard == [target]
    listed = {k.path.name: k for k in known_weights()}
    assert "tuned on doll.png, 3 steps" in listed["doll-tuned.safetensors"].description

    # Saving again under the same name asks first.
    rec.questions.clear()
    dialog.save_button.click()
    assert rec.questions == ["Replace weights?"]
    qtbot.waitUntil(lambda: not dialog._saving, timeout=TIMEOUT)


def test_cancel_keeps_the_best_weights_and_they_can_be_saved(qtbot, window, photo, rec):
    # The target is the current result: the window's engine (closed-form) on its trimap, full resolution.
    dialog = open_dialog(qtbot, window, photo)
    assert dialog.current_radio.isChecked()
    dialog.select_base(None)
    dialog.steps_spin.setValue(100_000)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.last_progress is not None and dialog.last_progress.step >= 1, timeout=TIMEOUT)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)

    assert rec.errors == []
    result = dialog.outcome.result
    assert result.cancelled and 1 <= result.steps < 100_000
    assert "Cancelled after" in dialog.summary.text() and "SAD before" in dialog.summary.text()
    assert dialog.save_button.isEnabled()
    rec.save_paths.append(str(user_data_dir() / "my-doll"))
    dialog.save()
    qtbot.waitUntil(lambda: dialog.saved_path is not None, timeout=TIMEOUT)
    assert dialog.saved_path == user_data_dir() / "my-doll.safetensors" and dialog.saved_path.is_file()

    # Closing once saved asks nothing and removes the training's temporary folder.
    work = Path(dialog.outcome.result.out).parent
    assert work.parent == user_data_dir() and work.is_dir()
    rec.questions.clear()
    assert dialog.close()
    assert rec.questions == [] and not work.exists()


def test_closing_with_unsaved_weights_asks(qtbot, window, photo, rec, monkeypatch):
    dialog = open_dialog(qtbot, window, photo)
    dialog.steps_spin.setValue(1)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.has_result()
    answers = iter([False, True])
    monkeypatch.setattr(dialogs, "ask_yes_no",
                        lambda parent, title, text: (rec.questions.append(title), next(answers))[1])
    assert not dialog.close() and dialog.isVisible()  # "No": the dialog stays
    assert dialog.close() and not dialog.isVisible()
    assert rec.questions == ["Discard tuned weights?", "Discard tuned weights?"]


def test_use_now_switches_the_window_dim_engine(qtbot, window, photo, rec):
    base = tiny_weights("base.safetensors")
    dialog = open_dialog(qtbot, window, photo)
    dialog.select_base(base)
    dialog.steps_spin.setValue(2)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.outcome is not None and rec.errors == []
    dialog.use_button.click()
    target = user_data_dir() / "doll-tuned.safetensors"
    qtbot.waitUntil(lambda: window.weights == str(target) and window.engine_name == "dim", timeout=TIMEOUT)
    choice = window.engine_choice()
    assert choice.name == "dim" and choice.options["weights"] == str(target)
    # The window's probe confirms the file, and the dim engine stays chosen.
    qtbot.waitUntil(lambda: window.environment is not None, timeout=TIMEOUT)
    assert window.environment.weights.path == target and window.engine_name == "dim"
    assert rec.errors == []


def test_the_current_result_needs_a_ready_trimap(qtbot, window, photo, rec):
    window.open_image(str(photo[0]))  # no trimap: all background, nothing to learn yet
    dialog = window.finetune_dialog(options=SMALL)
    assert dialog.start() is None
    assert rec.errors and "trimap is not ready" in rec.errors[0][1]


def test_loss_curve_keeps_finite_points(qtbot):
    curve = LossCurve()
    qtbot.addWidget(curve)
    curve.add_point(0, float("nan"))
    curve.add_point(1, 0.5)
    curve.add_point(2, 0.25)
    assert curve.points == [(1, 0.5), (2, 0.25)]
    curve.resize(300, 150)
    curve.grab()  # paints


def test_weights_chooser_makes_the_dim_engine_use_the_pick(qtbot, window, rec):
    first = tiny_weights("alpha-net.safetensors", seed=1)
    second = tiny_weights("beta-net.safetensors", seed=2)
    chooser = window.choose_weights_dialog()
    assert isinstance(chooser, WeightsChooser)
    qtbot.waitUntil(lambda: chooser.is_loaded, timeout=TIMEOUT)
    labels = [chooser.list.item(i).text() for i in range(chooser.list.count())]
    assert any(label.startswith("alpha-net.safetensors: ") for label in labels)
    assert any(label.startswith("beta-net.safetensors: ") for label in labels)
    assert chooser.select_path(second)
    chooser.accept()
    assert window.weights == str(second) and window.engine_name == "dim"
    assert window.engine_choice().options["weights"] == str(second)
    assert first.is_file()


def test_batch_dialog_weights_combo_reaches_the_engine_options(qtbot, rec):
    first = tiny_weights("alpha-net.safetensors", seed=1)
    second = tiny_weights("beta-net.safetensors", seed=2)
    dialog = BatchDialog(None, None)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.weights_listed and dialog.dim_weights is not None, timeout=TIMEOUT)
    dialog.engine.setCurrentIndex(dialog.engine.findData("closed-form"))
    assert dialog.weights_combo.isHidden()
    assert dialog.request().engine.options == {}
    dialog.engine.setCurrentIndex(dialog.engine.findData("dim"))
    assert not dialog.weights_combo.isHidden()
    assert {Path(dialog.weights_combo.itemData(i)).name for i in range(dialog.weights_combo.count())} == {
        first.name, second.name}
    dialog.weights_combo.setCurrentIndex(dialog.weights_combo.findData(str(second)))
    request = dialog.request()
    assert request.engine.name == "dim" and request.engine.options["weights"] == str(second)
    dialog.weights_combo.setCurrentIndex(dialog.weights_combo.findData(str(first)))
    assert dialog.request().engine.options["weights"] == str(first)
