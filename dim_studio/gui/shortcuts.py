"""Help > Keyboard shortcuts: every shortcut of the window, in a table.

The list is made from the window's QActions (their text and shortcuts, so it
can never go stale) plus the keys and mouse gestures the canvas and the
preview handle themselves, which have no action.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QMenu, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

#: (where, what, keys) for the keys without an action: the views handle them directly
VIEW_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Canvas and preview", "Pan", "Space + drag, or middle-button drag"),
    ("Canvas and preview", "Zoom about the pointer", "Mouse wheel"),
    ("Canvas", "Change the brush size", "Shift + mouse wheel"),
    ("Canvas", "Cancel the stroke or outline being drawn", "Esc"),
    ("Preview", "Pan the preview", "Drag"),
)


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty())


def _where(action: QAction) -> str:
    for obj in action.associatedObjects():
        if isinstance(obj, QMenu) and obj.title():
            return obj.title().replace("&", "")
    return "Window"


def action_text(action: QAction) -> str:
    """The action's text as a user reads it (no mnemonic ampersands, no trailing '…')."""
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def shortcut_rows(window: QWidget) -> list[tuple[str, str, str]]:
    """(where, what, keys) for every action under ``window`` that has a shortcut, then the views' own keys."""
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for action in window.findChildren(QAction):
        keys = _keys(action)
        if not keys:
            continue
        text = action_text(action)
        if (text, keys) in seen:
            continue
        seen.add((text, keys))
        rows.append((_where(action), text, keys))
    rows.sort(key=lambda r: (r[0].lower(), r[1].lower()))
    return rows + list(VIEW_KEYS)


class ShortcutsDialog(QDialog):
    """A read-only table: where, what, keys."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = shortcut_rows(window)
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        for r, row in enumerate(self.rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(620, 560)

    def texts(self) -> list[tuple[str, str, str]]:
        """What the table shows, row by row (tests read it)."""
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]  # type: ignore[misc]


def show_shortcuts(window: QWidget) -> ShortcutsDialog:
    dialog = ShortcutsDialog(window)
    dialog.setModal(False)
    dialog.show()
    return dialog


__all__ = ["VIEW_KEYS", "ShortcutsDialog", "action_text", "shortcut_rows", "show_shortcuts"]
