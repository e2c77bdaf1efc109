"""Importers: OpenMMLab DIM, torchvision VGG-16, the seed's npz, and refusing unsafe checkpoints.

The synthetic checkpoints use exactly the published key names and shapes
(model/README.md), filled with random numbers; each is built once per module.
"""

from __future__ import annotations

import argparse
import ast
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from dim_studio.errors import WeightsError
from dim_studio.net import UnsafeCheckpointError, import_weights, load_torch_checkpoint, load_weights
from dim_studio.commands.weights import register
from dim_studio.net.model import fc6_tf_to_conv, fc6_torchvision_to_conv, hwio_to_oihw

VGG_CHANNELS = [(4, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
BLOCK_SIZES = (2, 2, 3, 3, 3)
MM_DECODER = {
    "deconv6_1": (512, 512, 1, 1), "deconv5_1": (512, 512, 5, 5), "deconv4_1": (256, 512, 5, 5),
    "deconv3_1": (128, 256, 5, 5), "deconv2_1": (64, 128, 5, 5), "deconv1_1": (64, 64, 5, 5),
    "deconv1": (1, 64, 5, 5),
}
MM_REFINER = {"refine_conv1": (64, 4, 3, 3), "refine_conv2": (64, 64, 3, 3),
              "refine_conv3": (64, 64, 3, 3), "refine_pred": (1, 64, 3, 3)}


def _conv(gen: torch.Generator, shape, dtype=torch.float32):
    fan_in = shape[1] * shape[2] * shape[3]
    w = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return w.to(dtype), (torch.randn(shape[0], generator=gen) * 0.01).to(dtype)


def openmmlab_state_dict(stage: int = 3, seed: int = 0, dtype=torch.float32) -> OrderedDict:
    """mmediting DIM `v16_pln_1x1` keys and shapes, random values."""
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    layer = 0
    for block, n in enumerate(BLOCK_SIZES, start=1):
        for i in range(n):
            cin, cout = VGG_CHANNELS[layer]
            layer += 1
            w, b = _conv(gen, (cout, cin, 3, 3), dtype)
            sd[f"backbone.encoder.layer{block}.{2 * i}.weight"] = w
            sd[f"backbone.encoder.layer{block}.{2 * i}.bias"] = b
    sd["backbone.encoder.conv6.weight"], sd["backbone.encoder.conv6.bias"] = _conv(gen, (512, 512, 1, 1), dtype)
    for name, shape in MM_DECODER.items():
        sd[f"backbone.decoder.{name}.weight"], sd[f"backbone.decoder.{name}.bias"] = _conv(gen, shape, dtype)
    if stage > 1:
        for name, shape in MM_REFINER.items():
            sd[f"refiner.{name}.weight"], sd[f"refiner.{name}.bias"] = _conv(gen, shape, dtype)
    return sd


def mmedit_forward(sd, x):
    """OpenMMLab's DIM forward transliterated (VGG16 + PlainDecoder + PlainRefiner + DIM._forward)."""
    p = "backbone.encoder."
    out, indices = x, []
    for block, n in enumerate(BLOCK_SIZES, start=1):
        for i in range(n):
            out = F.relu(F.conv2d(out, sd[f"{p}layer{block}.{2 * i}.weight"], sd[f"{p}layer{block}.{2 * i}.bias"], padding=1))
        out, idx = F.max_pool2d(out, 2, 2, return_indices=True)
        indices.append(idx)
    out = F.relu(F.conv2d(out, sd[p + "conv6.weight"], sd[p + "conv6.bias"]))
    d = "backbone.decoder."
    out = F.relu(F.conv2d(out, sd[d + "deconv6_1.weight"], sd[d + "deconv6_1.bias"]))
    for name, idx in zip(["deconv5_1", "deconv4_1", "deconv3_1", "deconv2_1", "deconv1_1"], reversed(indices)):
        out = F.max_unpool2d(out, idx, 2, 2)
        out = F.relu(F.conv2d(out, sd[f"{d}{name}.weight"], sd[f"{d}{name}.bias"], padding=2))
    raw_alpha = F.conv2d(out, sd[d + "deconv1.weight"], sd[d + "deconv1.bias"], padding=2)
    pred_alpha = raw_alpha.sigmoid()
    r = torch.cat((x[:, :3], pred_alpha), 1)
    for name in ("refine_conv1", "refine_conv2", "refine_conv3"):
        r = F.relu(F.conv2d(r, sd[f"refiner.{name}.weight"], sd[f"refiner.{name}.bias"], padding=1))
    raw_refine = F.conv2d(r, sd["refiner.refine_pred.weight"], sd["refiner.refine_pred.bias"], padding=1)
    return pred_alpha, torch.sigmoid(raw_alpha + raw_refine)


def mmedit_meta() -> dict:
    """The meta that mmediting 0.x (June 2020) saved: mmcv's save_checkpoint, the
    IterBasedRunner's iter/epoch and tools/train.py's info, all plain values
    (its EvalIterHook only logs, so no numpy best score is stored)."""
    return {"mmedit_version": "0.1.0", "config": "model = dict(type='DIM', ...)\n", "seed": None,
            "env_info": "sys.platform: linux\nPyTorch: 1.5.0", "exp_name": "dim_stage3_v16_pln_1x1_1000k_comp1k.py",
            "iter": 1000000, "epoch": 1, "mmcv_version": "0.5.9", "time": "Tue Jun  9 11:18:51 2020"}


@pytest.fixture(scope="module")
def mm_stage3(tmp_path_factory):
    """A stage-3 checkpoint laid out as OpenMMLab published it."""
    sd = openmmlab_state_dict(3)
    folder = tmp_path_factory.mktemp("mm")
    path = folder / "dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-0badc0de.pth"
    # torch < 1.6 wrote the legacy (non-zip) format, as the real file is
    torch.save({"state_dict": sd, "meta": mmedit_meta()}, path, _use_new_zipfile_serialization=False)
    return sd, path


# ---------------------------------------------------------------- OpenMMLab


def test_openmmlab_stage3_import_matches_mmedit_forward(mm_stage3, tmp_path):
    sd, src = mm_stage3
    dst = tmp_path / "dim.safetensors"
    info = import_weights(src, dst)
    assert info.config.conv6 == "1x1" and info.config.refine
    model, loaded = load_weights(dst)
    assert loaded.provenance["source"] == "openmmlab" and loaded.provenance["stage"] == 3
    assert loaded.provenance["source_file"] == src.name
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.provenance["source_sha256"])
    assert loaded.provenance["checkpoint_meta"]["iter"] == 1000000
    assert loaded.metrics["Composition-1k"]["SAD"] == 50.6
    assert loaded.normalization["mean"] == [123.675, 116.28, 103.53]
    # tensors land where the paper names say
    torch.testing.assert_close(model.encoder.conv3_3.weight, sd["backbone.encoder.layer3.4.weight"])
    torch.testing.assert_close(model.refine.pred.bias, sd["refiner.refine_pred.bias"])
    # and the network computes what OpenMMLab's does, refiner included
    x = torch.randn(1, 4, 32, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ours = model(x)
        ref_stage1, ref_refined = mmedit_forward(sd, x)
    torch.testing.assert_close(ours["stage1"], ref_stage1, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours["alpha"], ref_refined, atol=1e-5, rtol=1e-4)


def test_openmmlab_stage1_zip_with_module_prefix_and_convmodule_keys(tmp_path):
    sd = openmmlab_state_dict(1, seed=1)
    renamed = OrderedDict()
    for k, v in sd.items():
        k = re.sub(r"(backbone\.decoder\.deconv\d_1)\.", r"\1.conv.", k)  # mmcv ConvModule
        renamed["module." + k] = v  # DataParallel
    src = tmp_path / "stage1.pth"
    torch.save({"state_dict": renamed, "meta": {"iter": 5}}, src)  # zip format, weights_only OK
    info = import_weights(src, tmp_path / "s1.safetensors")
    assert info.config.refine is False
    model, _ = load_weights(tmp_path / "s1.safetensors")
    assert model.refine is None
    torch.testing.assert_close(model.decoder.deconv2_1.weight, sd["backbone.decoder.deconv2_1.weight"])
    # a stage-1 checkpoint cannot provide a refiner
    from dim_studio.net import DIMConfig

    with pytest.raises(WeightsError, match="stage-1 checkpoint"):
        import_weights(src, tmp_path / "x.safetensors", config=DIMConfig(refine=True))
    with pytest.raises(WeightsError, match="1x1 conv6.*7x7 does not fit"):
        import_weights(src, tmp_path / "x.safetensors", config=DIMConfig(conv6="7x7", refine=False))


def test_openmmlab_unknown_key_is_named(tmp_path):
    sd = openmmlab_state_dict(1, seed=2)
    sd["backbone.encoder.layer1.1.running_mean"] = torch.zeros(64)
    src = tmp_path / "bn.pth"
    torch.save({"state_dict": sd}, src)
    with pytest.raises(WeightsError, match=r"backbone\.encoder\.layer1\.1\.running_mean"):
        import_weights(src, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


# ---------------------------------------------------------------- VGG-16 sources


@pytest.fixture(scope="module")
def torchvision_vgg16(tmp_path_factory):
    """torchvision's vgg16() state dict: features.* and classifier.* with real shapes."""
    gen = torch.Generator().manual_seed(7)
    sd = OrderedDict()
    for idx, (cin, cout) in zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), VGG_CHANNELS):
        sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"] = _conv(gen, (cout, 3 if idx == 0 else cin, 3, 3))
    sd["classifier.0.weight"] = torch.randn(4096, 25088, generator=gen) * 0.01
    sd["classifier.0.bias"] = torch.randn(4096, generator=gen)
    sd["classifier.3.weight"] = torch.randn(4096, 4096, generator=gen) * 0.01
    sd["classifier.3.bias"] = torch.randn(4096, generator=gen)
    sd["classifier.6.weight"] = torch.randn(1000, 4096, generator=gen) * 0.01
    sd["classifier.6.bias"] = torch.randn(1000, generator=gen)
    path = tmp_path_factory.mktemp("tv") / "vgg16-397923af.pth"
    torch.save(sd, path)
    return sd, path


def test_torchvision_vgg16_init_1x1_and_7x7(torchvision_vgg16, tmp_path):
    sd, src = torchvision_vgg16
    from dim_studio.net import DIMConfig

    info = import_weights(src, tmp_path / "a.safetensors")
    assert info.provenance["kind"] == "vgg16-init" and info.provenance["source"] == "torchvision-vgg16"
    assert "encoder.conv6" in info.provenance["fresh_init"] and "decoder.deconv1" in info.provenance["fresh_init"]
    model, _ = load_weights(tmp_path / "a.safetensors")
    w = model.encoder.conv1_1.weight
    assert w.shape == (64, 4, 3, 3)
    torch.testing.assert_close(w[:, :3], sd["features.0.weight"])
    assert torch.count_nonzero(w[:, 3]) == 0  # trimap channel starts at zero
    torch.testing.assert_close(model.encoder.conv5_3.weight, sd["features.28.weight"])
    del model

    info = import_weights(src, tmp_path / "b.safetensors", config=DIMConfig(conv6="7x7", refine=False))
    assert "encoder.conv6" in info.provenance["initialised"]
    with safe_open(str(tmp_path / "b.safetensors"), framework="pt") as f:
        conv6_w = f.get_tensor("encoder.conv6.weight")
        conv6_b = f.get_tensor("encoder.conv6.bias")
        assert list(f.get_slice("decoder.deconv6_1.weight").get_shape()) == [512, 4096, 1, 1]
    # the 7x7 conv on a 7x7x512 map equals fc6 on the map flattened in (C, H, W) order
    x = torch.randn(512, 7, 7, generator=torch.Generator().manual_seed(1))
    fc = sd["classifier.0.weight"] @ x.reshape(-1) + sd["classifier.0.bias"]
    conv = F.conv2d(x[None], conv6_w, conv6_b)[0, :, 0, 0]
    torch.testing.assert_close(conv, fc, atol=1e-4, rtol=1e-4)
    # also through the padded conv6 at the centre of the map
    conv_padded = F.conv2d(x[None], conv6_w, conv6_b, padding=3)[0, :, 3, 3]
    torch.testing.assert_close(conv_padded, fc, atol=1e-4, rtol=1e-4)


def test_fc6_torchvision_reshape_is_chw():
    w = torch.randn(6, 2 * 7 * 7)
    x = torch.randn(2, 7, 7)
    torch.testing.assert_close(F.conv2d(x[None], fc6_torchvision_to_conv(w))[0, :, 0, 0], w @ x.reshape(-1))


def _numpy_conv_same(x_hwc: np.ndarray, w_hwio: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TensorFlow's conv2d (SAME padding, cross-correlation), written out."""
    kh, kw, _, cout = w_hwio.shape
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x_hwc, ((ph, ph), (pw, pw), (0, 0)))
    h, w = x_hwc.shape[:2]
    out = np.zeros((h, w, cout), np.float64)
    for y in range(h):
        for x in range(w):
            patch = xp[y:y + kh, x:x + kw, :]
            out[y, x] = np.tensordot(patch, w_hwio, axes=([0, 1, 2], [0, 1, 2])) + b
    return out


def test_hwio_conversion_reproduces_tensorflow_conv():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3, 5, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((6, 7, 5)).astype(np.float32)
    ref = _numpy_conv_same(x, w, b)
    got = F.conv2d(torch.from_numpy(x).permute(2, 0, 1)[None], hwio_to_oihw(w), torch.from_numpy(b), padding=1)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), ref, atol=1e-4)


def test_fc6_tf_conversion_is_hwc_at_full_size():
    gen = torch.Generator().manual_seed(1)
    w = (torch.randn(25088, 4096, generator=gen) * 0.01).numpy()
    x = torch.randn(7, 7, 512, generator=gen).numpy()  # TF feature map, HWC
    fc = x.reshape(-1) @ w  # TF flattens (H, W, C)
    conv_w = fc6_tf_to_conv(w)
    assert conv_w.shape == (4096, 512, 7, 7)
    conv = F.conv2d(torch.from_numpy(x).permute(2, 0, 1)[None], conv_w)[0, :, 0, 0]
    np.testing.assert_allclose(conv.numpy(), fc, atol=1e-3, rtol=1e-4)


def test_vgg16_npz_import(tmp_path):
    rng = np.random.default_rng(2)
    names = [f"conv{b}_{i}" for b, n in zip(range(1, 6), BLOCK_SIZES) for i in range(1, n + 1)]
    arrays = {}
    for name, (cin, cout) in zip(names, VGG_CHANNELS):
        cin = 3 if name == "conv1_1" else cin
        arrays[f"{name}_W"] = (rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * 0.05)
        arrays[f"{name}_b"] = rng.standard_normal(cout, dtype=np.float32)
    src = tmp_path / "vgg16_weights.npz"
    np.savez(src, **arrays)
    info = import_weights(src, tmp_path / "npz.safetensors")
    assert info.provenance["source"] == "vgg16-npz"
    assert info.normalization["std"] == [1.0, 1.0, 1.0]  # Caffe VGG: mean subtraction only
    model, _ = load_weights(tmp_path / "npz.safetensors")
    assert torch.count_nonzero(model.encoder.conv1_1.weight[:, 3]) == 0
    # a layer of the imported model computes what TensorFlow computes with the npz kernel
    x = rng.standard_normal((5, 6, 64)).astype(np.float32)
    ref = _numpy_conv_same(x, arrays["conv1_2_W"], arrays["conv1_2_b"])
    with torch.inference_mode():
        got = model.encoder.conv1_2(torch.from_numpy(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-4)


def test_unrecognised_checkpoint_asks_for_from(tmp_path):
    src = tmp_path / "thing.pth"
    torch.save({"foo.weight": torch.zeros(2)}, src)
    with pytest.raises(WeightsError, match="cannot tell what thing.pth is.*--from"):
        import_weights(src, tmp_path / "x.safetensors")
    with pytest.raises(WeightsError, match="unknown import source"):
        import_weights(src, tmp_path / "x.safetensors", source="caffe")


# ---------------------------------------------------------------- security


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _save(obj, path: Path, container: str) -> None:
    if container == "plain-pickle":
        path.write_bytes(pickle.dumps(obj, protocol=2))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=(container == "torch-zip"))


@pytest.mark.parametrize("container", ["plain-pickle", "torch-zip", "torch-legacy"])
def test_code_execution_payload_is_refused_and_never_runs(tmp_path, container):
    marker = tmp_path / "marker"
    ckpt = {"meta": {"x": _Payload(marker)}, "state_dict": {"backbone.encoder.conv6.weight": torch.zeros(1)}}
    src = tmp_path / "evil.pth"
    _save(ckpt, src, container)
    for attempt in (lambda: load_torch_checkpoint(src), lambda: import_weights(src, tmp_path / "x.safetensors")):
        with pytest.raises(UnsafeCheckpointError, match=r"builtins\.exec.*not loaded and nothing in it ran"):
            attempt()
    assert not marker.exists()
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("container", ["plain-pickle", "torch-zip", "torch-legacy"])
def test_os_system_payload_is_refused(tmp_path, container):
    marker = tmp_path / "marker"
    src = tmp_path / "evil.pth"
    _save({"state_dict": {}, "meta": [_SystemPayload(marker)]}, src, container)
    with pytest.raises(UnsafeCheckpointError, match=r"(posix|nt|os)\.system"):
        load_torch_checkpoint(src)
    assert not marker.exists()


def test_torch_still_refuses_what_the_scan_would_let_through(tmp_path, monkeypatch):
    """The scan is the first gate; torch's weights-only loader stays the second."""
    from dim_studio.net import importers

    monkeypatch.setattr(importers, "_ALLOWED_GLOBALS", importers._ALLOWED_GLOBALS | {"builtins.exec"})
    marker = tmp_path / "marker"
    src = tmp_path / "evil.pth"
    torch.save({"meta": {"x": _Payload(marker)}, "state_dict": {}}, src)
    with pytest.raises(UnsafeCheckpointError, match=r"builtins\.exec.*nothing in it ran") as e:
        load_torch_checkpoint(src)
    assert "\n" not in str(e.value)
    assert not marker.exists()


# GLOBAL '__builtin__ bytearray', BININT 1_500_000_000, TUPLE1, REDUCE, STOP
BYTEARRAY_BOMB = b"\x80\x02c__builtin__\nbytearray\nJ" + struct.pack("<i", 1_500_000_000) + b"\x85R."


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from Linux's /proc")
def test_bytearray_bomb_is_refused_without_building_it(tmp_path):
    # torch's own weights-only loader admits bytearray: it would build 1.5 GB
    # and only then find that this is not a checkpoint.
    assert len(BYTEARRAY_BOMB) == 33
    src = tmp_path / "bomb.pth"
    src.write_bytes(BYTEARRAY_BOMB)
    # VmHWM is the child's own peak; ru_maxrss would carry over the parent's
    # peak through fork and exec.
    child = (
        "import re, sys\n"
        "from dim_studio.net import UnsafeCheckpointError, import_weights\n"
        "try:\n"
        "    import_weights(sys.argv[1], sys.argv[2])\n"
        "except UnsafeCheckpointError as e:\n"
        "    print(e)\n"
        "with open('/proc/self/status') as f:\n"
        "    print(re.search(r'VmHWM:\\s*(\\d+) kB', f.read()).group(1))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, str(src), str(tmp_path / "x.safetensors")],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip().splitlines()
    message, peak_kib = out[-2], int(out[-1])
    assert "builtins.bytearray" in message and "not loaded" in message
    assert peak_kib < 500 * 1024, f"peak memory {peak_kib // 1024} MB"
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        # complex(1, 2) followed by BUILD, which would set state on it
        (b"\x80\x02c__builtin__\ncomplex\nK\x01K\x02\x86R}b.", "builtins.complex"),
        (b"\x80\x02ccollections\nCounter\n)R.", "collections.Counter"),
        (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00latin1\x86R.", "_codecs.encode"),
        # protocol 4 names globals on the stack; torch.save never writes it
        (pickle.dumps(OrderedDict(), protocol=4), "STACK_GLOBAL"),
    ],
)
def test_objects_torch_admits_but_no_checkpoint_needs_are_refused(tmp_path, data, name):
    src = tmp_path / "odd.pth"
    src.write_bytes(data)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(name)):
        load_torch_checkpoint(src)


def test_numpy_values_in_meta_are_refused_by_name(tmp_path):
    # not needed by any supported checkpoint, so not admitted
    src = tmp_path / "np.pth"
    torch.save({"state_dict": openmmlab_state_dict(1), "meta": {"iter": np.int64(5)}}, src)
    with pytest.raises(UnsafeCheckpointError, match=r"numpy\.(_core|core)\.multiarray\.scalar"):
        import_weights(src, tmp_path / "x.safetensors")


def test_damaged_checkpoints_are_weights_errors(tmp_path, mm_stage3):
    _, legacy = mm_stage3
    zipped = tmp_path / "zipped.pth"
    torch.save({"state_dict": openmmlab_state_dict(1)}, zipped)
    cases = {
        "truncated-zip.pth": zipped.read_bytes()[: zipped.stat().st_size // 2],
        "truncated-legacy.pth": legacy.read_bytes()[:100_000],
        "not-a-checkpoint.pth": pickle.dumps({"a": 1}, protocol=2),
        "garbage.pth": b"\x80\x02" + b"\xff" * 64,  # 0xff is no pickle opcode
    }
    with zipfile.ZipFile(tmp_path / "no-pickle.pth", "w") as zf:
        zf.writestr("archive/data/0", b"\0" * 8)
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name in [*cases, "no-pickle.pth"]:
        with pytest.raises(WeightsError, match=f"{re.escape(name)}.*(damaged|not a)") as e:
            load_torch_checkpoint(tmp_path / name)
        assert not isinstance(e.value, UnsafeCheckpointError), name


def test_no_unsafe_loading_anywhere_in_the_package():
    """No call in dim_studio/net may unpickle without restriction."""
    root = Path(__file__).resolve().parents[1] / "dim_studio" / "net"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = ast.unparse(node.func)
            kwargs = {kw.arg: ast.unparse(kw.value) for kw in node.keywords}
            where = f"{path.name}:{node.lineno}"
            assert func not in ("pickle.load", "pickle.loads", "pickle.Unpickler"), where
            if func.endswith("torch.load") or func == "load":
                assert kwargs.get("weights_only") == "True", where
            if func.endswith("np.load"):
                assert kwargs.get("allow_pickle") == "False", where


# ---------------------------------------------------------------- CLI


def test_weights_import_command(mm_stage3, tmp_path, capsys):
    _, src = mm_stage3
    parser = argparse.ArgumentParser(prog="dim-studio")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights", "import", str(src), "-o", str(tmp_path / "cli.safetensors"), "--from", "openmmlab"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "Wrote" in out and "source: openmmlab" in out and "SAD 50.6" in out
    assert (tmp_path / "cli.safetensors").exists()
