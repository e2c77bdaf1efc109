"""``run_app``: start the desktop application (``dim-studio`` / ``dim-studio gui``)."""

from __future__ import annotations

import argparse
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .main_window import APP_NAME, MainWindow


def _install_excepthook(window: MainWindow) -> None:
    """A bug in a slot shows a dialog instead of vanishing into the terminal.

    PySide6 already keeps running after an exception in a slot; this makes
    sure the user learns about it (and the traceback still goes to stderr).
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        traceback.print_exception(kind, value, tb)
        if issubclass(kind, (KeyboardInterrupt, SystemExit)):
            previous(kind, value, tb)
            return
        from . import dialogs
        from dim_studio.workflows.jobs import describe_exception

        try:
            dialogs.show_error(window, "Unexpected error", describe_exception(value).message)
        except Exception:  # noqa: BLE001 - never recurse from the hook
            pass

    sys.excepthook = hook


def run_app(args: argparse.Namespace) -> int:
    """Open the window (on ``args.image`` / ``args.trimap`` if given) and run the event loop."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("dim-studio")
    window = MainWindow(
        engine=getattr(args, "engine", None),
        weights=getattr(args, "weights", None),
        device=getattr(args, "device", None),
    )
    _install_excepthook(window)
    window.show()
    image, trimap = getattr(args, "image", None), getattr(args, "trimap", None)
    if image:
        # Once the event loop runs: the window is on screen before the photo is decoded.
        QTimer.singleShot(0, lambda: window.open_image(image, trimap))
    elif trimap:
        QTimer.singleShot(0, lambda: window.open_trimap(trimap))
    return int(app.exec())
