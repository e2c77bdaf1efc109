"""The main window: photo + trimap canvas on the left, live preview on the right.

What happens where:

- ``TrimapCanvas`` (canvas.py) paints; every finished edit emits
  ``trimapEdited``. The window then (a) schedules a preview through
  ``PreviewController`` (150 ms debounce, latest wins, matting in the
  preview lane) and (b) schedules an autosave (1 s debounce, written by a
  background task runner).
- A photo opened without a trimap starts **all background**: nothing is
  computed and nothing is wrong until the user says where the subject is.
  The hint over the canvas gives the quickest path: Outline (O) around the
  subject (outside becomes background, inside unknown), then paint the sure
  parts of the subject as foreground (1). Starting all-unknown instead would
  launch a whole-photo solve at once, slow and meaningless.
- Export computes the alpha at full resolution with the selected engine in
  the export lane and writes with ``export.write_outputs``: the files equal those
  of ``dim-studio matte`` for the same inputs.
- Every error goes through ``dialogs.show_error``; nothing raised by a file
  or a job ends the program.

Menus, toolbars and status-bar widgets are built in ``window_ui.py``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence,
)
from PySide6.QtWidgets import QMainWindow, QMenu, QProgressDialog, QWidget

from dim_studio.autosave import AutosaveStore
from dim_studio import __version__
from dim_studio.errors import DimStudioError
from dim_studio.images import is_image_path, read_image, read_mask, read_raw, read_trimap, write_trimap
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN, trimap_from_mask

from . import dialogs
from .batch_dialog import open_batch_dialog
from .preview import PreviewController
from .quick_select import QuickSelectController
from .settings import Settings
from .finetune_dialog import open_finetune_dialog
from .weights_chooser import choose_weights
from .weights_dialogs import install_weights_menu
from .window_ui import WindowUi
from dim_studio.workflows.engine_choice import OFFLINE_DEFAULT, EngineChoice, choose_engine
from dim_studio.workflows.environment import Environment, probe_environment
from dim_studio.workflows.export import ExportRequest, ExportResult, run_export
from dim_studio.workflows.jobs import JobError, describe_exception
from dim_studio.workflows.preview import PreviewRequest

from .jobs import JobLane, TaskRunner, app_events

APP_NAME = "DIM Studio"


def quick_start_hint(trimap: np.ndarray | None) -> str:
    """What to do next, or '' when the trimap can be matted."""
    return hint_for_labels(None if trimap is None else frozenset(int(v) for v in np.unique(trimap)))


def hint_for_labels(present: frozenset[int] | None) -> str:
    """``quick_start_hint`` from the labels the trimap has (None: no photo yet).

    The window asks its document (``TrimapDocument.labels_present``), which
    keeps count as edits happen: scanning a 24 MP trimap after every stroke
    would hold up the brush.
    """
    if present is None:
        return "Open a photo (Ctrl+O) or drop one here."
    has_fg, has_unknown, has_bg = FOREGROUND in present, UNKNOWN in present, BACKGROUND in present
    if not has_unknown and not has_fg:
        return ("Quick start: press Q and drag a box round the subject (or press O and draw its "
                "outline); GrabCut finds it and makes the trimap.")
    if not has_fg:
        return "Now press 1 and paint over the parts that are surely the subject (foreground)."
    if not has_unknown:
        return ("Mark the edge to matte: press 3 and paint the unknown band over hair and soft "
                "edges, or outline the subject with O.")
    if not has_bg:
        return "Mark some background: press 2 and paint it, or outline the subject with O."
    return ""


def looks_like_trimap(path: str, shape: tuple[int, int] | None) -> bool:
    """A dropped file is a trimap when named so, or a grey image of the photo's size with <= 3 levels."""
    if shape is None:
        return False
    if "trimap" in Path(path).name.lower():
        return True
    try:
        arr = read_raw(path)
    except DimStudioError:
        return False
    if arr.shape[:2] != tuple(shape):
        return False
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            return False
        if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            return False
        arr = arr[..., 0]
    levels = np.unique(arr)
    return len(levels) <= 3


class MainWindow(QMainWindow):
    """DIM Studio's window. ``open_image`` / ``open_trimap`` / ``export`` are the public entry points."""

    #: a preview was displayed (PreviewResult); benchmarks time strokes with it
    previewUpdated = Signal(object)
    #: an export wrote its files (ExportResult)
    exportFinished = Signal(object)
    #: the background probe (devices, weights) finished (Environment)
    environmentReady = Signal(object)

    def __init__(
        self,
        *,
        engine: str | None = None,
        weights: str | None = None,
        device: str | None = None,
        settings: Settings | None = None,
        autosave: AutosaveStore | None = None,
        probe: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or Settings()
        self.autosave = autosave or AutosaveStore()
        self.weights = weights
        self.image: np.ndarray | None = None
        self.image_path: str | None = None
        self.trimap_path: str | None = None
        self.environment: Environment | None = None
        self._export_id: int | None = None
        self._export_progress: QProgressDialog | None = None
        # > 0 while a progress dialog's setValue runs (it spins the event loop);
        # dialogs ended meanwhile are deleted only once it has returned.
        self._progress_updates = 0
        self._ended_progress: list[QProgressDialog] = []
        self._last_error = ""
        self._autosave_failed_once = False
        self._autosaved_path: str | None = None  # the photo whose autosave this window wrote

        # Two lanes: a preview never waits behind an export, and an export
        # is never superseded by a preview.
        self.preview_lane = JobLane(self, "preview")
        self.export_lane = JobLane(self, "export")
        self.tasks = TaskRunner(self)
        self._saving = False
        self.ui = WindowUi(self)
        self.canvas = self.ui.canvas
        self.preview_pane = self.ui.preview
        self.preview = PreviewController(self.preview_lane, self.preview_pane, self._make_preview_request, self)
        self.quick_select = QuickSelectController(self)  # box/outline -> GrabCut, band slider, tighten
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(1000)
        self.autosave_timer.timeout.connect(self._autosave_now)
        self._connect()
        self._add_batch_and_weights_menus()
        self.ui.restore_settings(engine=engine, device=device)
        # Graphics views take drops for their scenes; ours have no use for them,
        # so drops travel up to the window, which opens the files.
        self.setAcceptDrops(True)
        for view in (self.canvas, self.preview_pane.view):
            view.setAcceptDrops(False)
            view.viewport().setAcceptDrops(False)
        self.canvas.viewport().installEventFilter(self)  # to keep the hint placed
        self._update_title()
        self._update_hint()
        if probe:
            self.tasks.submit(lambda: probe_environment(weights), self._on_environment)

    # -- wiring -------------------------------------------------------------------

    def _connect(self) -> None:
        c = self.canvas
        c.trimapEdited.connect(self._on_trimap_edited)
        c.strokeStarted.connect(self.preview.interrupt)
        c.strokeFinished.connect(self.preview.stroke_finished)
        c.historyChanged.connect(self.ui.update_history_actions)
        self.preview.shown.connect(self._on_preview_shown)
        self.preview.failed.connect(self._on_preview_failed)
        self.preview.waiting.connect(self._on_preview_waiting)
        self.preview_pane.modeChanged.connect(self._on_preview_mode)
        self.export_lane.finished.connect(self._on_job_finished)
        self.export_lane.failed.connect(self._on_job_failed)
        self.export_lane.cancelled.connect(self._on_job_cancelled)
        self.export_lane.progressed.connect(self._on_job_progress)
        app_events().weightsChanged.connect(self._on_weights_changed)

    def _add_batch_and_weights_menus(self) -> None:
        batch_action = QAction("&Batch export folder…", self)
        batch_action.setShortcut(QKeySequence("Ctrl+B"))
        batch_action.setStatusTip("Matte a whole folder of photos with their trimaps or masks")
        batch_action.triggered.connect(lambda: open_batch_dialog(self))
        self.ui.file_menu.insertAction(self.ui.quit_action, batch_action)
        self.ui.file_menu.insertSeparator(self.ui.quit_action)
        self.batch_action = batch_action
        weights_menu = QMenu("&Weights", self)
        install_weights_menu(self, weights_menu)
        weights_menu.addSeparator()
        self.choose_weights_action = QAction("&Choose weights…", self)
        self.choose_weights_action.setStatusTip("Pick which weights file the dim engine uses")
        self.choose_weights_action.triggered.connect(self.choose_weights_dialog)
        weights_menu.addAction(self.choose_weights_action)
        self.finetune_action = QAction("&Teach it this photo (fine-tune)…", self)
        self.finetune_action.setStatusTip("Train the network on the current photo so it mattes it better")
        self.finetune_action.triggered.connect(self.finetune_dialog)
        self.finetune_action.setEnabled(False)  # until a photo is open
        weights_menu.addAction(self.finetune_action)
        self.add_menu(weights_menu)
        self.weights_menu = weights_menu

    def choose_weights_dialog(self) -> Any:
        """Weights > Choose weights: list the known files; the one picked goes to ``use_weights``."""
        return choose_weights(self)

    def finetune_dialog(self, *, options: Any = None) -> Any:
        """Weights > Teach it this photo: the fine-tune dialog for the current photo."""
        return open_finetune_dialog(self, options=options)

    def use_weights(self, path: object) -> None:
        """Make the dim engine use exactly ``path`` (the chooser, the fine-tune's Use now); the preview recomputes."""
        self.weights = str(path)
        if self.engine_name == "dim":
            self.ui.engine_was_chosen = True
            self.ui.show_engine_status()
            self.preview.request_now()  # the engine cache is keyed by the weights path
        else:
            self.set_engine("dim")  # on_engine_changed recomputes the preview
        self.refresh_environment()  # the toolbar's dim entry and weights note follow the new file

    def _on_weights_changed(self, path: object) -> None:
        # Use exactly the file the user just installed, then offer the dim engine.
        if path is not None:
            self.weights = str(path)
            self.ui.engine_was_chosen = False
        self.refresh_environment()

    def add_menu(self, menu: Any) -> None:
        """Insert a menu before Help (the weights and batch dialogs add theirs here)."""
        self.menuBar().insertMenu(self.ui.help_menu.menuAction(), menu)

    # -- engine ---------------------------------------------------------------------

    @property
    def engine_name(self) -> str:
        return self.ui.engine_name()

    @property
    def device(self) -> str:
        return self.ui.device_value()

    def set_engine(self, name: str) -> None:
        self.ui.select_engine(name)

    def engine_choice(self) -> EngineChoice:
        """The toolbar's engine and device with the window's weights, as the CLI builds them."""
        return choose_engine(self.engine_name, weights=self.weights, device=self.device)

    def on_engine_changed(self) -> None:
        """Called by the UI when the engine, device or preview resolution changes."""
        self.settings.set("engine/name", self.engine_name)
        self.settings.set("engine/device", self.device)
        self.ui.show_engine_status()
        self.preview.request_now()

    def refresh_environment(self) -> None:
        """Look for devices and weights again (the lanes' engine caches follow ``weightsChanged``)."""
        self.tasks.submit(lambda: probe_environment(self.weights), self._on_environment)

    def _on_environment(self, env: object) -> None:
        if isinstance(env, JobError):
            self.statusBar().showMessage(f"Could not probe devices: {env.message}", 8000)
            return
        assert isinstance(env, Environment)
        self.environment = env
        self.ui.apply_environment(env)
        if self.engine_name == "dim" and env.weights.path is None:
            dialogs.show_error(self, "No weights for the dim engine",
                               env.weights.explain() + f"\n\nUsing {OFFLINE_DEFAULT} meanwhile.")
            self.set_engine(OFFLINE_DEFAULT)
        elif env.weights.path is not None and not self.ui.engine_was_chosen:
            self.set_engine("dim")  # dim is the default when weights exist
        self.environmentReady.emit(env)

    # -- files ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _reporting(self, title: str) -> Iterator[None]:
        """Turn any exception into an error dialog; the window keeps running."""
        try:
            with _busy_cursor():
                yield
        except Exception as exc:  # noqa: BLE001 - the error dialog is the handling
            error = describe_exception(exc)
            dialogs.show_error(self, title, error.message)
            raise _Reported() from exc

    def open_image_dialog(self) -> None:
        path = dialogs.get_open_path(self, "Open photo", self.settings.last_folder("image"))
        if path:
            self.open_image(path)

    def open_image(self, path: str, trimap_path: str | None = None) -> bool:
        """Open a photo (and its trimap); returns False if it was not opened."""
        if not self.confirm_unsaved():
            return False
        try:
            with self._reporting("Cannot open photo"):
                image = read_image(path)
        except _Reported:
            return False
        self.autosave_timer.stop()
        self.image, self.image_path, self.trimap_path = image, str(Path(path).resolve()), None
        self.canvas.set_image(image)
        self.finetune_action.setEnabled(True)
        self.canvas.zoom_fit()
        self.preview.set_photo(image)
        self.settings.set_last_folder("image", path)
        self.settings.add_recent_file(self.image_path)
        self.ui.update_recent_menu()
        if trimap_path:
            self.open_trimap(trimap_path)
        self._offer_autosave()
        self._update_title()
        self._update_hint()
        self.preview.request_now()
        self.statusBar().showMessage(f"Opened {Path(path).name} ({image.shape[1]}×{image.shape[0]})", 5000)
        return True

    def open_trimap_dialog(self) -> None:
        if self.image is None:
            dialogs.show_error(self, "Open trimap", "Open a photo first; a trimap belongs to a photo.")
            return
        path = dialogs.get_open_path(self, "Open trimap", self.settings.last_folder("trimap"))
        if path:
            self.open_trimap(path)

    def open_trimap(self, path: str) -> bool:
        """Load a trimap for the open photo, as one undo step (the painting before stays in history)."""
        if self.image is None:
            dialogs.show_error(self, "Open trimap", "Open a photo first; a trimap belongs to a photo.")
            return False
        try:
            with self._reporting("Cannot open trimap"):
                trimap = read_trimap(path, self.image.shape[:2])
        except _Reported:
            return False
        doc = self.canvas.document
        if doc.undo_items or doc.is_modified:
            self.canvas.apply_trimap(trimap, f"Open {Path(path).name}")
        else:
            self.canvas.set_trimap(trimap)
        doc.mark_saved()
        self.trimap_path = str(Path(path).resolve())
        self.settings.set_last_folder("trimap", path)
        self._discard_autosave()
        self._update_title()
        self._update_hint()
        return True

    def save_trimap(self) -> bool:
        if self.image is None:
            return False
        if self.trimap_path and self.trimap_path != self.image_path:
            return self._write_trimap(self.trimap_path)
        return self.save_trimap_as()

    def save_trimap_as(self) -> bool:
        if self.image is None or self.image_path is None:
            return False
        suggested = self.trimap_path or str(
            Path(self.settings.last_folder("trimap")) / f"{Path(self.image_path).stem}_trimap.png"
        )
        path = dialogs.get_save_path(self, "Save trimap", suggested)
        if not path:
            return False
        if not Path(path).suffix:
            path += ".png"
        return self._write_trimap(path)

    def _write_trimap(self, path: str) -> bool:
        if self.image_path and Path(path).resolve() == Path(self.image_path):
            dialogs.show_error(self, "Save trimap", "That is the photo itself; choose another file name.")
            return False
        if self._saving:
            return False  # Ctrl+S pressed again while the last save encodes
        doc = self.canvas.document
        snapshot, state = doc.snapshot(), doc.state()
        # Encoding a 24 MP PNG takes a while: the task runner does it while this
        # waits in a local event loop, so the window keeps painting and answering.
        self._saving = True
        try:
            error = self._wait_for_task(lambda: write_trimap(path, snapshot.materialize()))
        finally:
            self._saving = False
        if error is not None:
            dialogs.show_error(self, "Cannot save trimap", error.message)
            return False
        doc.mark_saved(state)
        self.trimap_path = str(Path(path).resolve())
        self.settings.set_last_folder("trimap", path)
        self._discard_autosave()
        self._update_title()
        self.statusBar().showMessage(f"Saved {Path(path).name}", 5000)
        return True

    def trimap_from_mask_dialog(self) -> None:
        """Edit > Trimap from mask: a mask file and a band width, applied as one undo step."""
        if self.image is None:
            dialogs.show_error(self, "Trimap from mask", "Open a photo first.")
            return
        path = dialogs.get_open_path(self, "Mask for the trimap", self.settings.last_folder("mask"))
        if not path:
            return
        try:
            with self._reporting("Trimap from mask"):
                mask = read_mask(path, self.image.shape[:2])  # size from the header, before decoding
        except _Reported:
            return
        self.settings.set_last_folder("mask", path)
        band = dialogs.ask_band_width(self, self.settings.get_int("mask/band", 10, 0, 500))
        if band is None:
            return
        self.settings.set("mask/band", band)
        try:
            with self._reporting("Trimap from mask"):
                trimap = trimap_from_mask(mask, band)
        except _Reported:
            return
        self.canvas.apply_trimap(trimap, f"Trimap from mask ({band} px)")

    def clear_trimap(self) -> None:
        if self.image is not None:
            self.canvas.apply_trimap(np.full(self.image.shape[:2], BACKGROUND, np.uint8), "Clear trimap")

    def _wait_for_task(self, fn: Any) -> JobError | None:
        """Run ``fn`` in the task runner and wait in a local event loop (the GUI keeps running)."""
        loop = QEventLoop(self)
        outcome: list[JobError | None] = []

        def done(result: object) -> None:
            outcome.append(result if isinstance(result, JobError) else None)
            loop.quit()

        with _busy_cursor():
            if self.tasks.submit(fn, done, done).cancelled():
                return JobError("Cannot save", "the window is closing; nothing was written", "")
            if not outcome:
                loop.exec()
        return outcome[0]

    # -- unsaved changes and autosave ------------------------------------------------

    def is_modified(self) -> bool:
        return self.image is not None and self.canvas.document.is_modified

    def confirm_unsaved(self) -> bool:
        """Ask Save / Discard / Cancel when the trimap has unsaved changes; True = go on."""
        if not self.is_modified():
            self._drop_stale_autosave()
            return True
        answer = dialogs.ask_unsaved_changes(self, Path(self.image_path or "the photo").name)
        if answer == dialogs.SAVE:
            return self.save_trimap()
        if answer == dialogs.DISCARD:
            self.autosave_timer.stop()
            self._discard_autosave()
            return True
        return False

    def _offer_autosave(self) -> None:
        path = self.image_path
        assert path is not None and self.image is not None
        entry = self.autosave.find(path)
        if entry is None:
            return
        try:
            restored = self.autosave.load(entry, self.image.shape[:2])
        except DimStudioError:
            self.autosave.discard_entry(entry)
            return
        if np.array_equal(restored, self.canvas.document.trimap):
            self.autosave.discard_entry(entry)
            return
        if dialogs.ask_restore_autosave(self, Path(path).name, entry.describe_age()):
            # One undo step on top of what was opened, and unsaved: the user decides.
            self.canvas.apply_trimap(restored, "Recovered trimap")
            self._autosaved_path = path  # ours now: kept while the recovery is unsaved
            self.statusBar().showMessage("Recovered the unsaved trimap", 5000)
        else:
            self.autosave.discard_entry(entry)

    def _autosave_now(self) -> None:
        if not self.is_modified() or self.image_path is None:
            return
        path, snapshot = self.image_path, self.canvas.document.snapshot()
        self._autosaved_path = path
        # Copying and PNG-encoding a 24 MP trimap take a moment: the task runner does both.
        self.tasks.submit(lambda: self.autosave.save(path, snapshot.materialize()), None, self._on_autosave_failed)

    def _on_autosave_failed(self, error: object) -> None:
        message = error.message if isinstance(error, JobError) else str(error)
        self.statusBar().showMessage(f"Autosave failed: {message}", 10000)
        if not self._autosave_failed_once:  # once per session: a full disk should not nag every stroke
            self._autosave_failed_once = True
            dialogs.show_error(self, "Autosave failed", f"{message}\n\nSave the trimap yourself (Ctrl+S).")

    def _drop_stale_autosave(self) -> None:
        """Remove the autosave this window wrote, now that nothing is unsaved.

        Only this session's own autosave: one found on disk when the photo was
        opened belongs to the restore prompt, not to us.
        """
        if self._autosaved_path is not None and self._autosaved_path == self.image_path:
            self._discard_autosave()

    def _discard_autosave(self) -> None:
        self._autosaved_path = None
        if self.image_path:
            path = self.image_path
            # Through the same runner as the writes, so it cannot overtake a pending one.
            self.tasks.submit(lambda: self.autosave.discard(path))

    # -- canvas events -----------------------------------------------------------------

    def _on_trimap_edited(self, _box: object) -> None:
        self._update_title()
        self._update_hint()
        self.preview.schedule()
        if self.is_modified():
            self.autosave_timer.start()
        else:
            # Undone back to the saved state: an autosave of the edits would
            # only offer back work the user took back.
            self.autosave_timer.stop()
            self._drop_stale_autosave()

    def _update_title(self) -> None:
        if self.image_path is None:
            self.setWindowTitle(f"{APP_NAME} {__version__}")
            self.setWindowModified(False)
            return
        name = Path(self.image_path).name
        trimap = f" — {Path(self.trimap_path).name}" if self.trimap_path else ""
        self.setWindowTitle(f"{name}{trimap}[*] — {APP_NAME} {__version__}")
        self.setWindowModified(self.is_modified())

    def _current_hint(self) -> str:
        return hint_for_labels(self.canvas.document.labels_present() if self.image is not None else None)

    def _update_hint(self) -> None:
        self.ui.set_hint(self._current_hint())

    # -- preview -----------------------------------------------------------------------

    def _make_preview_request(self) -> PreviewRequest | str | None:
        if self.image is None:
            return None
        hint = self._current_hint()
        if hint:
            return hint
        trimap = self.canvas.document.snapshot()
        return PreviewRequest(
            self.image, trimap, self.engine_choice(),
            resolution=self.ui.preview_resolution(), display=self.preview_pane.display(),
        )

    def _on_preview_shown(self, _request_id: int, result: object) -> None:
        self._last_error = ""
        self.ui.show_preview_status(result)
        self.previewUpdated.emit(result)

    def _on_preview_failed(self, error: object) -> None:
        assert isinstance(error, JobError)
        self.statusBar().showMessage(f"Preview failed: {error.message}", 10000)
        # The same failure after every stroke would be a dialog storm: show it once.
        if error.message != self._last_error:
            self._last_error = error.message
            dialogs.show_error(self, error.title, error.message)

    def _on_preview_waiting(self, reason: str) -> None:
        if reason:
            self.ui.show_preview_waiting()

    def _on_preview_mode(self, mode: str) -> None:
        # The pane's displayChanged makes the controller compose the new view.
        self.settings.set("preview/mode", mode)

    # -- export -------------------------------------------------------------------------

    def export_dialog(self) -> None:
        if self.image is None or self.image_path is None:
            dialogs.show_error(self, "Export", "Open a photo and paint its trimap first.")
            return
        trimap = self.canvas.document.snapshot()
        hint = self._current_hint()
        if hint:
            dialogs.show_error(self, "Export", f"The trimap is not ready to matte. {hint}")
            return
        if self._export_id is not None:
            return
        pane = self.preview_pane  # the dialog proposes what the preview shows
        options = dialogs.ask_export_options(
            self, self.image_path, self.settings.last_folder("export"),
            protected=(self.image_path, self.trimap_path or ""),
            preview_mode=pane.mode, preview_color=pane.color.name(),
            preview_background=pane.background_path or None,
            decontamination=pane.decontamination,
        )
        if options is None:
            return
        self.settings.set_last_folder("export", options.paths[0])
        background = None
        if options.composite_path:
            # Parsed now so a bad background fails before minutes of matting, as in the CLI.
            from dim_studio.export import resolve_background

            try:
                with self._reporting("Export"):
                    background = resolve_background(options.background_spec)
            except _Reported:
                return
        request = ExportRequest(
            self.image, trimap, self.engine_choice(),
            alpha_path=options.alpha_path, cutout_path=options.cutout_path,
            composite_path=options.composite_path, background=background, depth=options.depth,
            decontaminate=options.decontaminate,
            inputs={"the photo": self.image_path, "its trimap": self.trimap_path,
                    "the background image": options.background_image or None},
        )
        self.start_export(request)

    def start_export(self, request: ExportRequest) -> int:
        """Run an export in its lane with a cancellable progress dialog; returns its id."""
        self._export_id = self.export_lane.submit(lambda ctx: run_export(ctx, request), supersedable=False)
        progress = QProgressDialog("Computing the alpha at full resolution…", "Cancel", 0, 100, self)
        progress.setWindowTitle("Export")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        export_id = self._export_id
        # The Cancel button emits canceled; Escape rejects the dialog: both stop the job.
        progress.canceled.connect(lambda: self.export_lane.cancel(export_id))
        progress.rejected.connect(lambda: self.export_lane.cancel(export_id))
        progress.open()  # not exec(): the GUI thread keeps running its event loop
        self._export_progress = progress
        return self._export_id

    def _end_export(self) -> None:
        self._export_id = None
        progress, self._export_progress = self._export_progress, None
        if progress is not None:
            progress.close()
            if self._progress_updates:
                # Inside that dialog's own setValue (see _on_job_progress):
                # deleting it now crashed the process when setValue resumed.
                self._ended_progress.append(progress)
            else:
                progress.deleteLater()
        # Painting may have waited for the export: bring the preview up to date.
        self.preview.schedule()

    def _on_job_finished(self, request_id: int, result: object) -> None:
        if request_id != self._export_id:
            return
        self._end_export()
        assert isinstance(result, ExportResult)
        names = ", ".join(Path(p).name for p in result.paths)
        self.statusBar().showMessage(f"Exported {names} in {result.seconds:.1f} s", 10000)
        self.exportFinished.emit(result)

    def _on_job_failed(self, request_id: int, error: object) -> None:
        if request_id != self._export_id:
            return
        self._end_export()
        assert isinstance(error, JobError)
        dialogs.show_error(self, "Export failed", error.message)

    def _on_job_cancelled(self, request_id: int) -> None:
        if request_id == self._export_id:
            self._end_export()
            self.statusBar().showMessage("Export cancelled; nothing was written", 5000)

    def _on_job_progress(self, request_id: int, fraction: float) -> None:
        progress = self._export_progress
        if request_id == self._export_id and progress is not None:
            if fraction >= 0.8:
                progress.setLabelText("Writing the files…")
            # Last: a modal QProgressDialog's setValue runs the event loop, so the
            # export may end (and _end_export run) inside this call.
            self._progress_updates += 1
            try:
                progress.setValue(int(round(100 * fraction)))
            finally:
                self._progress_updates -= 1
            if not self._progress_updates:
                ended, self._ended_progress = self._ended_progress, []
                for dialog in ended:
                    dialog.deleteLater()

    # -- drag and drop ---------------------------------------------------------------------

    def handle_dropped_paths(self, paths: list[str]) -> None:
        """Photos open; a trimap (by name, or a grey 3-level image of the photo's size) loads as the trimap."""
        images = [p for p in paths if is_image_path(p) and Path(p).is_file()]
        if not images:
            dialogs.show_error(self, "Drop", "Drop a photo or a trimap (PNG, JPEG, TIFF, ...).")
            return
        shape = self.image.shape[:2] if self.image is not None else None
        trimaps = [p for p in images if looks_like_trimap(p, shape) or (shape is None and "trimap" in Path(p).name.lower())]
        photos = [p for p in images if p not in trimaps]
        if photos:
            if not self.open_image(photos[0]):
                return
        for path in trimaps[:1]:
            self.open_trimap(path)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() == QEvent.Type.Resize and watched is self.canvas.viewport():
            self.ui.place_hint()
        return super().eventFilter(watched, event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        # After the drop returns: a dialog inside a drop handler blocks the drag source.
        QTimer.singleShot(0, lambda: self.handle_dropped_paths(paths))

    # -- closing ---------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self.confirm_unsaved():
            event.ignore()
            return
        self.autosave_timer.stop()
        self.ui.save_settings()
        self.settings.sync()
        self.preview.timer.stop()
        self.preview_lane.shutdown()
        self.export_lane.shutdown()
        self.quick_select.shutdown()
        self.tasks.shutdown()
        super().closeEvent(event)


class _Reported(Exception):
    """An error already shown to the user; the caller just stops."""


@contextlib.contextmanager
def _busy_cursor() -> Iterator[None]:
    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        yield
    finally:
        QGuiApplication.restoreOverrideCursor()


__all__ = ["APP_NAME", "MainWindow", "looks_like_trimap", "quick_start_hint"]
