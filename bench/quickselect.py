"""Quick selection: is a box drag plus a few strokes a usable start? Speed and agreement on real photos.

    python bench/quickselect.py [FOLDER] [--trimap-set Trimap1] [--engine closed-form]
        [--max-side 512,800] [--band default,N] [--strokes 3] [--sure-strokes-only] [--strokes-within-trimap]
        [--lasso-over-solid] [--start box|outline]
        [--against-trimap] [--out DIR]
        [--only NAME,...] [--big WxH]

FOLDER defaults to ../shared/data/alphamatting_test_lowres_noGT (alphamatting.com's
low-resolution test set: ``input_lowres/<name>.png`` and
``trimap_lowres/Trimap1|2|3/<name>.png``, no ground truth).

A simulated user, with the provided trimap (Trimap1 by default, drawn by hand)
as the oracle of what they want:

1. Box: the user's drag is stood in for by the bounding box of the provided
   trimap's non-background pixels, grown by 5% of its size on each side (one
   click-and-drag). With ``--start outline`` the user draws the outline
   instead (the window's O tool, one freehand drag): the provided trimap's
   non-background region grown by 5% of its box's longer side, its outer
   contour simplified to within 1% of that side, as a hand would draw it
   round the subject. ``quickselect.segment`` (GrabCut) and its trimap at
   ``default_band`` (``Segmentation.trimap``: the adaptive band, widened
   where the edge looks soft) follow, as in the window.
2. Strokes (at most ``--strokes``, 3 by default): while the result is not
   usable (below), the user paints one stroke with the sure-foreground or
   sure-background brush on the largest connected region where the quick
   trimap's known label is the opposite of what the user sees (below). The
   stroke follows the region's medial line (the centre-most path between
   its two geodesically farthest points) with a brush of radius 1.5% of the
   photo's longer side, and covers only pixels the user sees as sure of that
   label (the user paints only where they are sure). GrabCut then re-runs from
   scratch with all strokes so far as hints, and the result may only move
   in the stroke's direction (``quickselect.keep_stroke_direction``: a
   background stroke takes away, a foreground stroke adds), as the window
   does.

   What the user sees (``visible_labels``): the provided trimap's known
   labels, and, inside its unknown band, background where the alpha the user
   wants (the matte on the provided trimap, or the ground truth) is under
   0.02 over a 5x5 neighbourhood, foreground where it is over 0.98. The
   hand-drawn benchmark trimaps are drawn wide (47% of the net photo is
   unknown in Trimap1, and so is the wicker chair behind the doll's hair),
   but a user painting a stroke looks at the photo, where background with
   no strand over it is plain to see. ``--strokes-within-trimap`` restores the
   stricter user who paints only where the provided trimap is known.
3. Once the wrong labels are under 1% (those first: the solver cannot undo
   them), a stroke may instead be the window's lasso (L) with the unknown
   label (3), what the README tells a user to do over a net, a bag or a
   mass of hair (``--sure-strokes-only`` leaves this out): the candidate
   regions are then also the connected regions the user sees as unknown
   and the quick trimap calls known, and the user picks, among all
   candidates, the one where the preview looks most wrong (the largest sum
   of |preview alpha - the wanted alpha| over the region). A sure-label
   region gets a brush stroke as in 2; an unknown one a lasso round the
   part of it wider than a brush (an opening with a disc of the brush
   radius; its largest piece, grown by a brush width, because a user draws
   a lasso round a region and not along its edge, but not grown over what
   the user sees as sure foreground, where the lasso follows the solid
   part's edge; its outer contour simplified to within half a radius),
   filled entirely, not clipped to what the user sees (a region with no
   part that wide gets an unknown brush stroke as in 2;
   ``--lasso-over-solid`` grows the lasso over the solid parts too). As in
   the window, an unknown stroke does not re-run GrabCut (GrabCut s is 0 for
   it) and is kept unknown by later re-runs; the trimap is made again with
   it, which leaves unknown the slivers of sure foreground it cut off from
   the subject (``quickselect.cut_off_by_unknown``).

Usable, after the box (or outline) or a stroke, means both of:

* wrong < 1%: of the pixels the provided trimap calls known, under 1% get the
  opposite known label in the quick trimap. A wrong known label is the one
  error the matting solver cannot undo (it forces alpha to 0 or 1 there), so
  it must be rare; 1% of an 800x600 photo's known pixels is a blob of ~55x55
  px, about what a user leaves for a later touch-up rather than a failed start.
* mean |dA| < 0.03: the closed-form alpha on the quick trimap differs from the
  alpha on the provided trimap by under 0.03 on average over the photo. For
  scale, the alphas of the other hand-drawn trimaps (Trimap2, Trimap3)
  differ from Trimap1's by the amounts in the columns ``T2 |dA|`` and
  ``T3 |dA|`` (printed per photo): careful hand-drawn trimaps disagree by
  about that much (on the net and the plant Trimap3's matte is itself over
  0.03 from Trimap1's), so a quick trimap within a small multiple of it is
  as good a start as a hand-drawn one.

With the training set's layout (``input_training_lowres/``,
``trimap_training_lowres/TrimapK/``, ``gt_training_lowres/``, e.g.
``../shared/data/alphamatting_training_lowres``) the user's trimap is the
same oracle, but |dA| is measured against the ground-truth alpha, and the
per-photo column ``Trimap1 |dA|`` gives, for scale, how far the matte on
the hand-drawn trimap itself is from the truth. Usable is the same rule.
``--against-trimap`` measures there as on the test set instead (against
the alpha on the hand-drawn trimap), which shows how often the two
verdicts agree.

Times (seconds unless marked): GrabCut per run; the trimap (distances +
threshold, ms); the preview the user waits for, i.e. the engine on the quick
trimap at the resolution the window's automatic preview picks
(``preview_scale.choose_scale`` with ``auto_pixel_budget`` and
``auto_unknown_budget``, run through ``estimate_alpha_scaled`` exactly as
``workflows.preview.run_preview`` does);
and the engine at full resolution (what export would compute, and what the
|dA| column measures).

``--out`` writes, per photo and working size, a PNG for a person to look at:
the photo with the final quick trimap overlaid (background tinted blue,
unknown band yellow, foreground untinted; wrong known labels in magenta;
foreground strokes green, background strokes red, unknown lassos orange, the
box or outline in cyan) beside the
preview's alpha, and the same alpha alone.

``--big WxH`` adds a table for a synthetic photo of that size (e.g. 6000x4000,
24 MP): segment from a box, a re-run with a background stroke and the
previous result, ``keep_stroke_direction`` on that re-run,
trimap_from_segmentation, the band slider's cached re-threshold
(``Segmentation.trimap``), the trimap made again after an unknown lasso over
the subject's top half (with ``cut_off_by_unknown``), and tighten.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dim_studio import quickselect as qs  # noqa: E402
from dim_studio.engines import create_engine  # noqa: E402
from dim_studio.images import read_alpha, read_image, read_trimap, write_alpha  # noqa: E402
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN  # noqa: E402
from dim_studio.workflows.preview_scale import (  # noqa: E402
    AUTO, auto_pixel_budget, auto_unknown_budget, choose_scale, estimate_alpha_scaled,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dim_speed import cpu_name, table  # noqa: E402  (the same machine line and table layout)
from scenes import make_big_scene  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alphamatting_test_lowres_noGT"

#: The test set's other hand-drawn trimaps, whose mattes give the scale of |dA| per photo.
OTHER_SETS = ("Trimap2", "Trimap3")
#: Usable: under this share of the provided trimap's known pixels with the opposite known label ...
USABLE_WRONG = 0.01
#: ... and the full-resolution alpha within this mean |dA| of the provided trimap's alpha.
USABLE_DALPHA = 0.03
#: The simulated user's brush radius, as a fraction of the photo's longer side.
BRUSH_FRACTION = 0.015
#: The user may also lasso soft zones with the unknown label (not with --sure-strokes-only).
UNKNOWN_STROKES = True
#: A lasso is drawn this many brush radii outside the region it is aimed at (plan_lasso).
LASSO_MARGIN = 2
#: The lasso's margin may also cover what the user sees as sure foreground (--lasso-over-solid).
LASSO_OVER_SOLID = False
#: Where the wanted alpha is within this of 0 or 1 (over a 5x5 neighbourhood) the user sees a sure label.
SEEN_SURE = 0.02
#: The stricter user: strokes only where the provided trimap is known (--strokes-within-trimap).
STROKES_WITHIN_TRIMAP = False


def visible_labels(provided: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """uint8 trimap: what the user sees (module docstring, step 2): ``provided``, with its plain zones known.

    ``wanted`` is the alpha the user wants. The 5x5 erosion keeps a stroke
    off the wanted matte's edges, where a user would not call a pixel sure.
    """
    if STROKES_WITHIN_TRIMAP:
        return provided
    seen = provided.copy()
    kernel = np.ones((5, 5), np.uint8)
    band = provided == UNKNOWN
    for label, plain in ((BACKGROUND, wanted <= SEEN_SURE), (FOREGROUND, wanted >= 1.0 - SEEN_SURE)):
        seen[band & cv2.erode(plain.astype(np.uint8), kernel).astype(bool)] = label
    return seen


def outline_from_trimap(trimap: np.ndarray, grow: float = 0.05) -> np.ndarray:
    """The user's outline drag: (N, 2) x, y round the provided trimap's non-background region.

    The region grown by ``grow`` of its box's longer side (as the box is), its
    largest outer contour simplified to within 1% of that side.
    """
    ys, xs = np.nonzero(trimap != BACKGROUND)
    side = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    r = max(1, int(round(grow * side)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grown = cv2.dilate((trimap != BACKGROUND).astype(np.uint8), kernel)
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygon = cv2.approxPolyDP(max(contours, key=cv2.contourArea), 0.01 * side, True)
    return polygon.reshape(-1, 2).astype(np.float64)


def box_from_trimap(trimap: np.ndarray, grow: float = 0.05) -> tuple[int, int, int, int]:
    """The user's box drag: the provided trimap's non-background box, grown by ``grow`` of its size."""
    ys, xs = np.nonzero(trimap != BACKGROUND)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    dx, dy = grow * (x1 - x0), grow * (y1 - y0)
    h, w = trimap.shape
    return (max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(w, int(x1 + dx)), min(h, int(y1 + dy)))


LABEL_NAMES = {FOREGROUND: "FG", BACKGROUND: "BG", UNKNOWN: "UNK"}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# --- the simulated user --------------------------------------------------------------


def wrong_labels(quick: np.ndarray, provided: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quick says foreground where provided says background, and the reverse)."""
    return ((quick == FOREGROUND) & (provided == BACKGROUND),
            (quick == BACKGROUND) & (provided == FOREGROUND))


def wrong_fraction(quick: np.ndarray, provided: np.ndarray) -> float:
    """Share of the provided trimap's known pixels that the quick trimap gives the opposite known label."""
    false_fg, false_bg = wrong_labels(quick, provided)
    known = np.count_nonzero(provided != UNKNOWN)
    return float(np.count_nonzero(false_fg) + np.count_nonzero(false_bg)) / max(1, known)


def disagreements(quick: np.ndarray, provided: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The disagreement masks a stroke can fix, each with the label the user would paint on it.

    Wrong known labels (quick foreground where the provided trimap says
    background: a background stroke, and the reverse), and, unless
    ``--sure-strokes-only``, known pixels the provided trimap calls unknown
    (an unknown lasso).
    """
    false_fg, false_bg = wrong_labels(quick, provided)
    found = [(false_fg, BACKGROUND), (false_bg, FOREGROUND)]
    if UNKNOWN_STROKES:
        found.append(((quick != UNKNOWN) & (provided == UNKNOWN), UNKNOWN))
    return found


def worst_region(quick: np.ndarray, provided: np.ndarray, error: np.ndarray | None = None,
                 sure_only: bool = False) -> tuple[np.ndarray, int] | None:
    """The connected disagreement region the user paints next, and the label they paint.

    With ``error`` (|preview alpha - the alpha the user wants|, per pixel) the
    region whose matte looks most wrong wins: the largest sum of ``error``
    over the region, what a user comparing the preview with the subject sees.
    Without it (or when every region's error is 0) regions are ranked by their
    area after a 3x3 opening, so that a sliver a pixel or two wide along the
    provided band (where the two bands merely have different widths, which no
    stroke fixes) does not beat a real blob; when only slivers are left the
    plain area decides.
    """
    best_key: tuple[float, int, int] = (-1.0, -1, -1)
    best = None
    kernel = np.ones((3, 3), np.uint8)
    for wrong, label in disagreements(quick, provided):
        if not wrong.any() or (sure_only and label == UNKNOWN):
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats(wrong.view(np.uint8), connectivity=8)
        opened = cv2.morphologyEx(wrong.view(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
        solid = np.bincount(comp[opened], minlength=n)
        seen = (np.bincount(comp.ravel(), weights=error.ravel(), minlength=n) if error is not None
                else np.zeros(n))
        for i in range(1, n):
            key = (float(seen[i]), int(solid[i]), int(stats[i, cv2.CC_STAT_AREA]))
            if key > best_key:
                best_key, best = key, (comp, i, label)
    if best is None:
        return None
    comp, i, label = best
    return comp == i, label


def medial_path(region: np.ndarray) -> np.ndarray:
    """(N, 2) x, y points of the region's medial line.

    The path between the region's two geodesically farthest pixels (double
    sweep) that stays as far from the region's edge as it can: Dijkstra on
    the 8-connected pixel graph with each step costing its length over the
    squared distance to the edge, so the cheapest route runs along the ridge
    of the distance map. Large regions are worked on a downscaled copy (the
    path is then scaled back), which is plenty for a brush stroke.
    """
    ys, xs = np.nonzero(region)
    y0, x0 = ys.min(), xs.min()
    sub = region[y0:ys.max() + 1, x0:xs.max() + 1].astype(np.uint8)
    f = 1.0
    if sub.sum() > 40_000:
        f = float(np.sqrt(40_000 / sub.sum()))
        sub = cv2.resize(sub, (max(1, int(sub.shape[1] * f)), max(1, int(sub.shape[0] * f))),
                         interpolation=cv2.INTER_NEAREST)
        if not sub.any():
            return np.array([[xs.mean(), ys.mean()]])
    dist = cv2.distanceTransform(np.pad(sub, 1), cv2.DIST_L2, cv2.DIST_MASK_5)[1:-1, 1:-1]
    idx = -np.ones(sub.shape, np.int64)
    py, px = np.nonzero(sub)
    idx[py, px] = np.arange(py.size)
    if py.size == 1:
        path = np.array([[px[0], py[0]]], np.float64)
    else:
        rows, cols, weights, hops = [], [], [], []
        h, w = sub.shape
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            ny, nx = py + dy, px + dx
            ok = (ny < h) & (nx >= 0) & (nx < w)
            ok[ok] = sub[ny[ok], nx[ok]] > 0
            a, b = idx[py[ok], px[ok]], idx[ny[ok], nx[ok]]
            step = float(np.hypot(dy, dx))
            d = 0.5 * (dist[py[ok], px[ok]] + dist[ny[ok], nx[ok]])
            rows.append(a)
            cols.append(b)
            weights.append(step / np.maximum(d, 0.5) ** 2)
            hops.append(np.full(a.size, step))
        rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
        n = py.size
        plain = sparse.coo_matrix((np.concatenate(hops), (rows_a, cols_a)), shape=(n, n)).tocsr()
        far = csgraph.dijkstra(plain, directed=False, indices=0)
        a = int(np.argmax(np.where(np.isfinite(far), far, -1)))
        far = csgraph.dijkstra(plain, directed=False, indices=a)
        b = int(np.argmax(np.where(np.isfinite(far), far, -1)))
        medial = sparse.coo_matrix((np.concatenate(weights), (rows_a, cols_a)), shape=(n, n)).tocsr()
        _, pred = csgraph.dijkstra(medial, directed=False, indices=a, return_predecessors=True)
        chain = [b]
        while chain[-1] != a and pred[chain[-1]] >= 0:
            chain.append(int(pred[chain[-1]]))
        path = np.stack([px[chain], py[chain]], axis=1).astype(np.float64)
    return path / f + np.array([x0, y0]) + (0.5 / f - 0.5)


@dataclass
class Stroke:
    label: int          # FOREGROUND, BACKGROUND or UNKNOWN
    mask: np.ndarray    # bool (H, W): the pixels painted
    path: np.ndarray    # (N, 2) x, y: the brush's path, or the lasso's polygon
    region_px: int      # size of the wrong region it was aimed at
    lasso: bool = False


def plan_lasso(region: np.ndarray, radius: int, sure_fg: np.ndarray) -> Stroke | None:
    """An unknown lasso round the wide part of ``region``, or None when it has none.

    The wide part is what is left after an opening with a disc of the brush
    radius (strips narrower than a brush, e.g. where two bands merely differ
    in width, are not worth a lasso); its largest piece, grown by a brush
    width (``LASSO_MARGIN`` radii) but not over ``sure_fg`` (what the user
    sees as sure foreground), is traced by the user's polygon (the outer
    contour simplified to within half a brush radius), and the lasso fills
    the whole polygon: unlike the brush strokes it is not clipped to where
    the provided trimap agrees.

    The margin is how a user draws a lasso round a net or a bag: outside it.
    Traced along the region's own edge, the lasso left a sliver of sure
    foreground along the net's outline, and closed-form carried that
    foreground across the whole see-through net (|dA| 0.096 against 0.018
    with the margin). The margin stops at the solid subject as the brush
    strokes do (a user lassoing a troll's hair leaves its opaque roots
    sure): grown over them too (``--lasso-over-solid``), the lasso took the
    sure foreground the solver needs next to the strands, and the troll's
    matte ended at |dA| 0.041 instead of 0.030 (the net's, whose white cord
    it then covered, at 0.018 instead of 0.026).
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    wide = cv2.morphologyEx(region.view(np.uint8), cv2.MORPH_OPEN, kernel)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(wide, connectivity=8)
    if n <= 1:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    piece = (comp == biggest).astype(np.uint8)
    allowed = np.ones_like(piece) if LASSO_OVER_SOLID else (~sure_fg).view(np.uint8) | piece
    for _ in range(LASSO_MARGIN):  # a radius at a time: round a solid part wider than a brush, not across it
        piece = cv2.dilate(piece, kernel) & allowed
    contours, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    polygon = cv2.approxPolyDP(outline, 0.5 * radius, True)
    canvas = np.zeros(region.shape, np.uint8)
    cv2.fillPoly(canvas, [polygon], 1)
    return Stroke(UNKNOWN, canvas.astype(bool), polygon.reshape(-1, 2).astype(np.float64),
                  int(region.sum()), lasso=True)


def plan_stroke(quick: np.ndarray, seen: np.ndarray, radius: int,
                error: np.ndarray | None = None) -> Stroke | None:
    """The simulated user's next stroke (module docstring, steps 2 and 3), or None when nothing is wrong.

    ``seen`` is the trimap of what the user sees (``visible_labels``): it
    is what the helpers below call the provided trimap. ``error`` is
    |preview alpha - the wanted alpha|, what the user sees is wrong in the
    preview (used by step 3 only).
    """
    if wrong_fraction(quick, seen) >= USABLE_WRONG or not UNKNOWN_STROKES:
        # Wrong known labels first: the solver cannot undo them.
        found = worst_region(quick, seen, None, sure_only=True)
    else:
        found = worst_region(quick, seen, error)
    if found is None:
        return None
    region, label = found
    if label == UNKNOWN:
        lasso = plan_lasso(region, radius, seen == FOREGROUND)
        if lasso is not None:
            return lasso
    path = medial_path(region)
    canvas = np.zeros(quick.shape, np.uint8)
    pts = np.round(path).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) == 1:
        cv2.circle(canvas, tuple(int(v) for v in pts[0, 0]), radius, 1, -1)
    else:
        cv2.polylines(canvas, [pts], False, 1, thickness=2 * radius + 1, lineType=cv2.LINE_8)
        for end in (pts[0, 0], pts[-1, 0]):  # round caps, as a brush leaves
            cv2.circle(canvas, (int(end[0]), int(end[1])), radius, 1, -1)
    mask = canvas.astype(bool) & (seen == label)
    return Stroke(label, mask, path, int(region.sum()))


# --- the benchmark -------------------------------------------------------------------


@dataclass
class Step:
    what: str
    t_grabcut: float
    t_trimap: float
    t_preview: float
    preview_scale: float
    preview_size: tuple[int, int]
    t_full: float
    wrong: float
    dalpha: float
    dalpha_preview: float
    usable: bool


@dataclass
class Session:
    photo: str
    size: str
    working: str
    max_side: int
    band: int
    scale: list[float]  # the per-photo scale column(s), see bench_photos
    steps: list[Step] = field(default_factory=list)
    strokes: list[Stroke] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.steps) and self.steps[-1].usable


def simulate(image, provided, reference, region, band, max_side, max_strokes, engine, budget, unknown_budget):
    """The simulated user's session: box or outline, then strokes until usable or ``max_strokes``.

    ``region`` is ``{"box": (x0, y0, x1, y1)}`` or ``{"outline": polygon}`` (``quickselect.segment``'s).

    Returns (steps, strokes, last Segmentation, last quick trimap, last preview alpha).
    """
    h, w = image.shape[:2]
    radius = max(2, int(round(BRUSH_FRACTION * max(h, w))))
    hints = np.full((h, w), qs.NO_HINT, np.uint8)
    strokes: list[Stroke] = []
    steps: list[Step] = []
    seg = None
    seen = visible_labels(provided, reference)
    while True:
        painted = hints if strokes else None
        if seg is None or strokes[-1].label != UNKNOWN:
            last = seg
            t_gc, seg = timed(lambda: qs.segment(image, **region, hints=painted, max_side=max_side))
            if last is not None:  # as the window does after a sure stroke
                seg = qs.keep_stroke_direction(seg, last, {strokes[-1].label})
        else:
            t_gc = 0.0  # an unknown stroke is only kept, as in the window: no GrabCut re-run
        # What the window does after a run: the distances, then the band's threshold.
        t_tri, quick = timed(lambda: seg.trimap(band, hints=painted))
        scale = choose_scale(quick, AUTO, budget, engine.context_margin, unknown_budget)
        t_prev, scaled = timed(lambda: estimate_alpha_scaled(engine, image, quick, scale))
        if scaled.scale >= 1.0:
            t_full, alpha = t_prev, scaled.alpha
        else:
            t_full, alpha = timed(lambda: engine.estimate(image, quick))
        wrong = wrong_fraction(quick, provided)
        dalpha = float(np.mean(np.abs(alpha - reference)))
        usable = wrong < USABLE_WRONG and dalpha < USABLE_DALPHA
        what = next(iter(region)) if not strokes else \
            f"+{LABEL_NAMES[strokes[-1].label]} {'lasso' if strokes[-1].lasso else 'stroke'} {len(strokes)}"
        steps.append(Step(what, t_gc, t_tri, t_prev, scaled.scale, scaled.work_size, t_full, wrong, dalpha,
                          float(np.mean(np.abs(scaled.alpha - reference))), usable))
        if usable or len(strokes) >= max_strokes:
            return steps, strokes, seg, quick, scaled.alpha
        stroke = plan_stroke(quick, seen, radius, np.abs(scaled.alpha - reference))
        if stroke is None or not stroke.mask.any():
            return steps, strokes, seg, quick, scaled.alpha
        hints[stroke.mask] = stroke.label
        strokes.append(stroke)


def screenshot(image, quick, provided, strokes, region, alpha) -> np.ndarray:
    """uint8 RGB: the photo with the trimap, wrong labels, strokes and box or outline overlaid | the alpha."""
    rgb = np.clip(image, 0, 1).astype(np.float32).copy()
    tint = np.zeros_like(rgb)
    weight = np.zeros(quick.shape, np.float32)
    tint[quick == BACKGROUND] = (0.1, 0.2, 0.9)
    weight[quick == BACKGROUND] = 0.45
    tint[quick == UNKNOWN] = (1.0, 0.9, 0.0)
    weight[quick == UNKNOWN] = 0.6
    false_fg, false_bg = wrong_labels(quick, provided)
    tint[false_fg | false_bg] = (1.0, 0.0, 1.0)
    weight[false_fg | false_bg] = 0.75
    for s in strokes:
        color = {FOREGROUND: (0.0, 1.0, 0.0), BACKGROUND: (1.0, 0.0, 0.0), UNKNOWN: (1.0, 0.55, 0.0)}[s.label]
        tint[s.mask] = color
        weight[s.mask] = 0.55
    over = rgb + weight[..., None] * (tint - rgb)
    over = np.round(np.clip(over, 0, 1) * 255).astype(np.uint8)
    if "box" in region:
        x0, y0, x1, y1 = region["box"]
        cv2.rectangle(over, (x0, y0), (x1 - 1, y1 - 1), (0, 255, 255), 2)
    else:
        pts = np.round(region["outline"]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(over, [pts], True, (0, 255, 255), 2)
    for s in strokes:
        pts = np.round(s.path).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(over, [pts], s.lasso, (255, 255, 255), 1)
    a = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([over, gap, np.dstack([a, a, a])], axis=1)


@dataclass
class Layout:
    """Where a data folder keeps its photos, trimaps and (training set only) ground-truth alphas."""

    photos: Path
    trimaps: Path
    truth: Path | None

    @classmethod
    def of(cls, folder: Path) -> "Layout":
        if (folder / "gt_training_lowres").is_dir():
            return cls(folder / "input_training_lowres", folder / "trimap_training_lowres",
                       folder / "gt_training_lowres")
        return cls(folder / "input_lowres", folder / "trimap_lowres", None)


def bench_photos(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    where = Layout.of(folder)
    inputs = sorted(where.photos.glob("*.png"))
    if args.only:
        keep = set(args.only.split(","))
        inputs = [p for p in inputs if p.stem in keep]
    if not inputs:
        raise SystemExit(f"no photos in {where.photos}")
    engine = create_engine(args.engine)
    budget = auto_pixel_budget(args.engine, None)
    unknown_budget = auto_unknown_budget(args.engine)
    # Compile the solver's kernels before any clock starts (numba's first call).
    warm = np.zeros((16, 16, 3), np.float32)
    warm_trimap = np.zeros((16, 16), np.uint8)
    warm_trimap[4:12, 4:12] = UNKNOWN
    warm_trimap[7:9, 7:9] = 255
    engine.estimate(warm, warm_trimap)
    sides = [int(v) for v in str(args.max_side).split(",")]
    out = Path(args.out) if args.out else None
    sessions: list[Session] = []
    step_rows = []
    for path in inputs:
        image = read_image(path)
        provided = read_trimap(where.trimaps / args.trimap_set / path.name, image.shape)
        if where.truth is not None and not args.against_trimap:
            # The scale: how far the matte on the hand-drawn trimap itself is from the truth.
            reference = read_alpha(where.truth / path.name, image.shape, what="ground-truth alpha")
            scale = [float(np.mean(np.abs(engine.estimate(image, provided) - reference)))]
        else:
            reference = engine.estimate(image, provided)
            # The scale: how far the mattes on the other hand-drawn trimaps are from this one's.
            scale = []
            for other in OTHER_SETS:
                other_path = where.trimaps / other / path.name
                if other == args.trimap_set or not other_path.exists():
                    scale.append(float("nan"))
                    continue
                other_alpha = engine.estimate(image, read_trimap(other_path, image.shape))
                scale.append(float(np.mean(np.abs(other_alpha - reference))))
        region = ({"box": box_from_trimap(provided)} if args.start == "box"
                  else {"outline": outline_from_trimap(provided)})
        bands = [qs.default_band(image.shape) if b == "default" else int(b) for b in args.band.split(",")]
        h, w = image.shape[:2]
        for side, band in ((side, band) for side in sides for band in bands):
            steps, strokes, seg, quick, alpha = simulate(
                image, provided, reference, region, band, side, args.strokes, engine, budget, unknown_budget)
            s = Session(path.stem, f"{w}x{h}", f"{seg.small.shape[1]}x{seg.small.shape[0]}", side, band, scale,
                        steps, strokes)
            sessions.append(s)
            for st in steps:
                row = [path.stem, str(side), str(band), st.what, f"{st.t_grabcut:.2f}", f"{st.t_trimap * 1000:.0f}",
                       f"{st.t_preview:.2f}", f"{st.preview_scale:.2f}",
                       f"{st.preview_size[1]}x{st.preview_size[0]}", f"{st.t_full:.2f}",
                       f"{100 * st.wrong:.2f}", f"{st.dalpha:.4f}", f"{st.dalpha_preview:.4f}",
                       "yes" if st.usable else "no"]
                step_rows.append(row)
                print("  ".join(row), flush=True)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                shot = screenshot(image, quick, provided, strokes, region, alpha)
                stem = f"{path.stem}_{side}_band{band}"
                cv2.imwrite(str(out / f"{stem}.png"), cv2.cvtColor(shot, cv2.COLOR_RGB2BGR))
                write_alpha(out / f"{stem}_alpha.png", alpha)
    print()
    truth = where.truth is not None and not args.against_trimap
    against = "the ground truth" if truth else f"the alpha on {args.trimap_set}"
    scale_columns = [f"{args.trimap_set} |dA|"] if truth else [f"T{k[-1]} |dA|" for k in OTHER_SETS]
    print(f"Every run (engine {args.engine}; preview = automatic preview resolution, budget {budget} px "
          f"and {unknown_budget} unknown px; "
          f"full = full resolution; wrong = % of {args.trimap_set}-known pixels with the opposite label; "
          f"|dA| vs {against}):")
    table(["photo", "max side", "band", "step", "GrabCut s", "trimap ms", "preview s", "scale", "solved",
           "full s", "wrong %", "|dA| full", "|dA| prev", "usable"], step_rows)
    rows = []
    for s in sessions:
        rows.append([
            s.photo, s.size, str(s.max_side), s.working, str(s.band), "1", str(len(s.strokes)),
            " ".join(f"{st.t_grabcut:.2f}" for st in s.steps),
            f"{max(st.t_trimap for st in s.steps) * 1000:.0f}",
            " ".join(f"{st.t_preview:.2f}" for st in s.steps),
            " ".join(f"{100 * st.wrong:.1f}" for st in s.steps),
            " ".join(f"{st.dalpha:.3f}" for st in s.steps),
            *(f"{v:.3f}" for v in s.scale),
            "yes" if s.usable else "no",
        ])
    print(f"Per photo (clicks: the {args.start} drag; strokes: {args.strokes} at most, brush radius "
          f"{BRUSH_FRACTION:.1%} of the longer side; lists: {args.start}, then after each stroke; usable: "
          f"wrong < {USABLE_WRONG:.0%} and |dA| < {USABLE_DALPHA}):")
    table(["photo", "size", "max side", "GrabCut at", "band", "clicks", "strokes", "GrabCut s per run",
           "trimap ms", "preview s per run", "wrong % per run", "|dA| per run", *scale_columns, "usable"], rows)
    for side, band in dict.fromkeys((s.max_side, s.band) for s in sessions):
        group = [s for s in sessions if (s.max_side, s.band) == (side, band)]
        first_only = sum(1 for s in group if s.steps[0].usable)
        usable = sum(1 for s in group if s.usable)
        previews = [st.t_preview for s in group for st in s.steps]
        grabcuts = [st.t_grabcut for s in group for st in s.steps]
        strokes = [len(s.strokes) for s in group if s.usable]
        print(f"max side {side}, band {band}: usable with the {args.start} alone {first_only}/{len(group)}, "
              f"with {args.start} + <= {args.strokes} "
              f"strokes {usable}/{len(group)} (strokes used by the usable ones: "
              f"{' '.join(map(str, strokes)) or '-'}); median preview {statistics.median(previews):.2f} s "
              f"(max {max(previews):.2f}); median GrabCut {statistics.median(grabcuts):.2f} s "
              f"(max {max(grabcuts):.2f})")


def bench_big(args: argparse.Namespace) -> None:
    w, h = (int(v) for v in args.big.lower().split("x"))
    side = int(str(args.max_side).split(",")[0])
    image, trimap = make_big_scene(h, w, 0.006 * max(h, w))
    box = box_from_trimap(trimap)
    band = qs.default_band(image.shape)
    rows = []
    t, seg = timed(lambda: qs.segment(image, box=box, max_side=side))
    rows.append(["segment (box, from scratch)", f"{t:.2f}"])
    hints = np.full((h, w), qs.NO_HINT, np.uint8)
    hints[h // 20: h // 20 + max(2, h // 200), w // 10: w // 2] = BACKGROUND
    t, rerun = timed(lambda: qs.segment(image, box=box, hints=hints, max_side=side))
    rows.append(["segment with a stroke, from scratch", f"{t:.2f}"])
    t, _ = timed(lambda: qs.keep_stroke_direction(rerun, seg, {BACKGROUND}))
    rows.append(["keep_stroke_direction (takes away only; holes elsewhere)", f"{t:.3f}"])
    t, _ = timed(lambda: qs.segment(image, box=box, hints=hints, previous=seg, max_side=side))
    rows.append(["segment with a stroke, previous reused", f"{t:.2f}"])
    t, quick = timed(lambda: qs.trimap_from_segmentation(seg.mask, band))
    rows.append([f"trimap_from_segmentation (band {band})", f"{t:.3f}"])
    t, _ = timed(lambda: seg.trimap(band))
    rows.append(["Segmentation.trimap, first (distances)", f"{t:.3f}"])
    t, _ = timed(lambda: seg.trimap(band + 10))
    rows.append(["Segmentation.trimap, slider move (cached)", f"{t:.3f}"])
    lassoed = hints.copy()
    lassoed[box[1]:(box[1] + box[3]) // 2, box[0]:box[2]] = UNKNOWN  # the subject's top half
    t, _ = timed(lambda: seg.trimap(band, hints=lassoed))
    rows.append(["Segmentation.trimap after a lasso (slivers it cut off)", f"{t:.3f}"])
    rng = np.random.default_rng(0)
    alpha = (quick == 255).astype(np.float32)
    unknown = quick == UNKNOWN
    alpha[unknown] = rng.uniform(0, 1, int(unknown.sum())).astype(np.float32) ** 3
    t, _ = timed(lambda: qs.tighten(quick, alpha))
    rows.append(["tighten", f"{t:.3f}"])
    print(f"synthetic {w}x{h} ({w * h / 1e6:.0f} MP), GrabCut at {seg.small.shape[1]}x{seg.small.shape[0]}:")
    table(["step", "seconds"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--trimap-set", default="Trimap1", help="the oracle: where the user would paint")
    parser.add_argument("--engine", default="closed-form")
    parser.add_argument("--max-side", default=str(qs.DEFAULT_MAX_SIDE),
                        help="GrabCut working size(s), comma-separated, e.g. 512,800")
    parser.add_argument("--band", default="default",
                        help="unknown band width(s) in px, comma-separated; 'default' = quickselect.default_band")
    parser.add_argument("--strokes", type=int, default=3, help="most strokes the simulated user paints")
    parser.add_argument("--out", default=None, help="write screenshot-like PNGs and the alphas here")
    parser.add_argument("--only", default=None, help="comma-separated photo names")
    parser.add_argument("--big", default=None, help="also time a synthetic photo of this size, e.g. 6000x4000")
    parser.add_argument("--against-trimap", action="store_true",
                        help="with ground truth at hand, still measure |dA| against the alpha on the user's trimap "
                             "(as on the test set), to see how the two verdicts compare")
    parser.add_argument("--sure-strokes-only", action="store_true",
                        help="the simulated user paints only sure strokes, no unknown lasso once wrong < 1%% "
                             "(see step 3 of the module docstring)")
    parser.add_argument("--strokes-within-trimap", action="store_true",
                        help="the stricter user: sure strokes only where the provided trimap is known, not "
                             "also where its matte is plainly 0 or 1 (see step 2 of the module docstring)")
    parser.add_argument("--start", choices=("box", "outline"), default="box",
                        help="the user's first gesture: a box drag, or an outline drawn round the subject "
                             "(see step 1 of the module docstring)")
    parser.add_argument("--lasso-over-solid", action="store_true",
                        help="the lasso's margin also covers what the user sees as sure foreground "
                             "(see step 3 of the module docstring)")
    args = parser.parse_args(argv)
    global UNKNOWN_STROKES, STROKES_WITHIN_TRIMAP, LASSO_OVER_SOLID
    UNKNOWN_STROKES = not args.sure_strokes_only
    STROKES_WITHIN_TRIMAP = args.strokes_within_trimap
    LASSO_OVER_SOLID = args.lasso_over_solid
    print(f"machine: {cpu_name()}; GrabCut working size <= {args.max_side} px; band {args.band}\n")
    if args.big:
        bench_big(args)
    bench_photos(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
