"""Choosing among the weights files the app knows: a combo filler and the Weights > Choose weights dialog.

``workflows.weights.known_weights`` lists every weights file in the search
locations (the one in use first) with a description ("doll-tuned.safetensors:
tuned on doll.png, 300 steps, SAD 41.2 -> 6.3"). It imports torch and reads
file headers, so it always runs in a ``TaskRunner``; the combos and the list
are filled when the answer arrives on the GUI thread.

Picking a file in the chooser calls ``MainWindow.use_weights(path)``: the
window's dim engine uses exactly that file and the preview recomputes (the
fine-tune dialog's "Use now" does the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget,
)

from dim_studio.workflows.jobs import JobError
from dim_studio.workflows.weights import KnownWeights, known_weights

from . import dialogs
from .jobs import TaskRunner

__all__ = ["WeightsChooser", "choose_weights", "fill_weights_combo", "same_file"]


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two paths name the same file (no I/O beyond resolving the names)."""
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def fill_weights_combo(
    combo: QComboBox, known: list[KnownWeights], *, select: str | Path | None = None,
    extra: tuple[tuple[str, Any], ...] = (),
) -> None:
    """Put ``extra`` items (label, data) then every usable file of ``known`` into ``combo``.

    Each file's data is its path as a string; its tooltip the full path. The
    item for ``select`` is chosen when present, else the first file (the one
    in use), else the first item. Signals are blocked while filling: the
    caller decides what a change means.
    """
    combo.blockSignals(True)
    try:
        combo.clear()
        for label, data in extra:
            combo.addItem(label, data)
        first_file = -1
        chosen = -1
        for item in known:
            if not item.usable:
                continue
            combo.addItem(item.label, str(item.path))
            index = combo.count() - 1
            combo.setItemData(index, str(item.path), Qt.ItemDataRole.ToolTipRole)
            if first_file < 0:
                first_file = index
            if chosen < 0 and same_file(item.path, select):
                chosen = index
        combo.setCurrentIndex(chosen if chosen >= 0 else first_file if first_file >= 0 else 0)
    finally:
        combo.blockSignals(False)


def load_known_weights(
    tasks: TaskRunner, explicit: str | None, on_done: Callable[[list[KnownWeights]], None],
    on_error: Callable[[JobError], None] | None = None,
) -> None:
    """``known_weights(explicit)`` in ``tasks``' thread; ``on_done`` gets the list on the GUI thread."""
    tasks.submit(lambda: known_weights(explicit), on_done, on_error)


class WeightsChooser(QDialog):
    """Weights > Choose weights: every known file with its description; OK makes the dim engine use it."""

    #: the chosen file (Path), emitted on OK
    chosen = Signal(object)
    #: the list arrived (tests wait for it)
    loaded = Signal()

    def __init__(self, parent: QWidget | None = None, current: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose weights")
        self.setMinimumWidth(520)
        self.current = current
        self.known: list[KnownWeights] = []
        self.is_loaded = False
        self.intro = QLabel("Looking for weights files…")
        self.intro.setWordWrap(True)
        self.list = QListWidget()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use these weights")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.list.currentItemChanged.connect(self._sync)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.buttons)
        self.tasks = TaskRunner(self, name="dim-studio-weights-list")
        load_known_weights(self.tasks, current, self._on_loaded, self._on_error)

    def _on_loaded(self, known: object) -> None:
        self.known = list(known)  # type: ignore[arg-type]
        self.list.clear()
        select = None
        for entry in self.known:
            item = QListWidgetItem(entry.label)
            item.setData(Qt.ItemDataRole.UserRole, str(entry.path))
            item.setToolTip(str(entry.path))
            if not entry.usable:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
            elif select is None or same_file(entry.path, self.current):
                select = item  # the window's current file, else the first usable one
            self.list.addItem(item)
        if not self.known:
            self.intro.setText("No weights files found. Import or download weights (Weights menu), "
                               "or teach the network a photo (fine-tune).")
        else:
            self.intro.setText("The dim engine will use the file you choose (the one in use is listed first).")
        if select is not None:
            self.list.setCurrentItem(select)
        self.is_loaded = True
        self._sync()
        self.loaded.emit()

    def _on_error(self, error: JobError) -> None:
        self.is_loaded = True
        self.intro.setText("Could not list the weights files.")
        dialogs.show_error(self, "Choose weights", error.message)
        self.loaded.emit()

    def _sync(self, *_: object) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.selected_path() is not None)

    def selected_path(self) -> Path | None:
        item = self.list.currentItem()
        if item is None or not (item.flags() & Qt.ItemFlag.ItemIsEnabled):
            return None
        return Path(item.data(Qt.ItemDataRole.UserRole))

    def select_path(self, path: str | Path) -> bool:
        """Select the entry for ``path`` (tests, and callers that know the file)."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if same_file(item.data(Qt.ItemDataRole.UserRole), path):
                self.list.setCurrentItem(item)
                return True
        return False

    def accept(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        self.tasks.shutdown()
        super().accept()
        self.chosen.emit(path)

    def reject(self) -> None:
        self.tasks.shutdown()
        super().reject()


def choose_weights(window: Any) -> WeightsChooser:
    """Open the chooser for ``window`` (a ``MainWindow``); OK calls ``window.use_weights(path)``."""
    chooser = WeightsChooser(window, getattr(window, "weights", None))
    chooser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    chooser.chosen.connect(window.use_weights)
    chooser.open()
    return chooser
