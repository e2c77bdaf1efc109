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

__all__ = ["FinetuneOutcome", "FinetuneRequest", "FinetuneStage", "PhotoFinetuneRequest", "run_finetune",
           "run_finetune_on_photo"]


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

    from ..training.finetune import FinetuneOptions
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

    return _tune(ctx, image, alpha, trimap, request.out, weights=request.weights, options=options,
                 image_path=request.image, backgrounds=backgrounds,
                 compare_closed_form=request.compare_closed_form)


@dataclass(frozen=True)
class PhotoFinetuneRequest:
    """The app's fine-tune: the open photo (an array), its trimap, and the target alpha.

    The target is a ground-truth file (``alpha_path``) or, without one, the
    current result: ``engine`` mattes the photo with ``trimap`` at full
    resolution, as an export would.
    """

    image: Any                     # float32 (H, W, 3)
    image_path: str                # its file: the name and sha256 go into the provenance
    out: str
    alpha_path: str | None = None
    trimap: Any = None             # a TrimapSnapshot or an array, or None
    engine: Any = None             # an EngineChoice, for the current result
    weights: str | None = None
    steps: int | None = None
    minutes: float | None = None
    options: Any = None            # a FinetuneOptions (tests: small samples)
    compare_closed_form: bool = True


@dataclass(frozen=True)
class FinetuneStage:
    """A ``partial`` payload before training starts (reading the target, computing the current result)."""

    message: str


def run_finetune_on_photo(ctx: JobContext, request: PhotoFinetuneRequest) -> FinetuneOutcome:
    """Fine-tune on the app's open photo; progress through ``ctx.partial`` (FinetuneStage, FinetuneProgress)."""
    import dataclasses

    from ..engines.base import check_cancel, scaled_progress
    from ..errors import DimStudioError
    from ..training.finetune import FinetuneOptions
    from ..trimap_mirror import as_trimap

    image = request.image
    shape = image.shape[:2]
    trimap = as_trimap(request.trimap) if request.trimap is not None else None
    if request.alpha_path is not None:
        ctx.partial(FinetuneStage(f"reading {Path(request.alpha_path).name}"))
        check_size(request.alpha_path, shape, "alpha")
        alpha = read_alpha(request.alpha_path, shape, what="alpha")
    else:
        if trimap is None or request.engine is None:
            raise DimStudioError("the current result needs the photo's trimap and an engine")
        ctx.partial(FinetuneStage("computing the current result at full resolution"))
        engine = ctx.engines.get(request.engine.name, request.engine.options)
        alpha = engine.estimate(image, trimap, progress=scaled_progress(ctx.progress, 0.0, 0.05),
                                cancel=ctx.cancelled)
        check_cancel(ctx.cancelled)
    Path(request.out).parent.mkdir(parents=True, exist_ok=True)
    options = dataclasses.replace(
        request.options or FinetuneOptions(),
        steps=request.steps if request.minutes is None else None, minutes=request.minutes,
    )
    # Closed-form's SAD against its own result would be 0: compare only against another target.
    own_result = request.alpha_path is None and getattr(request.engine, "name", None) == "closed-form"
    return _tune(ctx, image, alpha, trimap, request.out, weights=request.weights, options=options,
                 image_path=request.image_path, backgrounds=[],
                 compare_closed_form=request.compare_closed_form and not own_result)


def _tune(ctx: JobContext, image: Any, alpha: Any, trimap: Any, out: str, *, weights: str | None,
          options: Any, image_path: str, backgrounds: list[Path],
          compare_closed_form: bool) -> FinetuneOutcome:
    """Train, then measure closed-form on the same photo and trimap for comparison."""
    from ..net.importers import sha256_file
    from ..training.finetune import evaluation_trimap, finetune

    def report(update: Any) -> None:
        ctx.partial(update)
        if update.total:
            ctx.progress(min(1.0, update.step / update.total))

    result = finetune(
        image, alpha, out, trimap=trimap, base=weights, backgrounds=backgrounds, options=options,
        image_name=Path(image_path).name, image_sha256=sha256_file(image_path),
        progress=report, cancel=ctx.cancelled,
    )
    closed_form = None
    if compare_closed_form:
        from ..engines import create_engine
        from ..metrics import sad

        tri = evaluation_trimap(alpha, trimap)
        closed_form = float(sad(create_engine("closed-form").estimate(image, tri), alpha, tri))
    return FinetuneOutcome(result, closed_form)
