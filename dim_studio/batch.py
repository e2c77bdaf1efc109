"""Folder export: matte every photo of a folder with its trimap (or mask).

This is the library behind ``dim-studio batch`` and the GUI's batch dialog. It
never prints and never parses arguments: callers get ``BatchEvent`` callbacks
and a ``BatchReport``.

Pairing
    Each photo is paired with the trimap (or mask) of the same *stem* in the
    trimap folder; the partner may carry a suffix (``x_trimap.png``,
    ``x-trimap.jpg``, ``x.trimap.png``, ``x_tri.png`` for trimaps; ``x_mask``,
    ``x-mask``, ``x_matte``, ``x_alpha`` for masks) and any image extension.
    With ``recursive=True`` sub-folders are mirrored: the trimap of
    ``IMAGES/a/b/x.jpg`` is looked up in ``TRIMAPS/a/b/``. Files without an
    image extension (``notes.txt``) are ignored; a file *with* an image
    extension that cannot be decoded is a failure, not silently skipped.

Output names
    ``OUT/<sub-folder>/<stem>_alpha.png``, ``<stem>_cutout.png`` (RGBA: the
    estimated foreground colours with the alpha) and ``<stem>_composite.png``
    (over the chosen background). The report is ``OUT/dim-studio-report.json``.

Resuming
    Outputs that already exist and are complete (a PNG whose header has the
    photo's size and whose data ends with the IEND chunk) are skipped unless
    ``overwrite=True``; ``retry_failed=True`` re-runs only the files listed as
    failed (or not processed) in the previous report and keeps every other
    entry of that report as it was.

Reliability
    One bad file never stops the run: every failure is recorded with its reason.
    Writes are atomic, so a cancelled or failed file never leaves a
    half-written output, and an output never overwrites an input file.

Concurrency
    Matting runs on the calling thread. One reader thread decodes the next
    photo and its trimap while the current one is matted (at most one photo is
    read ahead) and one writer thread writes the previous result (the cutout's
    foreground estimate is part of the writing). Events are always delivered on
    the calling thread.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from . import __version__
from .engines.base import Engine
from .errors import Cancelled, DimStudioError, TrimapError
from .export import Background, BackgroundSpec, resolve_background, write_outputs
from .images import IMAGE_SUFFIXES, atomic_output, read_image, read_mask, read_trimap
from .trimap import check_same_size, trimap_from_mask

__all__ = [
    "ALPHA_SUFFIXES", "MASK_SUFFIXES", "OUTPUT_KINDS", "REPORT_NAME", "TRIMAP_SUFFIXES",
    "BatchEvent", "BatchItem", "BatchPlan", "BatchReport", "FileResult", "Pair",
    "find_pairs", "output_paths", "plan_batch", "read_report", "run_batch",
]

REPORT_NAME = "dim-studio-report.json"
OUTPUT_KINDS = ("alpha", "cutout", "composite")

#: suffixes a trimap's stem may carry after the photo's stem (besides none)
TRIMAP_SUFFIXES = ("_trimap", "-trimap", ".trimap", "_tri", "-tri")
#: suffixes a mask's stem may carry
MASK_SUFFIXES = ("_mask", "-mask", ".mask", "_matte", "-matte", "_alpha", "-alpha")
#: suffixes a ground-truth alpha's stem may carry (evaluation)
ALPHA_SUFFIXES = ("_alpha", "-alpha", ".alpha", "_gt", "-gt", "_matte", "-matte", "_mask", "-mask")

# Plan statuses.
TODO = "todo"
SKIP = "skip"
MISSING = "missing-trimap"
INVALID = "invalid"
KEPT = "kept"  # retry_failed: an entry of the previous report left as it was

# Report statuses.
DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"
NOT_PROCESSED = "not-processed"
_REPORT_LISTS = {DONE: "done", FAILED: "failed", SKIPPED: "skipped", NOT_PROCESSED: "not_processed"}

_DIGITS = re.compile(r"(\d+)")


# --------------------------------------------------------------------------
# pairing
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A photo and its partner file (trimap, mask or alpha) found by stem."""

    image: Path
    rel: str  # the photo's path relative to the images folder, "/"-separated
    partner: Optional[Path]


def _natural_key(text: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p.casefold() for p in _DIGITS.split(text))


def _is_hidden(name: str) -> bool:
    # Also hides our own temporary files (".x.abc123.tmp.png").
    return name.startswith(".")


def _strip_suffix(stem: str, suffixes: Iterable[str]) -> list[tuple[str, int]]:
    """(base stem, rank) for each suffix ``stem`` ends with; rank 1 = first suffix."""
    out = []
    folded = stem.casefold()
    for rank, suffix in enumerate(suffixes, start=1):
        suf = suffix.casefold()
        if folded.endswith(suf) and len(stem) > len(suf):
            out.append((stem[: -len(suf)], rank))
    return out


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or below it (both resolved)."""
    return path == folder or folder in path.parents


class _PartnerIndex:
    """Finds the partner of a photo by stem in the mirrored sub-folder."""

    def __init__(self, root: Path, suffixes: Sequence[str]) -> None:
        self.root = root
        self.suffixes = tuple(suffixes)
        self._folders: dict[str, dict[str, list[tuple[int, int, str, Path]]]] = {}

    def _index(self, rel_dir: str) -> dict[str, list[tuple[int, int, str, Path]]]:
        if rel_dir not in self._folders:
            folder = self.root / rel_dir if rel_dir else self.root
            table: dict[str, list[tuple[int, int, str, Path]]] = {}
            try:
                entries = sorted(os.scandir(folder), key=lambda e: _natural_key(e.name))
            except OSError:
                entries = []
            for entry in entries:
                if _is_hidden(entry.name) or not entry.is_file():
                    continue
                path = Path(entry.path)
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                keys = [(path.stem, 0)] + _strip_suffix(path.stem, self.suffixes)
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
            if exclude is not None and _resolved(path) == exclude:
                continue
            key = (rank, base != stem, ext_rank, path.name)  # exact case first
            if best is None or key < best[0]:
                best = (key, path)
        return None if best is None else best[1]

    def describe(self, stem: str) -> str:
        names = [stem] + [stem + s for s in self.suffixes]
        return ", ".join(names)


def _list_images(
    root: Path,
    recursive: bool,
    exclude_dirs: Sequence[Path] = (),
    sibling_suffixes: Sequence[str] = (),
) -> tuple[list[Path], list[Path]]:
    """Photos under ``root`` (natural order) and the non-image files ignored.

    ``exclude_dirs`` (resolved) are not entered. A file whose stem is another
    photo's stem plus one of ``sibling_suffixes`` (a trimap or an output kept
    in the same folder as the photos) is not a photo.
    """
    images: list[Path] = []
    ignored: list[Path] = []
    visited: set[Path] = set()

    def scan(folder: Path) -> None:
        real = _resolved(folder)
        if real in visited:  # a symbolic link back up the tree
            return
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: _natural_key(e.name))
        except OSError as exc:
            raise DimStudioError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
        files, dirs = [], []
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                dirs.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                files.append(Path(entry.path))
            else:
                ignored.append(Path(entry.path))
        stems = {p.stem.casefold() for p in files}
        for path in files:
            siblings = _strip_suffix(path.stem, sibling_suffixes)
            if any(base.casefold() in stems for base, _ in siblings):
                continue
            images.append(path)
        if recursive:
            for sub in dirs:
                if any(_inside(_resolved(sub), ex) for ex in exclude_dirs):
                    continue
                scan(sub)

    scan(root)
    return images, ignored


def _check_folder(path: str | os.PathLike[str], what: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise DimStudioError(f"{folder}: {what} folder not found")
    if not folder.is_dir():
        raise DimStudioError(f"{folder}: the {what} folder is a file, not a folder")
    return folder


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
    """Pair every photo under ``images_dir`` with its partner by stem.

    Returns ``(pairs, ignored)``: ``pair.partner`` is None when no partner was
    found; ``ignored`` lists the non-image files that were skipped. Partner
    files inside ``images_dir`` itself (same folder for both) are not taken
    for photos.
    """
    images_root = _check_folder(images_dir, "images")
    partner_root = _check_folder(partners_dir, what)
    images_res = _resolved(images_root)
    partner_res = _resolved(partner_root)
    excluded = [_resolved(Path(p)) for p in exclude_dirs]
    siblings = list(sibling_suffixes)
    if partner_res == images_res:
        siblings += list(suffixes)
    elif _inside(partner_res, images_res):
        excluded.append(partner_res)
    images, ignored = _list_images(images_root, recursive, excluded, siblings)
    index = _PartnerIndex(partner_root, suffixes)
    pairs = []
    for path in images:
        rel_path = path.relative_to(images_root)
        rel_dir = rel_path.parent.as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        partner = index.find(rel_dir, path.stem, exclude=_resolved(path))
        pairs.append(Pair(path, rel_path.as_posix(), partner))
    return pairs, ignored


# --------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------


@dataclass
class BatchItem:
    """One photo of a batch and what the run will do with it."""

    image: Path
    rel: str  # path relative to the images folder, "/"-separated (the report's key)
    partner: Optional[Path]  # its trimap or mask
    outputs: dict[str, Path]  # kind -> output path
    status: str = TODO  # todo | skip | missing-trimap | invalid | kept
    reason: str = ""
    previous: Optional[dict[str, Any]] = None  # kept: (status + entry) of the old report

    @property
    def name(self) -> str:
        return self.rel


@dataclass
class BatchPlan:
    """What ``run_batch`` will do: the items with their status, and the settings."""

    images_dir: Path
    out_dir: Path
    trimaps_dir: Optional[Path]
    masks_dir: Optional[Path]
    recursive: bool
    outputs: tuple[str, ...]
    overwrite: bool
    retry_failed: bool
    items: list[BatchItem]
    ignored: list[Path] = field(default_factory=list)

    @property
    def report_path(self) -> Path:
        return self.out_dir / REPORT_NAME

    @property
    def todo(self) -> list[BatchItem]:
        return [item for item in self.items if item.status == TODO]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.status] = out.get(item.status, 0) + 1
        return out


def output_paths(out_dir: Path, rel: str, outputs: Sequence[str]) -> dict[str, Path]:
    """``OUT/<sub-folder>/<stem>_<kind>.png`` for each requested kind."""
    rel_path = Path(rel)
    folder = out_dir / rel_path.parent
    return {kind: folder / f"{rel_path.stem}_{kind}.png" for kind in outputs}


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, EXIF orientation applied; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            try:
                orientation = img.getexif().get(0x0112, 1)
            except Exception:  # noqa: BLE001 - a broken EXIF block is not our concern here
                orientation = 1
    except Exception:  # noqa: BLE001 - unreadable: the run will report why
        return None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width, height


def _output_complete(path: Path, size: tuple[int, int]) -> bool:
    """Cheap completeness check: PNG header size matches and the data ends with IEND."""
    from PIL import Image

    try:
        if not path.is_file() or path.stat().st_size < 33:
            return False
        with Image.open(path) as img:
            if img.size != size:
                return False
            if img.format == "PNG":
                with open(path, "rb") as fh:
                    fh.seek(-12, os.SEEK_END)
                    if b"IEND" not in fh.read(12):
                        return False
        return True
    except Exception:  # noqa: BLE001 - anything unreadable is simply not complete
        return False


def _check_outputs(outputs: Sequence[str]) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(outputs))
    if not kinds:
        raise DimStudioError("choose at least one output: " + ", ".join(OUTPUT_KINDS))
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown:
        raise DimStudioError(
            f"unknown output '{unknown[0]}'; choose from: {', '.join(OUTPUT_KINDS)}"
        )
    return kinds


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a batch report; a clear error when it is missing or damaged."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DimStudioError(
            f"{path}: no report from an earlier run, so there is nothing to retry; "
            "run without --retry-failed first"
        ) from None
    except (OSError, ValueError) as exc:
        raise DimStudioError(f"{path}: cannot read the batch report ({exc})") from None
    if not isinstance(data, dict):
        raise DimStudioError(f"{path}: not a DIM Studio batch report")
    return data


def _previous_entries(report: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    for status, key in _REPORT_LISTS.items():
        for entry in report.get(key) or []:
            if isinstance(entry, dict) and isinstance(entry.get("image"), str):
                entries[entry["image"]] = (status, entry)
    return entries


def plan_batch(
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    trimaps_dir: str | os.PathLike[str] | None = None,
    masks_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    outputs: Sequence[str] = ("alpha",),
    overwrite: bool = False,
    retry_failed: bool = False,
) -> BatchPlan:
    """Find the photos, pair them and decide what to do with each one.

    Exactly one of ``trimaps_dir`` and ``masks_dir`` is given. Raises
    ``DimStudioError`` when a folder is missing or holds no photos.
    """
    if (trimaps_dir is None) == (masks_dir is None):
        raise DimStudioError("give either a trimaps folder or a masks folder (exactly one)")
    kinds = _check_outputs(outputs)
    images_root = _check_folder(images_dir, "images")
    out_root = Path(out_dir)
    if out_root.exists() and not out_root.is_dir():
        raise DimStudioError(f"{out_root}: the output folder is a file, not a folder")
    partner_dir = trimaps_dir if trimaps_dir is not None else masks_dir
    suffixes = TRIMAP_SUFFIXES if trimaps_dir is not None else MASK_SUFFIXES
    what = "trimap" if trimaps_dir is not None else "mask"
    partner_root = _check_folder(partner_dir, what + "s")  # type: ignore[arg-type]

    images_res = _resolved(images_root)
    out_res = _resolved(out_root)
    exclude: list[Path] = []
    siblings: list[str] = []
    if out_res == images_res:
        # Our own outputs next to the photos are not photos.
        siblings = [f"_{kind}" for kind in OUTPUT_KINDS]
    elif _inside(out_res, images_res):
        exclude.append(out_res)
    pairs, ignored = find_pairs(
        images_root, partner_root, suffixes, recursive=recursive,
        exclude_dirs=exclude, sibling_suffixes=siblings, what=what + "s",
    )
    if not pairs:
        hint = ""
        if not recursive and any(p.is_dir() and not _is_hidden(p.name) for p in images_root.iterdir()):
            hint = " (it has sub-folders: add --recursive to look in them)"
        raise DimStudioError(
            f"no images found in {images_root}{hint}; images need one of the extensions "
            + ", ".join(sorted(IMAGE_SUFFIXES))
        )

    inputs = {_resolved(p.image) for p in pairs} | {
        _resolved(p.partner) for p in pairs if p.partner is not None
    }
    index = _PartnerIndex(partner_root, suffixes)
    items: list[BatchItem] = []
    seen_outputs: dict[Path, str] = {}
    for pair in pairs:
        item = BatchItem(pair.image, pair.rel, pair.partner, output_paths(out_root, pair.rel, kinds))
        items.append(item)
        first_output = _resolved(next(iter(item.outputs.values())))
        clash = next((_resolved(p) for p in item.outputs.values() if _resolved(p) in inputs), None)
        if first_output in seen_outputs:
            item.status = INVALID
            item.reason = (
                f"{pair.rel} and {seen_outputs[first_output]} would write the same outputs "
                f"({next(iter(item.outputs.values())).name}); rename one of them"
            )
        elif clash is not None:
            item.status = INVALID
            item.reason = (
                f"its output {clash.name} would overwrite an input file ({clash}); "
                "choose another output folder"
            )
        elif pair.partner is None:
            item.status = MISSING
            folder = partner_root / Path(pair.rel).parent
            item.reason = (
                f"no {what} found: looked for {index.describe(pair.image.stem)} "
                f"with an image extension in {folder}"
            )
        seen_outputs.setdefault(first_output, pair.rel)

    if not overwrite:
        for item in items:
            if item.status != TODO:
                continue
            size = _image_size(item.image)
            if size is not None and all(_output_complete(p, size) for p in item.outputs.values()):
                item.status = SKIP
                item.reason = "outputs already exist (use --overwrite to redo)"

    if retry_failed:
        previous = _previous_entries(read_report(out_root / REPORT_NAME))
        kept = []
        for item in items:
            prev = previous.get(item.rel)
            if prev is None:
                continue  # not part of the earlier run: not a retry
            status, entry = prev
            if status in (FAILED, NOT_PROCESSED):
                if item.status == SKIP:
                    item.status, item.reason = TODO, ""
            else:
                item.status = KEPT
                item.reason = "kept from the earlier run"
                item.previous = {"status": status, "entry": entry}
            kept.append(item)
        items = kept

    return BatchPlan(
        images_dir=images_root, out_dir=out_root,
        trimaps_dir=Path(trimaps_dir) if trimaps_dir is not None else None,
        masks_dir=Path(masks_dir) if masks_dir is not None else None,
        recursive=recursive, outputs=kinds, overwrite=overwrite, retry_failed=retry_failed,
        items=items, ignored=ignored,
    )


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchEvent:
    """A progress event of ``run_batch``, delivered on the calling thread.

    ``kind``: "start", "file-started", "file-progress" (``fraction`` of the
    current file's matting), "file-done", "file-failed", "file-skipped",
    "file-not-processed" or "finished". ``done`` counts the files finished so
    far (whatever their outcome) out of ``total``.
    """

    kind: str
    done: int
    total: int
    name: str = ""  # the photo's path relative to the images folder
    reason: str = ""
    seconds: float = 0.0
    fraction: float = 0.0


@dataclass
class FileResult:
    """What happened to one photo."""

    image: str  # relative to the images folder
    status: str  # done | failed | skipped | not-processed
    partner: Optional[str] = None
    outputs: list[str] = field(default_factory=list)  # relative to the output folder
    seconds: Optional[float] = None
    reason: str = ""
    entry: Optional[dict[str, Any]] = None  # a kept entry of an earlier report, verbatim
    partner_key: str = "trimap"  # or "mask"

    def to_dict(self) -> dict[str, Any]:
        if self.entry is not None:
            return dict(self.entry)
        out: dict[str, Any] = {"image": self.image, self.partner_key: self.partner}
        if self.status == DONE:
            out["outputs"] = self.outputs
            out["seconds"] = round(self.seconds or 0.0, 4)
        else:
            out["reason"] = self.reason
        return out


@dataclass
class BatchReport:
    """The outcome of a batch run; ``to_dict()`` is what the JSON report holds."""

    plan: BatchPlan
    engine: str
    engine_description: str
    settings: dict[str, Any]
    started: str
    finished: str = ""
    seconds: float = 0.0
    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False
    cancelled: bool = False
    path: Optional[Path] = None

    def _with(self, status: str) -> list[FileResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[FileResult]:
        return self._with(DONE)

    @property
    def failed(self) -> list[FileResult]:
        return self._with(FAILED)

    @property
    def skipped(self) -> list[FileResult]:
        return self._with(SKIPPED)

    @property
    def not_processed(self) -> list[FileResult]:
        return self._with(NOT_PROCESSED)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.interrupted:
            return "interrupted"
        return "completed"

    def totals(self) -> dict[str, int]:
        return {
            "images": len(self.results),
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "not_processed": len(self.not_processed),
        }

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        data: dict[str, Any] = {
            "tool": f"dim-studio {__version__}",
            "engine": self.engine,
            "engine_description": self.engine_description,
            "images": str(plan.images_dir),
            "trimaps": str(plan.trimaps_dir) if plan.trimaps_dir is not None else None,
            "masks": str(plan.masks_dir) if plan.masks_dir is not None else None,
            "output": str(plan.out_dir),
            "settings": self.settings,
            "started": self.started,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
            "status": self.status,
            "totals": self.totals(),
        }
        for status, key in _REPORT_LISTS.items():
            data[key] = [r.to_dict() for r in self.results if r.status == status]
        return data

    def write(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the JSON report atomically (default: ``OUT/dim-studio-report.json``)."""
        target = Path(path) if path is not None else self.plan.report_path
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        try:
            with atomic_output(target) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            from .errors import ImageWriteError

            raise ImageWriteError(f"{target}: cannot write the report ({exc.strerror or exc})") from None
        self.path = target
        return target


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DimStudioError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Runner:
    def __init__(
        self,
        plan: BatchPlan,
        engine: Engine,
        band: int,
        background: Background | None,
        depth: int,
        on_event: Callable[[BatchEvent], None] | None,
        cancel: Callable[[], bool] | None,
        stop: Callable[[], bool] | None,
        report: BatchReport,
    ) -> None:
        self.plan = plan
        self.engine = engine
        self.band = band
        self.background = background
        self.depth = depth
        self.on_event = on_event
        self.cancel = cancel
        self.stop = stop
        self.report = report
        self.total = len(plan.items)
        self.finished = 0
        self.results: dict[str, FileResult] = {}
        self.pending: tuple[BatchItem, Future, float] | None = None

    # -- events -------------------------------------------------------------

    def emit(self, kind: str, item: BatchItem | None = None, **kw: Any) -> None:
        if self.on_event is not None:
            self.on_event(BatchEvent(kind, self.finished, self.total,
                                     item.rel if item is not None else "", **kw))

    def record(self, item: BatchItem, result: FileResult, event: str) -> None:
        self.results[item.rel] = result
        self.finished += 1
        self.emit(event, item, reason=result.reason, seconds=result.seconds or 0.0)

    def result(self, item: BatchItem, status: str, **kw: Any) -> FileResult:
        partner = str(item.partner) if item.partner is not None else None
        key = "mask" if self.plan.masks_dir is not None else "trimap"
        return FileResult(item.rel, status, partner, partner_key=key, **kw)

    def fail(self, item: BatchItem, reason: str) -> None:
        self.record(item, self.result(item, FAILED, reason=reason), "file-failed")

    # -- reading and writing (worker threads) --------------------------------

    def read(self, item: BatchItem) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(item.image)
        assert item.partner is not None
        if self.plan.masks_dir is not None:
            mask = read_mask(item.partner)
            check_same_size(image.shape, mask.shape, "image", f"mask {item.partner.name}")
            trimap = trimap_from_mask(mask, self.band)
        else:
            trimap = read_trimap(item.partner, image.shape[:2])
        return image, trimap

    def write(self, item: BatchItem, image: np.ndarray, alpha: np.ndarray) -> list[Path]:
        out = item.outputs
        return write_outputs(
            image, alpha,
            alpha_path=out.get("alpha"), cutout_path=out.get("cutout"),
            composite_path=out.get("composite"),
            background=self.background, depth=self.depth,
        )

    def collect_write(self, block: bool) -> None:
        """Record the previous file once its outputs are written."""
        if self.pending is None:
            return
        item, future, seconds = self.pending
        if not block and not future.done():
            return
        self.pending = None
        try:
            written = future.result()
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            self.fail(item, _reason(exc))
            return
        outputs = []
        for path in written:
            try:
                outputs.append(Path(path).relative_to(self.plan.out_dir).as_posix())
            except ValueError:
                outputs.append(str(path))
        self.record(item, self.result(item, DONE, outputs=outputs, seconds=seconds), "file-done")

    # -- the loop --------------------------------------------------------------

    def stopping(self) -> str | None:
        if self.cancel is not None and self.cancel():
            return "cancelled"
        if self.stop is not None and self.stop():
            return "interrupted"
        return None

    def progress(self, item: BatchItem) -> Callable[[float], None]:
        def report(fraction: float) -> None:
            self.collect_write(block=False)
            self.emit("file-progress", item, fraction=fraction)

        return report

    def run(self) -> None:
        todo = self.plan.todo
        reader = ThreadPoolExecutor(1, thread_name_prefix="dim-batch-read")
        writer = ThreadPoolExecutor(1, thread_name_prefix="dim-batch-write")
        stop_reason: str | None = None
        next_read: Future | None = None
        try:
            for item in self.plan.items:
                if item.status == SKIP:
                    self.record(item, self.result(item, SKIPPED, reason=item.reason), "file-skipped")
                elif item.status == KEPT:
                    prev = item.previous or {}
                    result = self.result(item, prev.get("status", SKIPPED), reason=item.reason,
                                         entry=prev.get("entry"))
                    self.record(item, result, "file-skipped")
                elif item.status in (MISSING, INVALID):
                    self.fail(item, item.reason)
            if todo:
                next_read = reader.submit(self.read, todo[0])
            for i, item in enumerate(todo):
                stop_reason = self.stopping()
                if stop_reason:
                    break
                current, next_read = next_read, None
                self.emit("file-started", item)
                try:
                    assert current is not None
                    image, trimap = current.result()
                except Exception as exc:  # noqa: BLE001 - unreadable input: recorded
                    image = trimap = None
                    read_error: Exception | None = exc
                else:
                    read_error = None
                # Read the next pair while this one is matted (one read ahead).
                if i + 1 < len(todo):
                    next_read = reader.submit(self.read, todo[i + 1])
                if read_error is not None:
                    self.collect_write(block=False)
                    self.fail(item, _reason(read_error))
                    continue
                start = time.perf_counter()
                try:
                    alpha = self.engine.estimate(image, trimap, progress=self.progress(item),
                                                 cancel=self.cancel)
                except Cancelled:
                    stop_reason = "cancelled"
                    break
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
                    self.collect_write(block=False)
                    self.fail(item, _reason(exc))
                    continue
                seconds = time.perf_counter() - start
                self.collect_write(block=True)  # at most one result waits to be written
                self.pending = (item, writer.submit(self.write, item, image, alpha), seconds)
                self.collect_write(block=False)
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        finally:
            if next_read is not None:
                next_read.cancel()
            reader.shutdown(wait=True, cancel_futures=True)
            try:
                # A finished result is worth keeping: let its write complete.
                self.collect_write(block=True)
            except KeyboardInterrupt:
                stop_reason = "interrupted"
            writer.shutdown(wait=True)
            if stop_reason == "cancelled":
                self.report.cancelled = True
            elif stop_reason == "interrupted":
                self.report.interrupted = True
            for item in todo:
                if item.rel not in self.results:
                    reason = f"not processed: {stop_reason or 'the run stopped on an error'}"
                    self.record(item, self.result(item, NOT_PROCESSED, reason=reason),
                                "file-not-processed")


def run_batch(
    plan: BatchPlan,
    engine: Engine,
    *,
    band: int = 10,
    background: BackgroundSpec = None,
    depth: int = 8,
    on_event: Callable[[BatchEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    stop: Callable[[], bool] | None = None,
    write_report: bool = True,
) -> BatchReport:
    """Matte every ``todo`` item of ``plan`` with ``engine`` (created once by the caller).

    ``band`` is the unknown band (pixels each side of the edge) of trimaps made
    from masks; ``background`` is used for composites; ``depth`` is 8 or 16.
    ``on_event(BatchEvent)`` is called on this thread. ``cancel()`` is polled
    between files and passed to the engine, so it also abandons the current
    file (recorded as not processed, nothing written); ``stop()`` is polled
    only between files (finish the current one, then stop). A
    KeyboardInterrupt ends the run the same way. The unfinished files are
    marked "not processed", the report is written (``write_report``) and
    returned, with ``cancelled`` / ``interrupted`` set.
    """
    if depth not in (8, 16):
        raise DimStudioError(f"bit depth must be 8 or 16, not {depth}")
    if band < 0:
        raise TrimapError(f"the band width must be 0 or more pixels, not {band}")
    bg = resolve_background(background) if "composite" in plan.outputs else None
    settings: dict[str, Any] = {
        "outputs": list(plan.outputs),
        "alpha_depth": depth,
        "recursive": plan.recursive,
        "overwrite": plan.overwrite,
        "retry_failed": plan.retry_failed,
    }
    if plan.masks_dir is not None:
        settings["band"] = band
    if bg is not None:
        settings["background"] = bg.label or "image"
    report = BatchReport(
        plan=plan, engine=engine.name or type(engine).__name__,
        engine_description=engine.describe(), settings=settings, started=_now(),
    )
    runner = _Runner(plan, engine, band, bg, depth, on_event, cancel, stop, report)
    t0 = time.perf_counter()
    runner.emit("start")
    try:
        runner.run()
    finally:
        report.results = [runner.results[item.rel] for item in plan.items if item.rel in runner.results]
        report.finished = _now()
        report.seconds = time.perf_counter() - t0
        if write_report:
            report.write()
    runner.emit("finished")
    return report
