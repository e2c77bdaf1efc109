"""Quick selection: a first trimap from a box or an outline, and "tighten" from an alpha.

A new user should not have to paint a trimap from nothing. They drag a box
round the subject (or draw its outline); OpenCV's GrabCut segments it, and
the segmentation becomes a trimap: foreground inside, background outside and
an unknown band along the boundary, whose width a slider changes afterwards.
Strokes with the sure-foreground or sure-background brush are GrabCut hints
that re-run the segmentation, starting from the labels of the last run.
``tighten`` goes the other way: from an alpha already estimated it makes the
confident pixels of the unknown band known, so the band narrows to where the
alpha is really fractional and the next solve is smaller and better posed.

Conventions (as everywhere, see ``images``): images are float32 (H, W, 3) RGB
in [0, 1], trimaps uint8 0/128/255. Hint maps are uint8 (H, W) at the photo's
size: ``FOREGROUND`` (255) and ``BACKGROUND`` (0) are strokes of the sure
brushes, ``UNKNOWN`` (128) a stroke of the unknown brush (no GrabCut
constraint, but kept unknown in the trimap), and every other value, spelled
``NO_HINT`` (1), means "not painted". 1 rather than 128 because the user's
unknown brush is a real instruction and must not be confused with "nothing".

Speed. GrabCut costs a graph cut over every pixel it is given, several times
(about 0.1 s per iteration per 100k pixels on one 2020 laptop core), so it
runs on the box plus a margin of context, scaled down so that the longer side
is at most ``max_side`` pixels, and the resulting mask is scaled back up with
linear interpolation (smooth rather than staircase edges). The upscaled
boundary is off by up to about half a working pixel, i.e. ``scale / 2`` photo
pixels; ``default_band`` is always much wider than that, so the true edge
stays inside the unknown band and the matting solver, not GrabCut, decides
it at full resolution. No full-resolution refinement is therefore done.

A box drawn to the frame. Where the subject runs off the photo the user can
only drag the box to the frame, and GrabCut then has no background to learn
from on that side: the background inside the box there is learnt by the
foreground model and kept. So where the box reaches the frame at the top or
a side, the pixels plainly unlike the middle of the box and connected to
that side start as probable background (``_frame_sides_as_probable_background``);
a subject that does run off the frame there has its middle's colours and
stays, and the bottom, where subjects are most often cut, is left alone.
Pieces of the foreground apart from the subject and much smaller than it
are left unknown (``detached_islands``): the matting solver, not GrabCut,
decides whether a book beside the toy belongs to it. So are the slivers of
sure foreground that an unknown stroke or lasso cuts off from the subject
(``cut_off_by_unknown``).

Adaptive band. A fixed band is too narrow along hair, fur or a net (strands
outside it are forced to background, background between strands inside it
to foreground) and needlessly wide on a hard edge (a slower, less
constrained solve). GrabCut's own colour models tell the two apart: where
many pixels near the edge have the colour of the other side, the edge is
soft. ``Segmentation.widening`` turns the local share of such pixels into a
factor between 1 and ``MAX_WIDENING`` and the band there is that many times
the slider's width; the slider still scales the whole band, and moving it
is still one threshold of a kept map (``Segmentation.band_distance``).
``trimap_from_segmentation`` (a bare mask, no colour models) keeps the
fixed band.

Determinism: GrabCut initialises its colour models with k-means, seeded from
OpenCV's per-thread RNG; ``segment`` seeds it (``cv2.setRNGSeed(0)``) in the
calling thread right before each run, so the same input gives the same mask
in any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import cv2
import numpy as np

from .errors import TrimapError
from .trimap import BACKGROUND, FOREGROUND, UNKNOWN, Box

#: Value of a hint map where nothing was painted (see the module docstring).
NO_HINT = 1

#: Longest side, in pixels, of the copy GrabCut works on. On a loaded 2-core
#: machine a GrabCut iteration at 512 px takes ~0.2-0.4 s (800 px: ~0.6-0.8 s);
#: 512 keeps a first segmentation near a second while a 6000-pixel photo's
#: boundary is still placed to ~6 px, well inside the default 36 px band.
DEFAULT_MAX_SIDE = 512
#: Iterations of a first run (GrabCut's usual 5: the labels have settled to
#: a few dozen pixels by then) and of a re-run that starts from the previous
#: labels (they are already settled except near the new strokes).
DEFAULT_ITERATIONS = 5
DEFAULT_REFINE_ITERATIONS = 2
#: Context kept round the box, as a fraction of the box's longer side (at
#: least 8 px): GrabCut learns the background colours from it. The rest of
#: the photo is background by definition and costs nothing.
CONTEXT_FRACTION = 0.25
#: Safety margin of ``tighten``, in pixels (see there).
TIGHTEN_MARGIN = 1
#: Adaptive band (see ``_widening``): where the edge is soft, the unknown band
#: is up to this many times the slider's width. Measured on the 8
#: alphamatting.com test photos with the same strokes (bench/quickselect.py):
#: 3 lowered the wrong known labels and |dA| at every step; 6 widened the
#: band round hard edges whose colours merely resemble the background's
#: (the pineapple against orange flowers) and raised |dA| there.
MAX_WIDENING = 3.0
#: The band is widened fully where at least ``SOFT_EDGE_HIGH`` of the pixels
#: round the edge have the colour of the other side (GrabCut's colour
#: models), not at all at or below ``SOFT_EDGE_LOW``. A hard, antialiased
#: edge has a ring of one or two mixed pixels in a window several band widths
#: across (a few percent); hair, fur or a net (background between strands
#: inside the line, strands outside it) has tens of percent.
SOFT_EDGE_LOW = 0.10
SOFT_EDGE_HIGH = 0.30
#: A box reaching the frame (see ``_frame_sides_as_probable_background``):
#: the subject's colours are learnt from the box less this fraction of its
#: size on each side (its middle half), and a pixel is unlike the subject
#: when that model explains it worse than all but ``UNLIKE_QUANTILE`` of the
#: middle's own pixels. Measured on the 8 alphamatting.com test photos (box
#: alone, bench/quickselect.py --strokes 0): the 5 % quantile took the wrong
#: known labels from 20-28 % to 0.8-6.1 % on donkey, net and doll and to
#: 22-25 % from 28-33 % on plastic bag and troll; 10 % did better on the
#: doll (1.3 %) but marked the plant's leaves and the troll's hair (30 %, 40 %).
CENTRE_FRACTION = 0.25
UNLIKE_QUANTILE = 0.05
#: Foreground pieces smaller than this fraction of the largest one are left
#: unknown (``detached_islands``).
ISLAND_FRACTION = 0.5

Point = tuple[float, float]


def default_band(shape: tuple[int, ...]) -> int:
    """Suggested unknown-band half-width, in pixels, for a photo of this shape.

    0.6% of the longer side, at least 4 px: a soft edge (hair, fur, motion or
    focus blur) scales with the photo, and on a 6000 px photo that is 36 px
    each side, on an 800 px one 5 px. The lower bound keeps the band wider
    than GrabCut's own boundary error on small photos (a pixel or two of
    colour-bleeding on antialiased edges), and the band is always several
    times the error of upscaling the working mask (``longer / DEFAULT_MAX_SIDE / 2``).
    """
    longer = max(int(shape[0]), int(shape[1]))
    return max(4, int(round(0.006 * longer)))


@dataclass
class Segmentation:
    """The result of ``segment``; pass it back as ``previous`` to re-run with new hints.

    ``mask`` is the full-resolution foreground (bool, H x W). The rest is the
    state a re-run reuses: the working region (``crop`` of the photo, scaled
    by ``scale`` to ``small``), GrabCut's labels there (``labels``, the
    ``cv2.GC_*`` values after the run), the labels the box/outline alone gave
    (``base``, so that a hint stroke later undone stops being a hard
    constraint). The colour models are not kept (see ``segment``), only
    what the band needs from them: ``widening``, per working pixel, how
    many times the band is widened there (1 on a hard edge, up to
    ``MAX_WIDENING`` on a soft one; None: a fixed band). ``unsure`` (bool,
    photo-sized, or None) is left unknown in the trimap besides the
    detached islands: holes a background stroke punched in the subject far
    from itself (``keep_stroke_direction``).
    """

    mask: np.ndarray
    hints: np.ndarray | None
    crop: Box
    scale: float
    image_shape: tuple[int, int]
    small: np.ndarray = field(repr=False)
    base: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    widening: np.ndarray | None = field(default=None, repr=False)
    unsure: np.ndarray | None = field(default=None, repr=False)
    _distance: np.ndarray | None = field(default=None, repr=False)
    _band_distance: np.ndarray | None = field(default=None, repr=False)
    _islands: np.ndarray | None = field(default=None, repr=False)

    def distance(self) -> np.ndarray:
        """``boundary_distance(self.mask)``, computed once and kept."""
        if self._distance is None:
            self._distance = boundary_distance(self.mask)
        return self._distance

    def band_distance(self) -> np.ndarray:
        """The boundary distance divided by the local widening, computed once and kept.

        A pixel is in the unknown band of width ``band`` when this is at most
        ``band + 0.5``: on a hard edge (widening 1) that is the plain distance,
        on hair up to ``MAX_WIDENING`` times further out. One map for every
        band, so the slider still costs a threshold only and scales the band
        everywhere by the same factor.
        """
        if self._band_distance is None:
            distance = self.distance()
            if self.widening is None:
                self._band_distance = distance
            else:
                scaled = distance.copy()
                part = scaled[self.crop.slices]
                widen = self.widening
                if widen.shape != part.shape:
                    widen = cv2.resize(widen, (part.shape[1], part.shape[0]), interpolation=cv2.INTER_LINEAR)
                part /= widen
                self._band_distance = scaled
        return self._band_distance

    def trimap(self, band: int, *, hints: np.ndarray | None = None) -> np.ndarray:
        """The trimap for this band width, hint strokes kept.

        ``hints`` is the hint map whose strokes to keep (None: this run's,
        ``self.hints``; the window passes a newer map holding unknown-brush
        strokes painted since, which do not re-run GrabCut). The band is
        adaptive (``widening``): ``band`` pixels each side of a hard edge, up
        to ``MAX_WIDENING`` times that where the edge is soft. The distance
        map is kept, so moving a slider costs a threshold only.
        """
        return trimap_from_distance(self.mask, self.band_distance(), band,
                                    hints=self.hints if hints is None else hints, unknown=self.islands())

    def islands(self) -> np.ndarray:
        """What the trimap leaves unknown apart from the band: ``detached_islands`` and ``unsure``.

        Computed once and kept.
        """
        if self._islands is None:
            self._islands = detached_islands(self.mask, self.hints)
            if self.unsure is not None:
                self._islands |= self.unsure
        return self._islands


# --- segmentation -------------------------------------------------------------


def segment(
    image: np.ndarray,
    *,
    box: tuple[float, float, float, float] | None = None,
    outline: Sequence[Point] | np.ndarray | None = None,
    hints: np.ndarray | None = None,
    iterations: int | None = None,
    previous: Segmentation | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
) -> Segmentation:
    """Segment the subject inside ``box`` or ``outline`` with GrabCut.

    ``box`` is (x0, y0, x1, y1) in photo pixels (any corner order; clipped to
    the photo). ``outline`` is a closed polygon [(x, y), ...] or a boolean
    (H, W) mask of its inside. Outside the box/outline is sure background,
    inside probable foreground; give one of the two, or neither when
    ``previous`` is given (its region is reused). ``hints`` is a hint map
    (module docstring): its sure strokes become hard GrabCut labels, and a
    sure-foreground stroke outside the box widens the working region.

    With ``previous`` (the last result for the same photo), a run whose
    working region is unchanged reuses its working copy and starts from its
    labels, so 2 iterations (the default then; 5 from scratch) reach what a
    run from scratch reaches, in less than half the time. ``hints`` is the
    complete current hint map, not only the new strokes.

    Why the labels and not the colour models: continuing with the previous
    models (``cv2.GC_EVAL``) cannot learn a colour they lack. A background
    stroke across a green object wrongly included beside an orange subject
    left 90% of it included after 8 iterations, because the stroke's pixels
    were only absorbed into the existing background components; re-fitting
    the models with k-means (``GC_INIT_WITH_MASK``) from the previous labels
    plus the stroke removed it in one.
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    if hints is not None:
        hints = np.asarray(hints)
        if hints.shape != (h, w) or hints.dtype != np.uint8:
            raise TrimapError(
                f"the hint map must be 8-bit {w}x{h} (the photo's size), "
                f"got {hints.dtype} {hints.shape[1::-1] if hints.ndim >= 2 else hints.shape}"
            )
    if max_side < 16:
        raise ValueError(f"max_side must be at least 16 pixels, not {max_side}")
    inside = _inside_region(box, outline, (h, w))
    if inside is None:
        if previous is None:
            raise TrimapError("drag a box round the subject or draw its outline first")
        if previous.image_shape != (h, w):
            raise TrimapError("the previous selection belongs to a photo of another size")
        region, crop, scale, small = None, previous.crop, previous.scale, previous.small
    else:
        region = inside
        crop = _working_crop(region, hints, (h, w))
        scale = min(1.0, max_side / max(crop.height, crop.width))
        small = None

    reuse = (
        previous is not None
        and previous.image_shape == (h, w)
        and previous.crop == crop
        and math.isclose(previous.scale, scale)
        and (region is None or np.array_equal(_base_labels(region, crop, previous.small.shape[:2]), previous.base))
    )
    if reuse:
        assert previous is not None
        small = previous.small
        base = previous.base
        labels = previous.labels.copy()
        # Strokes are re-applied from the current hint map: hard labels of
        # the last run's strokes go back to "probable", so an undone stroke
        # stops constraining (the box's sure background stays sure).
        labels[labels == cv2.GC_FGD] = cv2.GC_PR_FGD
        labels[(labels == cv2.GC_BGD) & (base != cv2.GC_BGD)] = cv2.GC_PR_BGD
        n_iter = DEFAULT_REFINE_ITERATIONS if iterations is None else iterations
    else:
        if small is None:
            small = _downscale(image[crop.slices], scale)
        assert region is not None
        base = _base_labels(region, crop, small.shape[:2])
        labels = base.copy()
        _frame_sides_as_probable_background(small, labels, _touching_sides(_region_box(region), (h, w)))
        n_iter = DEFAULT_ITERATIONS if iterations is None else iterations
    if n_iter < 1:
        raise ValueError(f"iterations must be at least 1, not {n_iter}")
    if hints is not None:
        _apply_hints(labels, hints, crop, small.shape[:2])

    fg_possible = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if not fg_possible.any():
        raise TrimapError("the box or outline is too small: it holds no pixel of the working image")
    if not ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any():
        # The box covers the whole photo (a subject that fills the frame) and
        # no background was marked, but GrabCut needs background samples to
        # learn from. The outer strip of the frame is the likeliest
        # background, so it becomes sure background. (Probable background
        # was tried: GrabCut hands it back to the foreground, whose model has
        # learnt the whole photo's colours.) Where the subject does touch the
        # frame, a foreground stroke there wins over the strip.
        _frame_strip_as_background(labels)

    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    _grabcut_from_mask(small, labels, bgd_model, fgd_model, n_iter)

    mask = _upscale_mask(labels, crop, (h, w))
    if not mask.any():
        # An all-background trimap would silently wipe the user's subject off
        # the trimap; an error leaves the trimap as it was and says what helps.
        raise TrimapError(
            "nothing inside the selection stands out from the background round it, so GrabCut "
            "selected nothing: drag the box closer round the subject, or paint part of it with "
            "the foreground brush"
        )
    widening = (_widening(small, labels, bgd_model, fgd_model, default_band((h, w)) * scale)
                if MAX_WIDENING > 1 else None)
    return Segmentation(
        mask=mask,
        hints=None if hints is None else hints.copy(),
        crop=crop,
        scale=scale,
        image_shape=(h, w),
        small=small,
        base=base,
        labels=labels,
        widening=widening,
    )


def _gmm_log_density(model: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Log density of GrabCut's colour model at ``pixels`` ((N, 3) float64, 0-255).

    ``model`` is the (1, 65) array ``cv2.grabCut`` fills: the weights of its
    5 components, their means (5 x 3) and covariances (5 x 3 x 3), in that
    order (OpenCV's documented GMM layout). A small ridge keeps a component
    fitted to a flat colour invertible.
    """
    m = np.asarray(model, np.float64).reshape(-1)
    k = m.size // 13
    weights, means, covs = m[:k], m[k:4 * k].reshape(k, 3), m[4 * k:13 * k].reshape(k, 3, 3)
    out = np.full(pixels.shape[0], -np.inf)
    for i in range(k):
        if weights[i] <= 0:
            continue
        cov = covs[i] + np.eye(3) * 1e-2
        inv = np.linalg.inv(cov)
        d = pixels - means[i]
        q = np.einsum("ni,ij,nj->n", d, inv, d)
        logp = math.log(weights[i]) - 0.5 * (q + math.log(np.linalg.det(cov)) + 3 * math.log(2 * math.pi))
        np.logaddexp(out, logp, out=out)
    return out


def _widening(small: np.ndarray, labels: np.ndarray, bgd_model: np.ndarray, fgd_model: np.ndarray,
              band_small: float) -> np.ndarray:
    """Per working pixel, how many times the band should be widened there (1 to ``MAX_WIDENING``).

    GrabCut draws one hard line, but along hair or a net the truth is a
    zone of mixed pixels: strands of the subject outside the line, the
    background showing through inside it. Its colour models say so: there,
    many pixels on each side have the colour of the other side. So the share
    of such "contradicting" pixels (fg posterior < 1/2 inside, > 1/2 outside)
    is measured in a window a few band widths across, and the band widens
    where it is high. A hard edge keeps the slider's width: the matting
    solver then has little to estimate, which keeps the preview fast and
    the known labels close to the edge. Smoothing over the window rather
    than widening per pixel keeps the band one coherent zone (a hand-drawn
    trimap over hair is a broad stroke, not speckle).
    """
    pixels = small.reshape(-1, 3).astype(np.float64)
    log_fg = _gmm_log_density(fgd_model, pixels)
    log_bg = _gmm_log_density(bgd_model, pixels)
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).reshape(-1)
    contradicts = np.where(fg, log_bg > log_fg, log_fg > log_bg).astype(np.float32).reshape(labels.shape)
    # Window: about the widest band (MAX_WIDENING bands), so the share is that
    # of the zone the band would cover.
    sigma = max(1.0, 0.5 * MAX_WIDENING * band_small)
    share = cv2.GaussianBlur(contradicts, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    soft = np.clip((share - SOFT_EDGE_LOW) / (SOFT_EDGE_HIGH - SOFT_EDGE_LOW), 0.0, 1.0)
    return (1.0 + (MAX_WIDENING - 1.0) * soft).astype(np.float32)


def _touching_sides(box: Box, shape: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    """(top, bottom, left, right): which sides of ``box`` lie on the photo's frame."""
    h, w = shape
    return box.y0 <= 0, box.y1 >= h, box.x0 <= 0, box.x1 >= w


def _fitted_models(small: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut's (background, foreground) colour models fitted to ``labels``, without a cut.

    ``cv2.grabCut`` with no iteration only initialises its GMMs (k-means on
    each side of the labels), which is exactly the model a run would start from.
    """
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    _grabcut_from_mask(small, labels.copy(), bgd, fgd, 0)
    return bgd, fgd


def _frame_sides_as_probable_background(small: np.ndarray, labels: np.ndarray,
                                        touching: tuple[bool, bool, bool, bool]) -> None:
    """Where the box reaches the frame, start background that is plainly not the subject as probable background.

    (in place; ``labels`` are the box's own: probable foreground inside.)
    A box drawn to the frame on a side leaves GrabCut no background to learn
    from there, and whatever background lies inside the box on that side is
    learnt by the foreground model and kept (a box alone left 20-33 % of the
    known pixels wrong on 6 of the 8 alphamatting.com test photos). So the
    subject's colours are learnt from the middle of the box, the part a box
    drag is surest of, and the pixels inside the box whose colour that model
    explains worse than it explains 95 % of the middle's own pixels are
    candidates; those connected to a frame side the box touches start as
    probable background, a region flowing in from the frame rather than
    specks inside the subject. GrabCut's iterations may still hand them back.

    The bottom side is left alone: a subject cut by the frame is most often
    cut there (a portrait's shoulders, a plant's pot, a toy's feet), and its
    part there is often unlike its middle. With the bottom side too, the
    training photos' box-alone wrong labels rose from 2.0 % to 31 % (the
    pot of GT13) and from 0 % to 6 % (the koala's feet in GT16); without it
    the mean over the 35 alphamatting.com photos is 7.3 % (10.7 % with no
    frame-side sampling, 8.3 % with all sides).
    """
    top, bottom, left, right = touching
    if top and bottom and left and right:
        return  # no outside at all: ``_frame_strip_as_background`` does what can be done
    if not (top or left or right):
        return
    inside = labels == cv2.GC_PR_FGD
    if not inside.any():
        return
    sh, sw = labels.shape
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    bh, bw = y1 - y0, x1 - x0
    iy, ix = int(CENTRE_FRACTION * bh), int(CENTRE_FRACTION * bw)
    middle = np.zeros((sh, sw), bool)
    middle[y0 + iy:y1 - iy, x0 + ix:x1 - ix] = True
    middle &= inside
    if np.count_nonzero(middle) < 50 or np.count_nonzero(~middle) < 50:
        return
    _, centre_model = _fitted_models(small, np.where(middle, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8))
    log_fg = _gmm_log_density(centre_model, small.reshape(-1, 3).astype(np.float64)).reshape(sh, sw)
    unlike = inside & (log_fg < np.percentile(log_fg[middle], 100 * UNLIKE_QUANTILE))
    ky, kx = max(2, int(round(0.03 * bh))), max(2, int(round(0.03 * bw)))
    side = np.zeros((sh, sw), bool)
    if top:
        side[y0:y0 + ky, x0:x1] = True
    if left:
        side[y0:y1, x0:x0 + kx] = True
    if right:
        side[y0:y1, x1 - kx:x1] = True
    _, comp = cv2.connectedComponents(unlike.view(np.uint8), connectivity=8)
    seeds = np.unique(comp[side & unlike])
    flowing = np.isin(comp, seeds[seeds > 0])
    labels[flowing] = cv2.GC_PR_BGD


def _frame_strip_as_background(labels: np.ndarray) -> None:
    """Mark the outer 3% (at least 2 px) of the working image sure background, in place."""
    sh, sw = labels.shape
    k = max(2, int(round(0.03 * min(sh, sw))))
    strip = np.ones((sh, sw), bool)
    strip[k:sh - k, k:sw - k] = False
    labels[strip & (labels == cv2.GC_PR_FGD)] = cv2.GC_BGD
    if not (labels == cv2.GC_BGD).any():
        raise TrimapError(
            "the selection covers the whole photo, so there is no background to learn from: "
            "drag a smaller box or mark some background with the background brush"
        )


def _grabcut_from_mask(small: np.ndarray, labels: np.ndarray, bgd: np.ndarray, fgd: np.ndarray,
                       n_iter: int) -> None:
    """GrabCut from an initial label map, in place.

    GC_INIT_WITH_MASK fits the colour models afresh with k-means on the
    labels' two sides; k-means needs at least 5 samples per side (the
    components per model), which a tiny box may not hold: that OpenCV error
    becomes a message the user can act on.
    """
    try:
        cv2.grabCut(small, labels, None, bgd, fgd, n_iter, cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:
        raise TrimapError(
            "GrabCut could not learn the colours of the selection (it is too small or "
            f"too uniform): drag a larger box ({_opencv_reason(exc)})"
        ) from None


def _opencv_reason(exc: cv2.error) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else "OpenCV error"


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise TrimapError(f"quick selection needs an RGB image (H, W, 3), got shape {image.shape}")
    return image


def _inside_region(
    box: tuple[float, float, float, float] | None,
    outline: Sequence[Point] | np.ndarray | None,
    shape: tuple[int, int],
) -> Box | np.ndarray | None:
    """The user's region: a ``Box`` for a box, a bool (H, W) mask for an outline, or None."""
    if box is not None and outline is not None:
        raise ValueError("give a box or an outline, not both")
    h, w = shape
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise TrimapError("the selection box has non-finite corners")
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        bx = Box(max(0, int(math.floor(y0))), min(h, int(math.ceil(y1))),
                 max(0, int(math.floor(x0))), min(w, int(math.ceil(x1))))
        if bx.height < 2 or bx.width < 2:
            raise TrimapError("the selection box is empty or outside the photo: drag a box round the subject")
        return bx
    if outline is None:
        return None
    arr = np.asarray(outline)
    if arr.dtype == bool or (arr.ndim == 2 and arr.shape == (h, w)):
        if arr.shape != (h, w):
            raise TrimapError(f"the outline mask is {arr.shape[1]}x{arr.shape[0]} but the photo is {w}x{h}")
        inside = arr.astype(bool)
    else:
        pts = np.asarray(arr, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3 or not np.isfinite(pts).all():
            raise TrimapError("an outline needs at least three points")
        inside = np.zeros((h, w), np.uint8)
        cv2.fillPoly(inside, [np.round(pts).astype(np.int32)], 1)
        inside = inside.astype(bool)
    if not inside.any():
        raise TrimapError("the outline encloses no pixel of the photo")
    return inside


def _region_box(region: Box | np.ndarray) -> Box:
    if isinstance(region, Box):
        return region
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    return Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def _working_crop(region: Box | np.ndarray, hints: np.ndarray | None, shape: tuple[int, int]) -> Box:
    """The region's bounding box (and any foreground strokes) plus context."""
    bbox = _region_box(region)
    if hints is not None:
        fg = hints == FOREGROUND
        if fg.any():
            rows = np.flatnonzero(fg.any(axis=1))
            cols = np.flatnonzero(fg.any(axis=0))
            bbox = bbox.union(Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1))
    margin = max(8, int(round(CONTEXT_FRACTION * max(bbox.height, bbox.width))))
    return bbox.grow(margin, shape)


def _downscale(image: np.ndarray, scale: float) -> np.ndarray:
    """The working copy: uint8 RGB (GrabCut wants 8-bit, 3 channels), area-averaged."""
    h, w = image.shape[:2]
    if scale < 1.0:
        size = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _coverage(full: np.ndarray, crop: Box, small_shape: tuple[int, int]) -> np.ndarray:
    """Fraction (float32) of each working pixel that ``full`` (bool, photo-sized) covers."""
    part = full[crop.slices].astype(np.float32)
    sh, sw = small_shape
    if part.shape == (sh, sw):
        return part
    return cv2.resize(part, (sw, sh), interpolation=cv2.INTER_AREA)


def _base_labels(region: Box | np.ndarray, crop: Box, small_shape: tuple[int, int]) -> np.ndarray:
    """Working labels from the box/outline alone: inside probable foreground, outside sure background.

    A working pixel is probable foreground when any part of it is inside, so
    a thin part of an outline is not lost to the downscaling.
    """
    sh, sw = small_shape
    if isinstance(region, Box):
        sy, sx = sh / crop.height, sw / crop.width
        labels = np.full((sh, sw), cv2.GC_BGD, np.uint8)
        y0 = int(math.floor((region.y0 - crop.y0) * sy))
        y1 = int(math.ceil((region.y1 - crop.y0) * sy))
        x0 = int(math.floor((region.x0 - crop.x0) * sx))
        x1 = int(math.ceil((region.x1 - crop.x0) * sx))
        labels[max(0, y0):min(sh, y1), max(0, x0):min(sw, x1)] = cv2.GC_PR_FGD
        return labels
    cover = _coverage(region, crop, small_shape)
    return np.where(cover > 0, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)


def _apply_hints(labels: np.ndarray, hints: np.ndarray, crop: Box, small_shape: tuple[int, int]) -> None:
    """Sure strokes become hard labels (in place).

    A working pixel takes a stroke's label when any part of it was painted,
    so a thin stroke survives the downscaling; where both sure brushes
    touched the same working pixel, neither is imposed. Unknown-brush strokes
    impose nothing on GrabCut (they only stay unknown in the trimap).
    """
    part = hints[crop.slices]
    no = np.zeros(small_shape, bool)
    fg, bg = (
        _coverage(sel, Box(0, sel.shape[0], 0, sel.shape[1]), small_shape) > 0 if sel.any() else no
        for sel in (part == FOREGROUND, part == BACKGROUND)
    )
    labels[fg & ~bg] = cv2.GC_FGD
    labels[bg & ~fg] = cv2.GC_BGD


def _upscale_mask(labels: np.ndarray, crop: Box, shape: tuple[int, int]) -> np.ndarray:
    """GrabCut's working labels as a photo-sized bool foreground mask.

    Linear interpolation of the 0/1 mask, thresholded at one half, gives a
    boundary that follows the working pixels' centres smoothly instead of a
    staircase of scale-sized blocks.
    """
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
    mask = np.zeros(shape, bool)
    if fg.shape != (crop.height, crop.width):
        fg = cv2.resize(fg, (crop.width, crop.height), interpolation=cv2.INTER_LINEAR)
    mask[crop.slices] = fg >= 0.5
    return mask


def keep_stroke_direction(seg: Segmentation, previous: Segmentation, labels: set[int]) -> Segmentation:
    """``seg`` (a re-run with new strokes) changed only in the direction the new strokes ask for.

    ``labels`` are the sure labels painted since ``previous``. Background
    strokes only: no pixel that ``previous`` left out becomes foreground;
    foreground strokes only: none that it included is dropped. Both or
    neither: ``seg``'s mask unchanged. Why: a re-run starts afresh (see
    ``run_refresh`` in the window) and re-fits both colour models, and on
    photos that can move the line far from the stroke the wrong way. On the
    alphamatting.com net, a second background stroke made 27k pixels of
    background foreground (wrong known labels 1.2% -> 8.2%), on the troll 9k;
    the same rule lost under 250 pixels the re-runs had rightly turned the
    other way. A user expects a background stroke to take away, as
    Photoshop's subtract mode does. (Keeping, further, only the changes
    connected to the new strokes was tried: it also stopped the wanted
    removal of look-alike background elsewhere, and the troll ended at 3.5%
    wrong labels instead of 0.5%.)

    The same re-fit can punch a hole in the subject far from a background
    stroke, where the subject has the stroked colour (the doll's blue-grey
    eye after a stroke on the grey curtain). Such holes are left unknown
    (``holes_taken_elsewhere``, kept in ``unsure`` through later re-runs
    while they stay out of the mask), so the solver, not GrabCut, decides
    them from the colours round them. Refusing them instead (keeping them
    foreground) also kept the gaps between a plant's leaves that a stroke
    rightly opened (|dA| 0.027 -> 0.041 on the alphamatting.com plant);
    unknown, the solver clears the gaps and fills the eye.
    """
    if previous.image_shape != seg.image_shape or not labels:
        return seg
    if labels >= {FOREGROUND, BACKGROUND}:
        mask = seg.mask
    elif labels == {BACKGROUND}:
        mask = seg.mask & previous.mask
    else:
        mask = seg.mask | previous.mask
    unsure = None if previous.unsure is None else previous.unsure & ~mask
    if labels == {BACKGROUND}:
        holes = holes_taken_elsewhere(previous, mask, seg.hints, seg.crop)
        if holes is not None:
            unsure = holes if unsure is None else unsure | holes
    if unsure is not None and not unsure.any():
        unsure = None
    if np.array_equal(mask, seg.mask) and unsure is None and seg.unsure is None:
        return seg
    return replace(seg, mask=mask, unsure=unsure, _distance=None, _band_distance=None, _islands=None)


def holes_taken_elsewhere(previous: Segmentation, mask: np.ndarray, hints: np.ndarray | None,
                          crop: Box) -> np.ndarray | None:
    """The holes ``mask`` has where ``previous.mask`` had subject, away from the new background strokes.

    bool (H, W), or None when there are none. A piece taken away counts when
    none of it lies within ``default_band`` pixels of a background stroke
    painted since ``previous`` (``hints`` against ``previous.hints``), and
    only its part that ``mask`` encloses (background not connected to the
    frame or to the working region's edge): a piece taken from the
    subject's outline, far from the stroke, is most often the look-alike
    background the stroke was meant to take away as well.

    Worked on the union of both working regions (``crop``, ``previous.crop``):
    outside it both masks are background, so nothing there was taken away
    and nothing is enclosed.
    """
    if hints is None:
        return None
    removed = previous.mask & ~mask
    painted = hints == BACKGROUND
    if previous.hints is not None:
        painted &= previous.hints != BACKGROUND
    if not removed.any() or not painted.any():
        return None
    region = crop.union(previous.crop)
    taken = removed[region.slices]
    n, pieces = cv2.connectedComponents(taken.view(np.uint8), connectivity=8)
    # Which pieces lie near a new stroke: distances to the strokes (the zeros)
    # on the pieces' box grown by the tolerance only, and lookup tables rather
    # than np.isin over the region (0.8 s on 24 MP, more than GrabCut).
    tol = default_band(mask.shape)
    box = _bbox(taken)
    assert box is not None
    box = box.grow(tol + 1, taken.shape)
    near = cv2.distanceTransform(np.logical_not(painted[region.slices][box.slices]).view(np.uint8),
                                 cv2.DIST_L2, cv2.DIST_MASK_5) <= tol
    at_stroke = np.zeros(n, bool)
    at_stroke[pieces[box.slices][near]] = True
    at_stroke[0] = True  # label 0 is what was not taken
    elsewhere = ~at_stroke[pieces[box.slices]]
    if not elsewhere.any():
        return None
    # Enclosed background: 4-connected (the complement of an 8-connected
    # subject) and touching no edge of the region.
    n_out, outside = cv2.connectedComponents(np.logical_not(mask[region.slices]).view(np.uint8), connectivity=4)
    open_to_edge = np.zeros(n_out, bool)
    open_to_edge[np.concatenate([outside[0], outside[-1], outside[:, 0], outside[:, -1]])] = True
    elsewhere[elsewhere] = ~open_to_edge[outside[box.slices][elsewhere]]
    if not elsewhere.any():
        return None
    holes = np.zeros(mask.shape, bool)
    holes[region.slices][box.slices] = elsewhere
    return holes


# --- trimaps ------------------------------------------------------------------


def boundary_distance(mask: np.ndarray) -> np.ndarray:
    """For each pixel, its distance (px) to the other side of ``mask``'s boundary.

    Foreground pixels get the distance to the nearest background pixel and
    vice versa, so the pixels right at the boundary have 1 on both sides.
    The photo's border is not a boundary (a subject cut by the frame has no
    band along it). float32; Euclidean distances by OpenCV's 5x5 chamfer
    (within about 2% of exact, and four times faster than
    ``DIST_MASK_PRECISE``: 0.15 s against 0.65 s per transform on 24 MP).
    A mask with one side only gets +inf everywhere.
    """
    fg = np.asarray(mask).astype(bool)
    if fg.all() or not fg.any():
        return np.full(fg.shape, np.inf, np.float32)
    fg8 = fg.view(np.uint8)
    # distanceTransform measures to the nearest zero pixel: the fg side's
    # distance from the fg mask, the bg side's from its inverse.
    d_in = cv2.distanceTransform(fg8, cv2.DIST_L2, cv2.DIST_MASK_5)
    d_out = cv2.distanceTransform(np.logical_not(fg).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    np.copyto(d_in, d_out, where=~fg)
    return d_in


def trimap_from_distance(
    mask: np.ndarray, distance: np.ndarray, band: int, *, hints: np.ndarray | None = None,
    unknown: np.ndarray | None = None,
) -> np.ndarray:
    """The trimap of ``mask`` with ``band`` unknown pixels each side of the boundary.

    ``distance`` is ``boundary_distance(mask)`` (kept by the caller so a band
    slider costs only this threshold). ``unknown`` (bool, optional) is made
    unknown too (``detached_islands``). Hint strokes are kept where painted,
    over both: sure strokes known, unknown-brush strokes unknown.
    """
    if band < 0:
        raise TrimapError(f"the band width must be 0 or more pixels, not {band}")
    mask = np.asarray(mask).astype(bool, copy=False)
    trimap = np.where(mask, np.uint8(FOREGROUND), np.uint8(BACKGROUND))
    # <= band + 0.5: a band of n pixels is n whole pixels on each side even
    # along diagonals, where the Euclidean distances are not integers.
    if band > 0:
        trimap[distance <= band + 0.5] = UNKNOWN
    if unknown is not None:
        trimap[unknown] = UNKNOWN
    if hints is not None:
        _keep_hints(trimap, hints, band)
    return trimap


def cut_off_by_unknown(trimap: np.ndarray, hints: np.ndarray, band: int) -> np.ndarray:
    """Slivers of sure foreground that the unknown strokes cut off from the subject.

    bool (H, W): every 8-connected piece of ``trimap``'s foreground that
    touches a stroke of the unknown brush or lasso in ``hints``, is no wider
    than the unknown band (no pixel of it more than ``band`` pixels from its
    edge), is smaller than ``ISLAND_FRACTION`` of the largest piece and holds
    no foreground stroke. A lasso round a see-through part (a bag, a net, a
    mass of hair) rarely meets the band exactly: a strip of the
    segmentation's foreground is left between its edge and the band, or
    between two lassos. As sure foreground inside a see-through zone such a
    strip forces alpha 1 there, and the solver carries it across every
    pixel of like colour: on the alphamatting.com plastic bag 36 such pixels
    at the top of the bag made its see-through top about 0.3 too opaque
    (mean |dA| 0.034 against 0.012 without them). Wider pieces are what the
    user left out of the lasso on purpose and stay sure: a cluster of leaves
    between lassos round the gaps of a plant (alphamatting.com's GT13), made
    unknown too, came out half transparent (|dA| 0.062 against 0.055). So do
    pieces the band alone cuts off (a leaf on a stem thinner than the band):
    no unknown stroke made them. A painted foreground
    stroke keeps its piece sure, as with ``detached_islands``.
    """
    out = np.zeros(trimap.shape, bool)
    lassoed = hints == UNKNOWN
    if band <= 0 or not lassoed.any():
        return out
    n, comp, stats, _ = cv2.connectedComponentsWithStats((trimap == FOREGROUND).view(np.uint8), connectivity=8)
    if n <= 2:
        return out
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
    areas[0] = 0
    chosen = areas < ISLAND_FRACTION * areas.max()
    touching = np.zeros(n, bool)
    touching[comp[cv2.dilate(lassoed.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)]] = True
    chosen &= touching
    chosen[comp[hints == FOREGROUND]] = False
    chosen[0] = False
    for i in np.flatnonzero(chosen):
        x, y, w, h = (int(v) for v in stats[i, :4])
        # A piece's edge lies within its box grown by a pixel (8-connected: no other
        # foreground piece touches it), so its width is measured on that box alone.
        box = Box(y, y + h, x, x + w).grow(1, trimap.shape)
        piece = (comp[box.slices] == i).view(np.uint8)
        if cv2.distanceTransform(piece, cv2.DIST_L2, cv2.DIST_MASK_5).max() > band + 0.5:
            chosen[i] = False
    if chosen.any():
        out = chosen[comp]
    return out


def detached_islands(mask: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
    """Foreground pieces apart from the subject, which the trimap leaves to the matting solver.

    bool (H, W): the pixels of every 8-connected piece of ``mask`` smaller
    than ``ISLAND_FRACTION`` of the largest piece and holding no
    foreground stroke of ``hints``. GrabCut keeps background objects whose
    colours its foreground model learnt (a book beside a toy, a lamp behind
    a plant) as pieces apart from the subject; as sure foreground they would
    force alpha 1 there. Unknown, the solver decides from the colours: a
    piece bordered by background only comes out transparent with a
    classical solver (alpha 0 costs its smoothness term nothing), while a
    real part of the subject the user wants shows as missing in the preview
    and one foreground stroke on it makes it sure again. Pieces at least
    ``ISLAND_FRACTION`` of the largest are kept (two subjects in one box).
    """
    fg = np.asarray(mask).astype(bool, copy=False)
    out = np.zeros(fg.shape, bool)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(fg.view(np.uint8), connectivity=8)
    if n <= 2:
        return out
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
    areas[0] = 0
    detached = areas < ISLAND_FRACTION * areas.max()
    detached[0] = False
    if hints is not None:
        painted = np.unique(comp[(hints == FOREGROUND) & fg])
        detached[painted] = False
    if detached.any():
        out = detached[comp]
    return out


def trimap_from_segmentation(mask: np.ndarray, band: int, *, hints: np.ndarray | None = None) -> np.ndarray:
    """A trimap from a foreground mask: foreground inside, background outside,
    an unknown band of ``band`` pixels each side of the boundary; hint strokes
    (see the module docstring) kept where they were painted.

    For repeated calls on one mask (a band slider) use ``Segmentation.trimap``,
    which keeps the distance map between calls.
    """
    if band < 0:
        raise TrimapError(f"the band width must be 0 or more pixels, not {band}")
    mask = np.asarray(mask).astype(bool, copy=False)
    trimap = np.where(mask, np.uint8(FOREGROUND), np.uint8(BACKGROUND))
    fg_box = _bbox(mask)
    if band > 0 and fg_box is not None:
        # Only pixels within ``band`` of the foreground can be in the band, so
        # the distances are computed on the foreground's box plus the band
        # (a small subject in a big photo costs little); the box keeps a
        # margin of background round the subject, so the distances inside
        # it are those of the whole mask.
        box = fg_box.grow(band + 2, mask.shape)
        part = trimap[box.slices]
        part[boundary_distance(mask[box.slices]) <= band + 0.5] = UNKNOWN
    if hints is not None:
        _keep_hints(trimap, hints, band)
    return trimap


def _keep_hints(trimap: np.ndarray, hints: np.ndarray, band: int) -> None:
    """Every stroke of ``hints`` keeps its label in ``trimap``, and the unknown ones leave no sliver behind."""
    if hints.shape != trimap.shape:
        raise TrimapError(f"the hint map is {hints.shape[1]}x{hints.shape[0]} but the trimap is "
                          f"{trimap.shape[1]}x{trimap.shape[0]}")
    for value in (BACKGROUND, UNKNOWN, FOREGROUND):
        trimap[hints == value] = value
    trimap[cut_off_by_unknown(trimap, hints, band)] = UNKNOWN


def tighten(
    trimap: np.ndarray, alpha: np.ndarray, threshold: float = 0.02, *, margin: int = TIGHTEN_MARGIN
) -> np.ndarray:
    """A narrower trimap from an estimated alpha: confident unknown pixels become known.

    In the unknown band, alpha <= ``threshold`` becomes background and
    alpha >= 1 - ``threshold`` foreground; known pixels stay as they are.
    Pixels within ``margin`` pixels (a square neighbourhood) of a fractional
    alpha stay unknown: the alpha right next to a soft edge is the solver's
    least reliable "confident" value (a smooth ramp that just crossed the
    threshold), and keeping that ring means the next solve can still move it,
    and a run of fractional pixels broken only by a pixel that happens to be
    near 0 or 1 (a gap between hairs) stays one connected band rather than
    islands. ``margin=0`` gives the plain threshold. The result may have no
    unknown pixel left when the alpha is everywhere confident.
    """
    trimap = np.asarray(trimap)
    alpha = np.asarray(alpha, dtype=np.float32)
    if trimap.shape != alpha.shape:
        raise TrimapError(f"the alpha is {alpha.shape[1::-1]} but the trimap is {trimap.shape[1::-1]} (width x height)")
    if not 0.0 <= threshold < 0.5:
        raise ValueError(f"the tighten threshold must be in [0, 0.5), not {threshold}")
    if margin < 0:
        raise ValueError(f"margin must be 0 or more pixels, not {margin}")
    out = trimap.copy()
    unknown = trimap == UNKNOWN
    fractional = unknown & (alpha > threshold) & (alpha < 1.0 - threshold)
    if margin > 0 and fractional.any():
        box = _bbox(fractional)
        assert box is not None
        box = box.grow(margin, trimap.shape)
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        grown = cv2.dilate(fractional[box.slices].view(np.uint8), kernel)
        keep = np.zeros_like(fractional)
        keep[box.slices] = grown.astype(bool)
    else:
        keep = fractional
    settle = unknown & ~keep
    out[settle & (alpha <= threshold)] = BACKGROUND
    out[settle & (alpha >= 1.0 - threshold)] = FOREGROUND
    return out


def _bbox(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def unknown_fraction(trimap: np.ndarray) -> float:
    """Share of the photo that is unknown (what a solver must estimate)."""
    return float(np.count_nonzero(trimap == UNKNOWN)) / max(1, trimap.size)
