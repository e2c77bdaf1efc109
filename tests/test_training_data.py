"""Training data: samples (crop, resize, then composite), trimaps, sources, dataset and sampler.

Everything here is small: the one 700x700 foreground exists so that the
paper's 320/480/640 crops really are resized.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import save_gray
from training_data import background, make_composition_1k, make_pair_folder, soft_foreground

from dim_studio.images import read_image
from dim_studio.training import samples
from dim_studio.training.dataset import CompositionDataset, LossTracker, TrainSampler, make_loader
from dim_studio.training.samples import SampleOptions, crop_window, make_sample, random_trimap
from dim_studio.training.sources import TrainingDataError, find_training_data, read_hard_list

TESTS = Path(__file__).resolve().parent
SMALL = SampleOptions(size=64, crop_sizes=(48, 64, 96), max_kernel=6)
TINY = 1e-6  # float rounding: alpha within this of 0 or 1 counts as 0 or 1


def _soft(alpha: np.ndarray) -> np.ndarray:
    """0 < alpha < 1 (beyond float rounding)."""
    return (alpha > TINY) & (alpha < 1.0 - TINY)


def _torch_composite(sample: samples.Sample) -> torch.Tensor:
    a = torch.from_numpy(sample.alpha)[..., None]
    return a * torch.from_numpy(sample.fg) + (1.0 - a) * torch.from_numpy(sample.bg)


@pytest.fixture(scope="module")
def big_layers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 700x700 foreground with its alpha, and a background of the same size."""
    fg, alpha = soft_foreground(3, (700, 700))
    return fg, alpha, background(3, (700, 700))


def _window(alpha: np.ndarray, seed: int, options: SampleOptions = SampleOptions()) -> tuple[int, int, int]:
    """The crop window make_sample draws with ``default_rng(seed)`` (same draws, same order)."""
    rng = np.random.default_rng(seed)
    crop = int(options.crop_sizes[rng.integers(len(options.crop_sizes))])
    return crop_window(alpha, crop, rng)


# --------------------------------------------------------------- samples


def test_image_is_the_composite_of_the_resized_layers(big_layers) -> None:
    fg, alpha, _ = big_layers
    # A background of another shape and aspect: it is scaled to cover the photo.
    bg = background(5, (650, 900))
    resized = 0
    for seed in range(6):
        sample = make_sample(fg, alpha, bg, np.random.default_rng(seed))
        y0, x0, side = _window(alpha, seed)
        resized += side != samples.OUTPUT_SIZE
        expected = _torch_composite(sample)
        assert float((torch.from_numpy(sample.image) - expected).abs().max()) < 1e-6
        # and the layers are the crop of the photo's own layers (flipped or not), resized
        crop = samples.resize(fg[y0:y0 + side, x0:x0 + side], samples.OUTPUT_SIZE)
        assert np.array_equal(sample.fg, crop) or np.array_equal(sample.fg, crop[:, ::-1])
    assert resized >= 3, "the seeds should include crops larger than the output size"


def test_background_is_the_part_under_the_crop_window(big_layers) -> None:
    fg, alpha, _ = big_layers
    # A background of twice the photo's size: foreground pixel (y, x) lies over bg (2y, 2x).
    bg2 = background(7, (1400, 1400))
    opts = SampleOptions(flip=False)
    for seed in range(3):
        sample = make_sample(fg, alpha, bg2, np.random.default_rng(seed), opts)
        y0, x0, side = _window(alpha, seed, opts)
        expected = samples.resize(bg2[2 * y0:2 * (y0 + side), 2 * x0:2 * (x0 + side)], opts.size)
        np.testing.assert_allclose(sample.bg, expected, atol=1e-6)


def test_compositing_before_resizing_disagrees_with_the_layers(big_layers) -> None:
    """The old order (composite the full photo, then crop and resize) breaks alpha*F + (1-alpha)*B."""
    fg, alpha, bg = big_layers  # bg has the photo's shape: its window is the same crop
    opts = SampleOptions(flip=False)
    seed = next(s for s in range(50) if _window(alpha, s, opts)[2] > opts.size)
    sample = make_sample(fg, alpha, bg, np.random.default_rng(seed), opts)
    y0, x0, side = _window(alpha, seed, opts)

    new = _torch_composite(sample).numpy()
    assert np.abs(sample.image - new).max() < 1e-6

    full = samples.composite(fg, bg, alpha)
    old = samples.resize(full[y0:y0 + side, x0:x0 + side], opts.size)
    error = np.abs(old - new).max(axis=2)
    edge = _soft(sample.alpha)
    assert edge.any()
    assert error[edge].max() > 1e-2
    # Away from the edge the two orders agree: only mixing across the edge differs.
    solid = samples.resize((_soft(alpha) == 0).astype(np.float32)[y0:y0 + side, x0:x0 + side], opts.size)
    far = solid >= 1.0
    far &= ~edge
    assert far.any()
    assert error[edge].max() > 10 * np.median(error[far])


def test_crops_are_centred_on_soft_pixels() -> None:
    fg, alpha = soft_foreground(1, (200, 260))
    h, w = alpha.shape
    centred = 0
    for seed in range(40):
        y0, x0, side = crop_window(alpha, 96, np.random.default_rng(seed))
        assert side == 96 and 0 <= y0 <= h - side and 0 <= x0 <= w - side
        # the window is only shifted when it would leave the photo
        if 0 < y0 < h - side and 0 < x0 < w - side:
            centred += 1
            assert 0.0 < alpha[y0 + side // 2, x0 + side // 2] < 1.0
    assert centred >= 20


def test_hard_edged_alpha_crops_on_its_edge() -> None:
    yy, xx = np.mgrid[0:120, 0:160]
    alpha = (np.hypot(yy - 60, xx - 80) < 30).astype(np.float32)  # no soft pixel at all
    edge_dist = np.abs(np.hypot(yy - 60, xx - 80) - 30)
    for seed in range(20):
        y0, x0, side = crop_window(alpha, 48, np.random.default_rng(seed))
        assert edge_dist[y0 + side // 2, x0 + side // 2] <= 2.0


def test_every_sample_has_its_soft_pixels_unknown() -> None:
    fg, alpha = soft_foreground(2, (120, 160))
    bg = background(2, (100, 100))
    for seed in range(30):
        s = make_sample(fg, alpha, bg, np.random.default_rng(seed), SMALL)
        assert (s.trimap == 128).any()
        assert _soft(s.alpha).any()
        assert (s.trimap[_soft(s.alpha)] == 128).all()


# --------------------------------------------------------------- trimaps


def test_random_trimap_band_covers_soft_pixels_and_varies() -> None:
    _, alpha = soft_foreground(4, (120, 160))
    unknown_counts = set()
    for seed in range(12):
        trimap = random_trimap(alpha, np.random.default_rng(seed), max_kernel=8)
        assert set(np.unique(trimap)) <= {0, 128, 255}
        assert (trimap[_soft(alpha)] == 128).all()
        assert (alpha[trimap == 255] >= 1.0 - TINY).all()
        assert (alpha[trimap == 0] <= TINY).all()
        # the band reaches past the soft pixels into both sides
        assert ((trimap == 128) & (alpha == 0)).any() and ((trimap == 128) & (alpha == 1)).any()
        unknown_counts.add(int((trimap == 128).sum()))
    assert len(unknown_counts) >= 4


def test_random_trimap_band_stays_within_max_kernel() -> None:
    import cv2

    _, alpha = soft_foreground(4, (120, 160))
    not_bg = (alpha > TINY).astype(np.uint8)
    # distance of each pixel from the nearest not-background pixel
    dist = cv2.distanceTransform(1 - not_bg, cv2.DIST_L2, 5)
    for seed in range(10):
        trimap = random_trimap(alpha, np.random.default_rng(seed), max_kernel=3)
        assert dist[trimap == 128].max() <= 3.5


# --------------------------------------------------------------- sizes


@pytest.mark.parametrize("options", [SampleOptions(), SMALL], ids=["paper", "small"])
def test_sample_arrays_have_the_output_size(options) -> None:
    fg, alpha = soft_foreground(5, (400, 500))
    bg = background(5, (300, 350))
    s = make_sample(fg, alpha, bg, np.random.default_rng(0), options)
    n = options.size
    for name in ("image", "fg", "bg"):
        arr = getattr(s, name)
        assert arr.shape == (n, n, 3) and arr.dtype == np.float32, name
        assert arr.min() >= 0.0 and arr.max() <= 1.0, name
    assert s.alpha.shape == (n, n) and s.alpha.dtype == np.float32
    assert 0.0 <= s.alpha.min() and s.alpha.max() <= 1.0
    assert s.trimap.shape == (n, n) and s.trimap.dtype == np.uint8


def test_photo_smaller_than_the_crop_is_enlarged() -> None:
    fg, alpha = soft_foreground(6, (100, 150))  # smaller than every 320/480/640 crop
    bg = background(6, (60, 80))  # and a background smaller still
    for seed in range(4):
        s = make_sample(fg, alpha, bg, np.random.default_rng(seed))
        assert s.image.shape == (320, 320, 3) and s.alpha.shape == (320, 320)
        assert float((torch.from_numpy(s.image) - _torch_composite(s)).abs().max()) < 1e-6
        assert (s.trimap == 128).any()


# --------------------------------------------------------------- sources


def _names(data) -> list[str]:
    return [f.name for f in data.foregrounds]


def test_composition_1k_layout_finds_both_folders(tmp_path) -> None:
    root, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=3, other=1)
    data = find_training_data(root, bgs, per_foreground=2, cache=tmp_path / "cache")
    assert data.layout == "composition-1k"
    assert _names(data) == ["fg00", "fg01", "fg02"]
    folders = [f.image.parent.parent.name for f in data.foregrounds]
    assert folders == ["Adobe-licensed images", "Adobe-licensed images", "Other"]
    assert [p.name for p in data.backgrounds] == sorted(p.name for p in bgs.iterdir())
    fg, alpha, own = data.foregrounds[2].load()
    assert fg.shape == (96, 128, 3) and alpha.shape == (96, 128) and own is None


@pytest.mark.parametrize("other", [0, 2], ids=["no-Other", "no-Adobe"])
def test_composition_1k_with_one_folder(tmp_path, other) -> None:
    root, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=2, other=other)
    base = root / "Training_set"
    assert (base / "Other").is_dir() == (other > 0)
    assert (base / "Adobe-licensed images").is_dir() == (other < 2)
    data = find_training_data(root, bgs, per_foreground=2, cache=tmp_path / "cache")
    assert _names(data) == ["fg00", "fg01"]


def test_listed_foreground_missing_is_a_note(tmp_path) -> None:
    root, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=2)
    names = root / "Training_set" / "training_fg_names.txt"
    names.write_text(names.read_text() + "ghost.png\n")
    data = find_training_data(root, bgs, per_foreground=2, cache=tmp_path / "cache")
    assert _names(data) == ["fg00", "fg01"]
    assert any("ghost.png" in note for note in data.notes)


def test_composition_1k_needs_backgrounds(tmp_path) -> None:
    root, _ = make_composition_1k(tmp_path / "c1k", foregrounds=2)
    with pytest.raises(TrainingDataError, match="--backgrounds"):
        find_training_data(root, None, per_foreground=2, cache=tmp_path / "cache")


def test_bg_names_fix_each_foregrounds_backgrounds(tmp_path) -> None:
    n = 2
    root, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=3, backgrounds=4, bg_names=True,
                                    per_foreground=n)
    listed = (root / "Training_set" / "training_bg_names.txt").read_text().split()
    data = find_training_data(root, bgs, per_foreground=n, cache=tmp_path / "cache")
    for i, f in enumerate(data.foregrounds):
        assert f.backgrounds is not None
        assert [p.name for p in f.backgrounds] == listed[i * n:(i + 1) * n]
        assert all(p.parent == bgs for p in f.backgrounds)
    # the dataset composites composition k over exactly that background, every epoch, any seed
    for seed in (0, 1):
        dataset = CompositionDataset(data, per_foreground=n, seed=seed, options=SMALL)
        for k in range(len(dataset)):
            expected = read_image(bgs / listed[k])  # k = i * n + slot
            assert np.array_equal(dataset.background_for(k), expected)


def test_bg_names_missing_from_folder_fall_back_to_random(tmp_path) -> None:
    root, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=2, backgrounds=4, bg_names=True,
                                    per_foreground=2)
    (bgs / "bg001.jpg").unlink()
    data = find_training_data(root, bgs, per_foreground=2, cache=tmp_path / "cache")
    assert all(f.backgrounds is None for f in data.foregrounds)
    assert any("bg001.jpg" in note for note in data.notes)


def test_pair_folder_caches_estimated_layers(tmp_path, monkeypatch) -> None:
    import dim_studio.compose as compose

    calls = []
    real = compose.estimate_layers

    def counting(image, alpha, **kwargs):
        calls.append(image.shape)
        return real(image, alpha, **kwargs)

    monkeypatch.setattr(compose, "estimate_layers", counting)
    pairs = make_pair_folder(tmp_path / "pairs", count=2)
    cache = tmp_path / "cache"
    data = find_training_data(pairs, None, per_foreground=2, cache=cache)
    assert data.layout == "pairs"
    assert _names(data) == ["photo0", "photo1"]
    assert len(calls) == 2
    layers = [f.layers for f in data.foregrounds]
    assert all(p is not None and p.parent == cache and p.suffix == ".npy" and p.is_file() for p in layers)
    assert any("--backgrounds" in note or "own estimated background" in note for note in data.notes)
    stack = np.load(layers[0])
    assert stack.shape == (2, 96, 128, 3)
    # the layers recompose the photo where it matters (float16 storage, estimation error)
    fg, alpha, own_bg = data.foregrounds[0].load()
    photo = read_image(pairs / "photo0.png")
    recomposed = alpha[..., None] * fg + (1 - alpha[..., None]) * own_bg
    assert np.abs(recomposed - photo).mean() < 0.02

    mtimes = [p.stat().st_mtime_ns for p in layers]
    time.sleep(0.01)
    again = find_training_data(pairs, None, per_foreground=2, cache=cache)
    assert len(calls) == 2, "the cached layers must be reused, not estimated again"
    assert [f.layers for f in again.foregrounds] == layers
    assert [p.stat().st_mtime_ns for p in layers] == mtimes

    # an edited alpha gets new layers
    alpha_file = pairs / "photo1_alpha.png"
    _, a1 = soft_foreground(11, (96, 128))
    save_gray(alpha_file, np.clip(a1 * 0.9, 0, 1))
    third = find_training_data(pairs, None, per_foreground=2, cache=cache)
    assert len(calls) == 3
    assert third.foregrounds[1].layers != layers[1]
    assert third.foregrounds[0].layers == layers[0]


def test_pair_folder_with_backgrounds_draws_them(tmp_path) -> None:
    pairs = make_pair_folder(tmp_path / "pairs", count=2)
    _, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=1, backgrounds=3)
    data = find_training_data(pairs, bgs, per_foreground=4, cache=tmp_path / "cache")
    assert len(data.backgrounds) == 3
    dataset = CompositionDataset(data, per_foreground=4, seed=0, options=SMALL)
    options = {bgs / p.name: read_image(p) for p in data.backgrounds}
    for k in range(len(dataset)):
        bg = dataset.background_for(k)
        assert any(np.array_equal(bg, v) for v in options.values())


def test_pair_folder_with_separate_alphas(tmp_path) -> None:
    src = make_pair_folder(tmp_path / "src", count=2)
    photos, mattes = tmp_path / "photos", tmp_path / "mattes"
    photos.mkdir()
    mattes.mkdir()
    for i in range(2):
        (src / f"photo{i}.png").rename(photos / f"photo{i}.png")
        (src / f"photo{i}_alpha.png").rename(mattes / f"photo{i}.png")
    with pytest.raises(TrainingDataError):
        find_training_data(photos, None, per_foreground=2, cache=tmp_path / "cache")
    data = find_training_data(photos, None, per_foreground=2, cache=tmp_path / "cache", alphas=mattes)
    assert _names(data) == ["photo0", "photo1"]
    assert [f.alpha.parent for f in data.foregrounds] == [mattes, mattes]


def test_hard_list_restricts_foregrounds(tmp_path) -> None:
    root, bgs = make_composition_1k(tmp_path / "c1k", foregrounds=3)
    hard = tmp_path / "hard.txt"
    hard.write_text("# the hard ones\nfg01\nfg02.png\n")
    names = read_hard_list(hard)
    data = find_training_data(root, bgs, per_foreground=2, cache=tmp_path / "cache", hard=names)
    assert _names(data) == ["fg01", "fg02"]

    hard.write_text("fg01\nnobody.png\n")
    with pytest.raises(TrainingDataError, match="nobody.png"):
        find_training_data(root, bgs, per_foreground=2, cache=tmp_path / "cache",
                           hard=read_hard_list(hard))

    hard.write_text("# nothing\n\n")
    with pytest.raises(TrainingDataError):
        read_hard_list(hard)


def test_neither_layout_is_an_error(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(TrainingDataError, match="Composition-1k"):
        find_training_data(empty, None, per_foreground=2, cache=tmp_path / "cache")


# --------------------------------------------------------------- dataset, sampler, loader


@pytest.fixture(scope="module")
def c1k(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(root, backgrounds, cache) of 3 foregrounds x 4 compositions = 12."""
    root, bgs = make_composition_1k(tmp_path_factory.mktemp("data") / "c1k", foregrounds=3, backgrounds=4)
    return root, bgs, tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def c1k_data(c1k):
    root, bgs, cache = c1k
    return find_training_data(root, bgs, per_foreground=4, cache=cache)


def _batches(data, *, seed: int, epoch: int, workers: int, per_foreground: int = 4) -> list[dict]:
    dataset = CompositionDataset(data, per_foreground=per_foreground, seed=seed, options=SMALL)
    sampler = TrainSampler(dataset, seed=seed)
    sampler.set_epoch(epoch)
    loader = make_loader(dataset, sampler, batch_size=3, workers=workers, prefetch=2)
    out = list(loader)
    del loader
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


# The workers=2 loader runs in a fresh interpreter, under a timeout: a regression
# to forked workers can hang for good after OpenCV's threads have run, and
# that must fail the test, not stall the suite.
_WORKER_BATCHES = """
import sys, torch
from pathlib import Path
import cv2, numpy as np
from dim_studio.training.dataset import CompositionDataset, TrainSampler, make_loader
from dim_studio.training.samples import SampleOptions
from dim_studio.training.sources import find_training_data
root, bgs, cache, out = sys.argv[1:5]
data = find_training_data(root, bgs, per_foreground=4, cache=Path(cache))
dataset = CompositionDataset(data, per_foreground=4, seed=0,
                             options=SampleOptions(size=64, crop_sizes=(48, 64, 96), max_kernel=6))
sampler = TrainSampler(dataset, seed=0)
sampler.set_epoch(0)
loader = make_loader(dataset, sampler, batch_size=3, workers=2, prefetch=2)
# What the app, a notebook or this test suite has done before training in-process:
# OpenCV's thread pool has just run when the loader starts its workers.
cv2.resize(np.random.rand(1400, 1400, 3).astype(np.float32), (320, 320), interpolation=cv2.INTER_AREA)
batches = [dict(b) for b in loader]
torch.save(batches, out)
"""


def _worker_batches(c1k, out: Path, *, timeout: float) -> list[dict] | None:
    """Batches of seed 0, epoch 0 from 2 loader workers in a new process; None if it hung."""
    root, bgs, cache = c1k
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER_BATCHES, str(root), str(bgs), str(cache), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its loader workers
        proc.communicate()
        return None
    assert proc.returncode == 0, err
    return torch.load(out, weights_only=True)


def test_loader_batches_do_not_depend_on_workers(c1k, c1k_data, tmp_path) -> None:
    alone = _batches(c1k_data, seed=0, epoch=0, workers=0)
    assert len(alone) == 4  # 12 compositions in batches of 3
    assert set(alone[0]) >= {"input", "image", "fg", "bg", "alpha", "trimap", "fg_index"}
    assert alone[0]["input"].shape == (3, 4, 64, 64) and alone[0]["trimap"].dtype == torch.uint8
    with_workers = _worker_batches(c1k, tmp_path / "batches.pt", timeout=120)
    assert with_workers is not None, "the loader's worker processes hung"
    assert _same(alone, with_workers)
    assert _same(alone, _batches(c1k_data, seed=0, epoch=0, workers=0))
    assert not _same(alone, _batches(c1k_data, seed=1, epoch=0, workers=0))
    assert not _same(alone, _batches(c1k_data, seed=0, epoch=1, workers=0))


def test_same_composition_differs_between_draws(c1k_data) -> None:
    dataset = CompositionDataset(c1k_data, per_foreground=4, seed=0, options=SMALL)
    a, b, a2 = dataset[(5, 0)], dataset[(5, 17)], dataset[(5, 0)]
    assert all(torch.equal(a[k], a2[k]) for k in a)
    assert not torch.equal(a["alpha"], b["alpha"]) or not torch.equal(a["trimap"], b["trimap"])
    assert int(a["fg_index"]) == 1 == int(b["fg_index"])  # index 5 // 4 backgrounds


def test_sampler_ranks_share_the_epoch(c1k_data) -> None:
    dataset = CompositionDataset(c1k_data, per_foreground=4, seed=3, options=SMALL)
    for epoch in (0, 1):
        ranks = []
        for rank in (0, 1):
            s = TrainSampler(dataset, num_replicas=2, rank=rank, seed=3)
            s.set_epoch(epoch)
            ranks.append(list(s))
        indices = [[i for i, _ in r] for r in ranks]
        draws = [[d for _, d in r] for r in ranks]
        assert len(indices[0]) == len(indices[1]) == len(dataset) // 2
        assert not set(indices[0]) & set(indices[1])
        assert sorted(indices[0] + indices[1]) == list(range(len(dataset)))
        # every draw of the epoch has its own number (and so its own augmentation)
        assert sorted(draws[0] + draws[1]) == list(range(epoch * len(dataset), (epoch + 1) * len(dataset)))


def test_sampler_skip_drops_the_first_draws(c1k_data) -> None:
    dataset = CompositionDataset(c1k_data, per_foreground=4, seed=0, options=SMALL)
    sampler = TrainSampler(dataset, seed=0)
    sampler.set_epoch(2)
    full = list(sampler)
    assert len(full) == len(sampler) == 12
    for k in (0, 1, 5, 12, 20):
        sampler.set_skip(k)
        assert list(sampler) == full[k:]
        assert len(sampler) == max(0, 12 - k)


def test_weighted_sampling_favours_the_heavy_foreground(c1k_data) -> None:
    dataset = CompositionDataset(c1k_data, per_foreground=4, seed=0, options=SMALL)
    sampler = TrainSampler(dataset, seed=0)
    sampler.set_weights(torch.tensor([1.0, 1e-4, 1e-4]), draws=300)
    drawn = list(sampler)
    assert len(drawn) == len(sampler) == 300
    counts = Counter(dataset.foreground_of(i) for i, _ in drawn)
    assert counts[0] >= 290
    # each draw still has its own number
    assert len({d for _, d in drawn}) == 300
    # and the same for both ranks, split between them
    halves = []
    for rank in (0, 1):
        s = TrainSampler(dataset, num_replicas=2, rank=rank, seed=0)
        s.set_weights(torch.tensor([1e-4, 1e-4, 1.0]), draws=300)
        halves.append(list(s))
    assert len(halves[0]) == len(halves[1]) == 150
    assert Counter(dataset.foreground_of(i) for h in halves for i, _ in h)[2] >= 290
    # back to uniform: each composition once
    sampler.set_weights(None)
    assert sorted(i for i, _ in sampler) == list(range(12))


def test_loss_tracker_weights() -> None:
    tracker = LossTracker(4, decay=0.5, floor=0.1)
    assert torch.equal(tracker.weights(), torch.ones(4, dtype=torch.float64))
    tracker.update(torch.tensor([0, 1, 1]), torch.tensor([0.4, 0.2, 0.0]))
    # fg 0: 0.4; fg 1: 0.2 then 0.5 * 0.2 + 0.5 * 0.0 = 0.1; fg 2 and 3 unseen
    assert float(tracker.loss[0]) == pytest.approx(0.4)
    assert float(tracker.loss[1]) == pytest.approx(0.1)
    w = tracker.weights()
    assert float(w[2]) == float(w[3]) == pytest.approx(0.4)  # unseen weigh as the hardest seen
    assert float(w[0]) == pytest.approx(0.4) and float(w[1]) == pytest.approx(0.1)
    tracker.update(torch.tensor([1]), torch.tensor([0.0]))
    tracker.update(torch.tensor([1]), torch.tensor([0.0]))
    # fg 1: 0.1 -> 0.05 -> 0.025, below floor x mean = 0.1 x (3 x 0.4 + 0.025) / 4 = 0.030625
    w = tracker.weights()
    assert (w > 0).all()
    assert float(tracker.loss[1]) == pytest.approx(0.025)
    assert float(w[1]) == pytest.approx(0.030625)  # an easy foreground is rarer, never forgotten
    assert float(w[0]) == pytest.approx(0.4)

    zero = LossTracker(2)
    zero.update(torch.tensor([0, 1]), torch.tensor([0.0, 0.0]))
    assert (zero.weights() > 0).all()

    restored = LossTracker(4)
    restored.load_state_dict(tracker.state_dict())
    assert torch.equal(restored.weights(), tracker.weights())
