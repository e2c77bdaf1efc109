"""Where Numba keeps PyMatting's compiled kernels (Qt-free, imports nothing heavy).

PyMatting compiles its kernels with ``@njit(cache=True)``. By default Numba
writes that cache into ``__pycache__`` beside PyMatting's sources, which is
read-only in a system-wide install and inside the frozen application: Numba
then compiles again on every launch, a second or more before the first
matte. ``configure()`` points Numba at a per-user folder instead,
``user_cache_dir() / "numba"`` (see ``dim_studio.paths``; ``$DIM_STUDIO_CACHE_DIR``
overrides it), unless the user chose one with ``$NUMBA_CACHE_DIR``.

Numba reads ``NUMBA_CACHE_DIR`` once, when it is first imported, and picks a
kernel's cache folder when the module defining the kernel is imported: call
``configure()`` before importing ``pymatting`` or ``numba``. It is cheap and
idempotent; the first call in a process decides. If the folder cannot be
created or written, Numba falls back to its own locations by itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .paths import user_cache_dir

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"


def cache_dir() -> Path:
    """DIM Studio's folder for Numba's cache (whether or not it is in use)."""
    return user_cache_dir() / "numba"


def configure() -> Path:
    """Make Numba cache compiled kernels in a writable per-user folder; returns the folder in use.

    A ``NUMBA_CACHE_DIR`` already set (by the user, or by an earlier call) is kept.
    """
    current = os.environ.get(NUMBA_CACHE_ENV, "").strip()
    if current:
        return Path(current).expanduser()
    folder = cache_dir()
    os.environ[NUMBA_CACHE_ENV] = str(folder)  # inherited by child processes too
    config = sys.modules.get("numba.core.config")
    if config is not None and not getattr(config, "CACHE_DIR", ""):
        # Numba is already loaded (something imported it first): its setting is read
        # again whenever a module with cached kernels (PyMatting) is imported.
        config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    return folder
