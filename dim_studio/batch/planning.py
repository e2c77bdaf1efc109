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
    entry of that report as it was.

An output never overwrites an input file, and two photos that would write the
same outputs are both reported instead of one silently replacing the other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..enums import TextEnum
from ..errors import DimStudioError
from ..images import IMAGE_SUFFIXES
from ..pairing import (
    MASK_SUFFIXES, TRIMAP_SUFFIXES, PartnerIndex, check_folder, find_pairs, is_hidden, is_inside,
    resolved,
)

__all__ = [
    "OUTPUT_KINDS", "REPORT_LISTS", "REPORT_NAME",
    "BatchItem", "BatchPlan", "FileStatus", "PlanStatus", "output_paths", "plan_batch", "read_report",
]

REPORT_NAME = "dim-studio-report.json"
OUTPUT_KINDS = ("alpha", "cutout", "composite")


class PlanStatus(TextEnum):
    """What a run will do with one photo (``BatchItem.status``)."""

    TODO = "todo"
    SKIP = "skip"  # its outputs already exist
    MISSING_TRIMAP = "missing-trimap"  # no trimap (or mask) found: reported as failed
    INVALID = "invalid"  # its outputs would clash: reported as failed
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


def _previous_entries(report: dict[str, Any]) -> dict[str, tuple[FileStatus, dict[str, Any]]]:
    entries: dict[str, tuple[FileStatus, dict[str, Any]]] = {}
    for status, key in REPORT_LISTS.items():
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
    pairs, ignored = find_pairs(
        images_root, partner_root, suffixes, recursive=recursive,
        exclude_dirs=exclude, sibling_suffixes=siblings, what=what + "s",
    )
    if not pairs:
        hint = ""
        if not recursive and any(p.is_dir() and not is_hidden(p.name) for p in images_root.iterdir()):
            hint = " (it has sub-folders: add --recursive to look in them)"
        raise DimStudioError(
            f"no images found in {images_root}{hint}; images need one of the extensions "
            + ", ".join(sorted(IMAGE_SUFFIXES))
        )

    inputs = {resolved(p.image) for p in pairs} | {
        resolved(p.partner) for p in pairs if p.partner is not None
    }
    index = PartnerIndex(partner_root, suffixes)
    items: list[BatchItem] = []
    seen_outputs: dict[Path, str] = {}
    for pair in pairs:
        item = BatchItem(pair.image, pair.rel, pair.partner, output_paths(out_root, pair.rel, kinds))
        items.append(item)
        first_output = resolved(next(iter(item.outputs.values())))
        clash = next((resolved(p) for p in item.outputs.values() if resolved(p) in inputs), None)
        if first_output in seen_outputs:
            item.status = PlanStatus.INVALID
            item.reason = (
                f"{pair.rel} and {seen_outputs[first_output]} would write the same outputs "
                f"({next(iter(item.outputs.values())).name}); rename one of them"
            )
        elif clash is not None:
            item.status = PlanStatus.INVALID
            item.reason = (
                f"its output {clash.name} would overwrite an input file ({clash}); "
                "choose another output folder"
            )
        elif pair.partner is None:
            item.status = PlanStatus.MISSING_TRIMAP
            folder = partner_root / Path(pair.rel).parent
            item.reason = (
                f"no {what} found: looked for {index.describe(pair.image.stem)} "
                f"with an image extension in {folder}"
            )
        seen_outputs.setdefault(first_output, pair.rel)

    if not overwrite:
        for item in items:
            if item.status != PlanStatus.TODO:
                continue
            size = _image_size(item.image)
            if size is not None and all(_output_complete(p, size) for p in item.outputs.values()):
                item.status = PlanStatus.SKIP
                item.reason = "outputs already exist (use --overwrite to redo)"

    if retry_failed:
        previous = _previous_entries(read_report(out_root / REPORT_NAME))
        kept = []
        for item in items:
            prev = previous.get(item.rel)
            if prev is None:
                continue  # not part of the earlier run: not a retry
            status, entry = prev
            if status in (FileStatus.FAILED, FileStatus.NOT_PROCESSED):
                if item.status == PlanStatus.SKIP:
                    item.status, item.reason = PlanStatus.TODO, ""
            else:
                item.status = PlanStatus.KEPT
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

