"""Pairing photos with their partner files (trimap, mask or ground-truth alpha) by stem.

Shared by folder export (``batch``) and evaluation (``evaluation``); it lists
folders and never reads an image.

Rules
    Each photo is paired with the file of the same *stem* in the partner
    folder; the partner may carry a suffix (``x_trimap.png``, ``x-trimap.jpg``,
    ``x.trimap.png``, ``x_tri.png`` for trimaps; ``x_mask``, ``x-mask``,
    ``x_matte``, ``x_alpha`` for masks; ``x_alpha``, ``x_gt``, ... for
    ground-truth alphas) and any image extension. The exact stem wins, then
    the suffixes in their listed order, then ``.png``. With ``recursive=True``
    sub-folders are mirrored: the partner of ``IMAGES/a/b/x.jpg`` is looked up
    in ``PARTNERS/a/b/``. Files are listed in natural order (``2`` before
    ``10``, case-insensitive). Hidden files and folders (a leading dot, which
    also covers our own temporary files) are skipped; files without an image
    extension are returned as *ignored*, not as photos.

Hostile folders
    One bad entry never stops a listing: a symbolic-link loop or an entry
    that cannot be examined is listed by its name (reading it later says
    why it fails), and a sub-folder that cannot be listed is returned in
    ``PairListing.unreadable`` by ``list_pairs`` (``find_pairs`` keeps the
    older contract and raises for it).
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .atomic import resolve_path
from .errors import DimStudioError
from .images import IMAGE_SUFFIXES

__all__ = [
    "ALPHA_SUFFIXES", "MASK_SUFFIXES", "TRIMAP_SUFFIXES",
    "Pair", "PairListing", "PartnerIndex", "Unreadable", "check_folder", "find_pairs",
    "is_hidden", "is_inside", "list_images", "list_pairs", "natural_key", "resolved",
    "strip_suffix",
]

#: suffixes a trimap's stem may carry after the photo's stem (besides none)
TRIMAP_SUFFIXES = ("_trimap", "-trimap", ".trimap", "_tri", "-tri")
#: suffixes a mask's stem may carry
MASK_SUFFIXES = ("_mask", "-mask", ".mask", "_matte", "-matte", "_alpha", "-alpha")
#: suffixes a ground-truth alpha's stem may carry (evaluation)
ALPHA_SUFFIXES = ("_alpha", "-alpha", ".alpha", "_gt", "-gt", "_matte", "-matte", "_mask", "-mask")

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Pair:
    """A photo and its partner file (trimap, mask or alpha) found by stem."""

    image: Path
    rel: str  # the photo's path relative to the images folder, "/"-separated
    partner: Optional[Path]


@dataclass(frozen=True)
class Unreadable:
    """A sub-folder that could not be listed: its photos are unknown."""

    path: Path
    rel: str  # relative to the images folder, "/"-separated
    reason: str  # one line naming the folder and the problem


@dataclass
class PairListing:
    """What ``list_pairs`` found: the photos with their partners, and what it could not use."""

    pairs: list[Pair]
    ignored: list[Path] = field(default_factory=list)  # files without an image extension
    unreadable: list[Unreadable] = field(default_factory=list)


def natural_key(text: str) -> tuple:
    """Sort key: numbers by value ("2" before "10"), letters case-insensitively."""
    return tuple(int(p) if p.isdigit() else p.casefold() for p in _DIGITS.split(text))


def is_hidden(name: str) -> bool:
    """Hidden files and folders are never listed (also hides our ".x.abc123.tmp.png")."""
    return name.startswith(".")


def strip_suffix(stem: str, suffixes: Iterable[str]) -> list[tuple[str, int]]:
    """(base stem, rank) for each suffix ``stem`` ends with; rank 1 = first suffix."""
    out = []
    folded = stem.casefold()
    for rank, suffix in enumerate(suffixes, start=1):
        suf = suffix.casefold()
        if folded.endswith(suf) and len(stem) > len(suf):
            out.append((stem[: -len(suf)], rank))
    return out


def resolved(path: Path) -> Path:
    """``path.resolve()``, or the absolute path when it cannot be resolved (a link loop)."""
    try:
        return resolve_path(path)
    except DimStudioError:
        return Path(path).absolute()


def _listing_problem(folder: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"{folder}: symbolic link loop"
    return f"{folder}: cannot list the folder ({exc.strerror or exc})"


def _scan_sorted(folder: Path) -> list[os.DirEntry]:
    # The iterator itself can fail part-way (a folder removed or made
    # unreadable meanwhile), so it is consumed inside the caller's try.
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: natural_key(e.name))


def _is_dir(entry: os.DirEntry) -> bool:
    """A folder to walk into. Anything else with an image extension is listed, even a
    link loop, a dangling link or a pipe: the caller reports why it cannot be read,
    which says more than leaving it out would."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or below it (both resolved)."""
    return path == folder or folder in path.parents


class PartnerIndex:
    """Finds the partner of a photo by stem in the mirrored sub-folder."""

    def __init__(self, root: Path, suffixes: Sequence[str]) -> None:
        self.root = root
        self.suffixes = tuple(suffixes)
        self._folders: dict[str, dict[str, list[tuple[int, int, str, Path]]]] = {}
        self._errors: dict[str, str] = {}

    def folder(self, rel_dir: str) -> Path:
        return self.root / rel_dir if rel_dir else self.root

    def error(self, rel_dir: str) -> str | None:
        """Why the partner folder of ``rel_dir`` could not be listed (None: it was, or is absent)."""
        self._index(rel_dir)
        return self._errors.get(rel_dir)

    def _index(self, rel_dir: str) -> dict[str, list[tuple[int, int, str, Path]]]:
        if rel_dir not in self._folders:
            folder = self.folder(rel_dir)
            table: dict[str, list[tuple[int, int, str, Path]]] = {}
            try:
                entries = _scan_sorted(folder)
            except (FileNotFoundError, NotADirectoryError):
                entries = []  # no mirrored sub-folder: its photos have no partner
            except OSError as exc:
                entries = []
                self._errors[rel_dir] = _listing_problem(folder, exc)
            for entry in entries:
                if is_hidden(entry.name) or _is_dir(entry):
                    continue
                path = Path(entry.path)
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                keys = [(path.stem, 0)] + strip_suffix(path.stem, self.suffixes)
                for base, rank in keys:
                    # (rank, extension preference, name): the exact stem wins,
                    # then the suffixes in their listed order, then .png.
                    ext_rank = 0 if path.suffix.lower() == ".png" else 1
                    table.setdefault(base.casefold(), []).append((rank, ext_rank, base, path))
            self._folders[rel_dir] = table
        return self._folders[rel_dir]

    def find(self, rel_dir: str, stem: str, exclude: Path | None = None) -> Path | None:
        candidates = self._index(rel_dir).get(stem.casefold(), [])
        best = None
        for rank, ext_rank, base, path in candidates:
            if exclude is not None and resolved(path) == exclude:
                continue
            key = (rank, base != stem, ext_rank, path.name)  # exact case first
            if best is None or key < best[0]:
                best = (key, path)
        return None if best is None else best[1]

    def describe(self, stem: str) -> str:
        names = [stem] + [stem + s for s in self.suffixes]
        return ", ".join(names)


def _walk(
    root: Path,
    recursive: bool,
    exclude_dirs: Sequence[Path],
    sibling_suffixes: Sequence[str],
) -> tuple[list[Path], list[Path], list[Unreadable]]:
    images: list[Path] = []
    ignored: list[Path] = []
    unreadable: list[Unreadable] = []
    visited: set[Path] = set()

    def scan(folder: Path) -> None:
        real = resolved(folder)
        if real in visited:  # a symbolic link back up the tree
            return
        visited.add(real)
        try:
            entries = _scan_sorted(folder)
        except OSError as exc:
            if folder == root:
                raise DimStudioError(_listing_problem(folder, exc)) from None
            rel = folder.relative_to(root).as_posix()
            unreadable.append(Unreadable(folder, rel, _listing_problem(folder, exc)))
            return
        files, dirs = [], []
        for entry in entries:
            if is_hidden(entry.name):
                continue
            if _is_dir(entry):
                dirs.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                files.append(Path(entry.path))
            else:
                ignored.append(Path(entry.path))
        stems = {p.stem.casefold() for p in files}
        for path in files:
            siblings = strip_suffix(path.stem, sibling_suffixes)
            if any(base.casefold() in stems for base, _ in siblings):
                continue
            images.append(path)
        if recursive:
            for sub in dirs:
                if any(is_inside(resolved(sub), ex) for ex in exclude_dirs):
                    continue
                scan(sub)

    scan(root)
    return images, ignored, unreadable


def list_images(
    root: Path,
    recursive: bool,
    exclude_dirs: Sequence[Path] = (),
    sibling_suffixes: Sequence[str] = (),
) -> tuple[list[Path], list[Path]]:
    """Photos under ``root`` (natural order) and the non-image files ignored.

    ``exclude_dirs`` (resolved) are not entered. A file whose stem is another
    photo's stem plus one of ``sibling_suffixes`` (a trimap or an output kept
    in the same folder as the photos) is not a photo. A folder that cannot be
    listed raises ``DimStudioError``.
    """
    images, ignored, unreadable = _walk(root, recursive, exclude_dirs, sibling_suffixes)
    if unreadable:
        raise DimStudioError(unreadable[0].reason)
    return images, ignored


def check_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path; a clear error when it is missing or is a file."""
    folder = Path(path)
    try:
        os.stat(folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DimStudioError(f"{folder}: the {what} folder is a symbolic link loop") from None
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            raise DimStudioError(f"{folder}: {what} folder not found") from None
        raise DimStudioError(f"{folder}: cannot open the {what} folder ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise DimStudioError(f"{folder}: the {what} folder is a file, not a folder")
    return folder


def list_pairs(
    images_dir: str | os.PathLike[str],
    partners_dir: str | os.PathLike[str],
    suffixes: Sequence[str] = TRIMAP_SUFFIXES,
    *,
    recursive: bool = False,
    exclude_dirs: Sequence[str | os.PathLike[str]] = (),
    sibling_suffixes: Sequence[str] = (),
    what: str = "trimaps",
    index: PartnerIndex | None = None,
) -> PairListing:
    """Pair every photo under ``images_dir`` with its partner by stem.

    ``pair.partner`` is None when no partner was found. Partner files inside
    ``images_dir`` itself (same folder for both) are not taken for photos.
    A sub-folder that cannot be listed is returned in ``unreadable`` and the
    walk goes on; only an unreadable ``images_dir`` itself raises. ``index``
    (over ``partners_dir`` with ``suffixes``) lets the caller ask it why a
    partner folder could not be listed.
    """
    images_root = check_folder(images_dir, "images")
    partner_root = check_folder(partners_dir, what)
    images_res = resolved(images_root)
    partner_res = resolved(partner_root)
    excluded = [resolved(Path(p)) for p in exclude_dirs]
    siblings = list(sibling_suffixes)
    if partner_res == images_res:
        siblings += list(suffixes)
    elif is_inside(partner_res, images_res):
        excluded.append(partner_res)
    images, ignored, unreadable = _walk(images_root, recursive, excluded, siblings)
    if index is None:
        index = PartnerIndex(partner_root, suffixes)
    pairs = []
    for path in images:
        rel_path = path.relative_to(images_root)
        rel_dir = rel_path.parent.as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        partner = index.find(rel_dir, path.stem, exclude=resolved(path))
        pairs.append(Pair(path, rel_path.as_posix(), partner))
    return PairListing(pairs, ignored, unreadable)


def find_pairs(
    images_dir: str | os.PathLike[str],
    partners_dir: str | os.PathLike[str],
    suffixes: Sequence[str] = TRIMAP_SUFFIXES,
    *,
    recursive: bool = False,
    exclude_dirs: Sequence[str | os.PathLike[str]] = (),
    sibling_suffixes: Sequence[str] = (),
    what: str = "trimaps",
) -> tuple[list[Pair], list[Path]]:
    """``list_pairs`` as ``(pairs, ignored)``; a sub-folder that cannot be listed raises.

    Callers that can report an unreadable sub-folder and go on use ``list_pairs``.
    """
    listing = list_pairs(
        images_dir, partners_dir, suffixes, recursive=recursive, exclude_dirs=exclude_dirs,
        sibling_suffixes=sibling_suffixes, what=what,
    )
    if listing.unreadable:
        raise DimStudioError(listing.unreadable[0].reason)
    return listing.pairs, listing.ignored
