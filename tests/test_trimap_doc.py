"""TrimapDocument: exact brush geometry, undo/redo, memory, outline semantics.

Expected results are built from the geometric definitions (distance of a
pixel centre to a segment; centre inside a polygon), never with the drawing
code under test. Pixel centres are at (j + 0.5, i + 0.5).

Tolerance: the rasteriser is exact, so results must match everywhere except
pixels whose centre lies within 1e-6 px of the shape's boundary, where
floating-point rounding may decide either way. No 1-pixel slack is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.errors import TrimapError
from dim_studio.trimap_doc import MIN_BRUSH_RADIUS, TrimapDocument
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

TIE = 1e-6


def centres(shape):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return xx + 0.5, yy + 0.5


def segment_distance(shape, p0, p1):
    """Distance from every pixel centre to the segment p0-p1 (brute force)."""
    xx, yy = centres(shape)
    (ax, ay), (bx, by) = p0, p1
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = np.zeros_like(xx) if length2 == 0 else np.clip(((xx - ax) * dx + (yy - ay) * dy) / length2, 0, 1)
    return np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))


def polygon_inside(shape, pts):
    """Even-odd ray test of every pixel centre, and its distance to the outline."""
    xx, yy = centres(shape)
    inside = np.zeros(shape, dtype=bool)
    dist = np.full(shape, np.inf)
    n = len(pts)
    for k in range(n):
        (x1, y1), (x2, y2) = pts[k], pts[(k + 1) % n]
        crosses = (y1 > yy) != (y2 > yy)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x1 + (yy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xx < xc)
        dist = np.minimum(dist, segment_distance(shape, (x1, y1), (x2, y2)))
    return inside, dist


def assert_matches(actual, expected, ambiguous):
    wrong = (actual != expected) & ~ambiguous
    assert not wrong.any(), f"{wrong.sum()} pixels differ, e.g. (row, col) {np.argwhere(wrong)[:5].tolist()}"


def stroke(doc, points, radius, label):
    doc.begin_stroke()
    for p0, p1 in zip(points[:1] + points[:-1], points):
        doc.paint_segment(p0, p1, radius, label)
    return doc.end_stroke()


# -- brush geometry -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_segment_paints_exactly_the_pixels_within_radius(seed):
    rng = np.random.default_rng(seed)
    shape = (60, 80)
    for _ in range(40):
        doc = TrimapDocument.blank(shape)
        # Ends may lie outside the image: clipping must not distort the shape.
        p0 = tuple(rng.uniform(-15, 95, 2))
        p1 = p0 if rng.random() < 0.2 else tuple(np.array(p0) + rng.normal(0, 25, 2))
        radius = float(rng.uniform(1.0, 14.0))
        doc.begin_stroke()
        doc.paint_segment(p0, p1, radius, FOREGROUND)
        doc.end_stroke()
        d = segment_distance(shape, p0, p1)
        assert_matches(doc.trimap == FOREGROUND, d <= radius, np.abs(d - radius) <= TIE)


def test_segment_on_pixel_grid_includes_boundary_pixels():
    # Integer geometry puts many centres exactly at distance r: "<= r" paints them.
    doc = TrimapDocument.blank((20, 20))
    doc.begin_stroke()
    doc.paint_segment((5.5, 10.5), (14.5, 10.5), 2.0, FOREGROUND)
    doc.end_stroke()
    painted = doc.trimap == FOREGROUND
    assert painted[8, 5:15].all() and painted[12, 5:15].all()  # exactly 2 above/below
    assert not painted[7].any() and not painted[13].any()
    assert painted[10, 3] and not painted[10, 2]  # round cap of radius 2


def test_smallest_brush_marks_the_pixel_under_the_cursor():
    doc = TrimapDocument.blank((10, 10))
    doc.begin_stroke()
    doc.paint_segment((3.5, 4.5), (3.5, 4.5), 0.1, UNKNOWN)  # at a centre: that pixel only
    doc.end_stroke()
    assert np.argwhere(doc.trimap == UNKNOWN).tolist() == [[4, 3]]
    doc.begin_stroke()
    doc.paint_segment((7.0, 7.0), (7.0, 7.0), 0.1, FOREGROUND)  # at a corner: its 4 pixels
    doc.end_stroke()
    assert sorted(np.argwhere(doc.trimap == FOREGROUND).tolist()) == [[6, 6], [6, 7], [7, 6], [7, 7]]
    assert MIN_BRUSH_RADIUS > np.sqrt(0.5)


def test_segment_box_is_what_changed_and_outside_image_is_ignored():
    doc = TrimapDocument.blank((50, 50))
    doc.begin_stroke()
    box = doc.paint_segment((10.5, 20.5), (30.5, 20.5), 3.0, FOREGROUND)
    assert (box.y0, box.y1, box.x0, box.x1) == (17, 24, 7, 34)
    assert doc.paint_segment((-50, -50), (-40, -45), 3.0, FOREGROUND) is None
    doc.end_stroke()
    ys, xs = np.nonzero(doc.trimap)
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (17, 24, 7, 34)


def test_paint_requires_an_open_stroke_and_a_valid_label():
    doc = TrimapDocument.blank((10, 10))
    with pytest.raises(RuntimeError):
        doc.paint_segment((1, 1), (2, 2), 2, FOREGROUND)
    doc.begin_stroke()
    with pytest.raises(ValueError):
        doc.paint_segment((1, 1), (2, 2), 2, 100)


def test_trimap_view_is_read_only_and_copy_is_independent():
    doc = TrimapDocument.blank((4, 4))
    with pytest.raises(ValueError):
        doc.trimap[0, 0] = 255
    snapshot = doc.copy_trimap()
    stroke(doc, [(1.5, 1.5)], 1.0, FOREGROUND)
    assert snapshot[1, 1] == BACKGROUND and doc.trimap[1, 1] == FOREGROUND


# -- undo / redo ----------------------------------------------------------------------


def test_undo_and_redo_restore_exactly_across_tiles():
    # Bigger than one 256-px backup tile, strokes cross and overlap each other.
    rng = np.random.default_rng(3)
    shape = (300, 620)
    doc = TrimapDocument(rng.choice(np.array([0, 128, 255], np.uint8), size=shape))
    states = [doc.copy_trimap()]
    for k in range(8):
        pts = [tuple(p) for p in rng.uniform(-20, [640, 320], (6, 2))]
        assert stroke(doc, pts, float(rng.uniform(2, 40)), int(rng.choice([0, 128, 255]))) is not None
        states.append(doc.copy_trimap())
    assert len(doc.undo_items) == 8
    for k in range(8, 0, -1):
        box = doc.undo()
        assert np.array_equal(doc.trimap, states[k - 1])
        changed = np.argwhere(states[k] != states[k - 1])
        assert box.y0 == changed[:, 0].min() and box.y1 == changed[:, 0].max() + 1
        assert box.x0 == changed[:, 1].min() and box.x1 == changed[:, 1].max() + 1
    assert doc.undo() is None and not doc.can_undo()
    for k in range(1, 9):
        doc.redo()
        assert np.array_equal(doc.trimap, states[k])
    assert doc.redo() is None and not doc.can_redo()


def test_new_edit_after_undo_clears_redo():
    doc = TrimapDocument.blank((20, 20))
    stroke(doc, [(5, 5)], 2, FOREGROUND)
    doc.undo()
    assert doc.can_redo() and doc.redo_text() == "Brush"
    stroke(doc, [(10, 10)], 2, UNKNOWN)
    assert not doc.can_redo() and doc.undo_text() == "Brush"


def test_undo_item_stores_only_the_changed_box():
    doc = TrimapDocument.blank((3000, 4000))
    box = stroke(doc, [(1000.0, 500.0), (1040.0, 520.0)], 6.0, FOREGROUND)
    (item,) = doc.undo_items
    assert item.box == box
    assert item.old.shape == item.new.shape == (box.height, box.width)
    assert item.nbytes == 2 * box.height * box.width
    assert doc.undo_memory_bytes == item.nbytes < 4000  # the image is 12 MB
    assert not np.shares_memory(item.new, doc.trimap)


def test_stroke_that_changes_nothing_is_not_an_undo_step():
    doc = TrimapDocument.blank((20, 20))
    assert stroke(doc, [(5, 5), (15, 15)], 3, BACKGROUND) is None
    assert not doc.can_undo() and not doc.is_modified


def test_undo_memory_limit_drops_the_oldest_steps():
    doc = TrimapDocument.blank((100, 100), undo_limit_bytes=500)
    sizes = []
    for k in range(6):
        box = stroke(doc, [(10.5 + 15 * k, 50.5)], 4.5, FOREGROUND)  # 9x9 disc pixels
        sizes.append(2 * box.height * box.width)
    assert doc.undo_memory_bytes <= 500
    kept = len(doc.undo_items)
    assert 0 < kept < 6 and sum(sizes[-kept:]) <= 500 < sum(sizes[-kept - 1 :])
    # The newest steps are the ones left, in order.
    assert [i.box.x0 for i in doc.undo_items] == sorted(i.box.x0 for i in doc.undo_items)
    assert doc.undo_items[-1].box.x0 > 80
    while doc.can_undo():
        doc.undo()
    # The dropped (oldest) discs can no longer be undone.
    assert (doc.trimap[50, :40] == FOREGROUND).any()
    assert doc.is_modified


def test_newest_step_is_kept_even_if_bigger_than_the_limit():
    doc = TrimapDocument.blank((100, 100), undo_limit_bytes=10)
    stroke(doc, [(10, 10)], 5, FOREGROUND)
    stroke(doc, [(50, 50)], 5, FOREGROUND)
    assert len(doc.undo_items) == 1
    doc.undo()
    assert doc.trimap[50, 50] == BACKGROUND and doc.trimap[10, 10] == FOREGROUND


def test_is_modified_follows_history_and_mark_saved():
    doc = TrimapDocument.blank((30, 30))
    assert not doc.is_modified
    doc.begin_stroke()
    doc.paint_segment((5, 5), (6, 6), 2, FOREGROUND)
    assert doc.is_modified  # an open stroke counts
    doc.end_stroke()
    assert doc.is_modified
    doc.undo()
    assert not doc.is_modified
    doc.redo()
    doc.mark_saved()
    assert not doc.is_modified
    doc.undo()
    assert doc.is_modified
    doc.redo()
    assert not doc.is_modified
    doc.undo()
    stroke(doc, [(20, 20)], 2, UNKNOWN)  # a different branch from the saved state
    assert doc.is_modified
    doc.undo()
    assert doc.is_modified  # the saved state was discarded with the redo stack


def test_revision_increases_on_every_change():
    doc = TrimapDocument.blank((30, 30))
    r0 = doc.revision
    doc.begin_stroke()
    doc.paint_segment((5, 5), (6, 6), 2, FOREGROUND)
    r1 = doc.revision
    doc.end_stroke()
    r2 = doc.revision
    doc.undo()
    assert r0 < r1 < r2 < doc.revision


def test_listeners_hear_segments_then_one_final_change():
    doc = TrimapDocument.blank((40, 40))
    heard = []
    doc.add_listener(lambda box, final: heard.append((box, final)))
    box = stroke(doc, [(5, 5), (10, 5), (20, 8)], 2, FOREGROUND)
    assert [f for _, f in heard] == [False, False, False, True]
    assert heard[-1][0] == box
    heard.clear()
    doc.undo()
    assert heard == [(box, True)]


def test_cancel_stroke_restores_pixels_without_history():
    rng = np.random.default_rng(0)
    doc = TrimapDocument(rng.choice(np.array([0, 128, 255], np.uint8), size=(300, 300)))
    before = doc.copy_trimap()
    doc.begin_stroke()
    for k in range(10):
        doc.paint_segment((20.0 * k, 10.0), (20.0 * k + 30, 290.0), 25, FOREGROUND)
    doc.cancel_stroke()
    assert np.array_equal(doc.trimap, before) and not doc.can_undo()


def test_undo_during_a_stroke_removes_that_stroke():
    doc = TrimapDocument.blank((30, 30))
    doc.begin_stroke()
    doc.paint_segment((5, 5), (20, 20), 3, FOREGROUND)
    doc.undo()
    assert not doc.in_stroke and not doc.trimap.any() and doc.can_redo()


# -- fills and whole-trimap operations --------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_fill_polygon_fills_exactly_the_inside(seed):
    rng = np.random.default_rng(seed)
    shape = (70, 90)
    for _ in range(15):
        doc = TrimapDocument.blank(shape)
        # A random star-shaped (so simple) polygon, partly off the image at times.
        n = int(rng.integers(3, 14))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(3, 45, n)
        cx, cy = rng.uniform(0, 90), rng.uniform(0, 70)
        pts = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii)]
        doc.fill_polygon(pts, UNKNOWN)
        inside, dist = polygon_inside(shape, pts)
        assert_matches(doc.trimap == UNKNOWN, inside, dist <= TIE)


def test_fill_polygon_is_one_undo_step_and_fills_every_loop():
    doc = TrimapDocument.blank((40, 40))
    square = [(5, 5), (35, 5), (35, 35), (5, 35)]
    box = doc.fill_polygon(square * 2, FOREGROUND)  # goes round twice: winding 2
    assert (box.y0, box.y1, box.x0, box.x1) == (5, 35, 5, 35)
    assert (doc.trimap[5:35, 5:35] == FOREGROUND).all() and doc.trimap.sum() == 30 * 30 * 255
    assert doc.undo_text() == "Lasso fill"
    doc.undo()
    assert not doc.trimap.any()
    assert doc.fill_polygon([(1, 1), (5, 5)], FOREGROUND) is None  # not a polygon


def test_outline_makes_outside_background_and_inside_unknown_keeping_foreground():
    shape = (60, 80)
    start = np.full(shape, UNKNOWN, np.uint8)
    start[:, :10] = FOREGROUND  # outside the outline: becomes background
    start[25:35, 30:50] = FOREGROUND  # inside: stays foreground
    start[40:45, 20:30] = BACKGROUND  # inside: becomes unknown
    doc = TrimapDocument(start)
    pts = [(15.2, 10.7), (70.4, 12.1), (66.9, 55.3), (18.8, 50.6)]
    doc.outline_polygon(pts)
    inside, dist = polygon_inside(shape, pts)
    expected = np.where(inside, np.where(start == FOREGROUND, FOREGROUND, UNKNOWN), BACKGROUND)
    assert_matches(doc.trimap, expected, dist <= TIE)
    assert (doc.trimap[25:35, 30:50] == FOREGROUND).all()
    assert len(doc.undo_items) == 1 and doc.undo_text() == "Outline"
    doc.undo()
    assert np.array_equal(doc.trimap, start)


def test_apply_trimap_is_one_step_and_validated():
    doc = TrimapDocument.blank((20, 30))
    new = np.zeros((20, 30), np.uint8)
    new[5:8, 10:12] = UNKNOWN
    box = doc.apply_trimap(new, "Trimap from mask")
    assert (box.y0, box.y1, box.x0, box.x1) == (5, 8, 10, 12)
    assert doc.undo_text() == "Trimap from mask" and doc.undo_memory_bytes == 2 * 6
    new[0, 0] = 255  # the document keeps its own copy
    assert doc.trimap[0, 0] == BACKGROUND
    with pytest.raises(TrimapError, match="30x20"):
        doc.apply_trimap(np.zeros((30, 20), np.uint8))
    with pytest.raises(TrimapError):
        doc.apply_trimap(np.full((20, 30), 100, np.uint8))
    with pytest.raises(TrimapError):
        doc.apply_trimap(np.zeros((20, 30), np.float32))


def test_set_trimap_resets_history():
    doc = TrimapDocument.blank((20, 20))
    stroke(doc, [(5, 5)], 3, FOREGROUND)
    doc.set_trimap(np.full((10, 12), UNKNOWN, np.uint8))
    assert doc.shape == (10, 12) and not doc.can_undo() and not doc.can_redo()
    assert not doc.is_modified and doc.undo_memory_bytes == 0


def test_document_module_does_not_import_qt():
    # The data model must stay usable headless (docs/ARCHITECTURE.md): check it in
    # a fresh interpreter, since this one has Qt loaded by the canvas tests.
    import os
    import subprocess
    import sys
    from pathlib import Path

    import dim_studio

    root = str(Path(dim_studio.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    code = (
        "import sys, dim_studio.trimap_doc; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# --------------------------------------------------------------------------
# snapshots and label counts (what the window hands to background threads)
# --------------------------------------------------------------------------


def _brush(doc: TrimapDocument, y: float, label: int) -> None:
    stroke(doc, [(3.5, y), (30.5, y)], 2.0, label)


def test_snapshots_keep_the_trimap_of_their_moment_in_any_order():
    doc = TrimapDocument.blank((24, 40))
    states, snaps = [], []
    for y, label in [(4.5, FOREGROUND), (10.5, UNKNOWN), (16.5, FOREGROUND)]:
        _brush(doc, y, label)
        states.append(doc.copy_trimap())
        snaps.append(doc.snapshot())
    doc.undo()
    states.append(doc.copy_trimap())
    snaps.append(doc.snapshot())
    doc.redo()
    doc.apply_trimap(np.full((24, 40), UNKNOWN, np.uint8), "all unknown")
    states.append(doc.copy_trimap())
    snaps.append(doc.snapshot())
    # Materialized newest first, then oldest, then the rest: the mirror walks
    # forwards and backwards through the edits.
    for i in (4, 0, 3, 1, 2):
        np.testing.assert_array_equal(snaps[i].materialize(), states[i])
    assert snaps[2].materialize() is snaps[2].materialize()  # copied once


def test_a_snapshot_during_a_stroke_is_the_last_finished_edit_and_survives_a_new_trimap():
    doc = TrimapDocument.blank((24, 40))
    _brush(doc, 4.5, FOREGROUND)
    finished = doc.copy_trimap()
    doc.begin_stroke()
    doc.paint_segment((3.5, 12.5), (30.5, 12.5), 2.0, UNKNOWN)
    during = doc.snapshot()
    doc.end_stroke()
    doc.set_trimap(np.full((24, 40), FOREGROUND, np.uint8))  # a newly opened trimap
    np.testing.assert_array_equal(during.materialize(), finished)
    np.testing.assert_array_equal(doc.snapshot().materialize(), np.full((24, 40), FOREGROUND))


def test_snapshots_materialize_in_other_threads():
    import threading

    doc = TrimapDocument.blank((64, 64))
    expected, snaps = [], []
    for k in range(12):
        _brush(doc, 2.5 + 5 * k, (FOREGROUND, UNKNOWN)[k % 2])
        expected.append(doc.copy_trimap())
        snaps.append(doc.snapshot())
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, snaps[i].materialize()))
               for i in reversed(range(12))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(12):
        np.testing.assert_array_equal(results[i], expected[i])


def test_labels_present_follow_edits_undo_and_redo():
    doc = TrimapDocument.blank((24, 40))
    assert doc.labels_present() == {BACKGROUND}
    _brush(doc, 4.5, FOREGROUND)
    assert doc.labels_present() == {BACKGROUND, FOREGROUND}
    doc.apply_trimap(np.full((24, 40), UNKNOWN, np.uint8), "all unknown")
    assert doc.labels_present() == {UNKNOWN}
    doc.undo()
    assert doc.labels_present() == {BACKGROUND, FOREGROUND}
    doc.undo()
    assert doc.labels_present() == {BACKGROUND}
    doc.redo()
    doc.redo()
    assert doc.labels_present() == {UNKNOWN}
    doc.set_trimap(np.array([[0, 128], [255, 255]], np.uint8))
    assert doc.labels_present() == {BACKGROUND, UNKNOWN, FOREGROUND}
