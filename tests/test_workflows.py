"""The Qt-free jobs both front ends call (dim_studio.workflows)."""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.errors import WeightsError
from dim_studio.images import read_alpha
from dim_studio.net.model import random_dim
from dim_studio.net.weights import save_weights
from dim_studio.workflows.engine_choice import choose_engine, engine_options
from dim_studio.workflows.export import ExportRequest, run_export
from dim_studio.workflows.jobs import JobContext
from dim_studio.workflows.preview import Display, PreviewMode, PreviewRequest, redisplay, run_preview
from dim_studio.workflows.weights import install_weights, weights_status

from conftest import make_scene


@pytest.fixture(scope="module")
def dim_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "mine.safetensors"
    save_weights(path, random_dim(seed=3))
    return path


def test_engine_choice_is_the_same_for_every_front_end(dim_file):
    assert engine_options("closed-form", weights=str(dim_file), device="cpu") == {}
    assert engine_options("dim", weights=str(dim_file), device="auto") == {"weights": str(dim_file)}
    assert engine_options("dim", device="cpu") == {"device": "cpu"}
    # No engine named: dim when the named weights exist, else the offline default.
    assert choose_engine(None, weights=str(dim_file)).name == "dim"
    assert choose_engine(None).name == "ifm"
    assert choose_engine("knn", weights=str(dim_file)).options == {}


def test_weights_status_says_where_it_looked_and_how_to_get_weights(tmp_path, dim_file):
    status = weights_status()
    assert status.path is None and not status.found
    text = status.explain()
    assert "user data folder" in text and "model folder" in text and "weights download" in text

    missing = weights_status(tmp_path / "nope.safetensors")
    assert missing.path is None and "does not exist" in missing.problem

    installed = install_weights(dim_file)
    assert installed.path == tmp_path / "data" / "mine.safetensors"
    assert weights_status().path == installed.path
    assert "Architecture" in installed.summary


def test_a_bad_weights_file_installs_nothing(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a weights file at all")
    with pytest.raises(WeightsError):
        install_weights(bad)
    data = tmp_path / "data"
    assert not data.exists() or list(data.iterdir()) == []


def test_export_job_writes_the_files_and_reports_progress(tmp_path):
    scene = make_scene(40, 50)
    seen: list[float] = []
    ctx = JobContext.standalone(progress=seen.append)
    result = run_export(ctx, ExportRequest(
        scene.image, scene.trimap, choose_engine("closed-form"),
        alpha_path=str(tmp_path / "a.png"), cutout_path=str(tmp_path / "c.png"),
    ))
    assert [p.split("/")[-1] for p in result.paths] == ["a.png", "c.png"]
    assert seen[-1] == 1.0 and seen == sorted(seen)
    alpha = read_alpha(tmp_path / "a.png")
    assert np.all(alpha[scene.trimap == 255] == 1.0) and np.all(alpha[scene.trimap == 0] == 0.0)


def test_preview_job_composes_the_display_and_redisplay_reuses_the_matte():
    scene = make_scene(40, 50)
    ctx = JobContext.standalone()
    request = PreviewRequest(scene.image, scene.trimap, choose_engine("closed-form"), "full")
    alpha_view = run_preview(ctx, request)
    assert alpha_view.final and alpha_view.foreground is None
    np.testing.assert_array_equal(alpha_view.pixels, np.round(alpha_view.alpha * 255).astype(np.uint8))

    on_red = redisplay(ctx, scene.image, alpha_view, Display(PreviewMode.COLOR, (1.0, 0.0, 0.0)))
    assert on_red.alpha is alpha_view.alpha and on_red.foreground is not None
    background = scene.trimap == 0
    assert np.all(on_red.pixels[background] == [255, 0, 0])

    partials: list[object] = []
    staged = run_preview(JobContext.standalone(partial=partials.append),
                         PreviewRequest(scene.image, scene.trimap, choose_engine("closed-form"), "full",
                                        Display(PreviewMode.CHECKERBOARD)))
    assert len(partials) == 1 and not partials[0].final  # the matte before its foreground
    assert staged.pixels.shape == (*scene.trimap.shape, 4)


def test_preview_of_a_wide_unknown_zone_runs_at_a_lower_resolution(monkeypatch):
    from dim_studio.workflows import preview_scale

    scene = make_scene(60, 50)
    wide = scene.trimap.copy()
    wide[5:-5, 5:-5][wide[5:-5, 5:-5] == 255] = 128  # the subject lassoed unknown but for its middle
    wide[22:28, 27:33] = 255
    request = PreviewRequest(scene.image, wide, choose_engine("closed-form"), "auto")
    assert run_preview(JobContext.standalone(), request).scale == 1.0  # small enough for both caps
    monkeypatch.setattr(preview_scale, "CLASSICAL_CPU_UNKNOWN_BUDGET", int(np.count_nonzero(wide == 128)) // 4)
    shrunk = run_preview(JobContext.standalone(), request)
    assert 0.4 < shrunk.scale <= 0.5 and shrunk.work_size[0] < wide.shape[0]
    assert np.all(shrunk.alpha[wide == 255] == 1.0) and np.all(shrunk.alpha[wide == 0] == 0.0)


def test_ifm_preview_hands_over_closed_forms_matte_first_then_its_own():
    from dim_studio.engines import create_engine
    from dim_studio.workflows.engine_choice import EngineChoice
    from dim_studio.workflows.jobs import JobContext
    from dim_studio.workflows.preview import PreviewRequest, run_preview

    yy, xx = np.mgrid[0:48, 0:48]
    r = np.hypot(yy - 24, xx - 24)
    alpha = np.clip((12.0 - r) / 4.0 + 0.5, 0, 1)
    image = (alpha[..., None] * np.array([0.9, 0.7, 0.2]) + (1 - alpha[..., None]) * np.array([0.1, 0.5, 0.7]))
    image = image.astype(np.float32)
    trimap = np.full((48, 48), 128, np.uint8)
    trimap[r > 17] = 0
    trimap[r < 7] = 255
    partials: list = []
    progress: list[float] = []
    ctx = JobContext.standalone(progress=progress.append, partial=partials.append)
    final = run_preview(ctx, PreviewRequest(image, trimap, EngineChoice("ifm", {})))
    assert [p.engine_label for p in partials] == ["closed-form"]
    quick = partials[0]
    assert quick.refining == "ifm" and not quick.final
    np.testing.assert_allclose(quick.alpha, create_engine("closed-form").estimate(image, trimap), atol=1e-6)
    assert final.final and final.refining == "" and final.engine_label == "ifm"
    np.testing.assert_allclose(final.alpha, create_engine("ifm").estimate(image, trimap), atol=1e-6)
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
