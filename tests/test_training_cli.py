"""``dim-studio train`` from the command line: what it prints, its errors, and using what it wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training_data import make_composition_1k, make_pair_folder

from dim_studio.images import read_alpha, read_image, read_trimap
from dim_studio.net import load_weights

FAST = """\
size = 64
crop_sizes = [48, 64, 96]
max_trimap_kernel = 6
width = 0.125
batch_size = 4
backgrounds_per_fg = 3
lr = 1e-3
workers = 0
log_every = 5
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return make_composition_1k(tmp_path_factory.mktemp("data") / "c1k", foregrounds=2, backgrounds=3)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text(FAST, encoding="utf-8")
    return path


def assert_one_error_line(result, *words: str) -> None:
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dim-studio: error: ")
    for word in words:
        assert word in lines[0], lines[0]


def test_train_writes_usable_weights(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    out = tmp_path / "run"
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs, "--out", out,
                     "--steps", "10", "-q")
    assert result.code == 0, result.err
    last = out / "last.safetensors"
    assert f"wrote {last}" in result.out
    assert "stage 1: 10 steps" in result.out
    assert "Traceback" not in result.err
    model, info = load_weights(last)
    assert info.provenance["kind"] == "training" and info.provenance["steps"] == 10

    # the app's weights tooling reads it
    shown = run_cli("weights", "info", last)
    assert shown.code == 0, shown.err
    assert "training" in shown.out and "width x0.125" in shown.out


def test_trained_weights_matte_a_photo(data, config, tmp_path, run_cli, synth) -> None:
    root, bgs = data
    out = tmp_path / "run"
    trained = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs, "--out", out,
                      "--steps", "5", "-q")
    assert trained.code == 0, trained.err
    images, trimaps = synth.dir("images"), synth.dir("trimaps")
    synth.photo(images, "doll", trimap_dir=trimaps, width=70, height=50)
    photo, trimap = images / "doll.png", trimaps / "doll_trimap.png"
    alpha_path = tmp_path / "alpha.png"
    result = run_cli("matte", photo, "--trimap", trimap, "--engine", "dim",
                     "--weights", out / "last.safetensors", "-o", alpha_path, "-q")
    assert result.code == 0, result.err
    alpha = read_alpha(alpha_path)
    assert alpha.shape == read_image(photo).shape[:2] == (50, 70)
    tri = read_trimap(trimap, alpha.shape)
    # the known regions of the trimap are kept exactly, the unknown band is predicted
    assert (alpha[tri == 0] == 0).all() and (alpha[tri == 255] == 1).all()
    assert np.isfinite(alpha).all() and 0 <= alpha.min() and alpha.max() <= 1


def test_train_on_a_pair_folder_without_backgrounds(config, tmp_path, run_cli) -> None:
    pairs = make_pair_folder(tmp_path / "pairs", count=2)
    out = tmp_path / "run"
    result = run_cli("train", "--config", config, "--data", pairs, "--out", out, "--steps", "3", "-q")
    assert result.code == 0, result.err
    assert "own estimated background" in result.err  # a note saying what it did
    assert list((out / "layers").glob("*.npy"))
    assert (out / "last.safetensors").is_file()


def test_missing_data_folder(config, tmp_path, run_cli) -> None:
    missing = tmp_path / "nowhere"
    result = run_cli("train", "--config", config, "--data", missing, "--out", tmp_path / "run", "--steps", "2")
    assert_one_error_line(result, "nowhere")
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_folder_neither_composition_1k_nor_pairs(config, tmp_path, run_cli) -> None:
    folder = tmp_path / "misc"
    folder.mkdir()
    (folder / "readme.txt").write_text("not training data")
    result = run_cli("train", "--config", config, "--data", folder, "--out", tmp_path / "run", "--steps", "2")
    assert_one_error_line(result, "Composition-1k", "pairs")


def test_composition_1k_without_backgrounds(data, config, tmp_path, run_cli) -> None:
    root, _ = data
    result = run_cli("train", "--config", config, "--data", root, "--out", tmp_path / "run", "--steps", "2")
    assert_one_error_line(result, "--backgrounds")


def test_init_of_a_missing_file(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                     "--out", tmp_path / "run", "--steps", "2", "--init", tmp_path / "nothing.safetensors")
    assert_one_error_line(result, "--init", "nothing.safetensors")


def test_init_of_a_file_that_is_not_weights(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                     "--out", tmp_path / "run", "--steps", "2", "--init", junk)
    assert_one_error_line(result, "junk.pth")


def test_fp16_on_the_cpu(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    out = tmp_path / "run"
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                     "--out", out, "--steps", "2", "--precision", "fp16", "--device", "cpu")
    assert_one_error_line(result, "fp16")
    assert not (out / "last.safetensors").exists()
    # the folder is not left looking like a run: the same command with bf16/fp32 then works
    again = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                    "--out", out, "--steps", "2", "--precision", "fp32", "--device", "cpu", "-q")
    assert again.code == 0, again.err


def test_too_few_compositions_for_a_batch(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    # 2 foregrounds x 1 composition < a batch of 4
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                     "--out", tmp_path / "run", "--steps", "2", "--backgrounds-per-fg", "1")
    assert_one_error_line(result, "batch")


def test_output_folder_that_is_a_file(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    target = tmp_path / "taken"
    target.write_text("a file")
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                     "--out", target, "--steps", "2")
    assert_one_error_line(result, "taken")
    assert target.read_text() == "a file"


def test_bad_option_values_are_usage_errors(data, config, tmp_path, run_cli) -> None:
    root, bgs = data
    result = run_cli("train", "--config", config, "--data", root, "--backgrounds", bgs,
                     "--out", tmp_path / "run", "--steps", "0")
    assert result.code == 2
    assert "--steps" in result.err and "Traceback" not in result.err
