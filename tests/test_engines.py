"""The classical engines behind the common interface."""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.engines import create_engine, engine_names
from dim_studio.workflows.engine_choice import default_engine_name
from dim_studio.errors import Cancelled, EngineError, TrimapError
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN


def _scene(h: int = 48, w: int = 64, pad: int = 0):
    """A soft-edged disc over a textured background, its alpha and trimap."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((14.0 - r) / 4.0 + 0.5, 0, 1).astype(np.float32)
    fg = np.array([0.9, 0.6, 0.2], np.float32)
    bg = (0.15 + 0.1 * rng.random((h, w, 3))).astype(np.float32)
    bg[..., 2] += 0.4
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    trimap = np.full((h, w), UNKNOWN, np.uint8)
    trimap[alpha <= 0] = BACKGROUND
    trimap[alpha >= 1] = FOREGROUND
    # Widen the unknown band a little, as a user's brush would.
    trimap[(r > 9) & (r < 19)] = UNKNOWN
    if pad:
        big = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.float32)
        big[...] = bg.mean(axis=(0, 1))
        big[pad:-pad, pad:-pad] = image
        bt = np.zeros(big.shape[:2], np.uint8)
        bt[pad:-pad, pad:-pad] = trimap
        ba = np.zeros(big.shape[:2], np.float32)
        ba[pad:-pad, pad:-pad] = alpha
        return big, bt, ba
    return image.astype(np.float32), trimap, alpha


@pytest.mark.parametrize("name", ["closed-form", "lkm", "knn", "ifm"])
def test_engine_recovers_soft_disc(name):
    image, trimap, alpha = _scene()
    pred = create_engine(name).estimate(image, trimap)
    assert pred.shape == alpha.shape and pred.dtype == np.float32
    # Known pixels are exactly the trimap's 0/1.
    assert np.all(pred[trimap == FOREGROUND] == 1.0)
    assert np.all(pred[trimap == BACKGROUND] == 0.0)
    unknown = trimap == UNKNOWN
    err = np.abs(pred[unknown] - alpha[unknown]).mean()
    assert err < 0.08, f"{name}: mean abs error {err:.3f} in the unknown band"


def test_cropping_matches_whole_image_closed_form():
    # The crop with context must give the same alpha as solving the whole photo.
    from pymatting import estimate_alpha_cf

    image, trimap, _ = _scene(pad=40)
    pred = create_engine("closed-form").estimate(image, trimap)
    whole = estimate_alpha_cf(image.astype(np.float64), trimap / 255.0)
    whole[trimap == 0] = 0
    whole[trimap == 255] = 1
    assert np.abs(pred - whole).max() < 1e-3


def test_progress_reaches_one_and_increases():
    image, trimap, _ = _scene()
    seen: list[float] = []
    create_engine("closed-form").estimate(image, trimap, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert len(seen) > 3


def test_cancel_before_start_and_during_solve():
    image, trimap, _ = _scene()
    engine = create_engine("closed-form")
    with pytest.raises(Cancelled):
        engine.estimate(image, trimap, cancel=lambda: True)
    polls = {"n": 0}

    def cancel_on_third_poll() -> bool:
        polls["n"] += 1
        return polls["n"] >= 3

    with pytest.raises(Cancelled):
        engine.estimate(image, trimap, cancel=cancel_on_third_poll)
    assert polls["n"] == 3, "cancel should stop the solver at the first poll that asks"


def test_bad_inputs_are_clear_errors():
    image, trimap, _ = _scene()
    engine = create_engine("closed-form")
    with pytest.raises(TrimapError, match="same size"):
        engine.estimate(image, trimap[:-1])
    with pytest.raises(TrimapError, match="no unknown"):
        engine.estimate(image, np.where(trimap == UNKNOWN, 255, trimap).astype(np.uint8))
    with pytest.raises(EngineError, match="unknown engine 'foo'"):
        create_engine("foo")


def test_registry_lists_classical_engines_and_default_without_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DIM_STUDIO_WEIGHTS", raising=False)
    assert {"closed-form", "lkm", "knn", "dim"} <= set(engine_names())
    assert default_engine_name() == "ifm"  # the best engine without a download (README, "Engines")


def test_lkm_handles_regions_smaller_than_its_window():
    # LKM's box filters need 41 px; a small photo is padded, not refused.
    image, trimap, alpha = _scene(h=30, w=36)
    pred = create_engine("lkm").estimate(image, trimap)
    assert pred.shape == (30, 36)
    unknown = trimap == UNKNOWN
    assert np.abs(pred[unknown] - alpha[unknown]).mean() < 0.15


def test_solver_warnings_do_not_reach_stdout(capsys):
    import scipy.sparse
    from pymatting import ichol

    create_engine("closed-form")
    # An indefinite matrix makes PyMatting's incomplete Cholesky fail once and
    # retry with a shift, printing a "PERFORMANCE WARNING" block on the way.
    ichol(scipy.sparse.csc_matrix(np.array([[1.0, 2.0], [2.0, 1.0]])))
    assert capsys.readouterr().out == ""
