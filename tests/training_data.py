"""Tiny training data made by the tests: a Composition-1k-layout folder and backgrounds.

Each foreground is a textured blob with a soft edge and thin strands of hair
(alpha 0.3-0.7, one or two pixels wide) reaching out from it, the structures
matting networks find hard. Backgrounds are smooth colour gradients with
stripes, different from every foreground. Everything is small (default
96x128) so training on it takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from conftest import save_gray, save_rgb


def soft_foreground(seed: int, shape: tuple[int, int] = (96, 128)) -> tuple[np.ndarray, np.ndarray]:
    """(fg colours, alpha), float32: a soft-edged blob with hair strands."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6)
    radius = min(h, w) * rng.uniform(0.22, 0.3)
    dist = np.hypot((yy - cy) * rng.uniform(0.8, 1.2), xx - cx)
    alpha = np.clip((radius - dist) / 3.0 + 0.5, 0.0, 1.0)
    strands = np.zeros(shape, np.float32)
    for _ in range(6):
        angle = rng.uniform(0, 2 * np.pi)
        length = radius * rng.uniform(0.5, 0.9)
        x0, y0 = cx + np.cos(angle) * radius * 0.9, cy + np.sin(angle) * radius * 0.9
        x1, y1 = x0 + np.cos(angle) * length, y0 + np.sin(angle) * length
        cv2.line(strands, (int(x0), int(y0)), (int(x1), int(y1)), float(rng.uniform(0.3, 0.7)),
                 thickness=int(rng.integers(1, 3)))
    alpha = np.maximum(alpha, strands)
    base = rng.uniform(0.2, 0.9, size=3).astype(np.float32)
    shade = 0.15 * np.sin(xx / rng.uniform(3, 7))[..., None] * np.cos(yy / rng.uniform(3, 7))[..., None]
    fg = np.clip(base[None, None, :] + shade, 0.0, 1.0).astype(np.float32)
    return fg, alpha.astype(np.float32)


def background(seed: int, shape: tuple[int, int] = (110, 150)) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(0.0, 1.0, size=(2, 3)).astype(np.float32)
    ramp = (xx / w)[..., None] * a + (yy / h)[..., None] * b
    stripes = 0.1 * np.sign(np.sin(xx / rng.uniform(2, 5)))[..., None]
    return np.clip(0.5 * ramp + 0.25 + stripes, 0.0, 1.0).astype(np.float32)


def make_composition_1k(root: Path, *, foregrounds: int = 3, backgrounds: int = 4,
                        shape: tuple[int, int] = (96, 128), other: int = 1,
                        bg_names: bool = False, per_foreground: int = 2) -> tuple[Path, Path]:
    """Write a Composition-1k-layout root and a backgrounds folder; returns (root, backgrounds).

    The last ``other`` foregrounds go to ``Other/``, the rest to ``Adobe-licensed images/``.
    With ``bg_names``, ``training_bg_names.txt`` assigns backgrounds in order.
    """
    base = root / "Training_set"
    names = []
    for i in range(foregrounds):
        folder = base / ("Other" if i >= foregrounds - other else "Adobe-licensed images")
        fg, alpha = soft_foreground(i, shape)
        name = f"fg{i:02d}.png"
        save_rgb(folder / "fg" / name, fg)
        save_gray(folder / "alpha" / name, alpha)
        names.append(name)
    (base / "training_fg_names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    bg_dir = root.parent / f"{root.name}-backgrounds"
    bg_files = []
    for j in range(backgrounds):
        name = f"bg{j:03d}.jpg" if j % 2 else f"bg{j:03d}.png"
        save_rgb(bg_dir / name, background(j))
        bg_files.append(name)
    if bg_names:
        listed = [bg_files[k % len(bg_files)] for k in range(foregrounds * per_foreground)]
        (base / "training_bg_names.txt").write_text("\n".join(listed) + "\n", encoding="utf-8")
    return root, bg_dir


def make_pair_folder(folder: Path, count: int = 2, shape: tuple[int, int] = (96, 128)) -> Path:
    """Photos composited over backgrounds, each with its ``_alpha.png``."""
    for i in range(count):
        fg, alpha = soft_foreground(10 + i, shape)
        bg = background(i, shape)
        photo = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        save_rgb(folder / f"photo{i}.png", photo)
        save_gray(folder / f"photo{i}_alpha.png", alpha)
    return folder
