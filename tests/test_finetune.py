"""The one-photo fine-tune: it learns the photo, keeps the best weights, survives a collapse.

The photo is built so that closed-form matting struggles: the foreground's
red appears in the background's stripes, inside a wide unknown band. A narrow
network fitted to it (training-set fit, which is what a fine-tune is) must
beat closed-form there.
"""

from __future__ import annotations

import re

import math

import numpy as np
import pytest
import torch

from conftest import save_gray, save_rgb
from dim_studio.engines import create_engine
from dim_studio.metrics import sad
from dim_studio.net import load_weights, random_dim, save_weights
from dim_studio.net.model import DIMConfig
from dim_studio.training.finetune import FinetuneOptions, finetune
from dim_studio.training.samples import SampleOptions

SMALL = SampleOptions(size=64, crop_sizes=(64, 96), max_kernel=6)


def striped_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, alpha, trimap) 96x96: a red disc over red-and-blue stripes, a 28-pixel band."""
    h = w = 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.hypot(yy - 48, xx - 48)
    alpha = np.clip((28 - dist) / 4 + 0.5, 0, 1).astype(np.float32)
    fg = np.zeros((h, w, 3), np.float32)
    fg[..., 0], fg[..., 1], fg[..., 2] = 0.8, 0.2 + 0.1 * np.sin(xx / 2), 0.2
    bg = np.zeros((h, w, 3), np.float32)
    stripe = np.sin(xx / 3 + yy / 5) > 0
    bg[stripe] = (0.75, 0.25, 0.2)  # the foreground's colour, in the background
    bg[~stripe] = (0.1, 0.3, 0.8)
    photo = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[dist < 14] = 255
    trimap[dist > 42] = 0
    return photo, alpha, trimap


def test_fit_beats_closed_form_and_the_loss_falls_fivefold(tmp_path) -> None:
    photo, alpha, trimap = striped_scene()
    closed_form = sad(create_engine("closed-form").estimate(photo, trimap), alpha, trimap)
    out = tmp_path / "tuned.safetensors"
    options = FinetuneOptions(steps=250, lr=3e-4, width=0.25, batch_size=4, sample=SMALL)
    result = finetune(photo, alpha, out, trimap=trimap, options=options, image_name="stripes.png")

    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    assert last * 5 <= first, (first, last)
    assert result.sad_after < closed_form < result.sad_before, (result.sad_after, closed_form)
    assert result.improved and not result.cancelled and result.recoveries == 0

    # The file holds the best weights measured, and says where they came from.
    model, info = load_weights(out)
    engine = create_engine("dim", model=model, info=info, device="cpu")
    assert sad(engine.estimate(photo, trimap), alpha, trimap) == pytest.approx(result.sad_after, rel=1e-4)
    prov = info.provenance
    assert prov["kind"] == "finetune" and prov["base"] == {"file": "none"}
    assert prov["image"] == "stripes.png" and prov["steps"] == 250 and prov["lr"] == 3e-4
    assert info.metrics["photo"]["SAD_before"] == pytest.approx(result.sad_before)
    assert info.metrics["photo"]["SAD_after"] == pytest.approx(result.sad_after)


def test_cancel_keeps_the_best_weights_so_far(tmp_path) -> None:
    photo, alpha, trimap = striped_scene()
    out = tmp_path / "tuned.safetensors"
    seen: list[int] = []

    def progress(update) -> None:
        seen.append(update.step)

    options = FinetuneOptions(steps=10_000, lr=3e-4, width=0.125, batch_size=2, evaluate_every=5,
                              sample=SMALL)
    result = finetune(photo, alpha, out, trimap=trimap, options=options, progress=progress,
                      cancel=lambda: bool(seen) and seen[-1] >= 12)
    assert result.cancelled and 12 <= result.steps < 20
    assert result.sad_after <= result.sad_before
    assert result.best_step in {s for s, _ in result.sad_history}
    _, info = load_weights(out)
    assert info.provenance["cancelled"] is True
    assert info.metrics["photo"]["SAD_after"] == pytest.approx(result.sad_after)
    assert [p.name for p in tmp_path.iterdir()] == ["tuned.safetensors"]  # nothing half-written


def test_a_collapse_is_detected_and_never_the_result(tmp_path) -> None:
    photo, alpha, trimap = striped_scene()
    out = tmp_path / "tuned.safetensors"
    # A learning rate this high blows the network up within a few steps.
    options = FinetuneOptions(steps=40, lr=5.0, width=0.125, batch_size=2, sample=SMALL)
    result = finetune(photo, alpha, out, trimap=trimap, options=options)
    assert result.recoveries >= 1
    assert any("collapsed" in note for note in result.notes)
    assert math.isfinite(result.sad_after) and result.sad_after <= result.sad_before
    model, info = load_weights(out)  # refuses NaN weights, so this also checks they are finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # Never a network that answers one constant over the unknown pixels.
    pred = create_engine("dim", model=model, info=info, device="cpu").estimate(photo, trimap)
    assert pred[trimap == 128].std() > 1e-3


@pytest.fixture
def narrow_base(tmp_path):
    path = tmp_path / "base.safetensors"
    save_weights(path, random_dim(DIMConfig(width=0.125, refine=True), seed=1))
    return path


def test_cli_prints_the_table_and_writes_the_file(tmp_path, run_cli, narrow_base) -> None:
    photo, alpha, trimap = striped_scene()
    files = {"photo": save_rgb(tmp_path / "stripes.png", photo),
             "alpha": save_gray(tmp_path / "stripes_alpha.png", alpha),
             "trimap": save_gray(tmp_path / "stripes_trimap.png", trimap)}
    out = tmp_path / "tuned.safetensors"
    res = run_cli("finetune", files["photo"], "--alpha", files["alpha"], "--trimap", files["trimap"],
                  "--weights", narrow_base, "--steps", "3", "-q", "-o", out)
    assert res.code == 0, res.err
    assert "before (starting weights)" in res.out and "closed-form (no training)" in res.out
    assert f"wrote {out}" in res.out
    _, info = load_weights(out)
    assert info.provenance["base"]["file"] == "base.safetensors"
    assert len(info.provenance["base"]["sha256"]) == 64
    assert info.provenance["lr"] == 1e-5  # the default when starting from weights
    assert info.config.refine and info.config.width == 0.125

    # The output may not be one of the inputs, and nothing is written then.
    before = files["alpha"].read_bytes()
    res = run_cli("finetune", files["photo"], "--alpha", files["alpha"], "--steps", "1", "-q",
                  "-o", files["alpha"])
    assert res.code == 1 and "Traceback" not in res.err and "alpha" in res.err
    assert files["alpha"].read_bytes() == before


def test_cli_errors_are_one_line(tmp_path, run_cli) -> None:
    photo, alpha, _ = striped_scene()
    image = save_rgb(tmp_path / "p.png", photo)
    small = save_gray(tmp_path / "small_alpha.png", alpha[:50, :50])
    res = run_cli("finetune", image, "--alpha", small, "-o", tmp_path / "o.safetensors")
    assert res.code == 1 and res.err.count("\n") == 1 and "Traceback" not in res.err
    assert not (tmp_path / "o.safetensors").exists()
    res = run_cli("finetune", image, "--alpha", tmp_path / "missing.png", "-o", tmp_path / "o.safetensors")
    assert res.code == 1 and "missing.png" in res.err
    res = run_cli("finetune", image, "--alpha", small, "--steps", "3", "--minutes", "1", "-o", tmp_path / "o.st")
    assert res.code == 2 and "not allowed with" in res.err


def test_teach_then_batch_uses_the_tuned_weights(tmp_path, run_cli, narrow_base) -> None:
    photo, alpha, trimap = striped_scene()
    taught = tmp_path / "taught"
    files = {"photo": save_rgb(taught / "stripes.png", photo),
             "alpha": save_gray(tmp_path / "stripes_alpha.png", alpha),
             "trimap": save_gray(taught / "stripes_trimap.png", trimap)}
    tuned = tmp_path / "tuned.safetensors"
    res = run_cli("finetune", files["photo"], "--alpha", files["alpha"], "--trimap", files["trimap"],
                  "--weights", narrow_base, "--steps", "4", "--lr", "1e-3", "-q", "-o", tuned)
    assert res.code == 0, res.err

    # A "similar photo": the same subject, shifted, in a folder of its own.
    similar = tmp_path / "similar"
    save_rgb(similar / "shifted.png", np.roll(photo, 7, axis=1))
    save_gray(similar / "shifted_trimap.png", np.roll(trimap, 7, axis=1))
    out = tmp_path / "out"
    res = run_cli("batch", similar, "--trimaps", similar, "--engine", "dim", "--weights", tuned, "-q", "-o", out)
    assert res.code == 0, res.err

    from dim_studio.images import read_alpha, read_image, read_trimap
    written = read_alpha(out / "shifted_alpha.png")
    shifted = read_image(similar / "shifted.png")  # as saved: 8-bit, like the batch reads it
    expected = {}
    for name, weights in (("tuned", tuned), ("base", narrow_base)):
        model, info = load_weights(weights)
        engine = create_engine("dim", model=model, info=info, device="cpu")
        expected[name] = engine.estimate(shifted, read_trimap(similar / "shifted_trimap.png"))
    assert np.abs(written - expected["tuned"]).max() <= 1 / 255 + 1e-6
    assert np.abs(expected["tuned"] - expected["base"]).max() > 2 / 255  # the tuned file made the difference


def test_the_help_states_the_default_learning_rates(run_cli) -> None:
    from dim_studio.training.finetune import LR_FROM_SCRATCH, LR_FROM_WEIGHTS

    # The help text cannot import them (--help must not load torch), so it must be kept true by hand.
    text = " ".join(run_cli("finetune", "--help").out.split())
    found = re.search(r"default (\S+) from scratch, (\S+) from --weights", text)
    assert found and (float(found[1]), float(found[2])) == (LR_FROM_SCRATCH, LR_FROM_WEIGHTS)
