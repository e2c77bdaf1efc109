"""The self-test's Qt check: the window system offscreen, the icon, a window drawn.

Offscreen, so it works on a server, in CI and in a frozen build without a
screen; whether the real display would open is reported beside it, without
failing the test (a machine without a screen is a valid place to check an
installation).
"""

from __future__ import annotations

import os

from dim_studio.workflows.selftest import Check

from .platform_check import platform_problem, plugins_folder


def check_qt() -> Check:
    try:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion
    except ImportError as exc:
        return Check("Qt", False, f"PySide6 cannot be imported ({exc})")
    offscreen_chosen = os.environ.get("QT_QPA_PLATFORM", "") == "offscreen"
    display = None if offscreen_chosen else platform_problem(connect=True)
    offscreen = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    problem = platform_problem(offscreen)
    if problem:
        return Check("Qt", False, problem)
    from PySide6.QtWidgets import QApplication, QLabel

    created = QApplication.instance() is None
    if created:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before the QApplication: Qt reads it once
    from .app import application_icon, create_application

    app = create_application()
    icon = application_icon()
    if icon.isNull() or icon.pixmap(48, 48).isNull():
        return Check("Qt", False, "the application icon cannot be drawn (Qt's SVG/PNG image plugins are missing)")
    label = QLabel("DIM Studio")
    label.resize(120, 40)
    if label.grab().isNull():
        return Check("Qt", False, "Qt could not draw a widget offscreen")
    where = f"plugins in {plugins_folder()}"
    if offscreen_chosen:
        screen = "; the desktop was not checked (QT_QPA_PLATFORM=offscreen)"
    elif display is None:
        screen = "; a window on this display would open"
    else:
        screen = f"; a window on this display would not open: {display}"
    detail = f"PySide6 {pyside_version}, Qt {qVersion()}, platform {app.platformName()}, {where}{screen}"
    return Check("Qt", True, detail)


__all__ = ["check_qt"]
