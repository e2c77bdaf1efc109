"""Dialogs: one error helper, the questions the window asks, and export.

Every question the window asks the user goes through a module-level function
here (``show_error``, ``ask_unsaved_changes``, ``ask_restore_autosave``,
``get_open_path`` ...). The window looks them up as ``dialogs.NAME`` at call
time, so tests replace one function with ``monkeypatch.setattr`` and never
see a modal dialog.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QColorDialog, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
    QGridLayout, QGroupBox, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QMessageBox,
    QPushButton, QSlider, QToolButton, QVBoxLayout, QWidget,
)

from dim_studio.atomic import check_outputs
from dim_studio.compose import DEFAULT_DECONTAMINATION
from dim_studio.errors import DimStudioError
from dim_studio.images import IMAGE_SUFFIXES
from dim_studio.workflows.preview import PreviewMode

from .settings import absolute_path

IMAGE_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)))
PNG_FILTER = "PNG images (*.png);;TIFF images (*.tif *.tiff);;All files (*)"

# --------------------------------------------------------------------------
# messages and questions (replace these in tests)
# --------------------------------------------------------------------------


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """The one way errors reach the user: a warning box with the reason."""
    QMessageBox.warning(parent, title, message)


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def ask_unsaved_changes(parent: QWidget | None, what: str) -> str:
    """Save / Discard / Cancel for an edited trimap; returns SAVE, DISCARD or CANCEL."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved trimap")
    box.setText(f"The trimap of {what} has changes that are not saved.")
    box.setInformativeText("Save them before continuing?")
    box.setStandardButtons(
        QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
        | QMessageBox.StandardButton.Cancel
    )
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return SAVE
    if answer == QMessageBox.StandardButton.Discard:
        return DISCARD
    return CANCEL


def ask_restore_autosave(parent: QWidget | None, photo_name: str, age: str) -> bool:
    """Offer an autosaved trimap back after a crash; True = restore it."""
    answer = QMessageBox.question(
        parent,
        "Recover trimap",
        f"DIM Studio found an unsaved trimap for {photo_name} ({age}), probably left "
        "by a crash.\n\nRestore it? Choosing No deletes the recovered copy.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent, title, text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def get_open_path(parent: QWidget | None, title: str, folder: str, file_filter: str = IMAGE_FILTER) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, folder, file_filter)
    return path or None


def get_save_path(parent: QWidget | None, title: str, suggested: str, file_filter: str = PNG_FILTER) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, file_filter)
    return path or None


def ask_band_width(parent: QWidget | None, default: int = 10) -> int | None:
    """Half-width of the unknown band for Trimap from mask (pixels each side of the edge)."""
    value, ok = QInputDialog.getInt(
        parent, "Trimap from mask",
        "Unknown band width (pixels on each side of the mask's edge):",
        default, 0, 500, 1,
    )
    return int(value) if ok else None


def choose_color(parent: QWidget | None, initial: QColor, title: str) -> QColor | None:
    color = QColorDialog.getColor(initial, parent, title)
    return color if color.isValid() else None


def color_icon(color: QColor, size: int = 14) -> QIcon:
    """A small swatch for buttons and menu entries."""
    pix = QPixmap(size, size)
    pix.fill(color)
    return QIcon(pix)


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------

BG_COLOR, BG_IMAGE, BG_CHECKERBOARD = "color", "image", "checkerboard"


@dataclass(frozen=True)
class ExportOptions:
    """What to write; ``background_spec`` is the same string ``--background`` takes."""

    alpha_path: str | None
    cutout_path: str | None
    composite_path: str | None
    depth: int = 8
    background_kind: str = BG_COLOR
    background_color: str = "#ffffff"
    background_image: str = ""
    # Edge colours of the cutout and composite (compose.decontaminate): 0 = the photo's, 1 = the estimate.
    decontaminate: float = DEFAULT_DECONTAMINATION

    @property
    def background_spec(self) -> str | None:
        if self.composite_path is None:
            return None
        if self.background_kind == BG_CHECKERBOARD:
            return "checkerboard"
        if self.background_kind == BG_IMAGE:
            return self.background_image
        return self.background_color

    @property
    def paths(self) -> list[str]:
        return [p for p in (self.alpha_path, self.cutout_path, self.composite_path) if p]


class _PathRow(QWidget):
    """[x] Label  [path.............] [...]"""

    def __init__(self, label: str, path: str, checked: bool, browse: Callable[[str], str | None]) -> None:
        super().__init__()
        self.check = QCheckBox(label)
        self.check.setChecked(checked)
        self.edit = QLineEdit(path)
        self.edit.setMinimumWidth(360)
        self.button = QToolButton()
        self.button.setText("…")
        self.button.setToolTip("Choose the file")
        self.button.clicked.connect(lambda: self._browse(browse))
        self.check.toggled.connect(self._sync)
        self._sync(checked)

    def _browse(self, browse: Callable[[str], str | None]) -> None:
        path = browse(self.edit.text())
        if path:
            self.edit.setText(path)

    def _sync(self, on: bool) -> None:
        self.edit.setEnabled(on)
        self.button.setEnabled(on)

    def value(self) -> str | None:
        text = self.edit.text().strip()
        return text if self.check.isChecked() and text else None


def strength_percent(strength: float | None) -> int:
    """A decontamination strength (0-1; None or nonsense: the default) as a whole percentage."""
    try:
        value = float(DEFAULT_DECONTAMINATION if strength is None else strength)
    except (TypeError, ValueError):
        value = DEFAULT_DECONTAMINATION
    if not math.isfinite(value):
        value = DEFAULT_DECONTAMINATION
    return int(round(100 * min(1.0, max(0.0, value))))


class StrengthSlider(QWidget):
    """[------o----] 100 %: the decontamination strength, shared by the export and batch dialogs."""

    def __init__(self, strength: float | None = None) -> None:
        super().__init__()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(25)
        self.label = QLabel()
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance("100 %") + 4)
        tip = ("How far the colours of soft edges move from the photo's own (0 %: the old "
               "background's colour stays in hair and blur) to the estimated foreground colour "
               "(100 %). The alpha is the same either way.")
        self.slider.setToolTip(tip)
        self.slider.valueChanged.connect(self._show)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.slider.setValue(strength_percent(strength))
        self._show(self.slider.value())

    def _show(self, value: int) -> None:
        self.label.setText(f"{value} %")

    def strength(self) -> float:
        return self.slider.value() / 100.0

    def set_strength(self, strength: float | None) -> None:
        self.slider.setValue(strength_percent(strength))


def export_folder(photo_path: str, fallback: str) -> Path:
    """Where exports are proposed: the photo's own folder (absolute), or ``fallback`` when that
    folder cannot be written (the bundled sample, a read-only card)."""
    photo_dir = Path(absolute_path(photo_path)).parent
    if photo_dir.is_dir() and os.access(photo_dir, os.W_OK):
        return photo_dir
    if fallback and Path(fallback).expanduser().is_absolute():
        return Path(absolute_path(fallback))
    return Path.home()


@dataclass(frozen=True)
class OutputChoice:
    """Which outputs an export or batch dialog starts with checked, and the composite's background."""

    alpha: bool = False
    cutout: bool = False
    composite: bool = False
    background_kind: str = BG_COLOR
    background_color: str = "#ffffff"
    background_image: str = ""


def preview_defaults(
    mode: PreviewMode | str | None, color: str | None = None, background: str | None = None,
) -> OutputChoice:
    """What to preselect for a preview ``mode``: what the preview shows.

    The alpha or the mask overlay (the alpha shown over the photo), or no
    mode: the alpha. A cutout on the checkerboard: the RGBA cutout. A cutout
    on black, white, a colour or an image: the cutout and the composite
    over that colour or image (a checkerboard composite when the image mode
    has no image). The paths are the dialog's to propose.
    """
    mode = None if mode is None else PreviewMode(mode)
    if mode is None or not mode.is_cutout:
        return OutputChoice(alpha=True)
    if mode in (PreviewMode.BLACK, PreviewMode.WHITE):
        return OutputChoice(cutout=True, composite=True, background_kind=BG_COLOR,
                            background_color="#000000" if mode is PreviewMode.BLACK else "#ffffff")
    if mode is PreviewMode.COLOR:
        valid = QColor(color or "")
        return OutputChoice(cutout=True, composite=True, background_kind=BG_COLOR,
                            background_color=valid.name() if valid.isValid() else "#ffffff")
    if mode is PreviewMode.IMAGE and background:
        return OutputChoice(cutout=True, composite=True, background_kind=BG_IMAGE,
                            background_image=str(background))
    return OutputChoice(cutout=True)


class ExportDialog(QDialog):
    """Choose outputs: alpha, RGBA cutout, composite over a colour, image or checkerboard.

    The files are proposed next to the photo, as absolute paths
    (``<stem>_alpha.png``, ``<stem>_cutout.png``, ``<stem>_composite.png``);
    which are checked, and the composite's background, follow the preview's
    mode (``preview_defaults``). ``decontamination`` is the slider's start
    (the preview's strength).
    """

    def __init__(
        self,
        parent: QWidget | None,
        photo_path: str,
        folder: str,
        protected: tuple[str, ...] = (),
        *,
        preview_mode: PreviewMode | str | None = None,
        preview_color: str | None = None,
        preview_background: str | None = None,
        decontamination: float | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self._protected = dict(zip(("the photo", "its trimap"), protected))
        stem = Path(photo_path).stem
        self.folder = export_folder(photo_path, folder)
        d = preview_defaults(preview_mode, preview_color, preview_background)

        def default(kind: str) -> str:
            return str(self.folder / f"{stem}_{kind}.png")

        def browse(current: str) -> str | None:
            return get_save_path(self, "Export to", current or str(self.folder))

        self.alpha_row = _PathRow("Alpha matte", default("alpha"), d.alpha, browse)
        self.cutout_row = _PathRow("RGBA cutout", default("cutout"), d.cutout, browse)
        self.composite_row = _PathRow("Composite", default("composite"), d.composite, browse)

        files = QGroupBox("Files")
        grid = QGridLayout(files)
        for r, row in enumerate((self.alpha_row, self.cutout_row, self.composite_row)):
            grid.addWidget(row.check, r, 0)
            grid.addWidget(row.edit, r, 1)
            grid.addWidget(row.button, r, 2)
        hint = QLabel("Decontaminating gives soft edges the estimated foreground colour, so no old "
                      "background shows through hair; 0 % keeps the photo's own colours.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        grid.addWidget(hint, 3, 0, 1, 3)
        self.decontaminate = StrengthSlider(decontamination)

        self.depth = QComboBox()
        self.depth.addItem("8 bit", 8)
        self.depth.addItem("16 bit", 16)

        self.bg_kind = QComboBox()
        self.bg_kind.addItem("Colour", BG_COLOR)
        self.bg_kind.addItem("Image", BG_IMAGE)
        self.bg_kind.addItem("Checkerboard", BG_CHECKERBOARD)
        self.bg_kind.setCurrentIndex(max(0, self.bg_kind.findData(d.background_kind)))
        self._color = QColor(d.background_color)
        self.color_button = QPushButton()
        self.color_button.clicked.connect(self._pick_color)
        self._update_color_button()
        self.bg_image = QLineEdit(d.background_image)
        self.bg_image.setPlaceholderText("background photo")
        self.bg_browse = QToolButton()
        self.bg_browse.setText("…")
        self.bg_browse.clicked.connect(self._pick_image)

        bg_row = QHBoxLayout()
        bg_row.addWidget(self.bg_kind)
        bg_row.addWidget(self.color_button)
        bg_row.addWidget(self.bg_image, 1)
        bg_row.addWidget(self.bg_browse)
        options = QGroupBox("Options")
        form = QFormLayout(options)
        form.addRow("Bit depth:", self.depth)
        form.addRow("Composite background:", bg_row)
        form.addRow("Decontaminate edge colours:", self.decontaminate)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(files)
        layout.addWidget(options)
        layout.addWidget(buttons)
        self.bg_kind.currentIndexChanged.connect(self._sync_background)
        self.composite_row.check.toggled.connect(self._sync_background)
        self.cutout_row.check.toggled.connect(self._sync_background)
        self._sync_background()

    def _update_color_button(self) -> None:
        self.color_button.setIcon(color_icon(self._color))
        self.color_button.setText(self._color.name())

    def _pick_color(self) -> None:
        color = choose_color(self, self._color, "Composite background colour")
        if color is not None:
            self._color = color
            self._update_color_button()

    def _pick_image(self) -> None:
        path = get_open_path(self, "Background image", self.bg_image.text() or str(Path.home()))
        if path:
            self.bg_image.setText(path)

    def _sync_background(self) -> None:
        on = self.composite_row.check.isChecked()
        kind = self.bg_kind.currentData()
        self.bg_kind.setEnabled(on)
        self.color_button.setVisible(kind == BG_COLOR)
        self.color_button.setEnabled(on)
        self.bg_image.setVisible(kind == BG_IMAGE)
        self.bg_browse.setVisible(kind == BG_IMAGE)
        self.bg_image.setEnabled(on)
        self.bg_browse.setEnabled(on)
        # The strength changes only the colours of the cutout and the composite.
        self.decontaminate.setEnabled(on or self.cutout_row.check.isChecked())

    def options(self) -> ExportOptions:
        return ExportOptions(
            alpha_path=self.alpha_row.value(),
            cutout_path=self.cutout_row.value(),
            composite_path=self.composite_row.value(),
            depth=int(self.depth.currentData()),
            background_kind=str(self.bg_kind.currentData()),
            background_color=self._color.name(),
            background_image=self.bg_image.text().strip(),
            decontaminate=self.decontaminate.strength(),
        )

    def problem(self) -> str | None:
        """Why these options cannot be exported, or None."""
        opts = self.options()
        if not opts.paths:
            return "Choose at least one file to export."
        background = opts.background_image if opts.background_kind == BG_IMAGE else None
        try:
            check_outputs(
                {"alpha": opts.alpha_path, "cutout": opts.cutout_path,
                 "composite": opts.composite_path},
                {**self._protected, "the background image": background if opts.composite_path else None},
            )
        except DimStudioError as exc:
            return f"{exc}."
        if opts.cutout_path and Path(opts.cutout_path).suffix.lower() in (".jpg", ".jpeg"):
            return "JPEG has no transparency; save the cutout as .png."
        if opts.composite_path and opts.background_kind == BG_IMAGE and not opts.background_image:
            return "Choose a background image for the composite."
        return None

    def _accept(self) -> None:
        problem = self.problem()
        if problem:
            show_error(self, "Export", problem)
            return
        existing = [p for p in self.options().paths if Path(p).exists()]
        if existing and not ask_yes_no(
            self, "Replace files?",
            "These files exist and will be replaced:\n" + "\n".join(existing),
        ):
            return
        self.accept()


def ask_export_options(
    parent: QWidget | None,
    photo_path: str,
    folder: str,
    protected: tuple[str, ...] = (),
    **preview: object,
) -> ExportOptions | None:
    """Show the export dialog; None when cancelled.

    ``preview``: ``ExportDialog``'s preview_mode, preview_color,
    preview_background and decontamination (what the preview pane shows).
    """
    dialog = ExportDialog(parent, photo_path, folder, protected, **preview)  # type: ignore[arg-type]
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.options()
