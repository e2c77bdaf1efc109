"""Atomic file writes: the one helper every writer uses (images, weights, reports, autosaves).

A write goes to a temporary file in the target folder and is
moved into place with ``os.replace``, so an interrupted or failed write never
leaves a half-written output and never damages the file it would replace.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DimStudioError, ImageWriteError


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], error: type[DimStudioError] = ImageWriteError
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place on success.

    On any exception the temporary file is removed and the target untouched.
    A folder that cannot be created or written raises ``error`` with the
    target's name, so each caller keeps its own error class.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=folder
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
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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
