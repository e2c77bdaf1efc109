"""DIM Studio's weights format: save/load, shape checks, metadata, search order, `weights info`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import dim_studio.paths as paths_mod

from dim_studio.errors import WeightsError
from dim_studio.net import DIMConfig, DIMNet, find_weights, load_weights, save_weights, user_data_dir
from dim_studio.net import weights as weights_mod
from dim_studio.commands.weights import register


@pytest.fixture(scope="module")
def model() -> DIMNet:
    torch.manual_seed(0)
    return DIMNet(DIMConfig()).eval()


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w") / "dim-test.safetensors"
    save_weights(
        path,
        model,
        {
            "provenance": {"kind": "training", "dataset": "synthetic", "steps": 3},
            "metrics": {"Composition-1k": {"SAD": 99.9}},
        },
    )
    return path


def _state(model: DIMNet) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- round trip


def test_round_trip_gives_identical_outputs(model, saved):
    loaded, info = load_weights(saved)
    x = torch.randn(1, 4, 32, 32)
    with torch.inference_mode():
        a, b = model(x)["alpha"], loaded(x)["alpha"]
    assert torch.equal(a, b)
    assert not loaded.training
    assert info.config == DIMConfig()
    assert info.parameter_count == 26_276_802
    assert info.provenance["steps"] == 3


def test_metadata_is_json_in_safetensors_metadata(saved):
    with safe_open(str(saved), framework="pt") as f:
        meta = f.metadata()
    data = json.loads(meta["dim_studio"])
    assert data["format"] == "dim-studio-weights" and data["format_version"] == 1
    assert data["architecture"] == {"name": "dim", "conv6": "1x1", "refine": True}
    assert data["normalization"]["mean"] == [123.675, 116.28, 103.53]
    assert data["normalization"]["std"] == [58.395, 57.12, 57.375]
    assert data["normalization"]["trimap_divisor"] == 255.0
    assert data["metrics"]["Composition-1k"]["SAD"] == 99.9


def test_save_is_atomic_and_leaves_no_temp_files(model, tmp_path):
    path = tmp_path / "out.safetensors"
    path.write_bytes(b"old contents")
    with pytest.raises(WeightsError, match="plain JSON"):
        save_weights(path, model, {"provenance": {"bad": object()}})
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["out.safetensors"]


# ---------------------------------------------------------------- mismatches


def _write(tmp_path: Path, tensors: dict[str, torch.Tensor], config: dict | None = None) -> Path:
    path = tmp_path / "bad.safetensors"
    meta = {"format": "dim-studio-weights", "format_version": 1,
            "architecture": {"name": "dim", **(config or {"conv6": "1x1", "refine": True})}}
    save_file(tensors, str(path), metadata={"dim_studio": json.dumps(meta)})
    return path


def test_load_names_the_first_shape_mismatch(model, tmp_path):
    sd = _state(model)
    sd["encoder.conv6.weight"] = torch.zeros(512, 512, 3, 3)
    sd["decoder.deconv1.weight"] = torch.zeros(2, 64, 5, 5)  # later: not reported
    with pytest.raises(WeightsError) as e:
        load_weights(_write(tmp_path, sd))
    assert "encoder.conv6.weight has shape [512, 512, 3, 3] in the file, the model expects [512, 512, 1, 1]" in str(e.value)


def test_load_names_missing_and_unexpected_keys(model, tmp_path):
    sd = _state(model)
    del sd["decoder.deconv1.bias"]
    with pytest.raises(WeightsError, match=r"decoder\.deconv1\.bias is missing"):
        load_weights(_write(tmp_path, sd))
    sd = _state(model)
    sd["decoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"decoder\.extra\.weight .* not part of the model"):
        load_weights(_write(tmp_path, sd))
    # metadata says 7x7 but the tensors are 1x1: the first differing key is named
    with pytest.raises(WeightsError, match=r"encoder\.conv6\.weight has shape \[512, 512, 1, 1\] in the file, the model expects \[4096, 512, 7, 7\]"):
        load_weights(_write(tmp_path, _state(model), {"conv6": "7x7", "refine": True}))


def test_non_safetensors_files_are_refused_with_a_way_forward(tmp_path):
    pth = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, pth)
    with pytest.raises(WeightsError) as e:
        load_weights(pth)
    assert "PyTorch checkpoint" in str(e.value) and "dim-studio weights import" in str(e.value)
    npz = tmp_path / "vgg.npz"
    np.savez(npz, conv1_1_W=np.zeros((3, 3, 3, 64), np.float32))
    with pytest.raises(WeightsError, match="NumPy .npz"):
        load_weights(npz)
    with pytest.raises(WeightsError, match="does not exist.*weights download"):
        load_weights(tmp_path / "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"hello world, not weights")
    with pytest.raises(WeightsError, match="not a format DIM Studio knows"):
        load_weights(garbage)


def test_newer_format_version_is_refused(model, tmp_path):
    path = tmp_path / "future.safetensors"
    meta = {"format": "dim-studio-weights", "format_version": 99, "architecture": {"name": "dim"}}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"dim_studio": json.dumps(meta)})
    with pytest.raises(WeightsError, match="newer DIM Studio"):
        load_weights(path)


# ---------------------------------------------------------------- search order


@pytest.fixture
def places(tmp_path, monkeypatch):
    data = tmp_path / "data"
    repo_model = tmp_path / "repo_model"
    data.mkdir()
    repo_model.mkdir()
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(data))
    monkeypatch.delenv("DIM_STUDIO_WEIGHTS", raising=False)
    monkeypatch.setattr(weights_mod, "model_dir", lambda: repo_model)
    return data, repo_model, tmp_path


def test_find_weights_search_order(places, monkeypatch):
    data, repo_model, tmp = places
    assert find_weights() is None
    (repo_model / "a.safetensors").write_bytes(b"x")
    assert find_weights() == repo_model / "a.safetensors"
    (data / "b.safetensors").write_bytes(b"x")
    (data / "a-other.safetensors").write_bytes(b"x")
    assert find_weights() == data / "a-other.safetensors"  # first by name
    (data / "dim-stage3.safetensors").write_bytes(b"x")
    assert find_weights() == data / "dim-stage3.safetensors"  # preferred name
    env = tmp / "env.safetensors"
    env.write_bytes(b"x")
    monkeypatch.setenv("DIM_STUDIO_WEIGHTS", str(env))
    assert find_weights() == env
    explicit = tmp / "explicit.safetensors"
    explicit.write_bytes(b"x")
    assert find_weights(explicit) == explicit
    assert find_weights(data) == data / "dim-stage3.safetensors"  # a folder works too


def test_find_weights_missing_named_paths_are_errors(places, monkeypatch):
    _, _, tmp = places
    with pytest.raises(WeightsError, match="--weights points to .*does not exist"):
        find_weights(tmp / "missing.safetensors")
    monkeypatch.setenv("DIM_STUDIO_WEIGHTS", str(tmp / "gone"))
    with pytest.raises(WeightsError, match="DIM_STUDIO_WEIGHTS points to"):
        find_weights()


def test_user_data_dir_per_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("DIM_STUDIO_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(paths_mod.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_data_dir() == tmp_path / "xdg" / "dim-studio"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert user_data_dir() == tmp_path / ".local" / "share" / "dim-studio"
    monkeypatch.setattr(paths_mod.sys, "platform", "darwin")
    assert user_data_dir() == tmp_path / "Library" / "Application Support" / "DIM Studio"
    monkeypatch.setattr(paths_mod.sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert user_data_dir() == tmp_path / "Roaming" / "DIM Studio"
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(tmp_path / "override"))
    assert user_data_dir() == tmp_path / "override"


def test_model_dir_is_beside_the_package_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("DIM_STUDIO_MODEL_DIR", raising=False)
    assert weights_mod.model_dir() == Path(__file__).resolve().parents[1] / "model"
    monkeypatch.setenv("DIM_STUDIO_MODEL_DIR", str(tmp_path / "shipped"))
    assert weights_mod.model_dir() == tmp_path / "shipped"


# ---------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dim-studio")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_weights_info_command(saved, capsys):
    args = _cli(["weights", "info", str(saved)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "conv6 1x1 512, refinement on" in out
    assert "Parameters:     26,276,802" in out
    assert "mean [123.675, 116.28, 103.53]" in out
    assert "kind: training" in out and "SAD 99.9" in out


def test_weights_info_without_file_uses_the_search(places, saved, capsys):
    data, _, _ = places
    with pytest.raises(WeightsError, match="(?s)No weights found.*Looked in:.*user data folder"):
        args = _cli(["weights", "info"])
        args.func(args)
    os.link(saved, data / "dim-stage3.safetensors")
    args = _cli(["weights", "info"])
    assert args.func(args) == 0
    assert f"Weights the app would use: {data / 'dim-stage3.safetensors'}" in capsys.readouterr().out
