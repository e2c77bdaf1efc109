"""Evaluate engines on a benchmark folder with the standard matting metrics.

The library behind ``dim-studio eval`` and ``bench/quality.py``: photos,
trimaps and ground-truth alphas are paired by stem like a batch
(``pairing.find_pairs``), every engine mattes every photo, and SAD, MSE,
Gradient and Connectivity (``metrics.evaluate``, over the trimap's unknown
region) are recorded with the engine's time in seconds.

A photo that cannot be evaluated (unreadable, over the image-size limit, a
trimap or ground truth of another size, an engine failing on it) is listed in
``EvalResults.failed`` with the reason, and the run goes on with the others;
its rows are left out for every engine, so the means of all engines cover the
same photos.

An engine that cannot run at all (``create_engines``: no weights, out of
memory, a DimStudioError or MemoryError while it is created, or while it
mattes the warm-up image) is listed in ``EvalResults.not_run`` with the
reason, shown as a row of the table, and the others are evaluated.

Units (``metrics``; the alphamatting.com / Deep Image Matting conventions):
SAD, Gradient and Connectivity are sums over the trimap's unknown pixels
divided by 1000, MSE is the mean squared alpha error there (alpha in 0-1,
not scaled), time is the engine's seconds per photo.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .engines.base import Engine, check_cancel
from .errors import Cancelled, DimStudioError
from .atomic import atomic_output
from .images import check_size, image_size, read_alpha, read_image, read_trimap
from .metrics import evaluate
from .pairing import ALPHA_SUFFIXES, TRIMAP_SUFFIXES, find_pairs

__all__ = [
    "METRICS", "UNITS", "EvalPair", "EvalResults", "EvalRow", "cannot_run_reason", "create_engines",
    "evaluate_folder", "find_eval_pairs",
]

METRICS = ("SAD", "MSE", "Gradient", "Connectivity")
#: What each column's number is (see the module's docstring), for the table's second header line.
UNITS = {"SAD": "sum/1000", "MSE": "mean", "Gradient": "sum/1000", "Connectivity": "sum/1000", "time": "s"}
MEAN = "mean"
NOT_RUN = "not run"


@dataclass(frozen=True)
class EvalPair:
    name: str  # the photo's path relative to the images folder
    image: Path
    trimap: Path
    alpha: Path


@dataclass(frozen=True)
class EvalRow:
    """The errors of one engine on one photo (``image`` is "mean" for a mean row)."""

    engine: str
    image: str
    SAD: float
    MSE: float
    Gradient: float
    Connectivity: float
    seconds: float

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass
class EvalResults:
    """Per-image rows for each engine; means, a text table, CSV and JSON."""

    engines: list[str]
    images: list[str] = field(default_factory=list)
    rows: list[EvalRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (photo, why): not paired
    failed: list[tuple[str, str]] = field(default_factory=list)  # (photo, why): not evaluated
    not_run: list[tuple[str, str]] = field(default_factory=list)  # (engine, why): could not run at all

    def rows_for(self, engine: str) -> list[EvalRow]:
        return [r for r in self.rows if r.engine == engine]

    def mean(self, engine: str) -> EvalRow:
        rows = self.rows_for(engine)
        n = len(rows)
        if n == 0:
            return EvalRow(engine, MEAN, *([float("nan")] * (len(METRICS) + 1)))
        values = {m: sum(r.metric(m) for r in rows) / n for m in METRICS}
        return EvalRow(engine, MEAN, seconds=sum(r.seconds for r in rows) / n, **values)

    def means(self) -> dict[str, EvalRow]:
        return {engine: self.mean(engine) for engine in self.engines}

    def table_rows(self) -> list[EvalRow]:
        """Per-image rows of each engine followed by that engine's mean row."""
        out: list[EvalRow] = []
        for engine in self.engines:
            out.extend(self.rows_for(engine))
            out.append(self.mean(engine))
        return out

    def format_table(self) -> str:
        """The table: two header lines (names, then units), then each engine's rows and mean.

        An engine that could not run has one row: "not run" and the reason.
        """
        header = ("engine", "image", *METRICS, "time")
        units = ("", "", *(f"({UNITS[m]})" for m in METRICS), f"({UNITS['time']})")
        body = []
        for r in self.table_rows():
            body.append((
                r.engine, r.image, f"{r.SAD:.3f}", f"{r.MSE:.5f}", f"{r.Gradient:.3f}",
                f"{r.Connectivity:.3f}", f"{r.seconds:.2f}",
            ))
        widths = [max(len(h), len(u), *(len(row[i]) for row in body)) if body else max(len(h), len(u))
                  for i, (h, u) in enumerate(zip(header, units))]
        for engine, _ in self.not_run:
            widths[0] = max(widths[0], len(engine))
        if self.not_run:
            widths[1] = max(widths[1], len(NOT_RUN))

        def line(cells: tuple[str, ...]) -> str:
            parts = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
            parts += [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]
            return "  ".join(parts).rstrip()

        lines = [line(header), line(units), line(tuple("-" * w for w in widths))]
        previous = None
        for row in body:
            if previous is not None and row[0] != previous:
                lines.append("")
            lines.append(line(row))
            previous = row[0]
        for engine, why in self.not_run:
            if previous is not None:
                lines.append("")
            lines.append(f"{engine.ljust(widths[0])}  {NOT_RUN.ljust(widths[1])}  {_first_sentence(why)}")
            previous = engine
        return "\n".join(lines)

    def to_csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["engine", "image", *METRICS, "seconds"])
        for r in self.table_rows():
            writer.writerow([r.engine, r.image, *(repr(r.metric(m)) for m in METRICS), repr(r.seconds)])
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": list(METRICS),
            "engines": list(self.engines),
            "images": list(self.images),
            "results": [asdict(r) for r in self.rows],
            "means": {engine: asdict(row) for engine, row in self.means().items()},
            "skipped": [{"image": name, "reason": why} for name, why in self.skipped],
            "failed": [{"image": name, "reason": why} for name, why in self.failed],
            "not_run": [{"engine": name, "reason": why} for name, why in self.not_run],
        }

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        return _write_text(path, self.to_csv_text())

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        return _write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def _write_text(path: str | os.PathLike[str], text: str) -> Path:
    from .errors import ImageWriteError

    target = Path(path)
    try:
        with atomic_output(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ImageWriteError(f"{target}: cannot write ({exc.strerror or exc})") from None
    return target


def _first_sentence(text: str) -> str:
    """A reason short enough for a table cell: its first line, up to the first full stop."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    sentence, dot, rest = first.partition(". ")
    return sentence if dot and rest else first


def cannot_run_reason(exc: BaseException) -> str | None:
    """Why an engine cannot run, when ``exc`` means that (None for a bug, which should propagate).

    DimStudioError (no weights, a broken weights file, no such device) and
    running out of memory (MemoryError, or a library's "out of memory").
    """
    if isinstance(exc, Cancelled):
        return None
    text = str(exc).strip()
    if isinstance(exc, DimStudioError):
        return text or type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return "out of memory" + (f" ({text.splitlines()[0]})" if text else "")
    return None


def create_engines(
    factories: Mapping[str, Callable[[], Engine]],
) -> tuple[dict[str, Engine], list[tuple[str, str]]]:
    """Create each engine; those that cannot be created are returned as (name, reason) instead.

    ``factories`` maps a display name to a function that creates the engine.
    Whatever ``cannot_run_reason`` explains (no weights, out of memory...)
    makes a reason; anything else is a bug and propagates.
    """
    engines: dict[str, Engine] = {}
    not_run: list[tuple[str, str]] = []
    for name, make in factories.items():
        try:
            engines[name] = make()
        except Exception as exc:  # noqa: BLE001 - sorted by cannot_run_reason below
            why = cannot_run_reason(exc)
            if why is None:
                raise
            not_run.append((name, why))
    return engines, not_run


def _warm_up(engine: Engine) -> str | None:
    """Matte a 48x48 synthetic disc once; the reason when the engine cannot run at all.

    A DimStudioError or running out of memory on this tiny image means the
    engine will not matte any photo; any other failure is left for the real
    run, which reports it per photo.
    """
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    alpha = np.clip(12.0 - np.hypot(xx - 23.5, yy - 23.5), 0.0, 1.0)
    image = np.empty((48, 48, 3), np.float32)
    image[..., 0] = 0.2 + 0.7 * alpha
    image[..., 1] = 0.5 + 0.1 * np.sin(xx / 3.0)
    image[..., 2] = 0.6 - 0.4 * alpha
    trimap = np.where(alpha > 0.5, 255, 0).astype(np.uint8)
    trimap[np.abs(np.hypot(xx - 23.5, yy - 23.5) - 12.0) <= 3.0] = 128
    try:
        engine.estimate(image, trimap)
    except Exception as exc:  # noqa: BLE001 - the real photos will report anything else properly
        return cannot_run_reason(exc)
    return None


def find_eval_pairs(
    images: str | os.PathLike[str],
    trimaps: str | os.PathLike[str],
    alphas: str | os.PathLike[str],
    *,
    recursive: bool = False,
) -> tuple[list[EvalPair], list[tuple[str, str]]]:
    """Photos with both a trimap and a ground-truth alpha; and the rest with why."""
    with_trimaps, _ = find_pairs(images, trimaps, TRIMAP_SUFFIXES, recursive=recursive,
                                 what="trimaps")
    with_alphas, _ = find_pairs(images, alphas, ALPHA_SUFFIXES, recursive=recursive,
                                what="alphas")
    alpha_of = {p.rel: p.partner for p in with_alphas}
    pairs: list[EvalPair] = []
    skipped: list[tuple[str, str]] = []
    for p in with_trimaps:
        alpha = alpha_of.get(p.rel)
        if p.partner is None:
            skipped.append((p.rel, f"no trimap for it in {trimaps}"))
        elif alpha is None:
            skipped.append((p.rel, f"no ground-truth alpha for it in {alphas}"))
        else:
            pairs.append(EvalPair(p.rel, p.image, p.partner, alpha))
    return pairs, skipped


def evaluate_folder(
    images: str | os.PathLike[str],
    trimaps: str | os.PathLike[str],
    alphas: str | os.PathLike[str],
    engines: Mapping[str, Engine],
    on_result: Optional[Callable[[EvalRow], None]] = None,
    *,
    limit: int | None = None,
    recursive: bool = False,
    cancel: Optional[Callable[[], bool]] = None,
    warmup: bool = True,
    not_run: Optional[list[tuple[str, str]]] = None,
) -> EvalResults:
    """Run every engine on every photo with a trimap and ground truth.

    ``engines`` maps a display name to an engine (created once by the caller,
    e.g. with ``create_engines``); ``not_run`` lists the engines that could
    not be created, as (name, reason), for the results and the table. An
    engine whose warm-up shows it cannot run joins them; when no engine is
    left, no photo is read and the results have no rows.
    ``on_result(row)`` is called after each engine/photo, for progress (a
    photo on which a later engine fails is then left out of the results);
    ``limit`` keeps the first N photos (natural order). A photo that cannot be
    evaluated goes to ``failed`` with the reason and the others go on.
    Ground-truth alphas stored as grey RGB are fine (``images.read_alpha``);
    every size is checked from the file headers before decoding. The time is
    the engine's ``estimate`` only; with ``warmup`` each engine first mattes a
    tiny synthetic image so that one-off costs (JIT compilation, loading
    kernels) do not count against the first photo.
    """
    if not engines and not not_run:
        raise DimStudioError("no engine to evaluate")
    if limit is not None and limit < 1:
        raise DimStudioError(f"--limit must be 1 or more, not {limit}")
    pairs, skipped = find_eval_pairs(images, trimaps, alphas, recursive=recursive)
    if not pairs:
        raise DimStudioError(
            f"no photo in {images} has both a trimap in {trimaps} and a ground-truth alpha in {alphas}"
        )
    if limit is not None:
        pairs = pairs[:limit]
    runnable = dict(engines)
    results = EvalResults(engines=[], skipped=skipped, not_run=list(not_run or []))
    if warmup:
        for name, engine in engines.items():
            why = _warm_up(engine)
            if why is not None:
                del runnable[name]
                results.not_run.append((name, why))
    results.engines = list(runnable)
    if not runnable:
        return results
    for pair in pairs:
        check_cancel(cancel)
        try:
            rows = _evaluate_pair(pair, runnable, on_result, cancel)
        except _PairFailed as exc:
            results.failed.append((pair.name, str(exc)))
            continue
        results.images.append(pair.name)
        results.rows.extend(rows)
    return results


class _PairFailed(Exception):
    """One photo could not be evaluated; the message says why."""


def _read_pair(pair: EvalPair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photo, trimap and ground truth; every size is checked from the headers first."""
    shape = image_size(pair.image)
    check_size(pair.trimap, shape, "trimap")
    check_size(pair.alpha, shape, "ground-truth alpha")
    image = read_image(pair.image)
    trimap = read_trimap(pair.trimap, shape)
    gt = read_alpha(pair.alpha, shape, what="ground-truth alpha")
    return image, trimap, gt


def _evaluate_pair(
    pair: EvalPair,
    engines: Mapping[str, Engine],
    on_result: Optional[Callable[[EvalRow], None]],
    cancel: Optional[Callable[[], bool]],
) -> list[EvalRow]:
    try:
        image, trimap, gt = _read_pair(pair)
    except DimStudioError as exc:  # the messages name the file
        raise _PairFailed(str(exc)) from None
    rows = []
    for name, engine in engines.items():
        start = time.perf_counter()
        try:
            pred = engine.estimate(image, trimap, cancel=cancel)
        except Cancelled:
            raise
        except DimStudioError as exc:
            raise _PairFailed(f"{name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - out of memory, a solver failing: this photo only
            raise _PairFailed(f"{name} failed: {str(exc) or type(exc).__name__}") from None
        seconds = time.perf_counter() - start
        errors = evaluate(pred, gt, trimap)
        row = EvalRow(name, pair.name, seconds=seconds, **{m: float(errors[m]) for m in METRICS})
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
