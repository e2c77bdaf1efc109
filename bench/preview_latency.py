#!/usr/bin/env python3
"""Live-preview latency and GUI-thread blocking: from a stroke to the updated preview on screen.

Everything real: the main window (offscreen Qt, shown, so it paints), mouse
strokes on the canvas, the 150 ms debounce, the preview lane's thread, and
the preview pane. Each stroke paints a short dab across the unknown band's
inner edge (alternately foreground and unknown, so every stroke changes
pixels), with the event loop running between the mouse events as it does
under a real hand.

Two numbers per stroke:

- **latency**: from the mouse release to the moment the window has shown a
  final preview whose trimap is the trimap after that stroke;
- **longest GUI-thread block**: a 1 ms heartbeat timer ticks on the GUI
  thread; the longest gap between two ticks, from just before the mouse
  press until the final preview has been painted on screen and the autosave
  (1 s after the edit) has fired, is the longest time the window could not
  react. It includes the stroke's handlers, the debounced request, showing
  the result, every repaint, and any wait for the GIL held by a background
  thread. Target: under 50 ms.

Cases (``--cases``, comma-separated; default ``small,24mp``):

- ``small``: the bundled lemur and, when present, alphamatting GT01 (or the
  ``--photo/--trimap`` pairs given), with every ``--engines`` and
  ``--resolutions``, preview mode ``--modes`` (default alpha), ``--strokes``
  strokes;
- ``24mp``: a synthetic 6000x4000 photo (smooth gradients, an elliptical
  subject with a soft, wavy edge) and a trimap with a 40 px unknown band,
  closed-form, preview resolution auto, preview modes alpha and "Cutout on
  colour" (``--big-modes``), ``--big-strokes`` (3) strokes. The pair is
  generated once into ``--synthetic-dir``.

    .venv/bin/python bench/preview_latency.py
    .venv/bin/python bench/preview_latency.py --cases 24mp --breakdown
    .venv/bin/python bench/preview_latency.py --cases small --engines closed-form dim --strokes 7 \\
        --photo /work/shared/data/alphamatting_training_lowres/input_training_lowres/GT01.png \\
        --trimap /work/shared/data/alphamatting_training_lowres/trimap_training_lowres/Trimap1/GT01.png

``--breakdown`` times the GUI-thread suspects (handlers, repaints, trimap
copies, the quick-start hint, garbage collection) and prints, per row, the
slowest calls and what ran inside the longest block. ``--profile`` adds a
cProfile of the GUI thread during the strokes.

``dim`` runs with randomly initialised weights (timing only: the numbers
are the network's cost, not its quality), on the best device found.
Numbers on a shared machine are noisy: anything else running (tests, builds)
lengthens both the latencies and the blocks.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "dim_studio/resources/samples/lemur.png", ROOT / "dim_studio/resources/samples/lemur_trimap.png")
ALPHAMATTING = Path("/work/shared/data/alphamatting_training_lowres")
ERRORS: list[str] = []  # what would have been error dialogs
DEFAULT_EXTRA = (
    ALPHAMATTING / "input_training_lowres/GT01.png",
    ALPHAMATTING / "trimap_training_lowres/Trimap1/GT01.png",
)
CASES = ("small", "24mp")
BIG_SIZE = (6000, 4000)  # width, height: 24 MP
BIG_BAND = 40  # px, width of the unknown band of the synthetic trimap
TARGET_BLOCK_MS = 50.0
MOVE_INTERVAL_S = 0.016  # between mouse events of a stroke: about one event per frame
SETTLE_S = 0.03  # after the last awaited event, so the tick that ends a block is seen


# --------------------------------------------------------------------------
# GUI-thread instrumentation
# --------------------------------------------------------------------------


class Heartbeat:
    """A 1 ms timer on the GUI thread; while armed, remembers the longest gap between its ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.armed = False
        self.last = 0.0
        self.max_gap = 0.0
        self.max_span = (0.0, 0.0)
        self.ticks = 0

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def arm(self) -> None:
        """Start a new measurement window."""
        self.max_gap = 0.0
        self.max_span = (0.0, 0.0)
        self.ticks = 0
        self.last = time.perf_counter()
        self.armed = True

    def disarm(self) -> None:
        self._tick()  # a block still open now ends here
        self.armed = False

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.armed:
            gap = now - self.last
            self.ticks += 1
            if gap > self.max_gap:
                self.max_gap = gap
                self.max_span = (self.last, now)
        self.last = now


class Marks:
    """Timestamps of what happened: on the GUI thread (press, request, shown, paint...), and in
    the preview lane ("lane: ..."; a block with only those marks is likely a wait for the GIL)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str]] = []
        self.on = False

    def add(self, label: str) -> None:
        if self.on:
            self.items.append((time.perf_counter(), label))

    def within(self, span: tuple[float, float]) -> list[str]:
        t0, t1 = span
        out: list[str] = []
        for t, label in self.items:
            if t0 <= t <= t1 and label not in out:
                out.append(label)
        return out


class Calls:
    """``--breakdown``: durations of the wrapped GUI-thread suspects while armed."""

    def __init__(self) -> None:
        self.on = False
        self.spans: list[tuple[str, float, float, int]] = []  # name, start, end, depth
        self.depth = 0
        self.main = threading.main_thread()

    def wrap(self, owner: Any, attr: str, name: str | None = None,
             detail: Callable[[Any], str] | None = None) -> None:
        """Time ``owner.attr``; ``detail(self)`` adds which instance (e.g. which view painted)."""
        original = getattr(owner, attr)
        label = name or f"{getattr(owner, '__name__', owner)}.{attr}"
        calls = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not calls.on or threading.current_thread() is not calls.main:
                return original(*args, **kwargs)
            calls.depth += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                calls.depth -= 1
                what = label if detail is None else f"{label} [{detail(args[0])}]"
                calls.spans.append((what, start, time.perf_counter(), calls.depth))

        setattr(owner, attr, timed)

    def gc_callback(self, phase: str, info: dict[str, int]) -> None:
        if not self.on or threading.current_thread() is not self.main:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif hasattr(self, "_gc_start"):
            self.spans.append((f"gc (generation {info.get('generation')})", self._gc_start,
                               time.perf_counter(), self.depth))


class Watchdog:
    """``--breakdown``: a thread that, when the heartbeat has been silent for a while, notes
    every thread's stack, and how late its own 2 ms naps ended (late = the GIL was held,
    or the whole process was stalled)."""

    def __init__(self, heartbeat: "Heartbeat", threshold: float = 0.03) -> None:
        self.heartbeat = heartbeat
        self.threshold = threshold
        self.samples: list[tuple[float, float, float, dict[str, list[str]]]] = []  # t, silent, nap late, stacks
        self.late: list[tuple[float, float]] = []  # (end, lateness) of naps over the threshold
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def _loop(self) -> None:
        import traceback

        sampled_block = -1.0
        while not self._stop.is_set():
            before = time.perf_counter()
            time.sleep(0.002)
            now = time.perf_counter()
            late = now - before - 0.002
            hb = self.heartbeat
            if not hb.armed:
                continue
            if late > self.threshold:
                self.late.append((now, late))
            silent = now - hb.last
            if silent > self.threshold and hb.last != sampled_block:
                sampled_block = hb.last
                names = {t.ident: t.name for t in threading.enumerate()}
                stacks = {}
                for ident, frame in sys._current_frames().items():
                    if ident == threading.get_ident():
                        continue
                    lines = [f"{Path(f.filename).name}:{f.lineno} {f.name}"
                             for f in traceback.extract_stack(frame)[-7:]]
                    stacks[names.get(ident, str(ident))] = lines
                self.samples.append((now, silent, late, stacks))


def _install_breakdown(calls: Calls) -> None:
    """Wrap the suspects, before any window exists (Qt binds slots and virtuals on creation)."""
    from PySide6.QtWidgets import QGraphicsView

    from dim_studio.gui import canvas, image_view, main_window, preview, window_ui
    from dim_studio import trimap_doc

    mw, ctl, pane = main_window.MainWindow, preview.PreviewController, preview.PreviewPane
    for name in ("_on_trimap_edited", "_update_hint", "_update_title", "_make_preview_request",
                 "_on_preview_shown", "_autosave_now", "is_modified"):
        calls.wrap(mw, name)
    calls.wrap(main_window, "quick_start_hint")
    for name in ("request_now", "schedule", "interrupt", "stroke_finished", "_on_result", "_on_progress"):
        calls.wrap(ctl, name)
    for name in ("show_result", "set_busy"):
        calls.wrap(pane, name)
    calls.wrap(window_ui.WindowUi, "show_preview_status")
    calls.wrap(window_ui.WindowUi, "set_hint")
    calls.wrap(window_ui.WindowUi, "update_history_actions")
    view_class = lambda view: type(view).__name__  # noqa: E731
    for name in ("set_image", "_set_scene_size", "drawBackground"):
        calls.wrap(image_view.ImageView, name, detail=view_class)
    calls.wrap(image_view, "numpy_to_qimage")
    calls.wrap(image_view.ImageItem, "set_qimage")
    def item_owner(item: Any) -> str:
        views = item.scene().views() if item.scene() is not None else []
        view = type(views[0]).__name__ if views else "?"
        return f"{view} {'overlay' if item.zValue() >= 1 else 'picture'}"

    calls.wrap(image_view.ImageItem, "paint", detail=item_owner)
    tc = canvas.TrimapCanvas
    for name in ("mousePressEvent", "mouseMoveEvent", "mouseReleaseEvent", "_refresh_overlay",
                 "_on_document_changed", "drawForeground"):
        calls.wrap(tc, name)
    calls.wrap(preview.PreviewImageView, "drawForeground")
    doc = trimap_doc.TrimapDocument
    for name in ("copy_trimap", "begin_stroke", "paint_segment", "end_stroke"):
        calls.wrap(doc, name)

    def paint_event(self: Any, event: Any) -> None:
        QGraphicsView.paintEvent(self, event)

    image_view.ImageView.paintEvent = paint_event  # type: ignore[method-assign]
    calls.wrap(image_view.ImageView, "paintEvent", "ImageView.paintEvent (viewport repaint)",
               detail=lambda view: type(view).__name__)
    gc.callbacks.append(calls.gc_callback)


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------


@dataclass
class Case:
    photo: Path
    trimap: Path
    engines: list[str]
    resolutions: list[str]
    modes: list[str]
    strokes: int
    name: str = ""


def make_synthetic(folder: Path, size: tuple[int, int] = BIG_SIZE, band: int = BIG_BAND) -> tuple[Path, Path]:
    """A 24 MP photo (gradients, an elliptical subject with a soft wavy edge) and its trimap."""
    import cv2
    import numpy as np

    from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

    w, h = size
    photo, trimap = folder / f"synthetic_{w}x{h}.png", folder / f"synthetic_{w}x{h}_trimap.png"
    if photo.is_file() and trimap.is_file():
        return photo, trimap
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating the {w}x{h} synthetic photo and trimap in {folder} ...", flush=True)
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    cx, cy, a, b = 0.5 * w, 0.55 * h, 0.30 * w, 0.38 * h
    px = (np.arange(w, dtype=np.float32)[None, :] - cx) / a
    py = (np.arange(h, dtype=np.float32)[:, None] - cy) / b
    r = np.sqrt(px * px + py * py)
    theta = np.arctan2(py, px)
    # Signed distance (px, approximately) to a wavy ellipse; 6 px soft transition.
    d = (r - 1.0 - 0.004 * np.sin(37.0 * theta)) * min(a, b)
    del r, theta
    alpha = np.clip(0.5 - d / 6.0, 0.0, 1.0)
    del d
    rng = np.random.default_rng(0)
    out = np.empty((h, w, 3), np.uint8)
    two_pi = np.float32(2 * np.pi)
    bg = (
        0.25 + 0.5 * x + 0.08 * np.sin(two_pi * (3 * x + 2 * y)),
        0.35 + 0.3 * y + 0.05 * np.cos(two_pi * 5 * x),
        0.75 - 0.4 * x * y,
    )
    texture = 0.05 * np.sin(two_pi * 40 * x) * np.sin(two_pi * 30 * y)
    fg = (0.85 - 0.2 * y + texture, 0.55 + 0.2 * x - texture, 0.3 + 0.1 * x * y + texture)
    for c in range(3):
        channel = alpha * fg[c] + (1.0 - alpha) * bg[c]
        channel += rng.normal(0.0, 0.01, size=(h, w)).astype(np.float32)
        out[..., c] = np.clip(channel * 255.0 + 0.5, 0, 255).astype(np.uint8)
    mask = (alpha >= 0.5).astype(np.uint8)
    del alpha
    dist_in = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    dist_out = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 3)
    tri = np.full((h, w), BACKGROUND, np.uint8)
    half = band / 2.0
    tri[(mask == 1) & (dist_in > half)] = FOREGROUND
    tri[((mask == 1) & (dist_in <= half)) | ((mask == 0) & (dist_out <= half))] = UNKNOWN
    fast = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if not cv2.imwrite(str(photo), np.ascontiguousarray(out[..., ::-1]), fast):
        raise SystemExit(f"cannot write {photo}")
    if not cv2.imwrite(str(trimap), tri, fast):
        raise SystemExit(f"cannot write {trimap}")
    return photo, trimap


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


# --------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------


def _pump(app) -> None:
    """Run the event loop once (the 1 ms heartbeat makes this return within a few ms)."""
    from PySide6.QtCore import QEventLoop

    if ERRORS:
        raise SystemExit("error dialog: " + "; ".join(ERRORS))
    app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)


def _wait(app, condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        _pump(app)
    return True


def _spin(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        _pump(app)


@dataclass
class Row:
    photo: str
    size: str
    engine: str
    resolution: str
    mode: str
    work: str
    latencies_ms: list[float]
    compute_s: list[float]
    device: str
    blocks_ms: list[float] = field(default_factory=list)  # per stroke: the longest GUI-thread block
    worst_during: str = ""
    breakdown: list[str] = field(default_factory=list)


def measure(app, photo: Path, trimap: Path, engine: str, resolution: str, mode: str, strokes: int,
            timeout: float, calls: Calls | None, profile: bool) -> Row:
    import numpy as np
    from PySide6.QtCore import QEvent, QObject, QPointF, Qt
    from PySide6.QtTest import QTest

    from dim_studio.gui.main_window import MainWindow
    from dim_studio.trimap import FOREGROUND, UNKNOWN

    heartbeat = Heartbeat()
    heartbeat.start()
    marks = Marks()
    window = MainWindow(probe=False, engine=engine)
    window.resize(1400, 850)
    window.show()
    _spin(app, 0.2)  # shown, laid out and exposed: painting happens from here on
    window.ui.resolution_actions[resolution].trigger()
    window.preview_pane.set_mode(mode)
    if window.preview_pane.mode != mode:
        raise SystemExit(f"unknown preview mode {mode!r}")

    shown: list[tuple[float, int, Any]] = []

    def on_shown(request_id: int, result: Any) -> None:
        shown.append((time.perf_counter(), request_id, result))
        marks.add("preview shown (final)" if result.final else "preview shown (alpha only)")

    window.preview.shown.connect(on_shown)
    changed: list[bool] = []
    window.canvas.strokeFinished.connect(changed.append)
    window.canvas.trimapEdited.connect(lambda _box: marks.add("trimapEdited handlers"))
    window.preview.timer.timeout.connect(lambda: marks.add("debounced preview request"))
    window.autosave_timer.timeout.connect(lambda: marks.add("autosave snapshot"))
    # Emitted in the lane's thread (direct connections): when the background job did what.
    direct = Qt.ConnectionType.DirectConnection
    lane = window.preview_lane
    lane.started.connect(lambda _rid: marks.add("lane: job started"), direct)
    lane.partial.connect(lambda _rid, _r: marks.add("lane: alpha-only result sent"), direct)
    lane.finished.connect(lambda _rid, _r: marks.add("lane: final result sent"), direct)

    preview_viewport = window.preview_pane.view.viewport()
    canvas_viewport = window.canvas.viewport()
    paints: list[float] = []

    class PaintSpy(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
            if event.type() == QEvent.Type.Paint:
                if watched is preview_viewport:
                    paints.append(time.perf_counter())
                    marks.add("preview repaint")
                elif watched is canvas_viewport:
                    marks.add("canvas repaint")
            return False

    spy = PaintSpy()
    preview_viewport.installEventFilter(spy)
    canvas_viewport.installEventFilter(spy)

    if not window.open_image(str(photo), str(trimap)):
        raise SystemExit(f"cannot open {photo}")
    doc = window.canvas.document
    controller = window.preview

    def newest_final_shown(after_id: int | None) -> bool:
        if not shown or controller.timer.isActive():
            return False
        _, request_id, result = shown[-1]
        return result.final and request_id == controller.latest_id and request_id != after_id

    # Warm-up: the first preview also creates the engine (loads the network).
    if not _wait(app, lambda: newest_final_shown(None), timeout):
        raise SystemExit(f"{engine}: no first preview within {timeout} s")
    _spin(app, 1.2)  # let the opening's repaints and timers pass
    canvas = window.canvas
    canvas.zoom_fit()
    # Zoomed far out (a big photo) the dab is scaled so it is still a few screen pixels.
    scale = 1.0 if canvas.zoom() >= 0.5 else 1.0 / canvas.zoom()
    canvas.set_brush_size(round(6 * scale))
    step = 4 * scale
    vp = canvas.viewport()
    latencies, computes, blocks = [], [], []
    worst = (0.0, "")
    worst_spans: list[tuple[str, float, float, int]] = []
    slowest: dict[str, list[float]] = {}
    watchdog = None
    worst_samples: list[str] = []
    if calls is not None:
        watchdog = Watchdog(heartbeat)
        watchdog.start()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    last = shown[-1][2]
    sites = _stroke_sites(doc.copy_trimap(), strokes)
    n_strokes = 0
    for i, (x, y) in enumerate(sites):
        canvas.set_label(FOREGROUND if i % 2 == 0 else UNKNOWN)
        points = [canvas.map_from_image(QPointF(x + dx, y)).toPoint() for dx in (-step, 0, step)]
        changed.clear()
        marks.items.clear()
        marks.on = True
        if calls is not None:
            calls.spans.clear()
            calls.on = True
        if profiler is not None:
            profiler.enable()
        heartbeat.arm()
        _spin(app, MOVE_INTERVAL_S)  # the heartbeat's own pace, for reference
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
        marks.add("mouse press")
        for p in points[1:]:
            _spin(app, MOVE_INTERVAL_S)
            QTest.mouseMove(vp, p)
            marks.add("mouse move")
        _spin(app, MOVE_INTERVAL_S)
        before_id = controller.latest_id
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])
        end_of_stroke = time.perf_counter()
        marks.add("mouse release")
        if not (changed and changed[-1]):
            # The dab changed nothing (already that label): no preview to wait for.
            heartbeat.disarm()
            marks.on = False
            if calls is not None:
                calls.on = False
            if profiler is not None:
                profiler.disable()
            continue
        if not _wait(app, lambda: newest_final_shown(before_id), timeout):
            raise SystemExit(f"{engine}: no preview within {timeout} s of a stroke")
        t_shown, _, last = shown[-1]

        def settled() -> bool:
            # The final preview painted, the autosave snapshot taken and written.
            return (bool(paints) and paints[-1] > t_shown and not window.autosave_timer.isActive()
                    and window.tasks.is_idle())

        if not _wait(app, settled, 10.0):
            print(f"  note: no repaint of the preview seen after stroke {i + 1}", flush=True)
        _spin(app, SETTLE_S)
        heartbeat.disarm()
        marks.on = False
        if profiler is not None:
            profiler.disable()
        if calls is not None:
            calls.on = False
        if not np.array_equal(last.trimap, doc.trimap):  # checked outside the timed window
            raise SystemExit(f"{engine}: the preview shown is not of the trimap after the stroke")
        n_strokes += 1
        latencies.append((t_shown - end_of_stroke) * 1000.0)
        computes.append(last.seconds)
        block = heartbeat.max_gap * 1000.0
        blocks.append(block)
        if block > worst[0]:
            worst = (block, ", ".join(marks.within(heartbeat.max_span)) or "nothing marked (GIL wait or stall?)")
            if calls is not None:
                t0, t1 = heartbeat.max_span
                worst_spans = [s for s in calls.spans if s[1] >= t0 and s[2] <= t1]
            if watchdog is not None:
                t0, t1 = heartbeat.max_span
                worst_samples = []
                late = [lateness for end, lateness in watchdog.late if t0 <= end <= t1 + 0.005]
                worst_samples.append(
                    f"watchdog naps ended late inside it: {', '.join(f'{v * 1000:.0f} ms' for v in late) or 'none'}"
                    " (late = the GIL was held elsewhere, or the process stalled)")
                for t, silent, nap_late, stacks in watchdog.samples:
                    if t0 <= t <= t1 + 0.005:
                        worst_samples.append(f"stacks {silent * 1000:.0f} ms into the block"
                                             f" (watchdog nap {nap_late * 1000:.0f} ms late):")
                        for name, lines in stacks.items():
                            worst_samples.append(f"  [{name}]")
                            worst_samples.extend(f"    {line}" for line in lines)
        if calls is not None:
            for label, start, end, _depth in calls.spans:
                slowest.setdefault(label, []).append((end - start) * 1000.0)
    heartbeat.stop()
    if watchdog is not None:
        watchdog.stop()
    h, w = last.work_size
    work = f"{w}x{h}" + (f" (x{last.scale:.2f})" if last.scale < 1 else "")
    image = window.image
    row = Row(photo.name, f"{image.shape[1]}x{image.shape[0]}", engine, resolution, mode, work,
              latencies, computes, last.device_label, blocks, worst[1])
    if calls is not None:
        row.breakdown.append(f"    slowest GUI-thread calls over {n_strokes} strokes (inclusive ms):")
        ranked = sorted(slowest.items(), key=lambda kv: -max(kv[1]))
        for label, values in ranked[:18]:
            row.breakdown.append(f"      {max(values):8.1f} max  {sum(values) / max(n_strokes, 1):8.1f} per stroke"
                                 f"  {len(values) / max(n_strokes, 1):6.1f} calls/stroke  {label}")
        row.breakdown.append(f"    inside the longest block ({worst[0]:.0f} ms): {worst[1]}")
        for label, start, end, depth in sorted(worst_spans, key=lambda s: s[1]):
            row.breakdown.append(f"      {'  ' * depth}{(end - start) * 1000.0:8.1f} ms  {label}")
        row.breakdown.extend("      " + line for line in worst_samples)
    if profiler is not None:
        import io
        import pstats

        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(22)
            row.breakdown.append(f"    cProfile of the GUI thread during the strokes, by {key}:")
            row.breakdown.extend("      " + line for line in buf.getvalue().splitlines() if line.strip())
    window.close()  # discards the strokes (and their autosave) without asking
    preview_viewport.removeEventFilter(spy)
    canvas_viewport.removeEventFilter(spy)
    window.deleteLater()
    _spin(app, 0.1)
    return row


def _print_table(rows: list[Row]) -> None:
    header = ("photo", "size", "engine", "preview res", "mode", "solved region", "device",
              "stroke->preview median ms", "min", "max", "compute median s",
              "max GUI block ms median", "max", "longest block during")
    table = [header]
    nan = [float("nan")]
    for r in rows:
        lat = r.latencies_ms or nan
        blocks = r.blocks_ms or nan
        table.append((r.photo, r.size, r.engine, r.resolution, r.mode, r.work, r.device,
                      f"{statistics.median(lat):.0f}", f"{min(lat):.0f}", f"{max(lat):.0f}",
                      f"{statistics.median(r.compute_s or nan):.2f}",
                      f"{statistics.median(blocks):.0f}", f"{max(blocks):.0f}", r.worst_during))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    print()
    for n, row in enumerate(table):
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("-+-".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)} (default: all)")
    parser.add_argument("--engines", nargs="+", default=["closed-form", "dim"], help="small case")
    parser.add_argument("--photo", type=Path, action="append", help="small case: photo (repeat with --trimap)")
    parser.add_argument("--trimap", type=Path, action="append", help="its trimap")
    parser.add_argument("--resolutions", nargs="+", default=["auto"], help="small case: auto, full, 1/2, 1/4")
    parser.add_argument("--modes", nargs="+", default=["alpha"],
                        help="small case: preview modes (alpha, checkerboard, color, image)")
    parser.add_argument("--strokes", type=int, default=7, help="small case: strokes per row (median reported)")
    parser.add_argument("--big-engines", nargs="+", default=["closed-form"], help="24mp case")
    parser.add_argument("--big-resolutions", nargs="+", default=["auto"], help="24mp case")
    parser.add_argument("--big-modes", nargs="+", default=["alpha", "color"], help="24mp case: preview modes")
    parser.add_argument("--big-strokes", type=int, default=3, help="24mp case: strokes per row")
    parser.add_argument("--synthetic-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "dim-studio-bench-synthetic",
                        help="where the 24 MP photo and trimap are generated (once)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one preview")
    parser.add_argument("--breakdown", action="store_true",
                        help="time the GUI-thread suspects and show what ran in the longest block")
    parser.add_argument("--profile", action="store_true", help="cProfile the GUI thread during the strokes")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown or not chosen:
        parser.error(f"--cases: choose from {', '.join(CASES)}")
    if args.photo and (not args.trimap or len(args.trimap) != len(args.photo)):
        parser.error("give one --trimap per --photo")

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.mkdtemp(prefix="dim-studio-bench-")
    os.environ["DIM_STUDIO_CONFIG_DIR"] = os.path.join(scratch, "config")
    os.environ["DIM_STUDIO_DATA_DIR"] = os.path.join(scratch, "data")
    sys.path.insert(0, str(ROOT))

    cases: list[Case] = []
    engines_needed: set[str] = set()
    if "small" in chosen:
        pairs = list(zip(args.photo, args.trimap)) if args.photo else (
            [SAMPLE] + ([DEFAULT_EXTRA] if DEFAULT_EXTRA[0].is_file() else []))
        for photo, trimap in pairs:
            cases.append(Case(photo, trimap, list(args.engines), args.resolutions, args.modes, args.strokes, "small"))
        engines_needed.update(args.engines)
    if "24mp" in chosen:
        photo, trimap = make_synthetic(args.synthetic_dir)
        cases.append(Case(photo, trimap, list(args.big_engines), args.big_resolutions, args.big_modes,
                          args.big_strokes, "24mp"))
        engines_needed.update(args.big_engines)

    from PySide6.QtWidgets import QApplication

    from PySide6.QtCore import qInstallMessageHandler

    def quiet(_kind: Any, _context: Any, message: str) -> None:
        if "propagateSizeHints" not in message:  # the offscreen platform's chatter
            print(message, file=sys.stderr)

    qInstallMessageHandler(quiet)
    app = QApplication.instance() or QApplication(["dim-studio-bench"])
    from dim_studio.gui import dialogs

    # A modal dialog would stall an unattended run: collect the error, stop waiting.
    dialogs.show_error = lambda parent, title, message: ERRORS.append(f"{title}: {message}")  # type: ignore[assignment]
    # The benchmark's strokes are throw-away: never ask about them.
    dialogs.ask_unsaved_changes = lambda parent, what: dialogs.DISCARD  # type: ignore[assignment]
    dialogs.ask_restore_autosave = lambda parent, name, age: False  # type: ignore[assignment]
    if "dim" in engines_needed:
        note = _use_random_dim_weights()
        if note:
            print(note)
            for case in cases:
                if "dim" in case.engines:
                    case.engines.remove("dim")
    calls = None
    if args.breakdown:
        calls = Calls()
        _install_breakdown(calls)

    rows: list[Row] = []
    started = time.perf_counter()
    for case in cases:
        for engine in case.engines:
            for resolution in case.resolutions:
                for mode in case.modes:
                    r = measure(app, case.photo, case.trimap, engine, resolution, mode, case.strokes,
                                args.timeout, calls, args.profile)
                    rows.append(r)
                    print(f"  {r.photo} {r.engine} {r.resolution} {r.mode}: latency "
                          + ", ".join(f"{v:.0f}" for v in r.latencies_ms) + " ms; longest GUI block "
                          + ", ".join(f"{v:.0f}" for v in r.blocks_ms) + " ms", flush=True)
                    for line in r.breakdown:
                        print(line, flush=True)

    _print_table(rows)
    strokes = sorted({f"{c.name}: {c.strokes}" for c in cases})
    print(f"\nstrokes per row: {'; '.join(strokes)}. Latency includes the 150 ms debounce.")
    print(f"max GUI block: the longest gap of a 1 ms GUI-thread heartbeat from the mouse press until the "
          f"preview is painted and the autosave has run; per-stroke maxima (median, max). "
          f"Target: under {TARGET_BLOCK_MS:.0f} ms.")
    if rows:
        overall = max((max(r.blocks_ms) for r in rows if r.blocks_ms), default=float("nan"))
        print(f"longest GUI block over all rows: {overall:.0f} ms"
              + ("" if overall < TARGET_BLOCK_MS else f" (over the {TARGET_BLOCK_MS:.0f} ms target)"))
    print(f"total {time.perf_counter() - started:.0f} s; the machine may be shared: numbers are noisy.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
