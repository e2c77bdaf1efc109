"""Memory follows the unknown band: tiled solves for the classical engines.

Everything here is small and synthetic; the 24-megapixel proof is
``bench/memory.py`` (too slow for a test run).
"""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.engines import create_engine
from dim_studio.engines.tiling import axis_cuts, plan_tiles
from dim_studio.errors import Cancelled, EngineError
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

CLASSICAL = ["closed-form", "ifm", "lkm", "knn"]


def _band_scene(h: int = 96, w: int = 160, band: float = 6.0, seed: int = 5):
    """A soft ellipse over a textured background with a thin unknown band."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((yy - h / 2) / (0.36 * h), (xx - w / 2) / (0.36 * w))
    dist = (1.0 - d) * 0.36 * min(h, w)  # roughly pixels inside the edge
    alpha = np.clip(dist / 3 + 0.5, 0, 1)
    fg = np.array([0.9, 0.55, 0.25], np.float32)
    bg = (0.2 + 0.15 * rng.random((h, w, 3))).astype(np.float32)
    bg[..., 2] += 0.4
    image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    trimap = np.where(dist > 0, FOREGROUND, BACKGROUND).astype(np.uint8)
    trimap[np.abs(dist) < band / 2] = UNKNOWN
    return image, trimap, alpha


def _tiled(name: str, tile: int = 32, context: int = 24):
    return create_engine(name, tile_size=tile, tile_context=context, tile_above_bytes=0)


class _Counting:
    """Wraps an engine's ``_estimate_crop`` to count solver calls (and run a hook after each)."""

    def __init__(self, engine, after=None) -> None:
        self.calls = 0
        self.shapes: list[tuple[int, int]] = []
        inner = engine._estimate_crop

        def counted(image, trimap, progress, cancel):
            out = inner(image, trimap, progress, cancel)
            self.calls += 1
            self.shapes.append(trimap.shape)
            if after is not None:
                after()
            return out

        engine._estimate_crop = counted


# --------------------------------------------------------------------------
# Tiled against untiled
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name, max_tol, mean_tol", [
    ("closed-form", 0.002, 0.0002),
    ("lkm", 0.01, 0.002),
    ("knn", 0.06, 0.01),
    ("ifm", 0.01, 0.002),  # measured: max 0.0031, mean 0.00035
])
def test_tiled_result_matches_untiled(name, max_tol, mean_tol):
    image, trimap, _ = _band_scene()
    untiled_engine = create_engine(name)
    untiled = untiled_engine.estimate(image, trimap)
    assert untiled_engine.last_run_stats["solves"] == 1  # a small photo is not tiled
    engine = _tiled(name)
    tiled = engine.estimate(image, trimap)
    assert engine.last_run_stats["solves"] > 3
    unknown = trimap == UNKNOWN
    diff = np.abs(tiled - untiled)[unknown]
    assert diff.max() < max_tol and diff.mean() < mean_tol, (name, diff.max(), diff.mean())
    assert np.all(tiled[trimap == FOREGROUND] == 1) and np.all(tiled[trimap == BACKGROUND] == 0)


def test_small_photos_keep_their_untiled_result():
    # Below the memory threshold the engine makes the same single solve as before tiling existed.
    from pymatting import estimate_alpha_cf

    image, trimap, _ = _band_scene(h=60, w=80)
    engine = create_engine("closed-form")
    engine.context_margin = 100  # the whole photo: comparable with PyMatting's own call
    pred = engine.estimate(image, trimap)
    whole = estimate_alpha_cf(image.astype(np.float64), trimap / 255.0)
    whole[trimap == BACKGROUND] = 0
    whole[trimap == FOREGROUND] = 1
    assert engine.last_run_stats["solves"] == 1
    np.testing.assert_array_equal(pred, np.clip(whole, 0, 1).astype(np.float32))


def test_tiles_without_unknown_pixels_are_skipped():
    # Two unknown patches in opposite corners, on a diagonal foreground edge:
    # their bounding box is the whole photo, but only the two cores that hold
    # unknown pixels are solved.
    rng = np.random.default_rng(1)
    image = rng.random((160, 160, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:160, 0:160]
    trimap = np.where(xx > yy, FOREGROUND, BACKGROUND).astype(np.uint8)
    trimap[5:15, 5:15] = UNKNOWN
    trimap[145:155, 145:155] = UNKNOWN
    engine = create_engine("closed-form", tile_size=40, tile_context=8, tile_above_bytes=0)
    counter = _Counting(engine)
    engine.estimate(image, trimap)
    stats = engine.last_run_stats
    assert stats["crop"] == (160, 160)
    assert counter.calls == stats["solves"] == 2  # 4 x 4 cores of 40 px
    assert stats["skipped"] == 14
    assert all(h * w <= 50 * 50 for h, w in counter.shapes), "each window hugs its patch"


def test_plan_covers_every_unknown_pixel_once():
    _, trimap, _ = _band_scene(h=130, w=170)
    engine = _tiled("closed-form", tile=24, context=8)
    plan = plan_tiles(trimap, 24, 8, engine.solve_bytes, float(engine.max_solve_bytes))
    covered = np.zeros(trimap.shape, np.int32)
    for tile in plan.tiles:
        for keep in tile.keeps:
            w = tile.window
            assert w.y0 <= keep.y0 and keep.y1 <= w.y1 and w.x0 <= keep.x0 and keep.x1 <= w.x1
            covered[keep.slices] += 1
    assert covered.max() == 1  # keeps never overlap
    assert np.all(covered[trimap == UNKNOWN] == 1)


def test_axis_cuts_are_near_equal_and_cover_the_axis():
    assert axis_cuts(10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert axis_cuts(8, 8) == [(0, 8)]
    assert axis_cuts(1, 512) == [(0, 1)]


def test_wide_unknown_region_gets_more_context():
    # A 60 px wide unknown strip: a 16 px context would leave the tiles in the
    # middle of the strip with foreground or background only; the plan widens
    # each window until every unknown pixel has both within twice its reach.
    rng = np.random.default_rng(2)
    h, w = 64, 200
    x = np.arange(w, dtype=np.float32)
    alpha = np.clip((x - 70) / 60, 0, 1)[None, :].repeat(h, 0)
    image = (alpha[..., None] * np.array([0.9, 0.6, 0.2], np.float32)
             + (1 - alpha[..., None]) * np.array([0.1, 0.3, 0.7], np.float32)
             + 0.02 * rng.random((h, w, 3)).astype(np.float32))
    trimap = np.full((h, w), UNKNOWN, np.uint8)
    trimap[:, :70] = BACKGROUND
    trimap[:, 130:] = FOREGROUND
    engine = create_engine("closed-form", tile_size=16, tile_context=4, tile_above_bytes=0)
    plan = plan_tiles(trimap, 16, 4, engine.solve_bytes, float(engine.max_solve_bytes))
    for tile in plan.tiles:
        window = trimap[tile.window.slices]
        assert np.any(window == FOREGROUND) and np.any(window == BACKGROUND)
    untiled = create_engine("closed-form").estimate(image, trimap)
    tiled = engine.estimate(image, trimap)
    assert np.abs(tiled - untiled).max() < 0.02


# --------------------------------------------------------------------------
# Progress and cancel across tiles
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["closed-form", "lkm"])
def test_tiled_progress_is_monotone_and_reaches_one(name):
    image, trimap, _ = _band_scene()
    seen: list[float] = []
    engine = _tiled(name)
    engine.estimate(image, trimap, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(b >= a for a, b in zip(seen, seen[1:])), "progress went backwards"
    # Overall progress across the tiles, not each tile's own 0..1 again.
    assert len({round(v, 2) for v in seen}) > engine.last_run_stats["solves"]


def test_cancel_between_tiles_stops_before_the_next_solve():
    image, trimap, _ = _band_scene()
    engine = _tiled("closed-form")
    state = {"stop": False}
    counter = _Counting(engine, after=lambda: state.update(stop=True))
    with pytest.raises(Cancelled):
        engine.estimate(image, trimap, cancel=lambda: state["stop"])
    assert counter.calls == 1


def test_cancel_inside_a_tile_solve():
    image, trimap, _ = _band_scene()
    engine = _tiled("closed-form")
    counter = _Counting(engine)
    polls = {"n": 0}

    def cancel_after_a_few_polls() -> bool:
        polls["n"] += 1
        return polls["n"] > 5

    with pytest.raises(Cancelled):
        engine.estimate(image, trimap, cancel=cancel_after_a_few_polls)
    assert counter.calls == 0, "the first tile's solver should have been interrupted"


# --------------------------------------------------------------------------
# Refusing what cannot fit, up front
# --------------------------------------------------------------------------


def _mostly_unknown(h: int = 200, w: int = 200):
    rng = np.random.default_rng(4)
    image = rng.random((h, w, 3)).astype(np.float32)
    trimap = np.full((h, w), UNKNOWN, np.uint8)
    trimap[:3, :] = BACKGROUND
    trimap[h // 2 - 4:h // 2 + 4, w // 2 - 4:w // 2 + 4] = FOREGROUND
    return image, trimap


@pytest.mark.parametrize("name", CLASSICAL)
def test_too_large_unknown_region_is_refused_up_front(name):
    image, trimap = _mostly_unknown()
    engine = create_engine(name)
    # A limit of a 40x40 px piece (instead of 2 GB), so the test is cheap.
    engine.max_solve_bytes = int(engine.solve_bytes(40 * 40, 40 * 40))
    counter = _Counting(engine)
    with pytest.raises(EngineError) as info:
        engine.estimate(image, trimap)
    message = str(info.value)
    assert counter.calls == 0, "refused before any solve"
    assert name in message and "\n" not in message
    assert "200x200 px piece" in message  # what it would take: the whole photo
    assert "up to about 40x40 px" in message  # what the engine can do
    assert "dim engine" in message


def test_capped_context_still_solves_when_both_kinds_are_in_reach():
    # Thin band, tiny limit: windows cannot get the context the plan wants
    # everywhere but each still holds both kinds, so the run goes on.
    image, trimap, _ = _band_scene()
    engine = _tiled("closed-form", tile=16, context=12)
    engine.max_solve_bytes = int(engine.solve_bytes(26 * 26, 26 * 8))
    alpha = engine.estimate(image, trimap)
    assert np.isfinite(alpha).all()
    assert engine.last_run_stats["capped"] > 0
    assert any("memory limit" in note for note in engine.last_run_notes)


def test_dim_engine_is_not_tiled_by_the_base_class():
    from dim_studio.engines.base import Engine

    assert Engine.max_solve_bytes is None  # engines that bound their own memory opt out
    from dim_studio.engines.classical import ClosedFormEngine, KNNEngine, LKMEngine

    for cls in (ClosedFormEngine, LKMEngine, KNNEngine):
        assert cls.max_solve_bytes is not None and cls.max_solve_bytes <= 2.5 * 2**30


# --------------------------------------------------------------------------
# Degenerate trimaps (the "did not contain background" bugs)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("inside, expected", [(FOREGROUND, 1.0), (BACKGROUND, 0.0)])
def test_single_unknown_pixel_far_from_the_other_kind(name, inside, expected):
    # Within the engine's reach there is only one kind of known pixel: the
    # Laplacian's answer is that constant (PyMatting used to refuse it with
    # "Trimap did not contain background values").
    rng = np.random.default_rng(0)
    image = rng.random((120, 120, 3)).astype(np.float32)
    trimap = np.full((120, 120), BACKGROUND, np.uint8)
    trimap[:, 60:] = FOREGROUND
    if inside == BACKGROUND:
        trimap[60, 5] = UNKNOWN
    else:
        trimap[60, 114] = UNKNOWN
    engine = create_engine(name)
    counter = _Counting(engine)
    alpha = engine.estimate(image, trimap)
    assert alpha[trimap == UNKNOWN].tolist() == [expected]
    assert counter.calls == 0


def test_single_unknown_pixel_matches_the_whole_photo_solve():
    # The constant answer is what closed-form gives on the whole photo too.
    from pymatting import estimate_alpha_cf

    rng = np.random.default_rng(0)
    image = rng.random((60, 60, 3)).astype(np.float32)
    trimap = np.full((60, 60), BACKGROUND, np.uint8)
    trimap[:, 20:] = FOREGROUND
    trimap[30, 45] = UNKNOWN
    whole = estimate_alpha_cf(image.astype(np.float64), trimap / 255.0)
    assert abs(whole[30, 45] - 1.0) < 1e-6
    assert create_engine("closed-form").estimate(image, trimap)[30, 45] == 1.0


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("shape", [(1, 50), (50, 1), (2, 40), (1, 3)])
def test_thin_photos_are_matted(name, shape):
    # A 1xN photo used to give closed-form an all-zero Laplacian (no 3x3
    # window fits), and CG "did not converge"; it is reflect-padded now.
    rng = np.random.default_rng(7)
    n = max(shape)
    ramp = np.clip((np.arange(n) - n * 0.3) / (n * 0.4), 0, 1).astype(np.float32)
    fg, bg = np.array([0.9, 0.5, 0.2], np.float32), np.array([0.1, 0.3, 0.8], np.float32)
    line = ramp[:, None] * fg + (1 - ramp[:, None]) * bg + 0.01 * rng.random((n, 3)).astype(np.float32)
    labels = np.where(ramp <= 0, BACKGROUND, np.where(ramp >= 1, FOREGROUND, UNKNOWN)).astype(np.uint8)
    if n == 3:
        labels = np.array([BACKGROUND, UNKNOWN, FOREGROUND], np.uint8)
    along = (1, n) if shape[0] <= 2 else (n, 1)  # the line runs along the long side
    image = np.ascontiguousarray(np.broadcast_to(line.reshape(along + (3,)), shape + (3,)))
    trimap = np.ascontiguousarray(np.broadcast_to(labels.reshape(along), shape))
    alpha = create_engine(name).estimate(image, trimap)
    assert alpha.shape == shape and np.isfinite(alpha).all()
    unknown = trimap == UNKNOWN
    assert np.all((alpha[unknown] >= 0) & (alpha[unknown] <= 1))
    if name == "closed-form" and n > 3:
        # Colours on one line between F and B: closed-form follows the ramp.
        truth = np.broadcast_to(ramp.reshape(along), shape)
        assert np.abs(alpha[unknown] - truth[unknown]).mean() < 0.1


# --------------------------------------------------------------------------
# Memory, measured (a small stand-in for bench/memory.py's 24 MP runs)
# --------------------------------------------------------------------------

_MEMORY_CHILD = r"""
import json, sys
import numpy as np
from dim_studio.engines import create_engine

def hwm_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

h, w = 1600, 2400  # 3.8 MP; the edge's bounding box is 2.6 MP
yy, xx = np.ogrid[0:h, 0:w]
d = np.sqrt(((yy - h / 2) / (0.4 * h)) ** 2 + ((xx - w / 2) / (0.4 * w)) ** 2).astype(np.float32)
dist = (1 - d) * np.float32(0.4 * h)
alpha = np.clip(dist / 4 + 0.5, 0, 1)[..., None]
rng = np.random.default_rng(0)
image = (alpha * np.float32([0.8, 0.5, 0.3])
         + (1 - alpha) * (0.3 + 0.1 * rng.random((h, w, 3), dtype=np.float32))).astype(np.float32)
trimap = np.where(dist > 0, 255, 0).astype(np.uint8)
trimap[np.abs(dist) < 10] = 128
del yy, xx, d, dist, alpha
engine = create_engine(sys.argv[1])
before = hwm_mib()
engine.estimate(image, trimap)
print(json.dumps({"growth_mib": hwm_mib() - before, "solves": engine.last_run_stats["solves"]}))
"""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("name", ["closed-form", "ifm"])
def test_memory_follows_the_band_not_its_box(tmp_path, name):
    # Measured for closed-form: untiled (one solve over the 2.6 MP box) the
    # solve grew the peak RSS by 1.39 GB; tiled by 0.13 GB (its largest
    # window decides). ifm, tiled: 0.06 GB in 24 solves.
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, name], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["solves"] > 1
    assert result["growth_mib"] < 600, result
