"""``dim-studio train``: train the DIM network (one of the paper's three stages).

Argument parsing and printing only; the job is ``workflows.training``. Runs
alone or under torchrun (``torchrun --nproc_per_node N -m dim_studio train
...``), where only rank 0 prints.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .progress import StepBar
from .common import positive_number, whole_number

EXIT_INTERRUPTED = 130


# (option, config key, type, metavar, help)
_OPTIONS: tuple[tuple[str, str, Any, str, str], ...] = (
    ("--data", "data", str, "ROOT", "a Composition-1k root (holding Training_set/) or a folder of photo/alpha pairs"),
    ("--alphas", "alphas", str, "DIR", "the alphas of a folder of photos, when they are not beside the photos"),
    ("--backgrounds", "backgrounds", str, "DIR", "folder of background photos (MS COCO in the paper)"),
    ("--out", "out", str, "DIR", "output folder: checkpoints, log, validation results"),
    ("--steps", "steps", whole_number(1), "N", "train until step N (counted from the run's start; default 1000)"),
    ("--stage", "stage", int, "1|2|3", "1: encoder-decoder; 2: refinement alone; 3: both (default 1)"),
    ("--init", "init", str, "SOURCE", "weights to start from: a weights file, a VGG-16 checkpoint "
     "(torchvision .pth or the seed's vgg16_weights.npz), or none for He-initialised weights"),
    ("--batch-size", "batch_size", whole_number(1), "N", "samples per step and process (default 4)"),
    ("--lr", "lr", positive_number, "LR", "Adam learning rate (default 1e-5, the paper's)"),
    ("--precision", "precision", str, "P", "auto (default), fp32, bf16 or fp16"),
    ("--device", "device", str, "DEVICE", "auto (default), cuda, mps or cpu"),
    ("--workers", "workers", whole_number(0), "N", "data loader processes (default: the cores, up to 8)"),
    ("--seed", "seed", whole_number(0), "N", "seed of every random choice (default 0)"),
    ("--backgrounds-per-fg", "backgrounds_per_fg", whole_number(1), "N",
     "compositions per foreground (the paper's 100)"),
    ("--hard-list", "hard_list", str, "FILE", "train only on the foregrounds named in FILE (hard mode)"),
    ("--val-images", "val_images", str, "DIR", "validation photos (as dim-studio eval --images)"),
    ("--val-trimaps", "val_trimaps", str, "DIR", "validation trimaps"),
    ("--val-alphas", "val_alphas", str, "DIR", "validation ground-truth alphas"),
    ("--validate-every", "validate_every", whole_number(0), "N", "validate every N steps (and at the end)"),
    ("--val-limit", "val_limit", whole_number(1), "N", "validate on the first N photos only"),
    ("--save-every", "save_every", whole_number(1), "N", "write a resumable checkpoint every N steps (default 500)"),
    ("--log-every", "log_every", whole_number(1), "N", "log the loss every N steps (default 10)"),
    ("--width", "width", positive_number, "W", "channel multiplier of a fresh network (default 1)"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the DIM network on composited data (the paper's three stages)",
        description="Train Deep Image Matting the paper's way: foregrounds composited over "
        "backgrounds on the fly (crop, resize, then composite), the alpha and compositional "
        "losses over the unknown pixels, Adam at 1e-5. Options override --config. Ctrl-C "
        "stops at the next step and writes a checkpoint that --resume continues. Under torchrun "
        "(torchrun --nproc_per_node N -m dim_studio train ...) every process trains a share of "
        "each step.",
    )
    p.add_argument("--config", metavar="FILE.toml", help="settings file (see model/configs/)")
    for flag, key, kind, metavar, text in _OPTIONS:
        p.add_argument(flag, dest=f"opt_{key}", type=kind, metavar=metavar, help=text)
    p.add_argument("--hard-weighting", dest="opt_hard_weighting", action="store_const", const=True,
                   help="draw foregrounds in proportion to their recent loss")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {key[4:]: value for key, value in vars(args).items()
            if key.startswith("opt_") and value is not None}


def _postfix(update: Any) -> dict[str, str]:
    shown = {"loss": f"{update.loss:.4f}"} if update.loss is not None else {}
    if update.images_per_s:
        shown["img/s"] = f"{update.images_per_s:.1f}"
    return shown


def run(args: argparse.Namespace) -> int:
    from ..workflows.jobs import JobContext
    from ..workflows.training import TrainRequest, run_training

    request = TrainRequest(args.config, _overrides(args), args.resume)
    bar = StepBar(not args.quiet, _postfix)
    try:
        result = run_training(JobContext.standalone(partial=bar), request)
    finally:
        bar.close()
    if not _is_main():  # under torchrun only rank 0 reports
        return EXIT_INTERRUPTED if result.interrupted else 0
    for note in result.notes:
        print(f"dim-studio: note: {note}", file=sys.stderr)
    loss = ("" if result.final_loss is None or result.first_loss is None
            else f", loss {result.first_loss:.4f} -> {result.final_loss:.4f}")
    print(f"stage {result.stage}: {result.steps} steps in {result.seconds:.0f} s on {result.device} "
          f"({result.precision}, {result.world_size} process{'es' if result.world_size > 1 else ''}){loss}")
    if result.best_metrics:
        m = result.best_metrics
        print("best validation: " + ", ".join(f"{k} {m[k]:.4g}" for k in ("SAD", "MSE", "Gradient", "Connectivity")))
        print(f"wrote {result.best}")
    print(f"wrote {result.last}")
    if result.interrupted:
        print(f"dim-studio: interrupted at step {result.steps}; continue with: dim-studio train --resume "
              f"--out {result.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
