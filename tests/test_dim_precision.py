"""The DIM engine's precision: bf16 autocast for previews, fp32 for exports, fp32 where bf16 is slow.

A narrow random network (width 1/8, He init) keeps the forwards cheap. No
timing here: bench/dim_speed.py measures the fp32/bf16 ratio.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dim_studio.engines import device as devices
from dim_studio.engines.dim import DIMEngine, resolve_precision
from dim_studio.errors import EngineError
from dim_studio.net.model import DIMConfig, random_dim
from dim_studio.net.weights import save_weights
from dim_studio.training.step import precision_for
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN
from dim_studio.workflows import jobs
from dim_studio.workflows.engine_choice import PREVIEW_PRECISION, choose_engine, engine_options, preview_options
from dim_studio.workflows.export import ExportRequest, run_export
from dim_studio.workflows.jobs import JobContext
from dim_studio.workflows.preview import PreviewRequest, run_preview

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def narrow():
    return random_dim(DIMConfig(width=0.125), seed=3)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "narrow.safetensors"
    save_weights(path, random_dim(DIMConfig(width=0.125), seed=3))
    return path


def _scene(h: int = 72, w: int = 88, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((yy - h / 2) / (h * 0.4), (xx - w / 2) / (w * 0.4))
    inside = d < 1
    image = np.stack([0.2 + 0.6 * inside, 0.5 + 0.3 * np.sin(xx / 4), 0.4 + 0.2 * np.cos(yy / 6)], axis=2)
    image = np.clip(image + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
    trimap = np.where(inside, FOREGROUND, BACKGROUND).astype(np.uint8)
    trimap[np.abs(d - 1) < 0.25] = UNKNOWN
    return image, trimap


def _native(monkeypatch, value: bool) -> None:
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: value)


def test_bf16_is_close_to_fp32_and_keeps_known_pixels_exact(narrow):
    image, trimap = _scene()
    a32 = DIMEngine(model=narrow, device="cpu", precision="fp32").estimate(image, trimap)
    engine = DIMEngine(model=narrow, device="cpu", precision="bf16")
    a16 = engine.estimate(image, trimap)
    assert engine.last_precision == "bf16" and engine.last_run_stats["precision"] == "bf16"
    assert a16.dtype == np.float32 and a16.shape == trimap.shape
    assert np.all(a16[trimap == FOREGROUND] == 1.0) and np.all(a16[trimap == BACKGROUND] == 0.0)
    unknown = trimap == UNKNOWN
    diff = np.abs(a16 - a32)[unknown]
    assert a32[unknown].std() > 1e-2  # the network is not answering a constant
    assert diff.mean() < 0.02
    assert diff.max() > 0  # bf16 really ran


def test_auto_follows_the_cpu_check(monkeypatch, narrow):
    _native(monkeypatch, False)
    engine = DIMEngine(model=narrow, device="cpu", precision="auto")
    assert engine.precision() == "fp32" and engine.describe() == "dim (CPU fp32)"
    assert precision_for("auto", CPU) is None  # training shares the check
    _native(monkeypatch, True)
    engine = DIMEngine(model=narrow, device="cpu", precision="auto")
    assert engine.precision() == "bf16" and engine.describe() == "dim (CPU bf16)"
    assert precision_for("auto", CPU) is torch.bfloat16


def test_default_and_explicit_choices(monkeypatch, narrow):
    _native(monkeypatch, True)
    assert DIMEngine(model=narrow, device="cpu").precision() == "fp32"  # exports: fp32 unless asked
    assert DIMEngine(model=narrow, device="cpu", half=False).precision() == "fp32"
    assert DIMEngine(model=narrow, device="cpu", precision="FP32").precision() == "fp32"
    assert resolve_precision(None, torch.device("cuda", 0)) == "fp16"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "fp16"
    assert resolve_precision("auto", torch.device("mps")) == "fp32"


def test_invalid_precisions_are_clear_errors(narrow):
    with pytest.raises(EngineError, match="unknown precision 'fp8'.*fp32, bf16, fp16, auto"):
        DIMEngine(model=narrow, device="cpu", precision="fp8")
    with pytest.raises(EngineError, match="fp16.*needs a GPU"):
        DIMEngine(model=narrow, device="cpu", precision="fp16")
    with pytest.raises(EngineError, match="bf16 is not supported.*MPS"):
        resolve_precision("bf16", torch.device("mps"))


def test_engine_options_carry_precision_only_for_the_network():
    assert engine_options("dim", precision="bf16") == {"precision": "bf16"}
    assert engine_options("dim") == {}
    assert engine_options("closed-form", precision="bf16") == {}
    dim = choose_engine("dim", weights="w.safetensors")
    assert preview_options(dim) == {"weights": "w.safetensors", "precision": PREVIEW_PRECISION}
    assert "precision" not in dim.options  # what export gets
    assert preview_options(choose_engine("dim", precision="fp32"))["precision"] == "fp32"  # the user's choice wins
    assert preview_options(choose_engine("closed-form")) == {}


@pytest.mark.parametrize("native", [False, True])
def test_preview_asks_for_the_fast_precision_and_export_for_fp32(monkeypatch, tmp_path, weights, native):
    _native(monkeypatch, native)
    asked: list[dict] = []
    real_create = jobs.create_engine

    def recording_create(name, **options):
        asked.append(dict(options))
        return real_create(name, **options)

    monkeypatch.setattr(jobs, "create_engine", recording_create)
    image, trimap = _scene(48, 56)
    ctx = JobContext.standalone()
    choice = choose_engine("dim", weights=str(weights), device="cpu")

    preview = run_preview(ctx, PreviewRequest(image, trimap, choice, "full"))
    fast = "bf16" if native else "fp32"
    assert asked[-1]["precision"] == PREVIEW_PRECISION
    assert preview.engine_label == f"dim (CPU {fast})"
    preview_engine = ctx.engines.get("dim", asked[-1])

    export = run_export(ctx, ExportRequest(image, trimap, choice, alpha_path=str(tmp_path / "a.png")))
    assert "precision" not in asked[-1]
    assert export.engine_label == "dim (CPU fp32)"
    export_engine = ctx.engines.get("dim", asked[-1])
    assert export_engine.last_precision == "fp32" and preview_engine.last_precision == fast
    # Two cache entries, one network: precision is autocast, the weights are shared.
    assert preview_engine is not export_engine and preview_engine.model is export_engine.model
