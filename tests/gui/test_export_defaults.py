"""Export and batch defaults (pytest-qt, offscreen): what the preview shows, absolute paths, the strength.

- The export dialog preselects what the preview pane shows: the alpha in
  alpha mode, the RGBA cutout in any cutout mode (plus the composite over the
  preview's colour or image in those modes); the batch dialog likewise.
- Proposed files are absolute and next to the photo, wherever the process
  was started from; the settings store absolute folders and ignore relative
  ones an older version left.
- The "Decontaminate edge colours" slider starts at the preview's strength
  and its value reaches the written cutout (the same bytes as
  ``dim-studio matte --decontaminate``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QDialog

from conftest import make_scene, save_gray, save_rgb
from dim_studio.cli import main as cli_main
from dim_studio.compose import DEFAULT_DECONTAMINATION
from dim_studio.gui import dialogs
from dim_studio.workflows.preview import PreviewMode
from dim_studio.gui.batch_dialog import open_batch_dialog
from dim_studio.gui.settings import Settings
from .test_batch_dialog import make_dialog  # noqa: F401 - the fixture

TIMEOUT = 120_000  # ms; a small shared machine (waits end as soon as the work does)


@pytest.fixture
def photo(tmp_path):
    scene = make_scene(60, 45, softness=4.0)
    folder = tmp_path / "photos"
    save_rgb(folder / "doll.png", scene.image)
    save_gray(folder / "doll_trimap.png", scene.trimap)
    return folder / "doll.png", folder / "doll_trimap.png"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The process's current directory is somewhere unrelated to the photo."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def make_export_dialog(qtbot, photo_path, folder=".", **preview) -> dialogs.ExportDialog:
    dialog = dialogs.ExportDialog(None, str(photo_path), str(folder), **preview)
    qtbot.addWidget(dialog)
    return dialog


def checked(dialog: dialogs.ExportDialog) -> set[str]:
    rows = {"alpha": dialog.alpha_row, "cutout": dialog.cutout_row, "composite": dialog.composite_row}
    return {kind for kind, row in rows.items() if row.check.isChecked()}


# --------------------------------------------------------------------------
# the export dialog
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [
    ("alpha", {"alpha"}),
    ("checkerboard", {"cutout"}),
    ("color", {"cutout", "composite"}),
    ("white", {"cutout", "composite"}),
    ("overlay", {"alpha"}),  # the mask over the photo: what it shows is the matte
    ("image", {"cutout"}),  # the image mode before an image is chosen shows the checkerboard
    (PreviewMode.BLACK, {"cutout", "composite"}),  # the pane's own enum, as the window passes it
    (None, {"alpha"}),  # opened without a preview: as before
])
def test_export_dialog_preselects_what_the_preview_shows(qtbot, photo, mode, expected):
    dialog = make_export_dialog(qtbot, photo[0], preview_mode=mode, preview_color="#00ff00")
    assert checked(dialog) == expected
    if mode in ("color", "white", PreviewMode.BLACK):
        opts = dialog.options()
        assert opts.background_kind == dialogs.BG_COLOR
        assert opts.background_spec == {"color": "#00ff00", "white": "#ffffff", "black": "#000000"}[str(mode)]
    assert dialog.problem() is None


def test_image_mode_preselects_the_composite_over_that_image(qtbot, photo, tmp_path):
    background = tmp_path / "beach.png"
    save_rgb(background, make_scene(60, 45).image)
    dialog = make_export_dialog(qtbot, photo[0], preview_mode="image", preview_background=str(background))
    assert checked(dialog) == {"cutout", "composite"}
    assert dialog.options().background_spec == str(background)
    # Without a background photo there is nothing to composite over: the cutout alone.
    bare = make_export_dialog(qtbot, photo[0], preview_mode="image")
    assert checked(bare) == {"cutout"}


def test_proposed_paths_are_absolute_and_next_to_the_photo(qtbot, photo, elsewhere):
    folder = photo[0].parent
    for photo_path, last_export in ((photo[0], "."), (photo[0], "exports"), (Path("..") / "photos" / "doll.png", ".")):
        dialog = make_export_dialog(qtbot, photo_path, last_export, preview_mode="checkerboard")
        paths = {row: Path(getattr(dialog, row).edit.text()) for row in ("alpha_row", "cutout_row", "composite_row")}
        assert all(p.is_absolute() for p in paths.values()), paths
        assert paths["cutout_row"] == folder.resolve() / "doll_cutout.png"
        assert paths["alpha_row"] == folder.resolve() / "doll_alpha.png"
        assert paths["composite_row"] == folder.resolve() / "doll_composite.png"
        assert all(Path(p).is_absolute() for p in dialog.options().paths)
    assert list(elsewhere.iterdir()) == []


def test_a_read_only_photo_folder_proposes_the_last_export_folder(qtbot, photo, tmp_path, monkeypatch):
    exports = tmp_path / "exports"
    exports.mkdir()
    real_access = dialogs.os.access
    monkeypatch.setattr(dialogs.os, "access",
                        lambda p, mode: False if Path(p) == photo[0].parent else real_access(p, mode))
    dialog = make_export_dialog(qtbot, photo[0], exports, preview_mode="alpha")
    assert Path(dialog.alpha_row.edit.text()) == exports.resolve() / "doll_alpha.png"


def test_the_slider_starts_at_the_previews_strength(qtbot, photo):
    assert make_export_dialog(qtbot, photo[0]).options().decontaminate == DEFAULT_DECONTAMINATION
    dialog = make_export_dialog(qtbot, photo[0], preview_mode="checkerboard", decontamination=0.35)
    assert dialog.decontaminate.slider.value() == 35
    assert dialog.options().decontaminate == pytest.approx(0.35)
    for nonsense, percent in ((7.0, 100), (-1.0, 0), (float("nan"), 100)):
        other = make_export_dialog(qtbot, photo[0], decontamination=nonsense)
        assert other.decontaminate.slider.value() == percent
    # Only the cutout's and the composite's colours change: with the alpha alone the slider is off.
    alpha_only = make_export_dialog(qtbot, photo[0], preview_mode="alpha")
    assert not alpha_only.decontaminate.isEnabled()
    alpha_only.cutout_row.check.setChecked(True)
    assert alpha_only.decontaminate.isEnabled()


# --------------------------------------------------------------------------
# through the window
# --------------------------------------------------------------------------


@pytest.fixture
def errors(monkeypatch):
    found: list[tuple[str, str]] = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: found.append((title, msg)))
    monkeypatch.setattr(dialogs, "show_info", lambda *a: None)
    monkeypatch.setattr(dialogs, "ask_restore_autosave", lambda *a: False)
    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *a: dialogs.DISCARD)
    return found


@pytest.fixture
def window(qtbot, errors):
    from dim_studio.gui.main_window import MainWindow

    win = MainWindow(engine="closed-form", probe=False)
    win.resize(900, 600)
    qtbot.addWidget(win)
    win.show()
    return win


class ExecSpy:
    """Stands in for ``ExportDialog.exec``: records the dialog, sets the slider, accepts."""

    def __init__(self, monkeypatch, strength: int | None = None) -> None:
        self.dialogs: list[dialogs.ExportDialog] = []
        self.strength = strength
        spy = self

        def fake_exec(dialog):
            spy.dialogs.append(dialog)
            if spy.strength is not None:
                dialog.decontaminate.slider.setValue(spy.strength)
            return QDialog.DialogCode.Accepted

        monkeypatch.setattr(dialogs.ExportDialog, "exec", fake_exec)


def test_window_export_follows_the_preview_and_the_slider_reaches_the_cutout(
    qtbot, window, photo, errors, elsewhere, monkeypatch, tmp_path
):
    assert window.open_image(str(photo[0]), str(photo[1]))
    window.preview_pane.set_mode("checkerboard")
    spy = ExecSpy(monkeypatch, strength=40)
    with qtbot.waitSignal(window.exportFinished, timeout=TIMEOUT) as finished:
        window.export_dialog()
    assert errors == []
    dialog = spy.dialogs[0]
    assert checked(dialog) == {"cutout"}
    cutout = photo[0].parent.resolve() / "doll_cutout.png"
    assert [Path(p) for p in finished.args[0].paths] == [cutout]
    assert list(elsewhere.iterdir()) == []  # nothing lands in the current directory

    cli = tmp_path / "cli"
    cli.mkdir()
    assert cli_main(["matte", str(photo[0]), "--trimap", str(photo[1]), "--engine", "closed-form", "-q",
                     "-o", str(cli / "a.png"), "--cutout", str(cli / "c.png"),
                     "--decontaminate", "0.4"]) == 0
    assert cutout.read_bytes() == (cli / "c.png").read_bytes()
    # ... and it is not the default cutout: the slider's value was used.
    assert cli_main(["matte", str(photo[0]), "--trimap", str(photo[1]), "--engine", "closed-form", "-q",
                     "-o", str(cli / "a1.png"), "--cutout", str(cli / "c1.png")]) == 0
    assert cutout.read_bytes() != (cli / "c1.png").read_bytes()

    # The settings hold the export folder as an absolute path.
    window.settings.sync()
    stored = Settings(window.settings.path).get_str("folders/export")
    assert Path(stored).is_absolute() and Path(stored) == photo[0].parent.resolve()


def test_window_export_in_alpha_mode_writes_the_alpha(qtbot, window, photo, errors, elsewhere, monkeypatch):
    assert window.open_image(str(photo[0]), str(photo[1]))
    window.preview_pane.set_mode("alpha")
    spy = ExecSpy(monkeypatch)
    with qtbot.waitSignal(window.exportFinished, timeout=TIMEOUT) as finished:
        window.export_dialog()
    assert checked(spy.dialogs[0]) == {"alpha"}
    assert [Path(p) for p in finished.args[0].paths] == [photo[0].parent.resolve() / "doll_alpha.png"]


def test_window_passes_the_preview_strength_when_it_has_one(qtbot, window, photo, monkeypatch):
    assert window.open_image(str(photo[0]), str(photo[1]))
    seen: list[dict] = []
    monkeypatch.setattr(dialogs, "ask_export_options", lambda *a, **k: seen.append(k))
    pane = window.preview_pane
    if hasattr(pane, "set_decontamination"):  # the preview pane's own slider
        pane.set_decontamination(0.25)
    else:
        monkeypatch.setattr(type(pane), "decontamination", 0.25, raising=False)
    window.export_dialog()
    assert seen and seen[0]["decontamination"] == 0.25
    assert seen[0]["preview_mode"] == window.preview_pane.mode


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------


def test_settings_store_absolute_folders_and_ignore_relative_ones(tmp_path, elsewhere):
    settings = Settings(tmp_path / "s.ini")
    (elsewhere / "sub").mkdir()
    settings.set_last_folder("export", "sub/out.png")
    assert settings.get_str("folders/export") == str((elsewhere / "sub").resolve())
    settings.add_recent_file("sub/x.png")
    assert settings.recent_files() == [str((elsewhere / "sub" / "x.png").resolve())]
    settings.set_folder("batch/output", "sub")
    assert settings.get_str("batch/output") == str((elsewhere / "sub").resolve())

    # What an older version may have written: relative paths, resolved against whatever cwd it had.
    settings.set("folders/export", "sub")
    settings.set("folders/image", "sub")
    settings.set("recent/files", ["sub/x.png", str(tmp_path / "a.png")])
    settings.set("batch/images", "sub")
    assert settings.last_folder("export") == str(Path.home())
    assert settings.recent_files() == [str(tmp_path / "a.png")]
    assert settings.get_folder("batch/images") == ""


# --------------------------------------------------------------------------
# the batch dialog
# --------------------------------------------------------------------------


def test_batch_outputs_follow_the_preview_unless_remembered(make_dialog, tmp_path):
    assert make_dialog().outputs() == ("alpha",)
    assert make_dialog(preview_mode="alpha").outputs() == ("alpha",)
    assert make_dialog(preview_mode="checkerboard").outputs() == ("cutout",)
    colour = make_dialog(preview_mode="color", preview_color="#123456")
    assert colour.outputs() == ("cutout", "composite") and colour.background_spec() == "#123456"

    settings = Settings(tmp_path / "s.ini")
    settings.set("batch/outputs", ["alpha"])
    assert make_dialog(settings, preview_mode="checkerboard").outputs() == ("alpha",)


def test_batch_proposes_an_absolute_output_folder_and_stores_absolute_folders(
    make_dialog, tmp_path, elsewhere, monkeypatch, qtbot
):
    from dim_studio.gui import batch_dialog

    photos, trimaps = tmp_path / "photos", tmp_path / "trimaps"
    scene = make_scene()
    save_rgb(photos / "a.png", scene.image)
    save_gray(trimaps / "a.png", scene.trimap)
    settings = Settings(tmp_path / "s.ini")
    settings.set("batch/images", "photos")  # relative, from an old version: ignored
    dialog = make_dialog(settings, preview_mode="checkerboard", decontamination=0.0)
    assert dialog.images_row.text() == ""
    monkeypatch.setattr(batch_dialog, "choose_folder", lambda *a: "../photos")
    dialog._browse(dialog.images_row)
    assert dialog.images_row.text() == str(photos.resolve())
    assert dialog.partners_row.text() == str(trimaps.resolve())
    out = Path(dialog.output_row.text())
    assert out.is_absolute() and out == photos.resolve().parent / "photos-matted"

    assert dialog.request().decontaminate == 0.0
    index = dialog.engine.findData("closed-form")
    dialog.engine.setCurrentIndex(index)
    assert dialog.start() is not None
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    cutout = np.asarray(Image.open(out / "a_cutout.png").convert("RGBA")).astype(int)
    source = np.asarray(Image.open(photos / "a.png").convert("RGB")).astype(int)
    assert np.abs(cutout[..., :3] - source).max() <= 1  # strength 0: the photo's own colours
    settings.sync()
    for key in ("batch/images", "batch/partners", "batch/output"):
        assert Path(settings.get_str(key)).is_absolute(), key
    assert list(elsewhere.iterdir()) == []


def test_open_batch_dialog_takes_the_windows_preview(qtbot, tmp_path):
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QMainWindow

    class Pane:
        mode = "color"
        color = QColor("#abcdef")
        background_path = ""
        decontamination = 0.6

    window = QMainWindow()
    qtbot.addWidget(window)
    window.settings = Settings(tmp_path / "s.ini")
    window.preview_pane = Pane()
    dialog = open_batch_dialog(window)
    try:
        qtbot.waitUntil(dialog.tasks.is_idle, timeout=TIMEOUT)
        assert dialog.outputs() == ("cutout", "composite")
        assert dialog.background_spec() == "#abcdef"
        assert dialog.decontaminate.slider.value() == 60
    finally:
        dialog.worker.shutdown()
        dialog.close()
