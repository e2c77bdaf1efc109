"""The DIM network: layer names, shapes, forward semantics, padding and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dim_studio.errors import DimStudioError, TrimapError
from dim_studio.net import (
    DEFAULT_NORMALIZATION,
    DIMConfig,
    DIMNet,
    InputShapeError,
    count_parameters,
    normalize_input,
    pad_to_multiple,
    predict_alpha,
)

PAPER_LAYERS = (
    [f"encoder.conv{b}_{i}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for i in range(1, n + 1)]
    + ["encoder.conv6"]
    + ["decoder.deconv6_1", "decoder.deconv5_1", "decoder.deconv4_1", "decoder.deconv3_1",
       "decoder.deconv2_1", "decoder.deconv1_1", "decoder.deconv1"]
)
REFINE_LAYERS = ["refine.conv1", "refine.conv2", "refine.conv3", "refine.pred"]


def meta_model(config: DIMConfig) -> DIMNet:
    with torch.device("meta"):
        return DIMNet(config)


@pytest.fixture(scope="module")
def model() -> DIMNet:
    torch.manual_seed(0)
    return DIMNet(DIMConfig()).eval()


# ---------------------------------------------------------------- structure


def test_layer_names_read_like_the_paper():
    keys = list(meta_model(DIMConfig()).state_dict())
    assert keys == [f"{n}.{k}" for n in PAPER_LAYERS + REFINE_LAYERS for k in ("weight", "bias")]
    keys = list(meta_model(DIMConfig(refine=False)).state_dict())
    assert keys == [f"{n}.{k}" for n in PAPER_LAYERS for k in ("weight", "bias")]


@pytest.mark.parametrize(
    "config, conv6_shape, deconv6_shape, params",
    [
        (DIMConfig("1x1", True), [512, 512, 1, 1], [512, 512, 1, 1], 26_276_802),
        (DIMConfig("1x1", False), [512, 512, 1, 1], [512, 512, 1, 1], 26_200_001),
        (DIMConfig("7x7", True), [4096, 512, 7, 7], [512, 4096, 1, 1], 130_613_698),
        (DIMConfig("7x7", False), [4096, 512, 7, 7], [512, 4096, 1, 1], 130_536_897),
    ],
)
def test_conv6_options_and_parameter_counts(config, conv6_shape, deconv6_shape, params):
    m = meta_model(config)
    sd = m.state_dict()
    assert list(sd["encoder.conv6.weight"].shape) == conv6_shape
    assert list(sd["decoder.deconv6_1.weight"].shape) == deconv6_shape
    # The layer shapes of the OpenMMLab layout (model/README.md)
    assert list(sd["encoder.conv1_1.weight"].shape) == [64, 4, 3, 3]
    assert list(sd["decoder.deconv5_1.weight"].shape) == [512, 512, 5, 5]
    assert list(sd["decoder.deconv4_1.weight"].shape) == [256, 512, 5, 5]
    assert list(sd["decoder.deconv1.weight"].shape) == [1, 64, 5, 5]
    if config.refine:
        assert list(sd["refine.conv1.weight"].shape) == [64, 4, 3, 3]
    assert count_parameters(m) == params
    assert m.encoder.conv6.padding == ((3, 3) if config.conv6 == "7x7" else (0, 0))


def test_config_validates():
    with pytest.raises(DimStudioError):
        DIMConfig(conv6="3x3")  # type: ignore[arg-type]
    assert DIMConfig.from_dict(DIMConfig("7x7", False).to_dict()) == DIMConfig("7x7", False)


# ---------------------------------------------------------------- shape check


def test_shape_error_says_what_works(model):
    with pytest.raises(InputShapeError) as e:
        model(torch.zeros(1, 4, 37, 53))
    msg = str(e.value)
    assert "height 37 and width 53 must be multiples of 32" in msg
    assert "pad to 64x64" in msg and "pad_to_multiple" in msg
    assert isinstance(e.value, DimStudioError) and isinstance(e.value, ValueError)
    with pytest.raises(InputShapeError, match="4 channels"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputShapeError, match="4-D"):
        model(torch.zeros(4, 32, 32))


# ---------------------------------------------------------------- forward


def test_forward_semantics_stage1_and_refined(model):
    torch.manual_seed(1)
    x = torch.randn(2, 4, 32, 64)
    with torch.inference_mode():
        out = model(x)
        # refinement input = normalised RGB + stage-1 alpha; output adds to the logit
        residual = model.refine(torch.cat((x[:, :3], torch.sigmoid(out["logit"])), 1))
        no_refine = model(x, refine=False)
    assert out["logit"].shape == (2, 1, 32, 64)
    torch.testing.assert_close(out["stage1"], torch.sigmoid(out["logit"]))
    torch.testing.assert_close(out["refined"], torch.sigmoid(out["logit"] + residual))
    assert out["alpha"] is out["refined"]
    assert "refined" not in no_refine
    torch.testing.assert_close(no_refine["alpha"], out["stage1"])
    assert float(out["alpha"].min()) >= 0.0 and float(out["alpha"].max()) <= 1.0


def test_model_without_refiner():
    with torch.device("meta"):
        m = DIMNet(DIMConfig(refine=False))
    assert m.refine is None
    with pytest.raises(DimStudioError, match="no refinement stage"):
        m(torch.zeros(1, 4, 32, 32, device="meta"), refine=True)


def test_odd_sized_image_through_pad_forward_crop(model):
    rng = np.random.default_rng(0)
    image = rng.random((37, 53, 3), dtype=np.float32)
    trimap = np.full((37, 53), 128, np.uint8)
    trimap[:5] = 0
    trimap[-5:] = 255
    alpha = predict_alpha(model, image, trimap)
    assert alpha.shape == (37, 53) and alpha.dtype == np.float32
    assert np.all(alpha[:5] == 0) and np.all(alpha[-5:] == 1)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    # the same through the public pieces, cropped by hand
    x, (h, w) = pad_to_multiple(normalize_input(image, trimap))
    assert x.shape == (1, 4, 64, 64) and (h, w) == (37, 53)
    with torch.inference_mode():
        manual = model(x)["alpha"][0, 0, :h, :w].numpy()
    unknown = trimap == 128
    np.testing.assert_allclose(alpha[unknown], manual[unknown], atol=1e-6)


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (40, 64, 1)])
def test_pad_numpy_matches_numpy_reflect(shape):
    a = np.random.default_rng(0).random(shape).astype(np.float32)
    padded, (h, w) = pad_to_multiple(a)
    assert (h, w) == shape[:2]
    assert padded.shape[0] % 32 == 0 and padded.shape[1] % 32 == 0
    widths = [(0, padded.shape[0] - h), (0, padded.shape[1] - w)] + [(0, 0)] * (a.ndim - 2)
    np.testing.assert_array_equal(padded, np.pad(a, widths, mode="reflect"))
    np.testing.assert_array_equal(padded[:h, :w], a)


def test_pad_tensor_matches_torch_reflect():
    t = torch.randn(1, 4, 37, 53)
    padded, (h, w) = pad_to_multiple(t)
    assert padded.shape == (1, 4, 64, 64)
    torch.testing.assert_close(padded, torch.nn.functional.pad(t, (0, 11, 0, 27), mode="reflect"))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_reflect_works_when_pad_exceeds_size(n):
    # torch's reflect pad refuses pad > size - 1; ours bounces back and forth
    t = torch.arange(float(n)).reshape(1, 1, 1, n).expand(1, 1, 2, n).contiguous()
    padded, _ = pad_to_multiple(t)
    assert padded.shape == (1, 1, 32, 32)
    row = padded[0, 0, 0].tolist()
    assert row[:n] == list(range(n))
    if n == 1:
        assert set(row) == {0.0}
    else:
        period = list(range(n)) + list(range(n - 2, 0, -1))
        assert row == [float(period[i % len(period)]) for i in range(32)]
    a, _ = pad_to_multiple(np.arange(float(n))[None, :].repeat(3, 0))
    assert a.shape == (32, 32) and a[:, :n].tolist() == [list(map(float, range(n)))] * 32


def test_pad_other_modes_and_noop():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    rep, _ = pad_to_multiple(a, 4, mode="replicate")
    assert rep[3, 3] == a[1, 2] and rep[0, 3] == a[0, 2]
    zero, _ = pad_to_multiple(a, 4, mode="constant")
    assert zero[3, 3] == 0 and zero[:2, :3].tolist() == a.tolist()
    same = np.zeros((64, 32))
    out, size = pad_to_multiple(same)
    assert out is same and size == (64, 32)
    with pytest.raises(ValueError):
        pad_to_multiple(a, 4, mode="wrap")


# ---------------------------------------------------------------- normalisation


def test_normalize_input_reference_values():
    image = np.zeros((2, 3, 3), np.float32)
    image[0, 0] = [1.0, 0.5, 0.0]
    trimap = np.array([[0, 128, 255], [255, 0, 128]], np.uint8)
    x = normalize_input(image, trimap, DEFAULT_NORMALIZATION)
    assert x.shape == (1, 4, 2, 3) and x.dtype == torch.float32
    expect = (np.array([255.0, 127.5, 0.0]) - np.array([123.675, 116.28, 103.53])) / np.array([58.395, 57.12, 57.375])
    np.testing.assert_allclose(x[0, :3, 0, 0].numpy(), expect, rtol=1e-5)
    np.testing.assert_allclose(x[0, 3].numpy(), trimap / 255.0, rtol=1e-6)
    # the normalisation comes from the weights' metadata
    y = normalize_input(image, trimap, {"mean": [0, 0, 0], "std": [1, 1, 1]})
    np.testing.assert_allclose(y[0, 0, 0, 0].item(), 255.0)


def test_normalize_input_checks_sizes():
    with pytest.raises(TrimapError, match="trimap is 4x2 but the image is 3x2"):
        normalize_input(np.zeros((2, 3, 3), np.float32), np.zeros((2, 4), np.uint8))
    with pytest.raises(InputShapeError):
        normalize_input(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8))
