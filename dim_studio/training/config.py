"""Training configuration: a TOML file, overridden by command-line options.

Every key of :class:`TrainConfig` may appear at the top level of the file or
in a ``[train]`` table; paths in the file are relative to the file's folder.
Unknown keys are refused (a typo must not silently train with a default).
``model/configs/stage{1,2,3}.toml`` are the paper's three stages.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import DimStudioError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "TrainConfig", "load_config"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("constant", "cosine")
_PATH_KEYS = ("data", "alphas", "backgrounds", "out", "val_images", "val_trimaps", "val_alphas", "hard_list")


class ConfigError(DimStudioError):
    """A training configuration value is missing or wrong; the message names it."""


@dataclass
class TrainConfig:
    """Everything a training run needs (defaults: the paper's where it says)."""

    # data
    data: str | None = None
    alphas: str | None = None  # a plain folder's alphas, when not beside the photos
    backgrounds: str | None = None
    backgrounds_per_fg: int = 100
    hard_list: str | None = None
    hard_weighting: bool = False  # sample foregrounds in proportion to their recent loss
    hard_refresh_steps: int = 200  # how often those proportions are brought up to date
    crop_sizes: list[int] = field(default_factory=lambda: [320, 480, 640])
    size: int = 320
    max_trimap_kernel: int = 20
    # model
    stage: int = 1
    init: str = "none"  # a weights file, a VGG-16 checkpoint to import, or "none" (He init)
    conv6: str = "1x1"
    width: float = 1.0
    # optimisation
    steps: int = 1000
    batch_size: int = 4
    lr: float = 1e-5
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    seed: int = 0
    precision: str = "auto"
    channels_last: bool = True
    # run
    out: str | None = None
    device: str | None = None
    workers: int | None = None
    prefetch: int = 4
    log_every: int = 10
    save_every: int = 500
    validate_every: int = 0  # 0: only at the end (when validation folders are given)
    val_images: str | None = None
    val_trimaps: str | None = None
    val_alphas: str | None = None
    val_limit: int | None = None

    def check(self) -> TrainConfig:
        """Raise ConfigError naming the first value that cannot work."""
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"{key} must be {what}, not {getattr(self, key)!r}")

        for key in ("steps", "batch_size", "backgrounds_per_fg", "size", "max_trimap_kernel",
                    "log_every", "save_every", "hard_refresh_steps"):
            need(_is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "a whole number from 1")
        for key in ("warmup_steps", "validate_every", "prefetch", "seed"):
            need(_is_int(getattr(self, key)) and getattr(self, key) >= 0, key, "a whole number from 0")
        for key in ("workers", "val_limit"):
            value = getattr(self, key)
            need(value is None or (_is_int(value) and value >= 0), key, "a whole number from 0")
        need(self.stage in (1, 2, 3), "stage", "1, 2 or 3")
        need(self.size % 32 == 0, "size", "a multiple of 32")
        need(isinstance(self.crop_sizes, list) and bool(self.crop_sizes)
             and all(_is_int(c) and c >= 32 for c in self.crop_sizes), "crop_sizes",
             "a list of sizes of 32 pixels or more")
        need(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr < 1, "lr",
             "a number between 0 and 1")
        need(self.precision in PRECISIONS, "precision", " / ".join(PRECISIONS))
        need(self.lr_schedule in SCHEDULES, "lr_schedule", " / ".join(SCHEDULES))
        need(self.conv6 in ("1x1", "7x7"), "conv6", '"1x1" or "7x7"')
        need(isinstance(self.width, (int, float)) and 0 < self.width <= 2, "width", "a number above 0, at most 2")
        if self.data is None:
            raise ConfigError("no training data: give --data (a Composition-1k root or a folder of "
                              "photo/alpha pairs) or data = \"...\" in the config")
        if self.stage == 2 and self.init == "none":
            raise ConfigError("stage 2 trains the refinement stage on a trained encoder-decoder: give "
                              "--init with stage 1's weights (e.g. runs/stage1/best.safetensors)")
        if self.out is None:
            raise ConfigError("no output folder: give --out DIR or out = \"...\" in the config")
        val = [self.val_images, self.val_trimaps, self.val_alphas]
        if any(v is not None for v in val) and not all(v is not None for v in val):
            raise ConfigError("validation needs all three folders: --val-images, --val-trimaps and --val-alphas")
        return self

    @property
    def validates(self) -> bool:
        return self.val_images is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def absolute(self) -> TrainConfig:
        """A copy with every path absolute, so a run resumes from any working folder."""
        values = {k: os.path.abspath(os.path.expanduser(v)) for k in _PATH_KEYS
                  if isinstance(v := getattr(self, k), str)}
        if self.init != "none":
            values["init"] = os.path.abspath(os.path.expanduser(self.init))
        return dataclasses.replace(self, **values)

    def updated(self, values: Mapping[str, Any]) -> TrainConfig:
        """A copy with ``values`` (None values are ignored: not given)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; the settings are: {', '.join(sorted(known))}")
        given = {k: v for k, v in values.items() if v is not None}
        return dataclasses.replace(self, **given)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_config(path: str | os.PathLike[str], base: TrainConfig | None = None) -> TrainConfig:
    """Read a TOML config (keys at the top or in ``[train]``) over ``base``."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    values = dict(raw.get("train", {})) if isinstance(raw.get("train"), dict) else {}
    values.update({k: v for k, v in raw.items() if k != "train"})
    for key in _PATH_KEYS:
        if isinstance(values.get(key), str):
            values[key] = str((path.parent / os.path.expanduser(values[key])))
    if isinstance(values.get("init"), str) and values["init"] != "none":
        values["init"] = str(path.parent / os.path.expanduser(values["init"]))
    try:
        return (base or TrainConfig()).updated(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
