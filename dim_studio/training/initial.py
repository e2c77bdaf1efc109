"""The network a training run starts from (``--init``).

- ``none``: He-initialised weights (normal, fan-in, zero biases) from the
  run's seed. He rather than the network's default Xavier init: through the
  20-odd ReLU layers Xavier's activations fade towards zero.
- A DIM Studio weights file: an earlier stage's output, a fine-tune, an
  imported checkpoint.
- Anything ``dim-studio weights import`` reads (torchvision's VGG-16, the
  seed's ``vgg16_weights.npz``, an OpenMMLab checkpoint): imported first into
  ``OUT/init.safetensors``, the encoder from VGG-16 and the rest fresh.

Stage 1 saves no refinement stage unless the starting weights had a trained
one (a refiner nobody trained would spoil every alpha the app makes with the
file); stages 2 and 3 add a fresh refiner when the weights have none.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..net.importers import import_weights, sha256_file
from ..net.model import DEFAULT_NORMALIZATION, DIMConfig, DIMNet, build_dim, random_dim
from ..net.weights import WeightsInfo, load_weights, read_weights_info
from .checkpoints import RUN_RECORD
from .config import ConfigError, TrainConfig
from .distributed import Dist

__all__ = ["initial_model"]

INIT_FILE = "init.safetensors"


def _he_model(config: DIMConfig, seed: int) -> DIMNet:
    return random_dim(config, seed=seed).train()


def _load(path: Path) -> tuple[DIMNet, WeightsInfo]:
    model, info = load_weights(path)
    return model.train(), info


def _from_file(cfg: TrainConfig, out: Path, dist: Dist) -> tuple[DIMNet, WeightsInfo, list[str]]:
    path = Path(cfg.init)
    if not path.is_file():
        raise ConfigError(f"--init {path}: no such file (give a weights file, a VGG-16 checkpoint or none)")
    try:
        read_weights_info(path)
    except WeightsError:
        if path.suffix.lower() == ".safetensors":
            raise
        # A checkpoint to import: the main process converts it, the others wait for the file.
        target = out / INIT_FILE
        if dist.main:
            import_weights(path, target, config=DIMConfig(conv6=cfg.conv6, refine=cfg.stage != 1))
        dist.barrier()
        model, info = _load(target)
        return model, info, [f"imported {path.name} into {target}"]
    model, info = _load(path)
    return model, info, []


def _trained_refiner(info: WeightsInfo) -> bool:
    return int(info.provenance.get("stage") or 0) >= 2 or info.provenance.get("kind") == "finetune"


def _fit_stage(model: DIMNet, info: WeightsInfo | None, stage: int, seed: int) -> tuple[DIMNet, list[str]]:
    config = model.config
    if stage in (2, 3) and model.refine is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fitted = DIMNet(dataclasses.replace(config, refine=True))
        fitted.load_state_dict(model.state_dict(), strict=False)
        return fitted.train(), ["the starting weights have no refinement stage: a fresh one is added"]
    if stage == 1 and model.refine is not None and (info is None or not _trained_refiner(info)):
        kept = {k: v for k, v in model.state_dict().items() if not k.startswith("refine.")}
        fitted = build_dim(dataclasses.replace(config, refine=False), kept)
        return fitted.train(), ["stage 1 leaves out the untrained refinement stage of the starting weights"]
    return model, []


def _record(path: Path, info: WeightsInfo) -> dict[str, Any]:
    return {"file": path.name, "sha256": sha256_file(path), "kind": info.provenance.get("kind", "unknown"),
            "stage": info.provenance.get("stage")}


def initial_model(
    cfg: TrainConfig, out: Path, dist: Dist, resume_from: Path | None = None
) -> tuple[DIMNet, dict[str, Any], dict[str, Any], list[str]]:
    """(model in train mode on the CPU, normalisation, a record of the start, notes)."""
    if resume_from is not None:
        model, info = _load(resume_from)
        try:
            record = json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))["init"]
        except (OSError, ValueError, KeyError):
            record = {"file": "unknown"}
        return model, dict(info.normalization), record, [f"resuming from {resume_from}"]
    if cfg.init == "none":
        config = DIMConfig(conv6=cfg.conv6, refine=cfg.stage != 1, width=cfg.width)  # type: ignore[arg-type]
        model = _he_model(config, cfg.seed)
        record = {"file": "none", "method": f"He-normal (fan-in) weights, zero biases, seed {cfg.seed}"}
        return model, dict(DEFAULT_NORMALIZATION), record, [
            "starting from He-initialised weights (no --init): expect a long training"
        ]
    model, info, notes = _from_file(cfg, out, dist)
    start = info.path or Path(cfg.init)
    wanted = DIMConfig(conv6=cfg.conv6, refine=model.config.refine, width=cfg.width)  # type: ignore[arg-type]
    if (model.config.conv6, model.config.width) != (wanted.conv6, wanted.width):
        notes.append(f"the starting weights are {model.config.describe()}; that architecture is kept")
    model, fit_notes = _fit_stage(model, info, cfg.stage, cfg.seed)
    return model, dict(info.normalization), _record(Path(start), info), notes + fit_notes
