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


def _user_dir(override_env: str, mac: str, windows: tuple[str, str, str], xdg: tuple[str, str]) -> Path:
    """The override, else the platform's folder: ``~/Library/<mac>/DIM Studio`` on macOS,
    ``%<env>%`` (default ``~/AppData/<fallback>``) ``/DIM Studio[/<tail>]`` on Windows,
    ``$<XDG var>`` (default ``~/<path>``) ``/dim-studio`` elsewhere."""
    override = _from_env(override_env)
    if override is not None:
        return override
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / mac / "DIM Studio"
    if sys.platform.startswith("win"):
        env, fallback, tail = windows
        return (_from_env(env) or home / "AppData" / fallback) / "DIM Studio" / tail
    return _xdg(xdg[0], home / xdg[1]) / APP_DIR_NAME


def user_data_dir() -> Path:
    """The folder for data DIM Studio creates (autosaves, downloaded weights)."""
    return _user_dir(DATA_DIR_ENV, "Application Support", ("APPDATA", "Roaming", ""), ("XDG_DATA_HOME", ".local/share"))


def user_config_dir() -> Path:
    """The folder for settings (the GUI's ini file)."""
    return _user_dir(CONFIG_DIR_ENV, "Preferences", ("APPDATA", "Roaming", ""), ("XDG_CONFIG_HOME", ".config"))


def user_cache_dir() -> Path:
    """The folder for caches DIM Studio can rebuild (Numba's compiled kernels)."""
    return _user_dir(CACHE_DIR_ENV, "Caches", ("LOCALAPPDATA", "Local", "Cache"), ("XDG_CACHE_HOME", ".cache"))


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
