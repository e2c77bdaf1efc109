"""Information-flow matting (Aksoy, Aydin and Pollefeys, CVPR 2017).

"Designing Effective Inter-Pixel Information Flow for Natural Image Matting".
Written from the paper on PyMatting's building blocks (``knn``, ``cf_laplacian``,
``ichol``, ``cg``, ``trimap_split``) and SciPy sparse matrices. OpenCV's
contrib ``alphamat`` is not in the pip wheels and the authors' toolbox is for
academic use only, so no code is taken from either.

The energy, over the crop the engine works on (unknown region + margin):

- **Colour-mixture flow** (paper sec. 3.1). Each unknown pixel p is written
  as a mixture of its ``K_CM`` = 20 nearest neighbours in the feature space
  [r, g, b, x~, y~] (x~, y~ the pixel position divided by the width and
  height, weight ``cm_xyw`` = 1); the weights are those of locally linear
  embedding (Roweis and Saul 2000) on the colours: minimise
  |c_p - sum_q w_pq c_q|^2 subject to sum_q w_pq = 1, with the usual
  regulariser ``lle_eps`` on the Gram matrix. E_CM = sum_p (a_p - sum_q w_pq a_q)^2,
  i.e. the Laplacian (I - W)^T (I - W) over the unknown rows.
  The K x K Gram matrix has rank <= 3, so the weights are computed in closed
  form with the Woodbury identity (one 3 x 3 solve per pixel, vectorised);
  why not a loop: it keeps this stage in NumPy, with no Numba kernel of ours.
- **Known-to-unknown flow** (sec. 3.2). Each unknown pixel's ``K_KU`` = 7
  nearest foreground and 7 nearest background pixels in [r, g, b, 10 x~, 10 y~]
  (``ku_xyw`` = 10); LLE weights over those 14 colours give the estimate
  w^F_p = sum of the foreground weights, and a confidence
  eta_p = |F_p - B_p|^2 / 3 from the weighted mean foreground and background
  colours. E_KU = sum_p eta_p (a_p - w^F_p)^2, weight ``sigma_ku`` = 0.05.
  (The LLE weights may be negative; the two mean colours are clipped to the
  colour cube so that eta stays in [0, 1] and w^F_p is clipped to [0, 1].)
- **Intra-unknown flow** (sec. 3.3). ``K_UU`` = 5 nearest unknown pixels in
  [r, g, b, 0.05 x~, 0.05 y~] (``uu_xyw`` = 0.05), affinity
  max(1 - |F_p - F_q|, 0), symmetrised; graph Laplacian, weight
  ``sigma_uu``: the paper's 0.01 on request, **0 (off) by default**.
  Measured on the 27 alphamatting training photos (bench/quality.py):
  with the flow the mean SAD is 4.17 / 6.23 (Trimap1 / Trimap2), without
  it 4.26 / 6.08, but with it GT16 (a flag wholly inside Trimap2's unknown
  region) is 30 % worse than closed-form (32.5 against 25.0; 25.3 without
  the flow) and GT14/GT08 12-14 %: its nearly colour-only neighbours
  (positions weigh 0.05) tie the flag to far background pixels of similar
  colour. Without it no photo is more than 5.5 % worse than closed-form.
  The same long links are what carries a thin strand far from known pixels
  (tests/test_ifm.py: mean error 0.012 with it, 0.030 without, 0.044 for
  closed-form), so ``sigma_uu=0.01`` remains an option for such photos.
- **Local flow** (sec. 3.4): the closed-form matting Laplacian (Levin et al.
  2008), 3x3 windows, epsilon 1e-6, weight ``sigma_l`` = 1.

The paper solves (L_IFM + lambda T + sigma_KU H) a = (lambda T + sigma_KU H) w
with lambda = 100 on the known pixels. Here the known pixels are held exactly
(lambda -> infinity, as PyMatting's closed-form does), which removes them
from the system: the unknowns' block is solved by conjugate gradient with
PyMatting's incomplete-Cholesky preconditioner. Every engine forces known
pixels to 0/1 anyway, so this is the paper's system in the limit where its
known-pixel constraints are satisfied, and better conditioned.

Parameter values: the paper (CVPR 2017, sec. 3 and 4) gives K_CM = 20,
K_KU = 7, K_UU = 5, sigma_CM = 1, sigma_KU = 0.05, sigma_UU = 0.01 (off here: above),
sigma_L = 1 and lambda = 100; the feature position weights (1, 10, 0.05) and
the local epsilon (1e-6) are the defaults of the authors' published parameter
set (``getMattingParams('IFM')`` of their Affinity-Based Matting Toolbox, read
as a reference, not copied). The LLE regulariser ``lle_eps`` = 1e-10 was
measured here: OpenCV's ``alphamat`` uses 1e-3, which on the alphamatting
training photos (6 photos, Trimap2, with the intra-unknown flow then on)
gave a mean SAD of 9.82 against 9.27 with 1e-10 (the weights then reproduce each colour almost exactly, which is
what the colour-mixture and K-to-U flows assume); ``lle_weights`` falls back
to the neighbours' mean where the Gram matrix is numerically singular.

Energy selection (paper, sec. 3.5): the K-to-U flow hurts highly transparent
subjects, so by default (``use_known_to_unknown="auto"``) it is left out when
a histogram test says the photo is one: the unknown region's colour histogram
(10 bins per channel) is fitted as a least-squares mix of the histograms of
the foreground and background pixels near it (within 10 px); a residual
|r| / 30 above 0.0099 (the threshold of the authors' toolbox) means
"highly transparent". ``True``/``False`` force the flow on or off. The test
runs once on the whole crop, so tiles of one photo all make the same choice.

Edge-based trimap trimming (paper, sec. 3.6; ``edge_trim`` = True, see
``engines.trimming``): unknown pixels next to a known pixel of almost the same
colour take its label as a sure estimate (confidence 1) in the K-to-U term,
also when the energy selection leaves the flow itself out. The known pixels
the solve holds are not changed. Measured on the same 6 photos (the
intra-unknown flow then on): mean SAD 8.40 with it, 9.27 without. Not implemented: the paper's patch-based
trimming, which needs a patch search over the whole photo.

Memory follows the band: every matrix is built over the crop, the non-local
terms only over its unknown pixels, and the base class tiles large crops
(``solve_bytes_per_*``, rough estimates from sparse sizes; see the report).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .. import numba_cache
from ..errors import EngineError
from .base import GIB, CancelFn, ProgressFn, check_cancel, scaled_progress
from .classical import _cg_callback, _PyMattingEngine

#: Default parameters (sources in the module docstring).
DEFAULTS: dict[str, Any] = {
    "cm_k": 20, "cm_xyw": 1.0, "sigma_cm": 1.0,
    "ku_k": 7, "ku_xyw": 10.0, "sigma_ku": 0.05,
    "uu_k": 5, "uu_xyw": 0.05, "sigma_uu": 0.0,
    "local_radius": 1, "local_eps": 1e-6, "sigma_l": 1.0,
    "lle_eps": 1e-10,
    "ichol_discard": 3e-2,
    "use_known_to_unknown": "auto",
    "edge_trim": True,
}

# Share of the progress bar each stage takes (setup, then the solve).
_STAGES = {"cm": 0.12, "ku": 0.20, "uu": 0.25, "local": 0.30, "precond": 0.35}
# Diagonal shifts the incomplete Cholesky factorisation tries in turn when
# dropping entries breaks it (each failure costs a partial factorisation, up
# to ~1 s on a wide band). Measured on the 27 Trimap1 photos, each shift
# alone: 0 works for 18, 1e-2 for 2 more, 0.1 for the other 7; PyMatting's
# 1e-4 and 1e-3 never rescued one, so they are not tried.
_ICHOL_SHIFTS = [0.0, 1e-2, 0.1, 0.5, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
# Unknown pixels per chunk of vectorised work (bounds the temporaries and
# lets cancel be polled inside a stage).
_CHUNK = 65536


def _features(image: np.ndarray, xyw: float, frame: tuple[int, int] | None = None) -> np.ndarray:
    """[r, g, b, xyw * x / w, xyw * y / h] per pixel, float32 (PyMatting's knn wants it).

    ``frame`` = (h, w) of the region positions are normalised by (default: the image).
    """
    h, w = frame if frame is not None else image.shape[:2]
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    f = np.empty((image.shape[0] * image.shape[1], 5), np.float32)
    f[:, :3] = image.reshape(-1, 3)
    f[:, 3] = xyw * xx.ravel() / max(w, 1)
    f[:, 4] = xyw * yy.ravel() / max(h, 1)
    return f


class _Neighbours:
    """Nearest neighbours among ``data`` points (PyMatting's KD-tree, built once)."""

    def __init__(self, data: np.ndarray) -> None:
        from pymatting import KDTree

        self.size = data.shape[0]
        self.tree = KDTree(np.ascontiguousarray(data, np.float32))

    def query(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """Indices of the ``k`` nearest points to each query, leaving out
        ``exclude`` (each query's own index among the points) when given."""
        extra = 1 if exclude is not None else 0
        kk = min(k + extra, self.size)
        _, idx = self.tree.query(np.ascontiguousarray(queries, np.float32), kk)
        idx = np.asarray(idx, np.int64).reshape(len(queries), kk)
        if exclude is not None:
            # Move the query itself (if found) to the end, then drop the last column.
            is_self = idx == exclude[:, None]
            order = np.argsort(is_self, axis=1, kind="stable")
            idx = np.take_along_axis(idx, order, axis=1)[:, : kk - 1]
        return idx


def lle_weights(colors: np.ndarray, neighbors: np.ndarray, eps: float) -> np.ndarray:
    """Locally-linear-embedding weights of ``colors`` (n, 3) from ``neighbors`` (n, k, 3).

    Minimises |c - sum_j w_j n_j|^2 + eps |w|^2 with sum_j w_j = 1. The k x k
    Gram matrix Z Z^T (Z = n_j - c) has rank <= 3, so by the Woodbury identity
    (Z Z^T + eps I)^-1 1 = (1 - Z (eps I + Z^T Z)^-1 Z^T 1) / eps: one 3x3 solve
    per pixel instead of a k x k one.
    """
    z = neighbors - colors[:, None, :]  # (n, k, 3)
    g = np.einsum("nki,nkj->nij", z, z)
    g[:, [0, 1, 2], [0, 1, 2]] += eps
    s = z.sum(axis=1)  # Z^T 1
    v = np.linalg.solve(g, s[..., None])[..., 0]
    w = 1.0 - np.einsum("nki,ni->nk", z, v)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = w / total
    # A (numerically) singular Gram matrix with a tiny regulariser: fall back
    # to the plain mean of the neighbours rather than spread NaNs.
    bad = ~np.isfinite(w).all(axis=1)
    if bad.any():
        w[bad] = 1.0 / w.shape[1]
    return w


def looks_highly_transparent(image: np.ndarray, trimap: np.ndarray) -> bool:
    """The paper's energy selection (sec. 3.5): is the unknown region's colour
    histogram poorly explained as a mix of the nearby foreground's and
    background's? ``trimap`` is uint8 0/128/255."""
    unknown = trimap == 128
    near = cv2.dilate(unknown.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    fg = (trimap == 255) & near
    bg = (trimap == 0) & near
    if not (fg.any() and bg.any() and unknown.any()):
        return False

    def hist(mask: np.ndarray) -> np.ndarray:
        pixels = image[mask]
        return np.concatenate([
            np.histogram(pixels[:, c], bins=10, range=(0.0, 1.0))[0] for c in range(3)
        ]) / float(len(pixels))

    basis = np.stack([hist(fg), hist(bg)], axis=1)  # (30, 2)
    target = hist(unknown)
    weights = np.linalg.lstsq(basis, target, rcond=None)[0]
    residual = basis @ weights - target
    return bool(np.linalg.norm(residual) / residual.size > 0.0099)


def _known_to_unknown(
    image: np.ndarray, colors: np.ndarray, unk: np.ndarray, fg_idx: np.ndarray,
    bg_idx: np.ndarray, p: dict[str, Any], frame: tuple[int, int] | None, cancel: CancelFn,
    est: np.ndarray, conf: np.ndarray,
) -> None:
    """Fill ``est`` (w^F_p) and ``conf`` (eta_p) of the K-to-U flow for the unknown pixels."""
    nu = len(unk)
    feats = _features(image, p["ku_xyw"], frame)
    k_f = min(int(p["ku_k"]), len(fg_idx))
    k_b = min(int(p["ku_k"]), len(bg_idx))
    fg_tree, bg_tree = _Neighbours(feats[fg_idx]), _Neighbours(feats[bg_idx])
    for start in range(0, nu, _CHUNK):
        check_cancel(cancel)
        q = unk[start:start + _CHUNK]
        nf = fg_idx[fg_tree.query(feats[q], k_f)]
        nb = bg_idx[bg_tree.query(feats[q], k_b)]
        wts = lle_weights(colors[q], colors[np.concatenate([nf, nb], axis=1)], p["lle_eps"])
        wf, wb = wts[:, :k_f], wts[:, k_f:]
        sf, sb = wf.sum(axis=1), wb.sum(axis=1)
        # Weighted mean colours of the foreground and background that mixed.
        # LLE weights can be negative, so a side's total can be near 0 and
        # its "mean" colour far outside the colour cube: clip to the cube,
        # or one such pixel's confidence (1e10 seen on GT07) swamps the
        # system and CG stops after one iteration. Confidence is in [0, 1].
        with np.errstate(divide="ignore", invalid="ignore"):
            fcol = np.einsum("nk,nki->ni", wf, colors[nf]) / sf[:, None]
            bcol = np.einsum("nk,nki->ni", wb, colors[nb]) / sb[:, None]
        fcol = np.clip(np.nan_to_num(fcol, nan=0.0), 0.0, 1.0)
        bcol = np.clip(np.nan_to_num(bcol, nan=0.0), 0.0, 1.0)
        conf[start:start + len(q)] = np.sum((fcol - bcol) ** 2, axis=1) / 3.0
        est[start:start + len(q)] = np.clip(sf, 0.0, 1.0)


def _stage(progress: ProgressFn, cancel: CancelFn, name: str) -> None:
    check_cancel(cancel)
    if progress is not None:
        progress(_STAGES[name])


def estimate_alpha_ifm(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    params: dict[str, Any] | None = None,
    rtol: float = 1e-7,
    maxiter: int = 10000,
    progress: ProgressFn = None,
    cancel: CancelFn = None,
    frame: tuple[int, int] | None = None,
) -> np.ndarray:
    """Alpha (float64, (h, w)) of ``image`` (float, (h, w, 3)) for ``trimap`` in [0, 1].

    Positions in the features are normalised by the image's size, or by
    ``frame`` = (height, width) when the image is a tile of a larger region.

    Needs foreground and background pixels and at least one unknown pixel.
    ``progress`` gets fractions of the whole job; ``cancel`` is polled between
    stages, between chunks of a stage and at every CG iteration.
    """
    import scipy.sparse as sp

    numba_cache.configure()
    from pymatting import cf_laplacian, cg, ichol, trimap_split

    p = dict(DEFAULTS)
    p.update(params or {})
    h, w = trimap.shape
    n = h * w
    image = np.asarray(image, np.float64)
    colors = image.reshape(n, 3)
    is_fg, is_bg, is_known, is_unknown = trimap_split(trimap)
    unk = np.flatnonzero(is_unknown)
    known = np.flatnonzero(is_known)
    fg_idx = np.flatnonzero(is_fg)
    bg_idx = np.flatnonzero(is_bg)
    if len(fg_idx) == 0 or len(bg_idx) == 0:
        raise ValueError("the trimap needs both foreground and background pixels")
    nu = len(unk)
    check_cancel(cancel)

    # --- colour-mixture flow: rows of (I - W) for the unknown pixels -------
    feats = _features(image, p["cm_xyw"], frame)
    k_cm = min(int(p["cm_k"]), n - 1)
    tree = _Neighbours(feats)
    rows, cols, vals = [], [], []
    for start in range(0, nu, _CHUNK):
        check_cancel(cancel)
        q = unk[start:start + _CHUNK]
        nb = tree.query(feats[q], k_cm, exclude=q)
        wts = lle_weights(colors[q], colors[nb], p["lle_eps"])
        r = np.arange(start, start + len(q))
        rows += [r, np.repeat(r, nb.shape[1])]
        cols += [q, nb.ravel()]
        vals += [np.ones(len(q)), -wts.ravel()]
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(nu, n))
    del feats, tree, rows, cols, vals
    m_u = m[:, unk]
    m_k = m[:, known]
    del m
    alpha_known = is_fg[known].astype(np.float64)  # the known pixels' alpha, 0 or 1
    a = p["sigma_cm"] * (m_u.T @ m_u)
    b = -p["sigma_cm"] * (m_u.T @ (m_k @ alpha_known))
    del m_u, m_k
    _stage(progress, cancel, "cm")

    # --- known-to-unknown flow: an estimate and a confidence per unknown pixel
    use_ku = p["use_known_to_unknown"]
    if use_ku == "auto":
        use_ku = not looks_highly_transparent(image, np.round(trimap * 255).astype(np.uint8))
    est = np.zeros(nu)
    conf = np.zeros(nu)
    if use_ku:
        _known_to_unknown(image, colors, unk, fg_idx, bg_idx, p, frame, cancel, est, conf)
    if p["edge_trim"]:
        # Pixels the trimming labels become sure estimates of the K-to-U term
        # (paper, sec. 3.6), whether or not the flow itself is used.
        from .trimming import edge_trim

        trimmed = edge_trim(image, is_fg.reshape(h, w), is_bg.reshape(h, w), cancel=cancel).ravel()[unk]
        sure = trimmed >= 0
        est[sure] = trimmed[sure]
        conf[sure] = 1.0
    if conf.any():
        h_diag = p["sigma_ku"] * conf
        a = a + sp.diags(h_diag)
        b = b + h_diag * est
    _stage(progress, cancel, "ku")

    # --- intra-unknown flow: colour similarity among unknown pixels --------
    k_uu = min(int(p["uu_k"]), nu - 1)
    if k_uu > 0 and p["sigma_uu"] > 0:
        feats = _features(image, p["uu_xyw"], frame)[unk]
        tree = _Neighbours(feats)
        rows, cols, vals = [], [], []
        for start in range(0, nu, _CHUNK):
            check_cancel(cancel)
            q = np.arange(start, min(nu, start + _CHUNK))
            nb = tree.query(feats[q], k_uu, exclude=q)
            d = np.linalg.norm(feats[q][:, None, :] - feats[nb], axis=2)
            rows.append(np.repeat(q, nb.shape[1]))
            cols.append(nb.ravel())
            vals.append(np.maximum(1.0 - d, 0.0).ravel())
        wuu = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(nu, nu))
        wuu = wuu + wuu.T
        del feats, tree, rows, cols, vals
        # Unknown-to-unknown only: the Laplacian's block is its own Laplacian.
        a = a + p["sigma_uu"] * (sp.diags(np.asarray(wuu.sum(axis=1)).ravel()) - wuu)
        del wuu
    _stage(progress, cancel, "uu")

    # --- local flow: the closed-form matting Laplacian ----------------------
    lap = cf_laplacian(image, epsilon=p["local_eps"], radius=int(p["local_radius"]),
                       is_known=is_known)
    lap_u = lap[unk, :]
    del lap
    a = a + p["sigma_l"] * lap_u[:, unk]
    b = b - p["sigma_l"] * (lap_u[:, known] @ alpha_known)
    del lap_u
    _stage(progress, cancel, "local")

    a = sp.csr_matrix(a)
    a.sum_duplicates()
    # The colour-mixture term makes ~100 entries per row (closed-form: 25);
    # PyMatting's default threshold (1e-4) then spends seconds on a nearly
    # exact factor. Measured on five Trimap2 photos (GT02/08/13/18/26, the
    # result unchanged): 62.6 s in all at 1e-2, 49.5 s at 3e-2, 55.1 s at 1e-1
    # (closed-form: 28.0 s); a sparser factor fails and is retried with a
    # shift more often, a denser one costs more per CG iteration.
    precond = ichol(a, discard_threshold=p["ichol_discard"], shifts=_ICHOL_SHIFTS)
    _stage(progress, cancel, "precond")

    callback = _cg_callback(scaled_progress(progress, _STAGES["precond"], 1.0), cancel, rtol)
    x = cg(a, b, M=precond, rtol=rtol, maxiter=maxiter, callback=callback)
    alpha = is_fg.astype(np.float64).ravel()
    alpha[unk] = x
    return np.clip(alpha, 0.0, 1.0).reshape(h, w)


class IFMEngine(_PyMattingEngine):
    """Information-flow matting (Aksoy et al. 2017): non-local flows + closed-form.

    Options (keyword arguments) override ``DEFAULTS`` by name, e.g.
    ``create_engine("ifm", use_known_to_unknown=False)``.
    """

    name = "ifm"
    # The non-local flows look for neighbours in colour across what they see:
    # more context than closed-form's, as for KNN.
    context_margin = 32
    # Memory model (bench/memory.py --probe, untiled solves): the window costs
    # ~620 B/px (the local Laplacian, features, the trimming's labels); each
    # unknown pixel ~3.0-3.2 kB on top (the colour-mixture rows, ~100
    # entries each, and their incomplete-Cholesky factor), against
    # 2.1-2.2 kB for closed-form in the same run. Rounded up as closed-form's is.
    solve_bytes_per_pixel = 650.0
    solve_bytes_per_unknown = 4000.0
    # Whole up to ~1.5 GB, so every photo of the alphamatting set (up to
    # 0.5 MP, 210k unknown pixels) solves whole: tiled, each tile rebuilds
    # its neighbour searches and solves its overlap again, 3x the time on
    # GT08 (69 s in 9 tiles, 22 s whole at a peak of 832 MiB).
    tile_above_bytes = 3 * GIB // 2
    tile_size = 256

    def __init__(self, **options: Any) -> None:
        tiling = {k: options.pop(k) for k in ("tile_size", "tile_context", "tile_above_bytes")
                  if k in options}
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise EngineError(
                f"ifm: unknown option(s) {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(DEFAULTS)}")
        super().__init__(**tiling)
        self.params = dict(DEFAULTS)
        self.params.update(options)

    @property
    def min_size(self) -> int:
        # The local Laplacian's windows must fit (as for closed-form).
        return 2 * int(self.params["local_radius"]) + 1

    #: What the energy selection chose for the last photo (None: not run).
    last_used_known_to_unknown: bool | None = None

    def estimate(self, image, trimap, *, progress=None, cancel=None):
        # Decide the K-to-U flow once for the whole crop (tiles then agree).
        params = self.params
        if params["use_known_to_unknown"] == "auto":
            try:
                box = self._crop_box(trimap)
                rows, cols = box.slices
                use = not looks_highly_transparent(
                    np.asarray(image, np.float32)[rows, cols], np.asarray(trimap)[rows, cols])
            except Exception:  # invalid input: let the base class report it
                use = True
            self.params = dict(params, use_known_to_unknown=use)
            self.last_used_known_to_unknown = use
        try:
            return super().estimate(image, trimap, progress=progress, cancel=cancel)
        finally:
            self.params = params

    def _estimate_tile(self, image, trimap, progress, cancel, frame):
        # Positions are normalised by the whole crop's size, so a tile's
        # pixels are as far apart in feature space as in the untiled solve.
        return self._run(image, trimap, progress, cancel, frame)

    def _solve(self, image, trimap, progress, cancel, laplacian_kwargs):
        return self._run(image, trimap, progress, cancel, None)

    def _run(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        progress: ProgressFn,
        cancel: CancelFn,
        frame: tuple[int, int] | None,
    ) -> np.ndarray:
        return self._padded_solve(image, trimap, cancel, lambda img, tri: estimate_alpha_ifm(
            img, tri, params=self.params, rtol=self.rtol, maxiter=self.maxiter,
            progress=progress, cancel=cancel, frame=frame))
