"""Shared fixtures: small synthetic photos with exact ground truth, and a CLI runner.

``make_scene`` composites a soft-edged disc (a warm, slightly shaded
foreground) over a textured background (stripes plus fine noise), so the
matting solvers have real colour statistics to work with, and returns the
photo with its exact alpha, a trimap (unknown band around the soft edge), a
binary mask, and the foreground and background layers. Everything is tiny
(40x30 by default) so tests stay fast on a shared 2-core machine.

Fixtures:
- ``synth``: a ``SyntheticData`` bound to ``tmp_path`` that writes scenes as
  PNG/JPEG files (photo, trimap, mask, alpha) with the names a test asks for,
  plus broken files (truncated PNG, text named .png).
- ``scene``: one default scene (in memory).
- ``run_cli``: runs ``dim_studio.cli.main([...])`` in-process and returns
  ``CliResult(code, out, err)``.
"""

from __future__ import annotations

import json

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest
from PIL import Image

# Keep numeric libraries to one thread each: the test machine is shared.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Numba's compiled PyMatting kernels (dim_studio.numba_cache): a cache that outlives
# the session, kept out of the home folder (compiling them all takes about a minute).
os.environ.setdefault("DIM_STUDIO_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "dim-studio"))


@dataclass
class Scene:
    """A synthetic photo with its exact matte."""

    image: np.ndarray  # float32 (H, W, 3) in [0, 1]
    alpha: np.ndarray  # float32 (H, W) in [0, 1], the exact ground truth
    trimap: np.ndarray  # uint8 (H, W), 0/128/255
    mask: np.ndarray  # float32 (H, W), 0/1 (alpha >= 0.5)
    foreground: np.ndarray  # float32 (H, W, 3)
    background: np.ndarray  # float32 (H, W, 3)
    center: tuple[int, int]  # (x, y) of the disc centre (alpha 1, trimap 255)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports it."""
        return self.width, self.height


def make_scene(
    width: int = 40,
    height: int = 30,
    *,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    softness: float = 2.5,
    band: int = 2,
    seed: int = 0,
    fg_color: Sequence[float] = (0.92, 0.55, 0.18),
) -> Scene:
    """A soft-edged disc over a textured background.

    ``softness`` is the width (pixels) of the alpha ramp at the disc's edge;
    the trimap's unknown band covers every soft pixel plus ``band`` pixels on
    each side. The corners are background (alpha 0), the centre foreground.
    """
    rng = np.random.default_rng(seed)
    cx, cy = center if center is not None else ((width - 1) / 2.0, (height - 1) / 2.0)
    r = radius if radius is not None else 0.3 * min(width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    alpha = np.clip((r - dist) / softness + 0.5, 0.0, 1.0).astype(np.float32)

    # Background: blue-green diagonal stripes with fine noise (a "texture").
    phase = 2 * np.pi * (xx + 0.6 * yy) / 7.0 + rng.uniform(0, 2 * np.pi)
    stripes = 0.5 + 0.5 * np.sin(phase)
    bg = np.stack([0.10 + 0.15 * stripes, 0.35 + 0.30 * stripes, 0.55 + 0.25 * (1 - stripes)], axis=2)
    bg = bg + rng.normal(0.0, 0.02, bg.shape)
    # Foreground: a warm colour, gently shaded so it is not perfectly flat.
    shade = 0.9 + 0.1 * (yy / max(height - 1, 1))
    fg = np.asarray(fg_color, np.float32)[None, None, :] * shade[:, :, None]
    fg = fg + rng.normal(0.0, 0.01, fg.shape)
    fg = np.clip(fg, 0.0, 1.0).astype(np.float32)
    bg = np.clip(bg, 0.0, 1.0).astype(np.float32)
    image = (alpha[:, :, None] * fg + (1.0 - alpha[:, :, None]) * bg).astype(np.float32)

    soft = (alpha > 0.0) & (alpha < 1.0)
    unknown = soft.copy()
    if band > 0:
        import cv2

        kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
        unknown = cv2.dilate(soft.astype(np.uint8), kernel).astype(bool)
    trimap = np.where(alpha >= 0.5, 255, 0).astype(np.uint8)
    trimap[unknown] = 128
    mask = (alpha >= 0.5).astype(np.float32)
    return Scene(image, alpha, trimap, mask, fg, bg, (int(round(cx)), int(round(cy))))


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Save a float RGB image; the format follows the extension (.png, .jpg, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(to_uint8(rgb), "RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, quality=95)
    else:
        img.save(path)
    return path


def save_gray(path: Path, values: np.ndarray, *, as_rgb: bool = False) -> Path:
    """Save uint8 values (or floats in [0, 1]) as greyscale, or as grey RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = values if values.dtype == np.uint8 else to_uint8(values)
    if as_rgb:
        Image.fromarray(np.repeat(arr[:, :, None], 3, axis=2), "RGB").save(path)
    else:
        Image.fromarray(arr, "L").save(path)
    return path


class SyntheticData:
    """Writes synthetic scenes and broken files under ``root`` (a tmp_path)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir(self, *parts: str) -> Path:
        folder = self.root.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def scene(self, **kwargs) -> Scene:
        return make_scene(**kwargs)

    def photo(
        self,
        images_dir: Path,
        name: str,
        *,
        ext: str = ".png",
        scene: Scene | None = None,
        trimap_dir: Path | None = None,
        trimap_name: str | None = None,
        mask_dir: Path | None = None,
        mask_name: str | None = None,
        alpha_dir: Path | None = None,
        alpha_name: str | None = None,
        alpha_as_rgb: bool = False,
        **scene_kwargs,
    ) -> Scene:
        """Write ``images_dir/name+ext`` and, where a folder is given, its trimap
        (default name ``<name>_trimap.png``), mask (``<name>_mask.png``) and
        ground-truth alpha (``<name>.png``). Returns the scene."""
        scene = scene if scene is not None else make_scene(**scene_kwargs)
        save_rgb(Path(images_dir) / f"{name}{ext}", scene.image)
        if trimap_dir is not None:
            save_gray(Path(trimap_dir) / (trimap_name or f"{name}_trimap.png"), scene.trimap)
        if mask_dir is not None:
            save_gray(Path(mask_dir) / (mask_name or f"{name}_mask.png"), scene.mask)
        if alpha_dir is not None:
            save_gray(Path(alpha_dir) / (alpha_name or f"{name}.png"), scene.alpha,
                      as_rgb=alpha_as_rgb)
        return scene

    def truncated_png(self, path: Path, keep: float = 0.5, **scene_kwargs) -> Path:
        """A real PNG cut off part-way (as after a failed download)."""
        path = Path(path)
        save_rgb(path, make_scene(**scene_kwargs).image)
        data = path.read_bytes()
        path.write_bytes(data[: max(40, int(len(data) * keep))])
        return path

    def text_file(self, path: Path, text: str = "not an image\n") -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def synth(tmp_path: Path) -> SyntheticData:
    return SyntheticData(tmp_path)


@pytest.fixture
def scene() -> Scene:
    return make_scene()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``dim-studio ARGS...`` in-process; returns exit code, stdout, stderr."""
    from dim_studio.cli import main

    def run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(int(code or 0), captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def isolated_user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test: the user's settings, data and weights folders are fresh temporary ones.

    A machine with real weights installed (or a settings file, or autosaves)
    then runs exactly the same suite as CI: no weights are found anywhere
    unless a test puts them there (``tmp_path / "data"`` is the user data folder).
    """
    monkeypatch.setenv("DIM_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIM_STUDIO_MODEL_DIR", str(tmp_path / "no-model-folder"))
    monkeypatch.setenv("DIM_STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DIM_STUDIO_WEIGHTS", raising=False)
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def _compiled_solvers():
    """Compile PyMatting's numba kernels once, before any test starts a clock.

    On a fresh install the first closed-form solve and foreground estimate
    spend tens of seconds in numba's JIT; GUI tests that wait for a worker
    with a timeout would otherwise pay that inside their wait.
    """
    from dim_studio.compose import estimate_foreground
    from dim_studio.engines import create_engine

    scene = make_scene(24, 24)
    alpha = create_engine("closed-form").estimate(scene.image, scene.trimap)
    estimate_foreground(scene.image, alpha)


# --- batch runs: what a user reads in the output folder ----------------------


def batch_report(out: Path) -> dict:
    """The batch report in ``out`` as JSON."""
    from dim_studio.batch import REPORT_NAME

    return json.loads((Path(out) / REPORT_NAME).read_text(encoding="utf-8"))


def by_image(entries: list[dict]) -> dict[str, dict]:
    """Report entries keyed by their photo's name."""
    return {e["image"]: e for e in entries}


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder``, as relative POSIX paths."""
    return {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    """Temporary or hidden files below ``folder`` (ours are ``.<stem>.<pid>-XXXXXXXX.tmp<suffix>``)."""
    return [p for p in Path(folder).rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
