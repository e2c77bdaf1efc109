"""``dim-studio batch``: matte a folder of photos with their trimaps or masks."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..errors import DimStudioError
from .common import add_background_option, add_engine_options, engine_choice
from .matte import add_decontaminate_option

if TYPE_CHECKING:
    from .. import batch as batchlib
    from ..engines import Engine

# dim_studio.batch, the engines, the workflows and tqdm are imported when the
# command runs (or its help is shown), never at import: build_parser imports
# this module for every command line, and --help and --version must stay fast.

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

_EPILOG = """\
Pairing: each photo is matched with the file of the same name (any image
extension) in the trimaps/masks folder, optionally ending in
{trimap_suffixes} (trimaps) or
{mask_suffixes} (masks).
With --recursive, sub-folders are mirrored: the trimap of IMAGES/a/b/x.jpg is
looked up in TRIMAPS/a/b/ and its outputs go to OUT/a/b/.

Outputs: OUT/<sub-folder>/<stem>_alpha.png, <stem>_cutout.png (RGBA with
estimated foreground colours) and <stem>_composite.png (over --background).
A report of what was done, skipped and failed (with the reasons) is written to
OUT/{report_name}.

Resuming: files whose outputs already exist are skipped, so running the same
command again after an interruption continues where it stopped; --overwrite
redoes everything, --retry-failed redoes only the files that failed last time
(and those whose outputs were deleted since; a damaged report is set aside as
{report_name}.bad). Ctrl-C stops after the current file (press it
again to abandon that file too).

Inputs are never written: a run whose output would replace a photo, a trimap
or mask, or the --background image is refused before anything is written.

Exit status: 0 when every file succeeded or was skipped, 1 when any failed,
130 when interrupted.
"""


def epilog() -> str:
    """The end of ``batch --help``: how photos are paired and what is written."""
    from .. import batch as batchlib

    return _EPILOG.format(
        trimap_suffixes=", ".join(batchlib.TRIMAP_SUFFIXES),
        mask_suffixes=", ".join(batchlib.MASK_SUFFIXES),
        report_name=batchlib.REPORT_NAME,
    )


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Writes the epilog (which needs dim_studio.batch) only when the help is shown."""

    def add_text(self, text: str | None) -> None:
        super().add_text(epilog() if text is _EPILOG else text)


def create_engine(name: str, **options: Any) -> Engine:
    """``dim_studio.engines.create_engine``, imported when a batch starts."""
    from ..engines import create_engine as create

    return create(name, **options)


def _parse_outputs(text: str) -> tuple[str, ...]:
    from .. import batch as batchlib

    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in batchlib.OUTPUT_KINDS]
    if not kinds or bad:
        raise argparse.ArgumentTypeError(
            f"'{text}': choose one or more of {','.join(batchlib.OUTPUT_KINDS)} separated by commas"
        )
    return tuple(dict.fromkeys(kinds))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="matte every photo of a folder",
        description="Matte every photo in IMAGES_DIR with the trimap (or mask) of the same "
        "name and write alphas (and optionally cutouts and composites) to OUT_DIR.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    p.add_argument("images", metavar="IMAGES_DIR", help="folder of photos")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trimaps", metavar="DIR", help="folder of trimaps")
    source.add_argument("--masks", metavar="DIR",
                        help="folder of rough masks, turned into trimaps with an unknown band")
    p.add_argument("--band", type=int, default=10, metavar="PX",
                   help="with --masks: unknown band width in pixels on each side of the mask's "
                   "edge (default 10)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    add_engine_options(p)
    p.add_argument("--outputs", type=_parse_outputs, default=("alpha",), metavar="LIST",
                   help="what to write, comma-separated: alpha, cutout, composite (default: alpha)")
    add_background_option(p)
    add_decontaminate_option(p)
    p.add_argument("-r", "--recursive", action="store_true",
                   help="also process sub-folders, mirroring them in OUT_DIR")
    p.add_argument("--overwrite", action="store_true",
                   help="redo files whose outputs already exist (default: skip them)")
    p.add_argument("--retry-failed", action="store_true",
                   help="re-run only the files that failed in OUT_DIR's previous report")
    p.add_argument("--alpha-depth", type=int, choices=(8, 16), default=8,
                   help="bit depth of the written PNGs (default 8)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no summary (failures are still listed)")
    p.set_defaults(func=run)


class _Progress:
    """Turns batch events into a tqdm bar (current file, done/total, ETA) and messages."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, unit="file", file=sys.stderr, leave=False, dynamic_ncols=True,
            disable=quiet or not sys.stderr.isatty(),
            bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
        )
        self.current = ""
        self.started: set[str] = set()

    def message(self, text: str) -> None:
        # tqdm.write keeps the bar intact; it goes to stderr like the bar.
        self.bar.write(text, file=sys.stderr)

    def __call__(self, event: batchlib.BatchEvent) -> None:
        from ..batch import BatchEventKind

        kind = event.kind
        if kind == BatchEventKind.FILE_STARTED:
            self.current = event.name
            self.started.add(event.name)
            self.bar.set_description_str(f"{_short(event.name)} ", refresh=True)
        elif kind == BatchEventKind.FILE_FAILED:
            self.message(f"failed: {event.name}: {event.reason}")
            if event.name in self.started:
                self._advance(event)
        elif kind in (BatchEventKind.FILE_DONE, BatchEventKind.FILE_NOT_PROCESSED):
            self._advance(event)

    def _advance(self, event: batchlib.BatchEvent) -> None:
        # The bar counts the files this run works on (not the skipped ones).
        if not self.bar.disable:
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


class _CtrlC:
    """First Ctrl-C: finish the current file, then stop. Second: abandon it too."""

    def __init__(self, progress: _Progress) -> None:
        self.requested = threading.Event()
        self.progress = progress
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> "_CtrlC":
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handle)
                self.installed = True
            except (ValueError, OSError):
                self.installed = False
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()
        self.progress.message("stopping after the current file (Ctrl-C again to abandon it)")

    def __exit__(self, *exc: Any) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)


def run(args: argparse.Namespace) -> int:
    from ..workflows import batch as batch_workflow
    from ..workflows.jobs import JobContext

    from ..export import check_decontamination

    if args.band < 0:
        raise DimStudioError(f"--band must be 0 or more pixels, not {args.band}")
    strength = check_decontamination(args.decontaminate)
    if args.band != 10 and args.masks is None:
        print("dim-studio: note: --band only applies with --masks; ignored", file=sys.stderr)
    request = batch_workflow.BatchRequest(
        images_dir=args.images,
        partners_dir=args.trimaps if args.trimaps is not None else args.masks,
        use_masks=args.masks is not None,
        out_dir=args.output,
        outputs=args.outputs,
        band=args.band,
        background=args.background,
        depth=args.alpha_depth,
        recursive=args.recursive,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        decontaminate=strength,
    )
    # The GUI's plan and output-folder check: an unwritable folder fails before any matting.
    plan = batch_workflow.plan_request(request)
    for warning in plan.warnings:  # even with --quiet: the user should know what was set aside
        print(f"dim-studio: warning: {warning}", file=sys.stderr)
    # The engine is made here, after planning and before the Ctrl-C handler (not from the request).
    choice = engine_choice(args)
    engine = create_engine(choice.name, **choice.options)  # once, for every file

    progress = _Progress(len(plan.todo), args.quiet)
    ctx = JobContext.standalone(partial=progress)
    try:
        # stdout is for the summary: solver chatter (PyMatting prints warnings) goes to stderr.
        with _CtrlC(progress) as ctrl_c, contextlib.redirect_stdout(sys.stderr):
            report = batch_workflow.run_planned(ctx, request, plan, engine, stop=ctrl_c.requested.is_set)
    finally:
        progress.close()

    totals = report.totals()
    if not args.quiet:
        print(
            f"{totals['done']} done, {totals['skipped']} skipped, {totals['failed']} failed"
            + (f", {totals['not_processed']} not processed" if totals["not_processed"] else "")
            + f" ({report.engine}, {report.seconds:.1f} s); report: {report.path}"
        )
    if report.interrupted or report.cancelled:
        print(
            f"dim-studio: interrupted: {totals['not_processed']} file(s) not processed; "
            "run the same command again to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if report.failed:
        print(
            f"dim-studio: error: {len(report.failed)} of {totals['images']} file(s) failed; "
            f"see {report.path}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0
