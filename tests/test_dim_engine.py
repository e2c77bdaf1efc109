"""The DIM engine: tiling, devices, out-of-memory fallback, weights and cache.

Runs on the CPU with random weights. The random network is He-initialised
(``net.model.random_dim``): DIMNet's default Xavier init shrinks activations layer by
layer (the logit's spread is ~2e-5), so every alpha would be ~0.5 and a
tiled-vs-untiled comparison would pass whatever the tiling did. With He init
the alpha varies over ~0.05..0.7 and a tile with too little context is
visibly wrong (96 px of context: max |diff| ~2e-2; 160 px: ~3e-5; the default
192 px: float rounding).

Forwards of the full VGG-size network are the cost here, so the images stay
small and the tile sizes tiny (tile_size 32-64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dim_studio.engines import create_engine
from dim_studio.engines import dim as dim_mod
from dim_studio.engines.device import describe_device, select_device
from dim_studio.engines.dim import DIMEngine, axis_segments, plan_tiles
from dim_studio.errors import Cancelled, EngineError, WeightsError
from dim_studio.net.model import DIMNet, predict_alpha, random_dim
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

HOW_TO = "dim-studio weights download dim-stage3"


@pytest.fixture(scope="module")
def model() -> DIMNet:
    return random_dim()


def _ellipse_scene(h: int, w: int, band: float = 0.15, seed: int = 0):
    """An ellipse subject filling most of the frame, a textured background, and a
    trimap whose unknown band follows the ellipse's edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((yy - h / 2) / (h * 0.42), (xx - w / 2) / (w * 0.40))
    inside = d < 1
    image = np.stack(
        [0.3 + 0.5 * inside, 0.4 + 0.2 * np.sin(xx / 5), 0.5 + 0.1 * np.cos(yy / 7)], axis=2
    )
    image = np.clip(image + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
    trimap = np.where(inside, FOREGROUND, BACKGROUND).astype(np.uint8)
    trimap[np.abs(d - 1) < band] = UNKNOWN
    return image, trimap


def _check_known_forced(alpha: np.ndarray, trimap: np.ndarray) -> None:
    assert alpha.dtype == np.float32 and alpha.shape == trimap.shape
    assert np.all(alpha[trimap == FOREGROUND] == 1.0)
    assert np.all(alpha[trimap == BACKGROUND] == 0.0)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


class _CountingForward:
    """Wraps an engine's tile forward: counts calls, records shapes, can fail."""

    def __init__(self, engine: DIMEngine, fail=None) -> None:
        self.engine = engine
        self.original = engine._forward_tile
        self.fail = fail
        self.shapes: list[tuple[int, int, str]] = []

    def __call__(self, x, device, half):
        shape = (int(x.shape[-2]), int(x.shape[-1]))
        if self.fail is not None and self.fail(shape, device):
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 2.00 GiB (fake, tile {shape})"
            )
        self.shapes.append((*shape, device.type))
        return self.original(x, device, half)

    @property
    def calls(self) -> int:
        return len(self.shapes)


# ---------------------------------------------------------------------------
# Shapes and known pixels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("h, w", [(37, 53), (17, 20), (40, 33)])
def test_tiny_and_odd_sizes(model, h, w):
    image, trimap = _ellipse_scene(h, w, band=0.3)
    alpha = DIMEngine(model=model, device="cpu").estimate(image, trimap)
    _check_known_forced(alpha, trimap)
    # The unknown pixels carry the network's prediction, not a constant.
    assert alpha[trimap == UNKNOWN].std() > 1e-4
    # Same as whole-image inference (reflect pad to 32, crop back) here,
    # since the crop with its margin is the whole photo.
    np.testing.assert_allclose(alpha, predict_alpha(model, image, trimap), rtol=0, atol=1e-5)


def test_create_engine_and_describe(model):
    engine = create_engine("dim", model=model, device="cpu")
    assert isinstance(engine, DIMEngine)
    assert engine.describe() == "dim (CPU fp32)"
    assert engine.device == torch.device("cpu")
    assert engine.context_margin >= 160  # about the network's receptive-field radius


# ---------------------------------------------------------------------------
# Tiling
# ---------------------------------------------------------------------------


def test_axis_segments_and_plan():
    # Fits in one window: one segment.
    assert axis_segments(448, 64, 192) == [(0, 448)]
    # Edge segments core + context, inner ones core, all multiples of 32.
    assert axis_segments(576, 64, 192) == [(0, 256), (256, 320), (320, 576)]
    segs = axis_segments(2016, 512, 192)
    assert segs[0] == (0, 704) and segs[-1][1] == 2016
    assert all(a % 32 == 0 for a, _ in segs)

    # 2-D plan: every unknown pixel is kept by exactly one tile; windows are
    # 32-aligned and never exceed core + 2 * context.
    _, trimap = _ellipse_scene(700, 650, band=0.05)
    core, ctx = 128, 96
    tiles, skipped = plan_tiles(trimap, core, ctx, shrink=True)
    covered = np.zeros(trimap.shape, np.int32)
    for t in tiles:
        y0, y1, x0, x1 = t.window
        assert y0 % 32 == 0 and x0 % 32 == 0 and y1 % 32 == 0 and x1 % 32 == 0
        assert y1 - y0 <= core + 2 * ctx and x1 - x0 <= core + 2 * ctx
        ky0, ky1, kx0, kx1 = t.keep
        assert y0 <= ky0 < ky1 <= y1 and x0 <= kx0 < kx1 <= x1
        covered[ky0:ky1, kx0:kx1] += 1
    unknown = trimap == UNKNOWN
    assert np.all(covered[unknown] == 1)
    assert covered.max() == 1
    assert skipped > 0  # the ellipse's inside and the corners hold no unknown pixels


_UNTILED: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _untiled_case(model, shape):
    """(image, trimap, whole-image alpha), computed once per shape."""
    if shape not in _UNTILED:
        image, trimap = _ellipse_scene(*shape)
        # The crop (unknown box + 192 px margin) is the whole photo here.
        _UNTILED[shape] = (image, trimap, predict_alpha(model, image, trimap))
    return _UNTILED[shape]


@pytest.mark.parametrize("shape", [(561, 100), (100, 561)], ids=["tall", "wide"])
def test_tiled_matches_untiled(model, shape):
    # Odd sizes (reflect padding at the far edges) and three tiles along the
    # long axis, the middle one with context on both sides.
    image, trimap, untiled = _untiled_case(model, shape)
    engine = DIMEngine(model=model, device="cpu", tile_size=64)
    counter = _CountingForward(engine)
    engine._forward_tile = counter
    tiled = engine.estimate(image, trimap)
    assert counter.calls == 3 and engine.last_run_stats["tiles"] == 3
    assert max(max(s[:2]) for s in counter.shapes) <= 64 + 2 * 192
    diff = np.abs(tiled - untiled).max()
    assert diff < 1e-3, f"tiled vs untiled max |diff| {diff:.2e}"


def test_too_little_context_is_detectable(model):
    # The equivalence test above would be meaningless if the random network
    # hardly depended on distant pixels; with 64 px of context it must differ.
    image, trimap = _ellipse_scene(320, 64)
    untiled = predict_alpha(model, image, trimap)
    engine = DIMEngine(model=model, device="cpu", tile_size=64, tile_context=64)
    assert engine.last_run_stats == {}
    tiled = engine.estimate(image, trimap)
    assert engine.last_run_stats["tiles"] > 1
    assert np.abs(tiled - untiled).max() > 1e-3


def test_tiles_without_unknown_pixels_are_skipped(model):
    # Two small unknown patches in opposite corners of a 256x256 photo: only
    # the tiles holding them run; the rest is filled from the trimap.
    image, _ = _ellipse_scene(256, 256)
    trimap = np.zeros((256, 256), np.uint8)
    trimap[100:156, 100:156] = FOREGROUND
    trimap[8:24, 8:24] = UNKNOWN
    trimap[232:248, 232:248] = UNKNOWN
    engine = DIMEngine(model=model, device="cpu", tile_size=32, tile_context=32)
    counter = _CountingForward(engine)
    engine._forward_tile = counter
    alpha = engine.estimate(image, trimap)
    stats = engine.last_run_stats
    assert counter.calls == stats["tiles"] == 2
    assert stats["skipped"] >= 7
    _check_known_forced(alpha, trimap)
    # Windows shrink to the patch plus context, far below the crop.
    assert all(h <= 96 and w <= 96 for h, w, _ in counter.shapes)


# ---------------------------------------------------------------------------
# Progress and cancel
# ---------------------------------------------------------------------------


def _small_tiled_engine(model) -> DIMEngine:
    return DIMEngine(model=model, device="cpu", tile_size=32, tile_context=32, context_margin=16)


def test_progress_per_tile(model):
    image, trimap = _ellipse_scene(150, 130, band=0.12)
    engine = _small_tiled_engine(model)
    seen: list[float] = []
    alpha = engine.estimate(image, trimap, progress=seen.append)
    n = engine.last_run_stats["tiles"]
    assert n >= 4
    assert seen[0] == 0.0 and seen[-1] == 1.0
    per_tile = seen[1:n + 1]
    assert per_tile == pytest.approx([(i + 1) / n for i in range(n)])
    assert all(b >= a for a, b in zip(seen, seen[1:]))
    _check_known_forced(alpha, trimap)


def test_cancel_between_tiles(model):
    image, trimap = _ellipse_scene(150, 130, band=0.12)
    engine = _small_tiled_engine(model)
    counter = _CountingForward(engine)
    engine._forward_tile = counter
    seen: list[float] = []
    with pytest.raises(Cancelled):
        engine.estimate(image, trimap, progress=seen.append, cancel=lambda: counter.calls >= 2)
    assert counter.calls == 2  # no tile ran after the cancel
    n = engine.last_run_stats["tiles"]
    assert n > 2
    assert seen == pytest.approx([0.0, 1 / n, 2 / n])  # and no progress after it


# ---------------------------------------------------------------------------
# Out of memory
# ---------------------------------------------------------------------------


def test_out_of_memory_retries_with_smaller_tiles(model):
    image, trimap, untiled = _untiled_case(model, (561, 100))
    engine = DIMEngine(model=model, device="cpu", tile_size=512)
    # Anything taller than 448 px "does not fit": 512 -> 256 -> 128 fail, 64 works.
    counter = _CountingForward(engine, fail=lambda shape, device: shape[0] > 448)
    engine._forward_tile = counter
    seen: list[float] = []
    alpha = engine.estimate(image, trimap, progress=seen.append)
    assert engine.last_run_stats["tile_size"] == 64
    assert counter.calls == 3
    assert engine.active_tile_size == 64  # the next run starts with what worked
    notes = " ".join(engine.last_run_notes)
    assert "out of memory" in notes and "64 px tiles" in notes
    assert np.abs(alpha - untiled).max() < 1e-3  # still the right answer
    assert all(b >= a for a, b in zip(seen, seen[1:])) and seen[-1] == 1.0


def test_out_of_gpu_memory_falls_back_to_cpu(model, monkeypatch, caplog):
    image, trimap = _ellipse_scene(64, 80, band=0.3)
    expected = DIMEngine(model=model, device="cpu").estimate(image, trimap)
    engine = DIMEngine(model=model, device="cpu", tile_size=128, min_tile_size=64)
    # Pretend the engine was made for a GPU whose memory is always too small;
    # the fake forward never touches CUDA.
    engine.device = engine.active_device = torch.device("cuda", 0)
    counter = _CountingForward(engine, fail=lambda shape, device: device.type == "cuda")
    engine._forward_tile = counter
    with caplog.at_level("WARNING", logger="dim_studio.engines.dim"):
        alpha = engine.estimate(image, trimap)
    assert engine.last_run_stats["device"] == "cpu"
    assert engine.active_device == torch.device("cpu")
    assert all(dev == "cpu" for *_, dev in counter.shapes)
    notes = " ".join(engine.last_run_notes)
    assert "64 px tiles" in notes and "on the CPU" in notes
    assert "on the CPU" in caplog.text
    np.testing.assert_allclose(alpha, expected, rtol=0, atol=1e-5)


def test_cpu_copy_of_a_model_for_the_fallback(model):
    copy = dim_mod._copy_model(model, torch.device("cpu"))
    assert copy is not model
    for (name, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items()):
        assert torch.equal(a, b), name


def test_out_of_memory_on_cpu_is_a_clear_error(model):
    image, trimap = _ellipse_scene(40, 40, band=0.3)
    engine = DIMEngine(model=model, device="cpu", tile_size=64)
    engine._forward_tile = _CountingForward(engine, fail=lambda shape, device: True)
    with pytest.raises(EngineError, match="not enough memory"):
        engine.estimate(image, trimap)


def test_other_runtime_errors_become_engine_errors(model):
    image, trimap = _ellipse_scene(40, 40, band=0.3)
    engine = DIMEngine(model=model, device="cpu")

    def broken(x, device, half):
        raise RuntimeError("something else broke")

    engine._forward_tile = broken
    with pytest.raises(EngineError, match="something else broke"):
        engine.estimate(image, trimap)


# ---------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------


def test_select_device_and_describe(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device(None) == torch.device("cpu")
    assert select_device("auto") == torch.device("cpu")
    assert select_device("CPU") == torch.device("cpu")
    assert describe_device(torch.device("cpu")) == f"CPU ({torch.get_num_threads()} threads)"
    with pytest.raises(EngineError, match="cuda requested but no CUDA GPU is available"):
        select_device("cuda")
    with pytest.raises(EngineError, match="mps requested"):
        select_device("mps")
    with pytest.raises(EngineError, match="unknown device 'tpu9'"):
        select_device("tpu9")


def test_half_precision_on_cpu_is_refused(model):
    with pytest.raises(EngineError, match="half precision"):
        DIMEngine(model=model, device="cpu", half=True)


def test_bad_tile_size(model):
    with pytest.raises(EngineError, match="tile size"):
        DIMEngine(model=model, device="cpu", tile_size=8)


# ---------------------------------------------------------------------------
# Weights: missing, loaded from a file, cached
# ---------------------------------------------------------------------------


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No weights anywhere: empty data folder, no env var, empty model/ folder."""
    import dim_studio.net.weights as weights

    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(data))
    monkeypatch.delenv("DIM_STUDIO_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "model_dir", lambda: tmp_path / "model")
    return tmp_path


def test_missing_weights_says_how_to_get_them(no_weights, monkeypatch):
    with pytest.raises(WeightsError) as info:
        DIMEngine(device="cpu")
    assert HOW_TO in str(info.value) and "import" in str(info.value)
    # An env var pointing to an empty folder says the same.
    empty = no_weights / "empty"
    empty.mkdir()
    monkeypatch.setenv("DIM_STUDIO_WEIGHTS", str(empty))
    with pytest.raises(WeightsError, match=HOW_TO):
        create_engine("dim", device="cpu")


def test_cli_matte_with_dim_and_no_weights(no_weights, run_cli):
    from conftest import make_scene, save_gray, save_rgb

    scene = make_scene()
    img = save_rgb(no_weights / "photo.png", scene.image)
    tri = save_gray(no_weights / "trimap.png", scene.trimap)
    out = no_weights / "alpha.png"
    result = run_cli("matte", img, "--trimap", tri, "-o", out, "--engine", "dim", "--device", "cpu", "-q")
    assert result.code != 0
    assert HOW_TO in result.err + result.out
    assert not out.exists()


@pytest.fixture
def weights_file(tmp_path, model):
    from dim_studio.net.weights import save_weights

    dim_mod.clear_model_cache()
    path = tmp_path / "random.safetensors"
    save_weights(path, model, {"provenance": {"kind": "test", "note": "random He init"}})
    yield path
    dim_mod.clear_model_cache()


def test_weights_file_gives_same_alpha_and_is_cached(model, weights_file):
    image, trimap = _ellipse_scene(45, 61, band=0.3)
    expected = DIMEngine(model=model, device="cpu").estimate(image, trimap)
    first = DIMEngine(weights=weights_file, device="cpu")
    second = create_engine("dim", weights=str(weights_file), device="cpu")
    assert first.model is second.model  # loaded once
    assert first.weights_path == Path(weights_file)
    np.testing.assert_allclose(first.estimate(image, trimap), expected, rtol=0, atol=1e-5)
    assert len(dim_mod.cached_model_keys()) == 1


def test_rewritten_weights_file_is_reloaded(model, weights_file):
    import os

    from dim_studio.net.weights import save_weights

    first = DIMEngine(weights=weights_file, device="cpu")
    save_weights(weights_file, random_dim(seed=1))
    st = os.stat(weights_file)
    os.utime(weights_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse clocks
    second = DIMEngine(weights=weights_file, device="cpu")
    assert second.model is not first.model
    assert len(dim_mod.cached_model_keys()) == 1  # the old version was dropped


def test_an_engine_kept_alive_follows_its_replaced_weights_file(model, weights_file):
    # A GUI keeps engines cached; installing new weights under the same name
    # must change what that very engine computes, not only what new ones do.
    import os

    from dim_studio.net.weights import save_weights

    image, trimap = _ellipse_scene(40, 48, band=0.3)
    engine = DIMEngine(weights=weights_file, device="cpu")
    before = engine.estimate(image, trimap)
    replacement = random_dim(seed=7)
    save_weights(weights_file, replacement)
    st = os.stat(weights_file)
    os.utime(weights_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse clocks
    after = engine.estimate(image, trimap)
    assert any("changed" in note for note in engine.last_run_notes)
    np.testing.assert_allclose(after, predict_alpha(replacement, image, trimap, engine.normalization),
                               rtol=0, atol=1e-5)
    assert np.abs(after - before).max() > 1e-3


def test_normalisation_comes_from_the_weights_metadata(model, tmp_path):
    from dim_studio.net.weights import save_weights

    dim_mod.clear_model_cache()
    norm = {"input_range": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    path = tmp_path / "other-norm.safetensors"
    save_weights(path, model, {"normalization": norm})
    try:
        engine = DIMEngine(weights=path, device="cpu")
        assert engine.normalization["mean"] == [0.5, 0.5, 0.5]
        assert engine.normalization["input_range"] == 1.0
        image, trimap = _ellipse_scene(40, 48, band=0.3)
        alpha = engine.estimate(image, trimap)
        reference = predict_alpha(model, image, trimap, engine.normalization)
        np.testing.assert_allclose(alpha, reference, rtol=0, atol=1e-5)
        default = predict_alpha(model, image, trimap)
        assert np.abs(alpha - default).max() > 1e-4
    finally:
        dim_mod.clear_model_cache()


def test_crop_away_from_the_corner_matches_whole_image(model):
    # The unknown band sits far right, so the crop starts well inside the photo;
    # snapping its corner to the 32-px grid keeps pooling aligned with a
    # whole-image run, and the 192 px margin gives every unknown pixel its context.
    image, _ = _ellipse_scene(96, 640)
    trimap = np.full((96, 640), BACKGROUND, np.uint8)
    trimap[:, 520:] = FOREGROUND
    trimap[:, 470:520] = UNKNOWN
    whole = predict_alpha(model, image, trimap)
    engine = DIMEngine(model=model, device="cpu")
    cropped = engine.estimate(image, trimap)
    assert engine.last_run_stats["crop"][1] < 640  # really cropped
    assert np.abs(cropped - whole).max() < 1e-3
