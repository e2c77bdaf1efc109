"""The on-the-fly composition dataset, its sampler and its DataLoader.

A dataset index ``k`` is one composition: foreground ``k // N`` over its
``k % N``-th background (N backgrounds per foreground, the paper's 100).
Every random choice of a sample (crop, flip, trimap) comes from a generator
seeded by the run's seed and the draw itself, never from a process's global
state, so the batches are the same with 0 or 8 worker processes, on one GPU
or many, and after a resume.

The sampler is torch's ``DistributedSampler`` (which shards the indices
between ranks), extended in two ways: it can skip the draws a resumed run
has already trained on, and in hard mode it can draw foregrounds in
proportion to their recent loss (``LossTracker``) instead of uniformly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..images import read_image
from ..net.model import DEFAULT_NORMALIZATION, normalize_input
from .samples import Sample, SampleOptions, make_sample
from .sources import TrainingData

__all__ = ["CompositionDataset", "LossTracker", "TrainSampler", "make_loader", "sample_tensors"]

# Salts that keep the background choice and the augmentations apart.
_BACKGROUND_SALT = 0x6267
_SAMPLE_SALT = 0x7361


class CompositionDataset(Dataset):
    """Composites of ``data``'s foregrounds over its backgrounds, drawn per index."""

    def __init__(
        self,
        data: TrainingData,
        *,
        per_foreground: int = 100,
        seed: int = 0,
        options: SampleOptions = SampleOptions(),
        normalization: Mapping[str, Any] | None = None,
    ) -> None:
        if per_foreground < 1:
            raise ValueError("per_foreground must be 1 or more")
        self.data = data
        self.per_foreground = int(per_foreground)
        self.seed = int(seed)
        self.options = options
        self.normalization = dict(normalization or DEFAULT_NORMALIZATION)

    def __len__(self) -> int:
        return len(self.data.foregrounds) * self.per_foreground

    def foreground_of(self, index: int) -> int:
        return index // self.per_foreground

    def background_for(self, index: int) -> np.ndarray | None:
        """The background of composition ``index``: the same one every epoch."""
        fg = self.data.foregrounds[self.foreground_of(index)]
        slot = index % self.per_foreground
        if fg.backgrounds is not None:
            return read_image(fg.backgrounds[slot])
        if not self.data.backgrounds:
            return None  # the photo's own estimated background
        rng = np.random.default_rng([self.seed, _BACKGROUND_SALT, index])
        return read_image(self.data.backgrounds[int(rng.integers(len(self.data.backgrounds)))])

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """``item`` is an index, or (index, draw) from the sampler: the draw seeds the augmentation."""
        index, draw = (item, 0) if isinstance(item, int) else (int(item[0]), int(item[1]))
        fg_index = self.foreground_of(index)
        fg, alpha, own_bg = self.data.foregrounds[fg_index].load()
        bg = self.background_for(index)
        if bg is None:
            bg = own_bg if own_bg is not None else fg
        rng = np.random.default_rng([self.seed, _SAMPLE_SALT, draw, index])
        sample = make_sample(fg, alpha, bg, rng, self.options)
        return {**sample_tensors(sample, self.normalization), "fg_index": torch.tensor(fg_index)}


def sample_tensors(sample: Sample, normalization: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A sample as the tensors a training step takes (channels first, no batch axis)."""
    def chw(arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    return {
        "input": normalize_input(sample.image, sample.trimap, normalization)[0],
        "image": chw(sample.image),
        "fg": chw(sample.fg),
        "bg": chw(sample.bg),
        "alpha": torch.from_numpy(sample.alpha)[None],
        "trimap": torch.from_numpy(sample.trimap)[None],
    }


class LossTracker:
    """Recent alpha loss of each foreground, for loss-proportional hard mode.

    Each foreground's loss is an exponential moving average of its samples'
    alpha losses. A foreground not seen yet weighs as much as the hardest
    seen, so every one is tried; every weight is at least ``floor`` times the
    mean, so an easy foreground is rarer but never forgotten.
    """

    def __init__(self, count: int, decay: float = 0.5, floor: float = 0.1) -> None:
        self.loss = torch.full((count,), float("nan"), dtype=torch.float64)
        self.decay = decay
        self.floor = floor

    def update(self, fg_index: torch.Tensor, losses: torch.Tensor) -> None:
        for i, value in zip(fg_index.tolist(), losses.detach().double().cpu().tolist()):
            old = float(self.loss[i])
            self.loss[i] = value if old != old else self.decay * old + (1 - self.decay) * value

    def weights(self) -> torch.Tensor:
        seen = ~torch.isnan(self.loss)
        if not bool(seen.any()):
            return torch.ones_like(self.loss)
        w = self.loss.clone()
        w[~seen] = float(w[seen].max())
        return w.clamp_min(self.floor * float(w.mean())).clamp_min(1e-12)

    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.loss.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        loss = state["loss"]
        if loss.shape == self.loss.shape:
            self.loss = loss.clone().to(torch.float64)


class TrainSampler(DistributedSampler):
    """DistributedSampler that yields (index, draw) pairs, can skip, and can weight foregrounds.

    ``draw`` numbers every draw of the run (epoch * total + position) and
    seeds that sample's augmentation.
    """

    def __init__(self, dataset: CompositionDataset, *, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=False)
        self.per_foreground = dataset.per_foreground
        self.skip = 0
        self.fg_weights: torch.Tensor | None = None
        self._uniform_sizes = (self.num_samples, self.total_size)

    def set_skip(self, count: int) -> None:
        """Skip this rank's first ``count`` draws of the epoch (already trained on)."""
        self.skip = max(0, int(count))

    def set_weights(self, weights: torch.Tensor | None, draws: int | None = None) -> None:
        """Per-foreground sampling weights (None: uniform, each index once per epoch).

        Weighted epochs are ``draws`` draws long (all ranks together), so the
        caller can refresh the weights as often as it likes.
        """
        self.fg_weights = None if weights is None else weights.detach().double().cpu()
        if self.fg_weights is None or draws is None:
            self.num_samples, self.total_size = self._uniform_sizes
        else:
            self.num_samples = -(-int(draws) // self.num_replicas)
            self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        if self.fg_weights is None:
            indices = list(super().__iter__())
        else:
            per_index = self.fg_weights.repeat_interleave(self.per_foreground)
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            drawn = torch.multinomial(per_index, self.total_size, replacement=True, generator=g).tolist()
            indices = drawn[self.rank:self.total_size:self.num_replicas]
        base = self.epoch * self.total_size
        for position in range(self.skip, len(indices)):
            yield indices[position], base + position * self.num_replicas + self.rank

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def _worker_init(_: int) -> None:
    import signal

    import cv2

    # Ctrl-C reaches the whole process group: the main process stops at the
    # next step and shuts the workers down; a worker dying first would turn
    # a clean stop into "DataLoader worker exited unexpectedly".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Worker processes share the machine's cores: one OpenCV/torch thread each.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(
    dataset: CompositionDataset,
    sampler: TrainSampler,
    *,
    batch_size: int,
    workers: int | None = None,
    prefetch: int = 4,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader with ``workers`` processes (default: the cores, up to 8) prefetching batches.

    Workers are spawned once and persist across epochs, and drop_last keeps
    every rank's batch the same size (DistributedDataParallel needs that).
    """
    if workers is None:
        workers = min(8, max(0, (os.cpu_count() or 1) - 1))
    kwargs: dict[str, Any] = {}
    if workers > 0:
        # Spawned, not forked: a fork of a process whose OpenCV or Qt threads
        # are running can deadlock in the child (the lock holders do not exist
        # there), and training runs inside the app and after other OpenCV work.
        kwargs = {"persistent_workers": True, "prefetch_factor": max(1, prefetch),
                  "worker_init_fn": _worker_init, "multiprocessing_context": "spawn"}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      drop_last=True, pin_memory=pin_memory, **kwargs)
