"""Per-user folders of DIM Studio (Qt-free).

Environment variables override the platform defaults, so tests and
portable installs never touch a real home folder:

- ``DIM_STUDIO_DATA_DIR``: data the program creates (weights downloads,
  autosaved trimaps). Default: ``$XDG_DATA_HOME/dim-studio`` (usually
  ``~/.local/share/dim-studio``) on Linux, ``~/Library/Application
  Support/DIM Studio`` on macOS, ``%APPDATA%\\DIM Studio`` on Windows: the
  same folder as ``dim_studio.net.weights.user_data_dir`` (that module imports
  torch, which the Qt-free core must not need to find its autosaves).
- ``DIM_STUDIO_MODEL_DIR``: the last place weights are looked for. Default:
  the repository's ``model/`` folder beside the package in a source checkout;
  none in an installed package.
- ``DIM_STUDIO_CONFIG_DIR``: settings. Default: ``$XDG_CONFIG_HOME/dim-studio``
  (usually ``~/.config/dim-studio``) on Linux, ``~/Library/Preferences/DIM Studio``
  on macOS, ``%APPDATA%\\DIM Studio`` on Windows.
- ``DIM_STUDIO_CACHE_DIR``: caches that can be rebuilt (compiled solver
  kernels). Default: ``$XDG_CACHE_HOME/dim-studio`` (usually
  ``~/.cache/dim-studio``) on Linux, ``~/Library/Caches/DIM Studio`` on macOS,
  ``%LOCALAPPDATA%\\DIM Studio\\Cache`` on Windows.

The folders are not created here; writers create them when they first write.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "dim-studio"
DATA_DIR_ENV = "DIM_STUDIO_DATA_DIR"
CONFIG_DIR_ENV = "DIM_STUDIO_CONFIG_DIR"
MODEL_DIR_ENV = "DIM_STUDIO_MODEL_DIR"
CACHE_DIR_ENV = "DIM_STUDIO_CACHE_DIR"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _xdg(name: str, default: Path) -> Path:
    # The XDG spec says relative paths are invalid and must be ignored.
    value = os.environ.get(name, "")
    return Path(value) if value and os.path.isabs(value) else default


def user_data_dir() -> Path:
    """The folder for data DIM Studio creates (autosaves, downloaded weights)."""
    override = _from_env(DATA_DIR_ENV)
    if override is not None:
        return override
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "DIM Studio"
    if sys.platform.startswith("win"):
        return (_from_env("APPDATA") or home / "AppData" / "Roaming") / "DIM Studio"
    return _xdg("XDG_DATA_HOME", home / ".local" / "share") / APP_DIR_NAME


def user_config_dir() -> Path:
    """The folder for settings (the GUI's ini file)."""
    override = _from_env(CONFIG_DIR_ENV)
    if override is not None:
        return override
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Preferences" / "DIM Studio"
    if sys.platform.startswith("win"):
        return (_from_env("APPDATA") or home / "AppData" / "Roaming") / "DIM Studio"
    return _xdg("XDG_CONFIG_HOME", home / ".config") / APP_DIR_NAME


def user_cache_dir() -> Path:
    """The folder for caches DIM Studio can rebuild (Numba's compiled kernels)."""
    override = _from_env(CACHE_DIR_ENV)
    if override is not None:
        return override
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "DIM Studio"
    if sys.platform.startswith("win"):
        return (_from_env("LOCALAPPDATA") or home / "AppData" / "Local") / "DIM Studio" / "Cache"
    return _xdg("XDG_CACHE_HOME", home / ".cache") / APP_DIR_NAME


def model_dir() -> Path | None:
    """The repository's ``model/`` folder beside the package, in a source checkout; else None.

    An installed package (a wheel in site-packages, the frozen build) has no
    such folder, and naming one there would send users to a place that does
    not exist.
    """
    override = _from_env(MODEL_DIR_ENV)
    if override is not None:
        return override
    root = Path(__file__).resolve().parents[1]
    return root / "model" if (root / "pyproject.toml").is_file() else None


def autosave_dir() -> Path:
    """Where trimaps being edited are autosaved for crash recovery."""
    return user_data_dir() / "autosave"
