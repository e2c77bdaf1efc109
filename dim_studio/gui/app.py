"""``run_app``: start the desktop application (``dim-studio`` / ``dim-studio gui``)."""

from __future__ import annotations

import argparse
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from dim_studio import __version__
from dim_studio.errors import DimStudioError
from dim_studio.resources import ICONS, app_icon

from .main_window import APP_NAME, MainWindow
from .platform_check import platform_problem

#: The freedesktop id: the desktop entry's file name, which Wayland compositors match windows to.
DESKTOP_ID = "io.github.dimstudio.DimStudio"


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


def application_icon() -> QIcon:
    """The SVG icon, with the PNG sizes for window managers that want bitmaps."""
    icon = QIcon(str(app_icon()))
    for png in sorted(ICONS.glob("dim-studio-*.png")):
        icon.addFile(str(png))
    return icon


def create_application() -> QApplication:
    """The QApplication with the program's name, version and icon (once per process)."""
    app = QApplication.instance()
    if app is None:
        # Qt aborts the process when it cannot open its platform plugin or the
        # display; say what is missing first, as one line.
        problem = platform_problem()
        if problem:
            raise DimStudioError(problem)
        app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName("dim-studio")
    app.setDesktopFileName(DESKTOP_ID)
    app.setWindowIcon(application_icon())
    return app


def run_app(args: argparse.Namespace) -> int:
    """Open the window (on ``args.image`` / ``args.trimap`` if given) and run the event loop."""
    app = create_application()
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
