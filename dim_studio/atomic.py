"""Atomic file writes: the one helper every writer uses (images, weights, reports, autosaves).

A write goes to a temporary file in the target folder and is
moved into place with ``os.replace``, so an interrupted or failed write never
leaves a half-written output and never damages the file it would replace.

Inside ``staged_outputs()`` the moves wait until the block ends, so the
several files of one photo (alpha, cutout, composite) appear together or not
at all. Temporary names carry the writer's process id; a process killed in
the middle of a write leaves one behind, and the next write into that folder
removes it (``sweep_stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from .errors import DimStudioError, ImageWriteError

log = logging.getLogger(__name__)

# ".<stem>.<pid>-<mkstemp's 8 random characters>.tmp<suffix>"
_TEMP_NAME = re.compile(r"^\..*\.(?P<pid>\d+)-[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")
# A temporary file this old is abandoned even if its pid is alive again
# (pid reuse, or a writer on another machine sharing the folder).
STALE_AFTER_S = 24 * 3600

_swept: set[str] = set()
_swept_lock = threading.Lock()

# (temporary, target) pairs waiting for the end of the innermost staged_outputs().
_stage: contextvars.ContextVar["list[tuple[Path, Path]] | None"] = contextvars.ContextVar(
    "dim_studio_atomic_stage", default=None
)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but is not ours, or we cannot tell: leave it
    return True


def sweep_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files that killed writers left in ``folder``; returns them.

    Only names of exactly our pattern are touched, and only when their process
    is gone or they are older than ``STALE_AFTER_S``.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            if old or not _pid_alive(int(match["pid"])):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted write in %s",
                 len(removed), folder)
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    sweep_stale_temporaries(folder)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], error: type[DimStudioError] = ImageWriteError
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place on success.

    On any exception the temporary file is removed and the target untouched.
    A folder that cannot be created or written raises ``error`` with the
    target's name, so each caller keeps its own error class. Inside
    ``staged_outputs()`` the move waits for the end of that block.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _sweep_once(folder)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.stem}.{os.getpid()}-", suffix=f".tmp{target.suffix}", dir=folder
        )
    except OSError as exc:
        raise error(f"{target}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates files readable by their owner only; outputs should get
    # the permissions any new file of this user would have.
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        stage = _stage.get()
        if stage is None:
            os.replace(tmp, target)
        else:
            stage.append((tmp, target))
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def staged_outputs(error: type[DimStudioError] = ImageWriteError) -> Iterator[None]:
    """Every ``atomic_output`` in this block appears when the block succeeds, or none does.

    The files are written in full first; only then are they moved into place,
    which in one folder cannot run out of space. Should a move still fail (the
    folder vanished), the outputs already moved are removed again, so a photo
    never ends with an alpha but no cutout.
    """
    pending: list[tuple[Path, Path]] = []
    token = _stage.set(pending)
    try:
        yield
    except BaseException:
        _stage.reset(token)
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    _stage.reset(token)
    moved: list[Path] = []
    for i, (tmp, target) in enumerate(pending):
        try:
            os.replace(tmp, target)
        except OSError as exc:
            for done in moved:
                with contextlib.suppress(OSError):
                    done.unlink()
            for rest, _ in pending[i:]:
                with contextlib.suppress(OSError):
                    rest.unlink()
            raise error(f"{target}: cannot write ({exc.strerror or exc})") from None
        moved.append(target)


def atomic_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                error: type[DimStudioError] = ImageWriteError) -> Path:
    """Copy ``src`` to ``dst`` atomically; returns ``dst``."""
    import shutil

    target = Path(dst)
    try:
        with atomic_output(target, error) as tmp:
            shutil.copyfile(src, tmp)
    except OSError as exc:
        raise error(f"{target}: cannot write ({exc.strerror or exc})") from None
    return target


def resolve_path(path: str | os.PathLike[str], error: type[DimStudioError] = DimStudioError) -> Path:
    """``Path.resolve()`` that turns a symbolic-link loop into ``error`` naming the path.

    Python 3.11 raises RuntimeError for a loop and later versions OSError(ELOOP);
    neither is a message for a user.
    """
    try:
        return Path(path).resolve()
    except RuntimeError:
        raise error(f"{path}: symbolic link loop") from None
    except OSError as exc:
        raise error(f"{path}: cannot follow the path ({exc.strerror or exc})") from None


def _same_file(a: Path, b: Path) -> bool:
    # samefile also catches hard links and case-insensitive file systems;
    # it needs both files to exist, so an output not yet written compares by name.
    try:
        return os.path.samefile(a, b)
    except OSError:
        return resolve_path(a) == resolve_path(b)


def check_outputs(
    outputs: "dict[str, str | os.PathLike[str] | None]",
    inputs: "dict[str, str | os.PathLike[str] | None]",
) -> None:
    """Refuse a job that would overwrite one of its inputs, or write one file twice.

    Keys are what the user calls each file ("alpha", "the photo", "--background");
    ``None`` values are skipped. Raises ``DimStudioError`` naming the file and both roles.
    """
    outs = [(role, Path(p)) for role, p in outputs.items() if p not in (None, "")]
    ins = [(role, Path(p)) for role, p in inputs.items() if p not in (None, "")]
    for i, (role, out) in enumerate(outs):
        for in_role, src in ins:
            if _same_file(out, src):
                raise DimStudioError(
                    f"{out}: refusing to overwrite {in_role} with the {role} output"
                )
        for other_role, other in outs[:i]:
            if _same_file(out, other):
                raise DimStudioError(
                    f"{out}: named as both the {other_role} and the {role} output; "
                    "give each output its own file"
                )
