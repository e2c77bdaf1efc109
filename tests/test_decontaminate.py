"""Colour decontamination on export (``--decontaminate``): only the cutout's and composite's colours change.

The photo is a warm disc over a green screen, so the soft edge carries a green
cast. Strength 0 keeps the photo's own (green-tinged) colours in the cutout,
1 uses the estimated foreground (what every cutout was before the option
existed), 0.5 lies half-way. The alpha never depends on the strength.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dim_studio.compose import DEFAULT_DECONTAMINATION
from dim_studio.errors import DimStudioError
from dim_studio.export import check_decontamination

from conftest import make_scene, save_gray, save_rgb

GREEN = np.array([0.1, 0.85, 0.2], np.float32)


def _green_screen_scene():
    scene = make_scene(48, 36, softness=4.0)
    a = scene.alpha[..., None]
    image = (a * scene.foreground + (1.0 - a) * GREEN).astype(np.float32)
    return scene, image


@pytest.fixture
def photo(tmp_path):
    scene, image = _green_screen_scene()
    folder = tmp_path / "photos"
    save_rgb(folder / "doll.png", image)
    save_gray(tmp_path / "trimaps" / "doll.png", scene.trimap)
    return folder / "doll.png", tmp_path / "trimaps" / "doll.png", scene


def _matte(run_cli, photo, out, *extra):
    image, trimap, _ = photo
    out.mkdir(parents=True, exist_ok=True)
    return run_cli("matte", image, "--trimap", trimap, "--engine", "closed-form", "-q",
                   "-o", out / "a.png", "--cutout", out / "c.png", *extra)


def _rgba(path):
    return np.asarray(Image.open(path).convert("RGBA")).astype(np.int32)


def test_the_cli_default_is_the_library_default():
    from dim_studio.commands.matte import DECONTAMINATE_DEFAULT

    assert DECONTAMINATE_DEFAULT == DEFAULT_DECONTAMINATION == 1.0


def test_strength_moves_the_edge_colours_and_never_the_alpha(run_cli, photo, tmp_path):
    runs = {}
    for label, extra in (("default", ()), ("0", ("--decontaminate", "0")),
                         ("0.5", ("--decontaminate", "0.5")), ("1", ("--decontaminate", "1"))):
        result = _matte(run_cli, photo, tmp_path / label, *extra)
        assert result.code == 0, result.err
        runs[label] = tmp_path / label

    # The alpha is byte-identical whatever the strength; 1 is exactly today's output.
    alpha_bytes = {(p / "a.png").read_bytes() for p in runs.values()}
    assert len(alpha_bytes) == 1
    assert (runs["1"] / "c.png").read_bytes() == (runs["default"] / "c.png").read_bytes()

    c0, half, c1 = (_rgba(runs[k] / "c.png") for k in ("0", "0.5", "1"))
    assert (c0[..., 3] == c1[..., 3]).all() and (half[..., 3] == c1[..., 3]).all()
    source = np.asarray(Image.open(photo[0]).convert("RGB")).astype(np.int32)
    soft = (c1[..., 3] > 0) & (c1[..., 3] < 255)
    assert soft.sum() > 20
    # 0: the photo's own colours, green cast and all.
    assert np.abs(c0[..., :3] - source).max() <= 1
    # 1: the estimate, with far less green at the edge than the photo has.
    assert c1[soft][:, 1].mean() < c0[soft][:, 1].mean() - 20
    # 0.5: half-way, to the rounding of 8-bit files.
    assert np.abs(2 * half[soft][:, :3] - (c0[soft][:, :3] + c1[soft][:, :3])).max() <= 2
    # Only the soft edge changes: opaque pixels are (nearly) the photo in every case.
    solid = c1[..., 3] == 255
    assert np.abs(c1[solid][:, :3] - c0[solid][:, :3]).max() <= 3


def test_composite_follows_the_strength(run_cli, photo, tmp_path):
    image, trimap, _ = photo
    outs = {}
    for strength in ("0", "1"):
        out = tmp_path / f"m{strength}"
        out.mkdir()
        result = run_cli("matte", image, "--trimap", trimap, "--engine", "closed-form", "-q",
                         "-o", out / "a.png", "--composite", out / "m.png", "--background", "white",
                         "--decontaminate", strength)
        assert result.code == 0, result.err
        outs[strength] = out
    assert (outs["0"] / "a.png").read_bytes() == (outs["1"] / "a.png").read_bytes()
    assert (outs["0"] / "m.png").read_bytes() != (outs["1"] / "m.png").read_bytes()


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_out_of_range_is_one_line_and_writes_nothing(run_cli, photo, tmp_path, value):
    out = tmp_path / "out"
    result = _matte(run_cli, photo, out, "--decontaminate", value)
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "decontamination" in lines[0] and "Traceback" not in result.err
    assert list(out.iterdir()) == []


def test_not_a_number_is_refused(run_cli, photo, tmp_path):
    out = tmp_path / "out"
    result = _matte(run_cli, photo, out, "--decontaminate", "lots")
    assert result.code != 0 and "0 to 1" in result.err
    assert list(out.iterdir()) == []


def test_check_decontamination():
    assert check_decontamination(None) == DEFAULT_DECONTAMINATION
    assert check_decontamination(0) == 0.0 and check_decontamination("0.25") == 0.25
    for bad in (1.01, -1, float("nan"), "x"):
        with pytest.raises(DimStudioError):
            check_decontamination(bad)


def test_export_request_carries_the_strength(photo, tmp_path):
    from dim_studio.images import read_image, read_trimap
    from dim_studio.workflows.engine_choice import EngineChoice
    from dim_studio.workflows.export import ExportRequest, run_export
    from dim_studio.workflows.jobs import JobContext

    image_path, trimap_path, _ = photo
    image, trimap = read_image(image_path), read_trimap(trimap_path)
    assert ExportRequest(image, trimap, EngineChoice("closed-form", {})).decontaminate == DEFAULT_DECONTAMINATION
    bad = ExportRequest(image, trimap, EngineChoice("closed-form", {}), alpha_path=str(tmp_path / "a.png"),
                        decontaminate=2.0)
    with pytest.raises(DimStudioError, match="decontamination"):
        run_export(JobContext.standalone(), bad)
    assert not (tmp_path / "a.png").exists()


def test_batch_honours_the_strength(run_cli, tmp_path):
    scene, image = _green_screen_scene()
    photos, trimaps = tmp_path / "photos", tmp_path / "trimaps"
    for name in ("a", "b"):
        save_rgb(photos / f"{name}.png", image)
        save_gray(trimaps / f"{name}.png", scene.trimap)
    outs = {}
    for strength in ("0", "1"):
        out = tmp_path / f"out{strength}"
        result = run_cli("batch", photos, "--trimaps", trimaps, "-o", out, "--engine", "closed-form",
                         "-q", "--outputs", "alpha,cutout", "--decontaminate", strength)
        assert result.code == 0, result.err
        outs[strength] = out
        report = json.loads((out / "dim-studio-report.json").read_text(encoding="utf-8"))
        assert report["settings"]["decontaminate"] == float(strength)
    for name in ("a", "b"):
        assert (outs["0"] / f"{name}_alpha.png").read_bytes() == (outs["1"] / f"{name}_alpha.png").read_bytes()
        c0, c1 = _rgba(outs["0"] / f"{name}_cutout.png"), _rgba(outs["1"] / f"{name}_cutout.png")
        source = np.asarray(Image.open(photos / f"{name}.png").convert("RGB")).astype(np.int32)
        assert np.abs(c0[..., :3] - source).max() <= 1
        assert (c0 != c1).any()

    # The same photo through matte with the same strength gives the same cutout.
    single = tmp_path / "single"
    single.mkdir()
    assert run_cli("matte", photos / "a.png", "--trimap", trimaps / "a.png", "--engine", "closed-form",
                   "-q", "-o", single / "a.png", "--cutout", single / "c.png",
                   "--decontaminate", "0").code == 0
    assert (single / "c.png").read_bytes() == (outs["0"] / "a_cutout.png").read_bytes()

    bad = run_cli("batch", photos, "--trimaps", trimaps, "-o", tmp_path / "bad", "--engine", "closed-form",
                  "-q", "--outputs", "cutout", "--decontaminate", "3")
    assert bad.code != 0 and len(bad.err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
