"""Tiling plans for engines whose memory grows with the region they solve.

Pure functions of a crop's trimap; ``base.Engine`` runs the plans (see its
module docstring for why and when a crop is tiled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box

#: A tile's window covers this many times each unknown pixel's distance to the
#: farther of its nearest foreground / background pixels. Across a wide unknown
#: region the effect of a window's edge fades over about the region's width;
#: measured on alphamatting GT04 (Trimap1, 40 % unknown, 128 px tiles): 1.0 gave
#: +1.9 % SAD against the untiled solve, 2.0 gave windows spanning the region
#: and the untiled result.
REACH_FACTOR = 2.0


@dataclass(frozen=True)
class SolveTile:
    """One piece of a tiled run, in crop coordinates.

    ``keeps``: the boxes of unknown pixels (one per core) whose alpha this
    piece provides; ``window``: what the engine solves (the keeps plus
    context); ``fill``: set when the window holds known pixels of one kind
    only and its unknown pixels are enclosed by them, so no solve is needed:
    the value (0 or 1) those unknown pixels take.
    """

    keeps: tuple[Box, ...]
    window: Box
    fill: float | None = None


@dataclass(frozen=True)
class TilePlan:
    tiles: tuple[SolveTile, ...]
    #: cores without unknown pixels (nothing to solve there)
    skipped: int
    #: tiles whose context was cut to fit the memory limit
    capped: int

    @property
    def solves(self) -> int:
        return sum(1 for t in self.tiles if t.fill is None)


class RegionTooLarge(Exception):
    """``plan_tiles``: a piece cannot see both kinds of known pixels within the limit.

    ``keep``: the core's unknown box; ``wanted``: the window it asked for;
    ``reach``: how far (px) its unknown pixels are from seeing both kinds.
    """

    def __init__(self, keep: Box, wanted: Box, reach: int) -> None:
        super().__init__(f"{wanted.width}x{wanted.height}")
        self.keep, self.wanted, self.reach = keep, wanted, reach


def axis_cuts(length: int, core: int) -> list[tuple[int, int]]:
    """Split ``length`` into the fewest near-equal segments of at most ``core``."""
    n = max(1, -(-length // max(1, core)))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def known_reach(trimap: np.ndarray) -> np.ndarray:
    """Per pixel: the chessboard distance within which both a foreground and a
    background pixel lie (max of the distances to the nearest of each), float32.

    A window that contains the square of this radius around an unknown pixel
    holds that pixel's nearest foreground and background.
    """
    reach = cv2.distanceTransform((trimap != FOREGROUND).astype(np.uint8), cv2.DIST_C, 3)
    to_bg = cv2.distanceTransform((trimap != BACKGROUND).astype(np.uint8), cv2.DIST_C, 3)
    np.maximum(reach, to_bg, out=reach)
    return reach


def _inside(inner: Box, outer: Box) -> bool:
    return (outer.y0 <= inner.y0 and inner.y1 <= outer.y1
            and outer.x0 <= inner.x0 and inner.x1 <= outer.x1)


def known_kinds(trimap: np.ndarray) -> tuple[bool, bool]:
    return bool(np.any(trimap == FOREGROUND)), bool(np.any(trimap == BACKGROUND))


def _enclosed(unknown: np.ndarray, window: Box, shape: tuple[int, int]) -> bool:
    """No unknown pixel on an edge of ``window`` that is not the crop's edge:
    the window's unknown pixels are cut off from whatever lies beyond it."""
    h, w = shape
    u = unknown[window.slices]
    return not (
        (window.y0 > 0 and u[0].any()) or (window.y1 < h and u[-1].any())
        or (window.x0 > 0 and u[:, 0].any()) or (window.x1 < w and u[:, -1].any())
    )


def plan_tiles(
    trimap: np.ndarray,
    core: int,
    context: int,
    solve_bytes: Callable[[int, int], float],
    max_bytes: float,
) -> TilePlan:
    """Cut a crop's trimap into pieces to solve; see the module docstring.

    ``solve_bytes(pixels, unknown)`` is the engine's memory estimate for a
    window; no window exceeds ``max_bytes``. Raises ``RegionTooLarge`` (before
    anything is solved) for a piece that cannot hold both kinds of known
    pixels within the limit and whose unknown pixels reach its edge.
    """
    shape = (h, w) = trimap.shape
    unknown = trimap == UNKNOWN
    reach = known_reach(trimap)

    def cost(box: Box) -> float:
        return solve_bytes(box.area, int(np.count_nonzero(unknown[box.slices])))

    tiles: list[SolveTile] = []
    solves: list[tuple[Box, Box]] = []
    skipped = capped = 0
    for cy0, cy1 in axis_cuts(h, core):
        for cx0, cx1 in axis_cuts(w, core):
            ys, xs = np.nonzero(unknown[cy0:cy1, cx0:cx1])
            if ys.size == 0:
                skipped += 1
                continue
            ys += cy0
            xs += cx0
            keep = Box(int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
            near = reach[ys, xs]
            r = np.ceil(REACH_FACTOR * near).astype(np.int64)
            wanted = Box(
                max(0, int((ys - r).min())), min(h, int((ys + r).max()) + 1),
                max(0, int((xs - r).min())), min(w, int((xs + r).max()) + 1),
            ).union(keep.grow(context, shape))
            window = wanted
            if cost(window) > max_bytes:
                # The widest uniform context that fits (cost grows with it).
                lo, hi = -1, max(wanted.height, wanted.width)
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if cost(keep.grow(mid, shape)) <= max_bytes:
                        lo = mid
                    else:
                        hi = mid
                if lo < 0:
                    raise RegionTooLarge(keep, wanted, int(near.max()))
                window = keep.grow(lo, shape)
                capped += 1
            has_fg, has_bg = known_kinds(trimap[window.slices])
            if has_fg and has_bg:
                solves.append((keep, window))
            elif (has_fg or has_bg) and _enclosed(unknown, window, shape):
                tiles.append(SolveTile((keep,), window, fill=1.0 if has_fg else 0.0))
            else:
                raise RegionTooLarge(keep, wanted, int(near.max()))
    # Where the unknown region is wide, windows grow over their neighbours'
    # cores: a core whose whole window lies inside a larger window is kept
    # from that solve (it sees at least the context it asked for) instead of
    # being solved again.
    merged: list[tuple[list[Box], Box]] = []
    for keep, window in sorted(solves, key=lambda kw: -kw[1].area):
        for keeps, big in merged:
            if _inside(window, big):
                keeps.append(keep)
                break
        else:
            merged.append(([keep], window))
    tiles.extend(SolveTile(tuple(keeps), window) for keeps, window in merged)
    return TilePlan(tuple(tiles), skipped, capped)
