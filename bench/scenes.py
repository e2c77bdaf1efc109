"""Synthetic scenes shared by the benchmarks (torch-free, so a benchmark's
child process measures only what its engine imports)."""

from __future__ import annotations

import numpy as np

from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN


def make_big_scene(h: int, w: int, band: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A soft-edged ellipse subject over a textured background: a float32 photo
    and a uint8 trimap with an unknown band ~``band`` px wide around the edge.

    Built in row blocks, so no full-size float64 array ever exists: the
    memory a benchmark measures is the engine's, not the scene's."""
    image = np.empty((h, w, 3), np.float32)
    trimap = np.empty((h, w), np.uint8)
    rng = np.random.default_rng(seed)
    cy, cx, ry, rx = h / 2, w / 2, 0.4 * h, 0.4 * w
    xn = ((np.arange(w, dtype=np.float32) - cx) / rx)[None, :]
    xs = np.arange(w, dtype=np.float32)[None, :]
    for y0 in range(0, h, 256):
        y1 = min(h, y0 + 256)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        yn = (ys - cy) / ry
        d = np.sqrt(yn * yn + xn * xn) + np.float32(1e-6)
        grad = np.maximum(np.sqrt((xn / rx) ** 2 + (yn / ry) ** 2) / d, np.float32(1e-9))
        dist = (1 - d) / grad  # signed distance to the edge in pixels (inside > 0)
        alpha = np.clip(dist / 4 + 0.5, 0, 1)[:, :, None]
        fg = np.stack([
            0.80 + 0.05 * np.sin(xs / 41) + 0 * ys,
            0.55 + 0.05 * np.cos(ys / 29) + 0 * xs,
            0.30 + 0 * xs + 0 * ys,
        ], axis=2)
        bg = np.stack([
            0.2 + 0.1 * np.sin(xs / 37 + ys / 53),
            0.4 + 0.1 * np.cos(xs / 23) + 0 * ys,
            0.6 + 0.05 * np.sin(ys / 17) + 0 * xs,
        ], axis=2)
        bg += rng.standard_normal(bg.shape, dtype=np.float32) * np.float32(0.03)
        image[y0:y1] = np.clip(alpha * fg + (1 - alpha) * bg, 0, 1)
        tri = np.where(dist > 0, FOREGROUND, BACKGROUND).astype(np.uint8)
        tri[np.abs(dist) < band / 2] = UNKNOWN
        trimap[y0:y1] = tri
    return image, trimap
