"""Can Qt open a window here? Checked before ``QApplication`` exists.

When Qt cannot load its platform plugin or reach the display, it aborts the
whole process (``qFatal``) with a message that names the wrong library:
"xcb-cursor0 or libxcb-cursor0 is needed" appears even when that one is
installed and another is missing. These checks run first and turn each
failure into one line that names what is missing and the ``apt`` line that
installs it, so the user gets a fix instead of a core dump.

Only the X11 (xcb) plugin is checked in depth: it is the default on Linux
and the one whose system libraries a fresh machine lacks. Other platforms
(Wayland, offscreen, Windows, macOS) ship what they need with PySide6.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

#: The Debian/Ubuntu packages Qt 6's xcb platform plugin needs (the README lists the same line).
APT_LINE = (
    "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 "
    "libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 "
    "libegl1 libgl1 libfontconfig1 libdbus-1-3"
)
# Qt 6.5+ opens libxcb-cursor at run time, not as a link dependency of the plugin.
_RUNTIME_LIBRARIES = ("libxcb-cursor.so.0",)
_MISSING = re.compile(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")


def qt_platform(env: Mapping[str, str] | None = None) -> str:
    """The platform plugin Qt will pick: ``QT_QPA_PLATFORM``, else Qt's default for this system."""
    env = os.environ if env is None else env
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if not sys.platform.startswith("linux"):
        return "native"
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def plugins_folder() -> Path:
    from PySide6.QtCore import QLibraryInfo

    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))


def _load(path: str) -> None:
    ctypes.CDLL(path)


def _missing_library(error: OSError) -> str:
    found = _MISSING.search(str(error))
    return found.group(1) if found else str(error)


def _x_display_problem(display: str) -> str | None:
    """Why the X display cannot be reached, or None when it can."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError as exc:
        return f"the X11 client library is missing ({_missing_library(exc)})"
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        failed = xcb.xcb_connection_has_error(conn)
    finally:
        xcb.xcb_disconnect(conn)
    return f"cannot connect to the X display {display!r}" if failed else None


def platform_problem(env: Mapping[str, str] | None = None, *,
                     load: Callable[[str], None] = _load,
                     plugins: Path | None = None,
                     connect: bool = True) -> str | None:
    """One line saying why Qt would abort on start, or None when it should start.

    ``load`` opens a shared library (raising OSError like ``ctypes.CDLL``);
    tests pass their own to stand for a machine that lacks a library.
    """
    env = os.environ if env is None else env
    platform = qt_platform(env)
    folder = (plugins or plugins_folder()) / "platforms"
    if platform in ("offscreen", "minimal"):
        plugin = folder / f"libq{platform}.so"
        if sys.platform.startswith("linux") and not plugin.is_file():
            return f"Qt's {platform} platform plugin is missing ({plugin}); reinstall DIM Studio"
        return None
    if platform != "xcb":
        return None
    if not env.get("DISPLAY"):
        return ("there is no display to open a window on (DISPLAY is not set). The command line "
                "works without one: see dim-studio --help")
    plugin = folder / "libqxcb.so"
    if not plugin.is_file():
        return f"Qt's X11 platform plugin is missing ({plugin}); reinstall DIM Studio"
    for library in (str(plugin), *_RUNTIME_LIBRARIES):
        try:
            load(library)
        except OSError as exc:
            return (f"Qt cannot open a window: the system library {_missing_library(exc)} is missing. "
                    f"On Debian/Ubuntu install Qt's libraries with: {APT_LINE}")
    if connect:
        return _x_display_problem(env["DISPLAY"])
    return None


__all__ = ["APT_LINE", "platform_problem", "plugins_folder", "qt_platform"]
