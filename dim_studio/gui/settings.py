"""Settings that persist between runs, in one ini file.

The file lives in ``dim_studio.paths.user_config_dir()`` (``~/.config/dim-studio``
on Linux); the environment variable ``DIM_STUDIO_CONFIG_DIR`` moves it, which
is how tests keep away from the real user's settings. An ini file rather
than the platform's native store (the Windows registry, macOS plists) so that
the override works the same everywhere and a user can read or delete it.

Values are read through typed accessors: QSettings returns strings from ini
files, and a corrupt or hand-edited value must fall back to the default
rather than crash the window at start-up.

Paths are stored absolute (``absolute_path``), so what is proposed next time
never depends on the directory the program happened to be started from; a
relative path left by an older version is ignored on reading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, QSettings

from dim_studio.paths import user_config_dir

SETTINGS_FILE_NAME = "dim-studio.ini"
MAX_RECENT = 10


def settings_path() -> Path:
    return user_config_dir() / SETTINGS_FILE_NAME


def absolute_path(path: str | Path) -> str:
    """``path`` made absolute (``~`` expanded, links and ``..`` resolved), as stored in the settings."""
    p = Path(path).expanduser()
    try:
        return str(p.resolve())
    except (OSError, RuntimeError):  # a link loop, an unreadable parent
        return str(p.absolute())


def _stored_absolute(value: str) -> str:
    """A stored path, or "" when it is empty or relative (written by an older version)."""
    return value if value and Path(value).expanduser().is_absolute() else ""


_Number = TypeVar("_Number", int, float)

class Settings:
    """Typed access to the application's QSettings."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else settings_path()
        self.qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    # -- generic typed access ------------------------------------------------

    def get_str(self, key: str, default: str = "") -> str:
        value = self.qsettings.value(key, default)
        return value if isinstance(value, str) else default

    def get_int(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        try:
            value = int(self.qsettings.value(key, default))
        except (TypeError, ValueError):
            return default
        return _clamp(value, lo, hi)

    def get_float(self, key: str, default: float, lo: float | None = None, hi: float | None = None) -> float:
        try:
            value = float(self.qsettings.value(key, default))
        except (TypeError, ValueError):
            return default
        if value != value:  # NaN
            return default
        return _clamp(value, lo, hi)

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.qsettings.value(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return default

    def get_bytes(self, key: str) -> QByteArray | None:
        value = self.qsettings.value(key)
        return value if isinstance(value, QByteArray) else None

    def get_list(self, key: str) -> list[str]:
        value = self.qsettings.value(key, [])
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value if v]
        return []

    def set(self, key: str, value: Any) -> None:
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()

    # -- named settings -----------------------------------------------------------

    def get_folder(self, key: str) -> str:
        """An absolute folder stored under ``key``; "" when none, or a relative one from an old file."""
        return _stored_absolute(self.get_str(key))

    def set_folder(self, key: str, path: str | Path | None) -> None:
        """Store ``path`` absolute ("" stays "")."""
        text = str(path).strip() if path is not None else ""
        self.set(key, absolute_path(text) if text else "")

    def last_folder(self, kind: str) -> str:
        """The folder last used for ``kind`` ('image', 'trimap', 'export', 'mask', 'background'), absolute."""
        folder = self.get_folder(f"folders/{kind}")
        if folder and Path(folder).is_dir():
            return folder
        # Falling back to the photo's folder is what one wants for trimaps and exports.
        image_folder = self.get_folder("folders/image")
        return image_folder if image_folder and Path(image_folder).is_dir() else str(Path.home())

    def set_last_folder(self, kind: str, path: str | Path) -> None:
        p = Path(absolute_path(path))
        self.set(f"folders/{kind}", str(p if p.is_dir() else p.parent))

    def recent_files(self) -> list[str]:
        return [f for f in self.get_list("recent/files") if _stored_absolute(f)][:MAX_RECENT]

    def add_recent_file(self, path: str | Path) -> list[str]:
        entry = absolute_path(path)
        files = [f for f in self.recent_files() if f != entry]
        files.insert(0, entry)
        files = files[:MAX_RECENT]
        self.set("recent/files", files)
        return files

    def remove_recent_file(self, path: str) -> list[str]:
        files = [f for f in self.recent_files() if f != path]
        self.set("recent/files", files)
        return files

    def clear_recent_files(self) -> None:
        self.set("recent/files", [])


def _clamp(value: _Number, lo: _Number | None, hi: _Number | None) -> _Number:
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value
