"""Planning a batch: which photos, their partners, their output paths and what to do with each.

Output names
    ``OUT/<sub-folder>/<stem>_alpha.png``, ``<stem>_cutout.png`` (RGBA: the
    estimated foreground colours with the alpha) and ``<stem>_composite.png``
    (over the chosen background). The report is ``OUT/dim-studio-report.json``.

Resuming
    Outputs that already exist and are complete (a PNG whose header has the
    photo's size and whose data ends with the IEND chunk) are skipped unless
    ``overwrite=True``; ``retry_failed=True`` re-runs only the files listed as
    failed (or not processed) in the previous report and keeps every other
    entry of that report as it was, unless its outputs have gone missing or
    are incomplete since (then it is redone). A previous report that is not a
    well-formed report is set aside as ``dim-studio-report.json.bad`` with a
    warning (``BatchPlan.warnings``) and the run resumes as without
    ``retry_failed``.

Inputs are never written: a plan whose output would land on a photo, a
trimap or mask, or the background image (or whose two outputs of one photo
are one file) is refused as a whole before anything is written. Two photos
that would write the same outputs are reported instead of one silently
replacing the other.

One bad entry never stops the run: a photo or partner that is a link loop,
a pipe or a device, and a sub-folder that cannot be listed, are planned as
``PlanStatus.INVALID`` items with the reason (a folder's item is named
``<sub-folder>/``), so the report lists them as failed and the rest is done.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..atomic import check_outputs
from ..enums import TextEnum
from ..errors import DimStudioError
from ..export import CHECKERBOARD
from ..images import IMAGE_SUFFIXES, image_size, is_image_path
from ..pairing import (
    MASK_SUFFIXES, TRIMAP_SUFFIXES, PartnerIndex, Unreadable, check_folder, is_hidden, is_inside,
    list_pairs, resolved,
)

__all__ = [
    "OUTPUT_KINDS", "REPORT_LISTS", "REPORT_NAME",
    "BatchItem", "BatchPlan", "FileStatus", "PlanStatus", "background_path", "check_background",
    "output_paths", "plan_batch", "read_report",
]

REPORT_NAME = "dim-studio-report.json"
OUTPUT_KINDS = ("alpha", "cutout", "composite")


class PlanStatus(TextEnum):
    """What a run will do with one photo (``BatchItem.status``)."""

    TODO = "todo"
    SKIP = "skip"  # its outputs already exist
    MISSING_TRIMAP = "missing-trimap"  # no trimap (or mask) found: reported as failed
    # reported as failed: its outputs would clash with another photo's, or the
    # photo, its partner or its sub-folder cannot be read at all
    INVALID = "invalid"
    KEPT = "kept"  # retry_failed: an entry of the previous report left as it was


class FileStatus(TextEnum):
    """What happened to one photo: the report's lists (``FileResult.status``)."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_PROCESSED = "not-processed"


#: status -> the report's key for the list of files with that status
REPORT_LISTS = {
    FileStatus.DONE: "done",
    FileStatus.FAILED: "failed",
    FileStatus.SKIPPED: "skipped",
    FileStatus.NOT_PROCESSED: "not_processed",
}


@dataclass
class BatchItem:
    """One photo of a batch and what the run will do with it."""

    image: Path
    rel: str  # path relative to the images folder, "/"-separated (the report's key)
    partner: Optional[Path]  # its trimap or mask
    outputs: dict[str, Path]  # kind -> output path
    status: PlanStatus = PlanStatus.TODO
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
    warnings: list[str] = field(default_factory=list)  # one line each, for the user
    background: Optional[str] = None  # the --background checked against the outputs

    @property
    def report_path(self) -> Path:
        return self.out_dir / REPORT_NAME

    @property
    def todo(self) -> list[BatchItem]:
        return [item for item in self.items if item.status == PlanStatus.TODO]

    def counts(self) -> dict[PlanStatus, int]:
        out: dict[PlanStatus, int] = {}
        for item in self.items:
            out[item.status] = out.get(item.status, 0) + 1
        return out


def output_paths(out_dir: Path, rel: str, outputs: Sequence[str]) -> dict[str, Path]:
    """``OUT/<sub-folder>/<stem>_<kind>.png`` for each requested kind."""
    rel_path = Path(rel)
    folder = out_dir / rel_path.parent
    return {kind: folder / f"{rel_path.stem}_{kind}.png" for kind in outputs}


def _image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the file header, EXIF orientation applied; None if unreadable."""
    try:
        return image_size(path)
    except DimStudioError:  # unreadable: the run will report why
        return None


def _output_complete(path: Path, size: tuple[int, int]) -> bool:
    """Cheap completeness check: the header's size matches and a PNG ends with IEND."""
    try:
        if not path.is_file() or path.stat().st_size < 33 or _image_size(path) != size:
            return False
        if path.suffix.lower() == ".png":
            with open(path, "rb") as fh:
                fh.seek(-12, os.SEEK_END)
                return b"IEND" in fh.read(12)
        return True
    except OSError:  # anything unreadable is simply not complete
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


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None.

    Checked before any reader opens it: a pipe would block the run forever,
    and a link loop's own error names no cause a user recognises.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path}: symbolic link loop"
        if isinstance(exc, FileNotFoundError):
            return f"{path}: file not found"
        return f"{path}: cannot read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return f"{path}: is a folder, not an image"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file (a pipe, socket or device)"
    return None


class _FileKeys:
    """What makes two paths one file: the resolved path, and (device, inode) when it exists.

    A folder is resolved once for all its files (a full ``resolve`` per file
    would cost more than the rest of the planning); only a file that is itself
    a link is resolved on its own.
    """

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}

    def _folder(self, folder: Path) -> Path:
        if folder not in self._folders:
            self._folders[folder] = resolved(folder)
        return self._folders[folder]

    def __call__(self, path: Path) -> set[tuple[Any, ...]]:
        try:
            st = os.lstat(path)
        except OSError:
            return {("path", self._folder(path.parent) / path.name)}  # not written yet
        if not stat.S_ISLNK(st.st_mode):
            return {("path", self._folder(path.parent) / path.name), ("inode", st.st_dev, st.st_ino)}
        keys: set[tuple[Any, ...]] = {("path", resolved(path))}
        try:
            st = os.stat(path)
        except OSError:
            return keys  # a dangling link or a loop: the name decides
        keys.add(("inode", st.st_dev, st.st_ino))
        return keys

    def path(self, path: Path) -> Path:
        """The resolved path alone."""
        return next(key[1] for key in self(path) if key[0] == "path")


def _refuse_outputs_on_inputs(
    items: Sequence[BatchItem], inputs: dict[str, Path], keys: _FileKeys | None = None
) -> None:
    """Raise when an output would land on an input, or one photo's two outputs are one file.

    Inputs are indexed once, so a folder of N photos costs O(N) look-ups;
    ``atomic.check_outputs`` is asked only about a hit, for its message.
    """
    keys = keys or _FileKeys()
    owner: dict[tuple[Any, ...], tuple[str, Path]] = {}
    for role, path in inputs.items():
        for key in keys(path):
            owner.setdefault(key, (role, path))
    for item in items:
        roles = {f"{item.rel} {kind}": path for kind, path in item.outputs.items()}
        hits: dict[str, Path] = {}
        seen: set[tuple[Any, ...]] = set()
        twice = False
        for path in roles.values():
            found = keys(path)
            for key in found & owner.keys():
                role, src = owner[key]
                hits[role] = src
            twice = twice or bool(found & seen)
            seen |= found
        if hits or twice:
            try:
                check_outputs(roles, hits)
            except DimStudioError as exc:
                raise DimStudioError(f"{exc}; choose another output folder") from None


def background_path(spec: object) -> Path | None:
    """The file a ``--background`` spec names (a colour or 'checkerboard' names none)."""
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        return None
    if str(spec).strip().lower() == CHECKERBOARD:  # export.resolve_background's order
        return None
    path = Path(spec)
    if os.path.lexists(path) or is_image_path(str(spec)):
        return path
    return None


def check_background(plan: BatchPlan, spec: object) -> None:
    """Refuse a background image that a composite of ``plan`` would overwrite."""
    path = background_path(spec)
    if path is None or "composite" not in plan.outputs:
        return
    _refuse_outputs_on_inputs(plan.items, {"the background image": path})


def _check_report_path(path: Path) -> None:
    # Written last, after every photo: a folder in its way would lose the whole run's record.
    if os.path.isdir(path) and not os.path.islink(path):
        raise DimStudioError(
            f"{path}: is a folder, so the batch report cannot be written; rename or remove it"
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entry_problem(key: str, entry: object) -> str | None:
    if not isinstance(entry, dict):
        return f'an entry of "{key}" is not an object'
    image = entry.get("image")
    if not isinstance(image, str) or not image:
        return f'an entry of "{key}" has no "image" name'
    for name in ("trimap", "mask"):
        if name in entry and not isinstance(entry[name], (str, type(None))):
            return f'"{image}": "{name}" is not a file name'
    if "reason" in entry and not isinstance(entry["reason"], str):
        return f'"{image}": "reason" is not text'
    outputs = entry.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        return f'"{image}": "outputs" is not a list of file names'
    if "seconds" in entry and not (_is_number(entry["seconds"]) and entry["seconds"] >= 0):
        return f'"{image}": "seconds" is not a number of seconds'
    return None


def _report_problem(data: object) -> str | None:
    """What makes ``data`` unusable as a batch report, or None.

    Everything a retry reads or copies into the new report is checked, since
    a kept entry is written back verbatim.
    """
    if not isinstance(data, dict):
        return "not a JSON object"
    totals = data.get("totals", {})
    if not isinstance(totals, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in totals.values()
    ):
        return '"totals" is not a set of counts'
    if "seconds" in data and not _is_number(data["seconds"]):
        return '"seconds" is not a number'
    seen: set[str] = set()
    for key in REPORT_LISTS.values():
        entries = data.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            return f'"{key}" is not a list'
        for entry in entries:
            problem = _entry_problem(key, entry)
            if problem:
                return problem
            if entry["image"] in seen:
                return f'"{entry["image"]}" is listed twice'
            seen.add(entry["image"])
    return None


def _no_report(path: Path) -> DimStudioError:
    return DimStudioError(
        f"{path}: no report from an earlier run, so there is nothing to retry; "
        "run without --retry-failed first"
    )


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and check a batch report; a clear ``DimStudioError`` when it is missing or damaged."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _no_report(path) from None
    except (OSError, ValueError, RecursionError) as exc:
        # ValueError covers bad JSON and bad UTF-8; RecursionError absurdly deep nesting.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DimStudioError(f"{path}: cannot read the batch report ({reason})") from None
    problem = _report_problem(data)
    if problem:
        raise DimStudioError(f"{path}: not a DIM Studio batch report ({problem})")
    return data


def _previous_report(path: Path, warnings: list[str]) -> dict[str, Any] | None:
    """The earlier run's report, or None (with a warning) when it is damaged.

    A damaged report is renamed to ``<name>.bad`` so the evidence survives
    this run's report being written in its place.
    """
    if not os.path.lexists(path):
        raise _no_report(path)  # nothing to set aside: the user asked for a retry of nothing
    try:
        return read_report(path)
    except DimStudioError as exc:
        bad = path.with_name(path.name + ".bad")
        try:
            os.replace(path, bad)
            aside = f"renamed it to {bad.name}"
        except OSError:
            aside = "ignoring it"
        warnings.append(
            f"{exc}; {aside} and redoing every photo whose outputs are missing or incomplete"
        )
        return None


def _previous_entries(report: dict[str, Any]) -> dict[str, tuple[FileStatus, dict[str, Any]]]:
    entries: dict[str, tuple[FileStatus, dict[str, Any]]] = {}
    for status, key in REPORT_LISTS.items():
        for entry in report.get(key) or []:
            entries[entry["image"]] = (status, entry)
    return entries


def _folder_entry(rel: str) -> str:
    """The report name of a sub-folder's item: a trailing "/" tells it from a photo."""
    return rel.rstrip("/") + "/"


def _complete(item: BatchItem) -> bool:
    size = _image_size(item.image)
    return bool(item.outputs) and size is not None and all(
        _output_complete(p, size) for p in item.outputs.values()
    )


def _apply_retry(items: list[BatchItem], previous: dict[str, Any], overwrite: bool) -> list[BatchItem]:
    """Keep what the earlier run did right; redo its failures and its vanished outputs."""
    entries = _previous_entries(previous)
    failed_folders = tuple(
        rel for rel, (status, _) in entries.items()
        if rel.endswith("/") and status in (FileStatus.FAILED, FileStatus.NOT_PROCESSED)
    )
    kept = []
    for item in items:
        prev = entries.get(item.rel)
        if prev is None:
            # A photo in a folder the earlier run could not list was never tried: try it now.
            if item.rel.startswith(failed_folders):
                kept.append(item)
            continue  # not part of the earlier run: not a retry
        status, entry = prev
        if status in (FileStatus.FAILED, FileStatus.NOT_PROCESSED):
            if item.status == PlanStatus.SKIP:
                item.status, item.reason = PlanStatus.TODO, ""
        elif item.status == PlanStatus.TODO and not (overwrite and _complete(item)):
            # Done before, but its outputs went missing or were damaged since (without
            # --overwrite, TODO already means "not complete"): redo it.
            item.reason = ""
        else:
            item.status = PlanStatus.KEPT
            item.reason = "kept from the earlier run"
            item.previous = {"status": status, "entry": entry}
        kept.append(item)
    return kept


def _folder_item(folder: Unreadable) -> BatchItem:
    return BatchItem(
        folder.path, _folder_entry(folder.rel), None, {}, PlanStatus.INVALID,
        f"{folder.reason}; the photos in it were not processed",
    )


def _plan_item(
    pair_image: Path, rel: str, partner: Optional[Path], outputs: dict[str, Path],
    index: PartnerIndex, what: str,
) -> BatchItem:
    item = BatchItem(pair_image, rel, partner, outputs)
    problem = _not_a_file(pair_image) or (_not_a_file(partner) if partner is not None else None)
    if problem:
        item.status, item.reason = PlanStatus.INVALID, problem
    elif partner is None:
        rel_dir = Path(rel).parent.as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        item.status = PlanStatus.MISSING_TRIMAP
        why = index.error(rel_dir)
        looked = (
            f"looked for {index.describe(pair_image.stem)} with an image extension "
            f"in {index.folder(rel_dir)}"
        )
        item.reason = f"no {what} found: {why}" if why else f"no {what} found: {looked}"
    return item


def plan_batch(
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    trimaps_dir: str | os.PathLike[str] | None = None,
    masks_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    outputs: Sequence[str] = ("alpha",),
    overwrite: bool = False,
    retry_failed: bool = False,
    background: str | os.PathLike[str] | None = None,
) -> BatchPlan:
    """Find the photos, pair them and decide what to do with each one.

    Exactly one of ``trimaps_dir`` and ``masks_dir`` is given; ``background``
    is the composites' ``--background`` spec (an image it names is an input).
    Raises ``DimStudioError`` when a folder is missing or holds no photos,
    and when an output would overwrite an input (nothing is written then).
    """
    if (trimaps_dir is None) == (masks_dir is None):
        raise DimStudioError("give either a trimaps folder or a masks folder (exactly one)")
    kinds = _check_outputs(outputs)
    images_root = check_folder(images_dir, "images")
    out_root = Path(out_dir)
    if out_root.exists() and not out_root.is_dir():
        raise DimStudioError(f"{out_root}: the output folder is a file, not a folder")
    partner_dir = trimaps_dir if trimaps_dir is not None else masks_dir
    suffixes = TRIMAP_SUFFIXES if trimaps_dir is not None else MASK_SUFFIXES
    what = "trimap" if trimaps_dir is not None else "mask"
    partner_root = check_folder(partner_dir, what + "s")  # type: ignore[arg-type]

    images_res = resolved(images_root)
    out_res = resolved(out_root)
    exclude: list[Path] = []
    siblings: list[str] = []
    if out_res == images_res:
        # Our own outputs next to the photos are not photos.
        siblings = [f"_{kind}" for kind in OUTPUT_KINDS]
    elif is_inside(out_res, images_res):
        exclude.append(out_res)
    index = PartnerIndex(partner_root, suffixes)
    listing = list_pairs(
        images_root, partner_root, suffixes, recursive=recursive,
        exclude_dirs=exclude, sibling_suffixes=siblings, what=what + "s", index=index,
    )
    pairs = listing.pairs
    if not pairs and not listing.unreadable:
        hint = ""
        if not recursive and any(p.is_dir() and not is_hidden(p.name) for p in images_root.iterdir()):
            hint = " (it has sub-folders: add --recursive to look in them)"
        raise DimStudioError(
            f"no images found in {images_root}{hint}; images need one of the extensions "
            + ", ".join(sorted(IMAGE_SUFFIXES))
        )

    items: list[BatchItem] = []
    inputs: dict[str, Path] = {}
    keys = _FileKeys()
    seen_outputs: dict[Path, str] = {}
    for pair in pairs:
        item = _plan_item(pair.image, pair.rel, pair.partner,
                          output_paths(out_root, pair.rel, kinds), index, what)
        items.append(item)
        inputs[f"the photo {pair.rel}"] = pair.image
        if pair.partner is not None:
            inputs[f"the {what} of {pair.rel}"] = pair.partner
        first = next(iter(item.outputs.values()))
        first_output = keys.path(first)
        if first_output in seen_outputs and item.status == PlanStatus.TODO:
            item.status = PlanStatus.INVALID
            item.reason = (
                f"{pair.rel} and {seen_outputs[first_output]} would write the same outputs "
                f"({first.name}); rename one of them"
            )
        seen_outputs.setdefault(first_output, pair.rel)
    items.extend(_folder_item(folder) for folder in listing.unreadable)

    plan = BatchPlan(
        images_dir=images_root, out_dir=out_root,
        trimaps_dir=Path(trimaps_dir) if trimaps_dir is not None else None,
        masks_dir=Path(masks_dir) if masks_dir is not None else None,
        recursive=recursive, outputs=kinds, overwrite=overwrite, retry_failed=retry_failed,
        items=items, ignored=listing.ignored,
        background=str(background) if background is not None else None,
    )
    # Refused before anything is read or written: the user fixes the command, not a photo.
    bg_path = background_path(background)
    if bg_path is not None and "composite" in kinds:
        inputs["the background image"] = bg_path
    _refuse_outputs_on_inputs(items, inputs, keys)
    _check_report_path(plan.report_path)

    if not overwrite:
        for item in items:
            if item.status == PlanStatus.TODO and _complete(item):
                item.status = PlanStatus.SKIP
                item.reason = "outputs already exist (use --overwrite to redo)"

    if retry_failed:
        previous = _previous_report(plan.report_path, plan.warnings)
        if previous is not None:
            plan.items = _apply_retry(items, previous, overwrite)
    return plan
