"""Job lanes (latest wins, errors never escape), the task runner, and the preview job in a lane."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dim_studio.errors import Cancelled, TrimapError
from dim_studio.gui.jobs import JobLane, TaskRunner, announce_weights_changed
from dim_studio.gui.preview import PreviewController, PreviewPane, ShownPreview
from dim_studio.workflows.engine_choice import EngineChoice
from dim_studio.workflows.jobs import EngineCache, JobError, describe_exception
from dim_studio.workflows.preview import Display, PreviewMode, PreviewRequest, PreviewResult, run_preview

TIMEOUT = 60_000  # ms; waits end as soon as the work does


def _scene_arrays(h=60, w=80):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((16.0 - r) / 3.0 + 0.5, 0, 1)[..., None]
    img = (alpha * [235, 190, 60] + (1 - alpha) * np.dstack([30 + 90 * (xx % 9) / 9, 60 + 0 * xx, 150 + 0 * yy]))
    tri = np.full((h, w), 128, np.uint8)
    tri[r > 21] = 0
    tri[r < 10] = 255
    return img.astype(np.uint8), tri


@pytest.fixture
def worker(qtbot):
    w = JobLane()
    yield w
    w.shutdown()
    assert w.join(10)


def _blocking_job(started: threading.Event, result: str):
    """A job that runs until cancelled, polling like an engine, unless told to finish."""

    def job(ctx):
        started.set()
        for _ in range(2000):
            if ctx.cancelled():
                raise Cancelled()
            time.sleep(0.005)
        return result

    return job


class Recorder:
    def __init__(self, worker: JobLane) -> None:
        self.finished: dict[int, object] = {}
        self.failed: dict[int, JobError] = {}
        self.cancelled: list[int] = []
        self.threads: list[int] = []
        worker.finished.connect(lambda i, r: self.finished.__setitem__(i, r))
        worker.failed.connect(lambda i, e: self.failed.__setitem__(i, e))
        worker.cancelled.connect(self.cancelled.append)


def test_newer_preview_cancels_the_running_one(worker, qtbot):
    rec = Recorder(worker)
    started = threading.Event()
    first = worker.submit(_blocking_job(started, "old"))
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    waiting = worker.submit(lambda ctx: "never runs")
    latest = worker.submit(lambda ctx: ("new", threading.get_ident()))
    qtbot.waitUntil(lambda: latest in rec.finished, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: {first, waiting} <= set(rec.cancelled), timeout=TIMEOUT)
    assert first not in rec.finished and waiting not in rec.finished
    value, thread = rec.finished[latest]
    assert value == "new" and thread != threading.get_ident()
    assert first < waiting < latest


def test_export_is_not_superseded_by_previews(worker, qtbot):
    rec = Recorder(worker)
    started = threading.Event()

    def export(ctx):
        started.set()
        time.sleep(0.2)
        if ctx.cancelled():
            raise Cancelled()
        return "exported"

    export_id = worker.submit(export, supersedable=False)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    preview_id = worker.submit(lambda ctx: "preview")
    qtbot.waitUntil(lambda: preview_id in rec.finished, timeout=TIMEOUT)
    assert rec.finished[export_id] == "exported"


def test_explicit_cancel(worker, qtbot):
    rec = Recorder(worker)
    started = threading.Event()
    job_id = worker.submit(_blocking_job(started, "x"), supersedable=False)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    worker.cancel(job_id)
    qtbot.waitUntil(lambda: job_id in rec.cancelled, timeout=TIMEOUT)


def test_a_job_that_ignores_cancel_is_still_not_reported_as_finished(worker, qtbot):
    rec = Recorder(worker)
    started, release = threading.Event(), threading.Event()

    def stubborn(ctx):
        started.set()
        release.wait(5)
        return "too late"

    job_id = worker.submit(stubborn)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    worker.cancel(job_id)
    release.set()
    qtbot.waitUntil(lambda: job_id in rec.cancelled, timeout=TIMEOUT)
    assert job_id not in rec.finished

    # An export that completed is reported as done even if Cancel came too late.
    started.clear()
    release.clear()
    export_id = worker.submit(stubborn, supersedable=False)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    worker.cancel(export_id)
    release.set()
    qtbot.waitUntil(lambda: export_id in rec.finished, timeout=TIMEOUT)


def test_exceptions_become_failed_signals_and_the_worker_goes_on(worker, qtbot):
    rec = Recorder(worker)
    bug = worker.submit(lambda ctx: 1 / 0, supersedable=False)
    user = worker.submit(lambda ctx: (_ for _ in ()).throw(TrimapError("the trimap is wrong")), supersedable=False)
    oom = worker.submit(lambda ctx: (_ for _ in ()).throw(MemoryError()), supersedable=False)
    ok = worker.submit(lambda ctx: 42, supersedable=False)
    qtbot.waitUntil(lambda: ok in rec.finished, timeout=TIMEOUT)
    assert rec.failed[bug].message.startswith("ZeroDivisionError: ")
    assert rec.failed[user].message == "the trimap is wrong"
    assert rec.failed[oom].title == "Out of memory" and "memory" in rec.failed[oom].message
    assert rec.finished[ok] == 42


def test_describe_exception_cuda_oom():
    err = describe_exception(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert err.title == "Out of memory" and "Tried to allocate" in err.message


def test_progress_and_partial_reach_the_gui(worker, qtbot):
    progress: list[float] = []
    partial: list[object] = []
    worker.progressed.connect(lambda i, f: progress.append(f))
    worker.partial.connect(lambda i, p: partial.append(p))

    def job(ctx):
        ctx.progress(0.0)
        ctx.partial("half")
        ctx.progress(1.0)
        return "done"

    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT):
        worker.submit(job)
    assert progress[-1] == 1.0 and partial == ["half"]


def test_submit_after_shutdown_is_dropped(qtbot):
    w = JobLane()
    w.shutdown()
    with qtbot.waitSignal(w.cancelled, timeout=TIMEOUT):
        w.submit(lambda ctx: 1)


def test_engine_cache_reuses_engines():
    cache = EngineCache(capacity=1)
    a = cache.get("closed-form")
    assert cache.get("closed-form", {}) is a
    cache.get("knn")
    assert cache.get("closed-form") is not a  # evicted


def test_run_preview_with_foreground(worker, qtbot):
    img, tri = _scene_arrays()
    request = PreviewRequest(img.astype(np.float32) / 255, tri, EngineChoice("closed-form", {}), "full",
                             Display(PreviewMode.CHECKERBOARD))
    stages: list[PreviewResult] = []
    worker.partial.connect(lambda i, r: stages.append(r))
    worker.finished.connect(lambda i, r: stages.append(r))
    worker.submit(lambda ctx: run_preview(ctx, request))
    qtbot.waitUntil(lambda: len(stages) == 2, timeout=TIMEOUT)
    assert not stages[0].final and stages[0].foreground is None
    assert stages[1].final and stages[1].foreground.shape == img.shape
    np.testing.assert_array_equal(stages[0].alpha, stages[1].alpha)
    assert stages[1].device_label == "CPU" and stages[1].scale == 1.0
    # The display pixels are composed in the lane: RGBA with the alpha as the last channel.
    assert stages[1].pixels.shape == (*tri.shape, 4)
    np.testing.assert_array_equal(stages[1].pixels[..., 3], np.round(stages[1].alpha * 255).astype(np.uint8))


def test_controller_drops_stale_results(worker, qtbot):
    img, tri = _scene_arrays()
    image = img.astype(np.float32) / 255
    pane = PreviewPane()
    qtbot.addWidget(pane)
    controller = PreviewController(worker, pane, lambda: None)
    controller.set_photo(image)
    stale = ShownPreview(PreviewResult(np.zeros(tri.shape, np.float32), None, tri, 1.0, tri.shape, 0.1, "x", "CPU", True),
                         None)
    controller.latest_id = 7
    controller._on_result(6, stale)  # an older request finishing late
    assert controller.displayed_id is None and pane.alpha is None
    controller._on_result(7, stale)
    assert controller.displayed_id == 7 and pane.alpha is not None


def test_task_runner_orders_tasks_and_reports_errors(qtbot):
    runner = TaskRunner()
    order: list[str] = []
    results: list[object] = []
    runner.submit(lambda: (time.sleep(0.05), order.append("write"))[1])
    runner.submit(lambda: order.append("discard"))
    runner.submit(lambda: 1 / 0, on_error=results.append)
    runner.submit(lambda: "value", on_done=results.append)
    qtbot.waitUntil(lambda: len(results) == 2, timeout=TIMEOUT)
    assert order == ["write", "discard"]
    assert isinstance(results[0], JobError) and "ZeroDivisionError" in results[0].message
    assert results[1] == "value"
    assert runner.is_idle()
    runner.shutdown()
    assert runner.submit(lambda: 1).cancelled()
    runner.flush()


def test_a_result_arriving_after_its_runner_was_deleted_is_dropped(qtbot):
    """A dialog closed while its probe still runs: the late result reaches nobody, and nothing crashes."""
    import shiboken6
    from PySide6.QtCore import QObject

    owner = QObject()
    runner, lane = TaskRunner(owner), JobLane(owner)
    release = threading.Event()
    delivered: list[object] = []
    runner.submit(lambda: release.wait(10) and "late", on_done=delivered.append)
    lane.finished.connect(lambda _id, result: delivered.append(result))
    lane.submit(lambda ctx: release.wait(10) and "late job")
    shiboken6.delete(owner)  # deletes the runner and the lane with it
    release.set()
    lane.join(10)
    qtbot.wait(300)  # the late results come through the event loop, if at all
    assert delivered == []


def test_task_runner_is_idle_only_once_the_callback_ran(qtbot):
    runner = TaskRunner()
    results: list[object] = []
    for i in range(20):
        runner.submit(lambda i=i: i, on_done=results.append)
        qtbot.waitUntil(runner.is_idle, timeout=TIMEOUT)
        assert results[-1] == i  # idle means delivered, not merely computed
    runner.shutdown()


def test_lanes_run_side_by_side_so_a_preview_never_waits_behind_a_long_job(qtbot):
    long_lane, preview_lane = JobLane(name="export"), JobLane(name="preview")
    try:
        started, release = threading.Event(), threading.Event()
        long_lane.submit(lambda ctx: (started.set(), release.wait(30))[1], supersedable=False)
        qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
        with qtbot.waitSignal(preview_lane.finished, timeout=5000) as blocker:
            preview_lane.submit(lambda ctx: "preview")
        assert blocker.args[1] == "preview" and not long_lane.is_idle()
    finally:
        release.set()
        for lane in (long_lane, preview_lane):
            lane.shutdown()
            assert lane.join(10)


def test_weights_changed_clears_every_lanes_engines(worker, qtbot):
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT):
        worker.submit(lambda ctx: ctx.engines.get("closed-form"))
    assert len(worker.engines) == 1
    announce_weights_changed(None)
    assert len(worker.engines) == 0
