#!/usr/bin/env python3
"""Live-preview latency: from the end of a stroke to the updated preview on screen.

Everything real: the main window (offscreen Qt), mouse strokes on the
canvas, the 150 ms debounce, the matting worker thread, and the preview pane.
Each stroke paints a short dab across the unknown band's inner edge
(alternately foreground and unknown, so every stroke changes pixels);
the clock starts at the mouse release and stops when the window has shown a
final preview whose trimap is the trimap after that stroke.

    .venv/bin/python bench/preview_latency.py
    .venv/bin/python bench/preview_latency.py --engines closed-form dim --strokes 7 \\
        --photo /work/shared/data/alphamatting_training_lowres/input_training_lowres/GT01.png \\
        --trimap /work/shared/data/alphamatting_training_lowres/trimap_training_lowres/Trimap1/GT01.png

``dim`` runs with randomly initialised weights (timing only: the numbers
are the network's cost, not its quality), on the best device found.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "resources/samples/lemur.png", ROOT / "resources/samples/lemur_trimap.png")
ALPHAMATTING = Path("/work/shared/data/alphamatting_training_lowres")
ERRORS: list[str] = []  # what would have been error dialogs
DEFAULT_EXTRA = (
    ALPHAMATTING / "input_training_lowres/GT01.png",
    ALPHAMATTING / "trimap_training_lowres/Trimap1/GT01.png",
)


@dataclass
class Row:
    photo: str
    size: str
    engine: str
    resolution: str
    work: str
    latencies_ms: list[float]
    compute_s: list[float]
    device: str


def _use_random_dim_weights() -> str | None:
    """Make the ``dim`` engine use random weights; None when the network is unavailable."""
    try:
        from dim_studio import engines
        from dim_studio.engines.dim import DIMEngine
        from dim_studio.net.model import build_dim
    except ImportError as exc:
        return f"dim skipped: the network package cannot be imported ({exc})"
    model = build_dim()

    def factory(**options: object) -> DIMEngine:
        options.pop("weights", None)
        return DIMEngine(model=model, **options)  # type: ignore[arg-type]

    engines._FACTORIES["dim"] = factory
    return None


def _stroke_sites(trimap, count: int, seed: int = 0):
    """Unknown pixels right next to the foreground: where a retoucher fixes the edge."""
    import cv2
    import numpy as np

    from dim_studio.trimap import FOREGROUND, UNKNOWN

    not_fg = (trimap != FOREGROUND).astype(np.uint8)
    dist = cv2.distanceTransform(not_fg, cv2.DIST_L2, 3)
    ys, xs = np.nonzero((trimap == UNKNOWN) & (dist > 2) & (dist < 8))
    if ys.size == 0:
        ys, xs = np.nonzero(trimap == UNKNOWN)
    rng = np.random.default_rng(seed)
    picks = rng.choice(ys.size, size=min(count, ys.size), replace=False)
    return [(float(xs[i]) + 0.5, float(ys[i]) + 0.5) for i in picks]


def _wait(app, condition, timeout: float) -> bool:
    from PySide6.QtCore import QEventLoop

    deadline = time.perf_counter() + timeout
    while not condition():
        if ERRORS:
            raise SystemExit("error dialog: " + "; ".join(ERRORS))
        if time.perf_counter() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 5)
    return True


def measure(app, photo: Path, trimap: Path, engine: str, resolution: str, strokes: int, timeout: float) -> Row:
    import numpy as np
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from dim_studio.gui.main_window import MainWindow
    from dim_studio.trimap import FOREGROUND, UNKNOWN

    window = MainWindow(probe=False, engine=engine)
    window.resize(1400, 850)
    window.show()
    window.ui.resolution_actions[resolution].trigger()
    shown: list[tuple[float, object]] = []
    window.previewUpdated.connect(lambda r: shown.append((time.perf_counter(), r)))
    if not window.open_image(str(photo), str(trimap)):
        raise SystemExit(f"cannot open {photo}")
    doc = window.canvas.document

    def current_shown() -> bool:
        return bool(shown) and shown[-1][1].final and np.array_equal(shown[-1][1].trimap, doc.trimap)

    # Warm-up: the first preview also creates the engine (loads the network).
    if not _wait(app, current_shown, timeout):
        raise SystemExit(f"{engine}: no first preview within {timeout} s")
    canvas = window.canvas
    canvas.zoom_fit()
    canvas.set_brush_size(6)
    vp = canvas.viewport()
    latencies, computes = [], []
    last = shown[-1][1]
    for i, (x, y) in enumerate(_stroke_sites(doc.copy_trimap(), strokes)):
        canvas.set_label(FOREGROUND if i % 2 == 0 else UNKNOWN)
        points = [canvas.map_from_image(QPointF(x + dx, y)).toPoint() for dx in (-4, 0, 4)]
        before = doc.copy_trimap()
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
        for p in points[1:]:
            QTest.mouseMove(vp, p)
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])
        end_of_stroke = time.perf_counter()
        if np.array_equal(doc.trimap, before):
            continue  # the dab changed nothing (already that label): no preview to wait for
        shown.clear()
        if not _wait(app, current_shown, timeout):
            raise SystemExit(f"{engine}: no preview within {timeout} s of a stroke")
        t, last = shown[-1]
        latencies.append((t - end_of_stroke) * 1000.0)
        computes.append(last.seconds)
    h, w = last.work_size
    work = f"{w}x{h}" + (f" (x{last.scale:.2f})" if last.scale < 1 else "")
    image = window.image
    row = Row(photo.name, f"{image.shape[1]}x{image.shape[0]}", engine, resolution, work,
              latencies, computes, last.device_label)
    window.close()  # discards the strokes (and their autosave) without asking
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["closed-form", "dim"])
    parser.add_argument("--photo", type=Path, action="append", help="photo (repeat with --trimap)")
    parser.add_argument("--trimap", type=Path, action="append", help="its trimap")
    parser.add_argument("--resolutions", nargs="+", default=["auto"], help="auto, full, 1/2, 1/4")
    parser.add_argument("--strokes", type=int, default=7, help="strokes per case (median reported)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one preview")
    args = parser.parse_args(argv)
    if args.photo:
        if not args.trimap or len(args.trimap) != len(args.photo):
            parser.error("give one --trimap per --photo")
        cases = list(zip(args.photo, args.trimap))
    else:
        cases = [SAMPLE] + ([DEFAULT_EXTRA] if DEFAULT_EXTRA[0].is_file() else [])

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.mkdtemp(prefix="dim-studio-bench-")
    os.environ["DIM_STUDIO_CONFIG_DIR"] = os.path.join(scratch, "config")
    os.environ["DIM_STUDIO_DATA_DIR"] = os.path.join(scratch, "data")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["dim-studio-bench"])
    from dim_studio.gui import dialogs

    # A modal dialog would stall an unattended run: collect the error, stop waiting.
    dialogs.show_error = lambda parent, title, message: ERRORS.append(f"{title}: {message}")  # type: ignore[assignment]
    # The benchmark's strokes are throw-away: never ask about them.
    dialogs.ask_unsaved_changes = lambda parent, what: dialogs.DISCARD  # type: ignore[assignment]
    dialogs.ask_restore_autosave = lambda parent, name, age: False  # type: ignore[assignment]
    engines = list(args.engines)
    if "dim" in engines:
        note = _use_random_dim_weights()
        if note:
            print(note)
            engines.remove("dim")

    rows: list[Row] = []
    for photo, trimap in cases:
        for engine in engines:
            for resolution in args.resolutions:
                rows.append(measure(app, photo, trimap, engine, resolution, args.strokes, args.timeout))
                r = rows[-1]
                print(f"  {r.photo} {r.engine} {r.resolution}: "
                      + ", ".join(f"{v:.0f}" for v in r.latencies_ms) + " ms", flush=True)

    header = ("photo", "size", "engine", "preview res", "solved region", "device",
              "stroke->preview median ms", "min", "max", "compute median s")
    table = [header]
    for r in rows:
        lat = r.latencies_ms or [float("nan")]
        table.append((r.photo, r.size, r.engine, r.resolution, r.work, r.device,
                      f"{statistics.median(lat):.0f}", f"{min(lat):.0f}", f"{max(lat):.0f}",
                      f"{statistics.median(r.compute_s or [float('nan')]):.2f}"))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    print()
    for n, row in enumerate(table):
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    print(f"\n{args.strokes} strokes per case; latency includes the 150 ms debounce.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
