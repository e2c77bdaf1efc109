"""Where training foregrounds and backgrounds come from.

Two layouts of foregrounds:

- **Adobe Composition-1k as distributed**: ``ROOT/Training_set/`` holds
  ``training_fg_names.txt`` and ``training_bg_names.txt`` and the
  foregrounds and alphas under ``Adobe-licensed images/{fg,alpha}/`` and
  ``Other/{fg,alpha}/`` (either folder may be missing). A foreground named
  in the list is looked up in both, in that order.
- **A plain folder of photo/alpha pairs**, paired by stem like ``batch``
  (``doll.png`` with ``doll_alpha.png``, in the same folder or in an
  ``alphas/`` folder beside an ``images/`` folder, or in the folder given
  as ``alphas``). Photos are not
  foregrounds: their foreground and background colours are estimated from
  the alpha (``compose.estimate_layers``) once, and cached as ``.npy`` files
  in the run's output folder so a resumed run and every worker reuse them.

Backgrounds (MS COCO in the paper) are any folder of photos. With
Composition-1k and ``training_bg_names.txt`` naming files that exist in it,
foreground ``i`` uses the listed backgrounds ``i*N ... i*N + N - 1`` (the
paper's fixed compositions, N = 100); otherwise each of a foreground's N
compositions gets a background drawn from the folder by the run's seed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import DimStudioError
from ..images import image_size, read_alpha, read_image
from ..net.importers import sha256_file
from ..pairing import ALPHA_SUFFIXES, check_folder, find_pairs, list_images

__all__ = [
    "ADOBE_FOLDER",
    "OTHER_FOLDER",
    "Foreground",
    "TrainingData",
    "TrainingDataError",
    "find_backgrounds",
    "find_training_data",
    "read_hard_list",
]

TRAINING_SET = "Training_set"
FG_NAMES = "training_fg_names.txt"
BG_NAMES = "training_bg_names.txt"
ADOBE_FOLDER = "Adobe-licensed images"
OTHER_FOLDER = "Other"


class TrainingDataError(DimStudioError):
    """The training data cannot be used as given; the message says what to fix."""


@dataclass(frozen=True)
class Foreground:
    """One foreground: its colours and alpha, or a photo whose layers are estimated."""

    name: str
    image: Path  # the foreground colours (Composition-1k) or the photo (pairs)
    alpha: Path
    #: Cached estimated layers of a photo (None: ``image`` holds the foreground colours).
    layers: Path | None = None
    #: Composition-1k's fixed backgrounds for this foreground, or None (drawn at random).
    backgrounds: tuple[Path, ...] | None = None

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(fg, alpha, own background or None), float32."""
        shape = image_size(self.image)
        alpha = read_alpha(self.alpha, shape, what="alpha")
        if self.layers is None:
            return read_image(self.image), alpha, None
        stack = np.load(self.layers, mmap_mode="r")
        return np.asarray(stack[0], np.float32), alpha, np.asarray(stack[1], np.float32)


@dataclass
class TrainingData:
    """Foregrounds, backgrounds, and how backgrounds are assigned."""

    foregrounds: list[Foreground]
    backgrounds: list[Path]
    layout: str  # "composition-1k" or "pairs"
    notes: list[str] = field(default_factory=list)


def _read_names(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingDataError(f"{path}: cannot read the list ({getattr(exc, 'strerror', None) or exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def read_hard_list(path: str | os.PathLike[str]) -> set[str]:
    """Foreground names (with or without extension), one per line; '#' starts a comment."""
    names = _read_names(Path(path))
    if not names:
        raise TrainingDataError(f"{path}: the hard list names no foreground")
    return set(names)


def _composition_1k(root: Path) -> tuple[list[Foreground], list[str], list[str]]:
    base = root / TRAINING_SET
    names = _read_names(base / FG_NAMES)
    folders = [base / sub for sub in (ADOBE_FOLDER, OTHER_FOLDER) if (base / sub).is_dir()]
    if not folders:
        raise TrainingDataError(
            f"{base}: neither '{ADOBE_FOLDER}' nor '{OTHER_FOLDER}' is there, so no foreground can be found"
        )
    foregrounds, missing = [], []
    for name in names:
        for folder in folders:
            fg, alpha = folder / "fg" / name, folder / "alpha" / name
            if fg.is_file() and alpha.is_file():
                foregrounds.append(Foreground(Path(name).stem, fg, alpha))
                break
        else:
            missing.append(name)
    bg_file = base / BG_NAMES
    bg_names = _read_names(bg_file) if bg_file.is_file() else []
    return foregrounds, missing, bg_names


def _pair_folder(root: Path, alphas_dir: Path | None, cache: Path,
                 progress: Callable[[str], None] | None) -> list[Foreground]:
    images, alphas = root, root
    if alphas_dir is not None:
        alphas = alphas_dir
    elif (root / "images").is_dir() and (root / "alphas").is_dir():
        images, alphas = root / "images", root / "alphas"
    pairs, _ = find_pairs(images, alphas, ALPHA_SUFFIXES, what="alphas")
    found = [(p.rel, p.image, p.partner) for p in pairs if p.partner is not None]
    if not found:
        raise TrainingDataError(
            f"{root}: no photo/alpha pairs found (name each alpha after its photo, e.g. doll.png "
            "and doll_alpha.png, or use images/ and alphas/ folders), and it is not a "
            f"Composition-1k folder ({TRAINING_SET}/{FG_NAMES} is missing)"
        )
    out = []
    for i, (rel, image, alpha) in enumerate(found):
        if progress is not None:
            progress(f"estimating foreground colours {i + 1}/{len(found)}: {rel}")
        out.append(Foreground(Path(rel).stem, image, alpha, estimated_layers(image, alpha, cache)))
    return out


def estimated_layers(image: Path, alpha: Path, cache: Path) -> Path:
    """The photo's estimated (fg, bg) as a (2, H, W, 3) float16 ``.npy`` in ``cache``.

    Named after the two files' contents, so an edited alpha gets new layers
    and a resumed run reuses the old ones.
    """
    digest = hashlib.sha256((sha256_file(image) + sha256_file(alpha)).encode()).hexdigest()
    target = cache / f"{image.stem}-{digest[:16]}.npy"
    if target.is_file():
        return target
    from ..compose import estimate_layers

    photo = read_image(image)
    matte = read_alpha(alpha, photo.shape[:2], what="alpha")
    fg, bg = estimate_layers(photo, matte)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, TrainingDataError) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.stack([fg, bg]).astype(np.float16))
    return target


def find_backgrounds(folder: str | os.PathLike[str]) -> list[Path]:
    """Every photo in ``folder`` (not its sub-folders), in natural order."""
    root = check_folder(folder, "backgrounds")
    found, _ = list_images(root, recursive=False)
    if not found:
        raise TrainingDataError(f"{root}: the backgrounds folder holds no photos")
    return found


def _restrict(foregrounds: list[Foreground], hard: set[str] | None) -> list[Foreground]:
    if not hard:
        return foregrounds
    keep = [f for f in foregrounds if f.name in hard or f.image.name in hard]
    known = {f.name for f in foregrounds} | {f.image.name for f in foregrounds}
    unknown = sorted(n for n in hard if n not in known)
    if unknown:
        raise TrainingDataError(
            f"the hard list names {len(unknown)} foreground(s) not in the training data, "
            f"e.g. {unknown[0]!r}"
        )
    return keep


def find_training_data(
    data: str | os.PathLike[str],
    backgrounds: str | os.PathLike[str] | None,
    *,
    per_foreground: int,
    cache: Path,
    hard: set[str] | None = None,
    alphas: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainingData:
    """Foregrounds from ``data`` (either layout) and backgrounds from ``backgrounds``.

    Composition-1k needs a backgrounds folder; photo/alpha pairs are
    composited over their own estimated background when none is given.
    """
    root = check_folder(data, "training data")
    notes: list[str] = []
    bg_list = find_backgrounds(backgrounds) if backgrounds is not None else []
    if (root / TRAINING_SET / FG_NAMES).is_file():
        foregrounds, missing, bg_names = _composition_1k(root)
        if missing:
            notes.append(f"{len(missing)} listed foreground(s) not found, e.g. {missing[0]!r}")
        if not bg_list:
            raise TrainingDataError(
                "Composition-1k needs backgrounds (MS COCO in the paper): give a folder of photos "
                "with --backgrounds"
            )
        layout = "composition-1k"
        assigned = _assigned_backgrounds(len(foregrounds), missing, bg_names, bg_list, per_foreground, notes)
        if assigned is not None:
            foregrounds = [
                replace(f, backgrounds=tuple(assigned[i * per_foreground:(i + 1) * per_foreground]))
                for i, f in enumerate(foregrounds)
            ]
    else:
        alphas_dir = check_folder(alphas, "alphas") if alphas is not None else None
        foregrounds = _pair_folder(root, alphas_dir, cache, progress)
        layout = "pairs"
        if not bg_list:
            notes.append("no --backgrounds: each photo is composited over its own estimated background")
    foregrounds = _restrict(foregrounds, hard)
    if not foregrounds:
        raise TrainingDataError(f"{root}: no usable foreground")
    return TrainingData(foregrounds, bg_list, layout, notes)


def _assigned_backgrounds(
    count: int,
    missing: Sequence[str],
    bg_names: Sequence[str],
    bg_list: Sequence[Path],
    per_foreground: int,
    notes: list[str],
) -> list[Path] | None:
    """The paper's fixed compositions when the names list and the files allow them.

    Foreground i (in the names list's order) uses backgrounds
    ``i * per_foreground`` onwards; with a listed foreground missing that
    order is lost, and backgrounds are drawn at random.
    """
    if not bg_names or missing:
        return None
    if len(bg_names) < count * per_foreground:
        notes.append(
            f"{BG_NAMES} lists {len(bg_names)} backgrounds, fewer than {count} x "
            f"{per_foreground}: backgrounds are drawn at random instead"
        )
        return None
    by_name = {p.name: p for p in bg_list}
    wanted = bg_names[: count * per_foreground]
    absent = [n for n in wanted if n not in by_name]
    if absent:
        notes.append(
            f"{len(absent)} background(s) named in {BG_NAMES} are not in the backgrounds folder "
            f"(e.g. {absent[0]!r}): backgrounds are drawn at random instead"
        )
        return None
    return [by_name[n] for n in wanted]
