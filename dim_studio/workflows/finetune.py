"""The one-photo fine-tune job (``dim-studio finetune``; the GUI's dialog will call it too).

Reads the photo, its correct alpha and optionally the user's trimap (sizes
checked from the headers first), refuses an output that is one of the
inputs, runs ``training.finetune.finetune`` with the job's cancel flag and
progress, and measures closed-form's SAD on the same photo and trimap so the
result can be put beside a method that needs no training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import check_outputs
from ..images import check_size, image_size, read_alpha, read_image, read_trimap
from .jobs import JobContext

__all__ = ["FinetuneRequest", "FinetuneOutcome", "run_finetune"]


@dataclass(frozen=True)
class FinetuneRequest:
    image: str
    alpha: str
    out: str
    trimap: str | None = None
    weights: str | None = None
    steps: int | None = None
    minutes: float | None = None
    lr: float | None = None
    backgrounds: str | None = None
    device: str | None = None
    seed: int = 0
    compare_closed_form: bool = True
    options: Any = None  # a training.finetune.FinetuneOptions overriding the fields above (tests)


@dataclass(frozen=True)
class FinetuneOutcome:
    result: Any  # training.finetune.FinetuneResult
    closed_form_sad: float | None


def run_finetune(ctx: JobContext, request: FinetuneRequest) -> FinetuneOutcome:
    """Fine-tune on one photo as ``request`` says; progress through ``ctx.partial``."""
    import dataclasses

    from ..training.finetune import FinetuneOptions, evaluation_trimap, finetune
    from ..net.importers import sha256_file
    from ..training.sources import find_backgrounds

    check_outputs({"the output": request.out},
                  {"the photo": request.image, "the alpha": request.alpha,
                   "the trimap": request.trimap, "the starting weights": request.weights})
    shape = image_size(request.image)
    check_size(request.alpha, shape, "alpha")
    if request.trimap is not None:
        check_size(request.trimap, shape, "trimap")
    image = read_image(request.image)
    alpha = read_alpha(request.alpha, shape, what="alpha")
    trimap = read_trimap(request.trimap, shape) if request.trimap is not None else None
    backgrounds = find_backgrounds(request.backgrounds) if request.backgrounds else []
    options = request.options or FinetuneOptions()
    options = dataclasses.replace(
        options, steps=request.steps if request.steps is not None else options.steps,
        minutes=request.minutes if request.minutes is not None else options.minutes,
        lr=request.lr if request.lr is not None else options.lr,
        device=request.device or options.device, seed=request.seed,
    )

    def report(update: Any) -> None:
        ctx.partial(update)
        if update.total:
            ctx.progress(min(1.0, update.step / update.total))

    result = finetune(
        image, alpha, request.out, trimap=trimap,
        base=request.weights, backgrounds=backgrounds, options=options,
        image_name=Path(request.image).name, image_sha256=sha256_file(request.image),
        progress=report, cancel=ctx.cancelled,
    )
    closed_form = None
    if request.compare_closed_form:
        from ..engines import create_engine
        from ..metrics import sad

        tri = evaluation_trimap(alpha, trimap)
        closed_form = float(sad(create_engine("closed-form").estimate(image, tri), alpha, tri))
    return FinetuneOutcome(result, closed_form)
