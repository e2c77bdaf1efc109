"""The batch dialog: matte a whole folder from the GUI (README: "dim-studio batch").

It is a front end to the same job as ``dim-studio batch``
(``workflows.batch``: ``plan_request`` then ``run_planned``, here as one
``run_batch_job``), so the GUI and the CLI pair files, name outputs, skip
finished work, retry failures, refuse an unwritable output folder and write
``dim-studio-report.json`` identically.

Threading (the GUI never freezes; docs/ARCHITECTURE.md):

- Planning (listing and sniffing a possibly large folder), creating the engine
  (``dim`` loads a network) and the run itself all happen in the dialog's own
  ``JobLane``, not in the main window's lanes, so painting and
  previews keep working while a folder is processed.
- ``run_batch`` calls ``on_event`` on that worker thread. The callback
  (``workflows.batch.EventForwarder``) only
  forwards the (frozen) ``BatchEvent`` through the worker's ``partial`` signal,
  which Qt queues into the GUI thread; no widget is touched from the worker.
  Per-file progress events are thinned out so a CG solver reporting every
  iteration cannot flood the GUI's event queue.
- Stop sets a ``threading.Event`` that is ``run_batch``'s ``cancel``: the
  current file is abandoned (nothing half-written, writes are atomic), the rest
  are listed as not processed, and the report is still written. The dialog does
  not use the worker's own per-job cancel flag for this, because a job whose
  flag is set has its result dropped, and the report of a stopped run is
  exactly what the user wants to see.

Every error (a missing folder, nothing to do, an unwritable output folder, a
missing weights file) goes to ``dialogs.show_error`` and the dialog stays
usable. Questions and folder pickers are module-level functions looked up at
call time, so tests replace them with ``monkeypatch`` and never see a modal
dialog.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QSize, Qt, QUrl
from PySide6.QtGui import QCloseEvent, QColor, QDesktopServices, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout,
    QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMainWindow,
    QProgressBar, QPushButton, QRadioButton, QSpinBox, QTableWidget,
    QTableWidgetItem, QToolButton, QVBoxLayout, QWidget,
)

from dim_studio.batch import BatchEvent, BatchEventKind, BatchReport, FileStatus
from dim_studio.engines import engine_info, engine_names
from dim_studio.workflows.batch import BatchPhase, BatchPlanned, BatchRequest, run_batch_job

from . import dialogs
from .settings import Settings, absolute_path
from dim_studio.workflows.engine_choice import OFFLINE_DEFAULT, EngineChoice, engine_options
from dim_studio.workflows.jobs import JobError
from dim_studio.workflows.weights import weights_status
from dim_studio.workflows.preview import PreviewMode

from .weights_chooser import fill_weights_combo, load_known_weights

from .jobs import JobLane, TaskRunner, app_events

__all__ = [
    "BatchDialog", "BatchRequest", "choose_folder", "open_batch_dialog", "open_folder", "run_batch_job",
]

# Row states shown in the list; the report's own statuses (FileStatus) plus the two before a file ends.
WAITING = "waiting"
WORKING = "working"
_STATUS_TEXT = {
    WAITING: "Waiting",
    WORKING: "Working…",
    FileStatus.DONE: "Done",
    FileStatus.SKIPPED: "Skipped",
    FileStatus.FAILED: "Failed",
    FileStatus.NOT_PROCESSED: "Not processed",
}
# Readable on light and dark themes alike.
_STATUS_COLOR = {
    WAITING: QColor(140, 140, 140),
    WORKING: QColor(52, 120, 200),
    FileStatus.DONE: QColor(46, 140, 60),
    FileStatus.SKIPPED: QColor(130, 130, 130),
    FileStatus.FAILED: QColor(205, 50, 45),
    FileStatus.NOT_PROCESSED: QColor(215, 130, 20),
}
_EVENT_STATUS = {
    BatchEventKind.FILE_DONE: FileStatus.DONE,
    BatchEventKind.FILE_SKIPPED: FileStatus.SKIPPED,
    BatchEventKind.FILE_FAILED: FileStatus.FAILED,
    BatchEventKind.FILE_NOT_PROCESSED: FileStatus.NOT_PROCESSED,
}
COL_FILE, COL_STATUS, COL_TIME, COL_DETAILS = range(4)
PROGRESS_STEPS = 100  # progress bar units per file, so the bar moves within a file too

# Settings keys (folders and choices are remembered; overwrite and retry are per run on purpose:
# a remembered "overwrite" would silently redo a finished folder next time).
_KEY = "batch/"


# --------------------------------------------------------------------------
# small functions tests replace
# --------------------------------------------------------------------------


def choose_folder(parent: QWidget | None, title: str, start: str) -> str | None:
    """Ask for a folder; None when cancelled."""
    path = QFileDialog.getExistingDirectory(parent, title, start)
    return path or None


def open_folder(path: str | Path) -> bool:
    """Show a folder in the platform's file manager; False when that failed."""
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))


# --------------------------------------------------------------------------
# the dialog
# --------------------------------------------------------------------------


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _dot_icon(color: QColor, size: int = 12) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QIcon(pix)


class _FolderRow(QWidget):
    """[path..................] [Browse…]"""

    def __init__(self, title: str, placeholder: str, on_browse: Callable[["_FolderRow"], None]) -> None:
        super().__init__()
        self.title = title
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.button = QPushButton("Browse…")
        self.button.clicked.connect(lambda: on_browse(self))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)


class BatchDialog(QDialog):
    """Process a folder: folders, outputs, engine and options; Start / Stop; per-file results.

    Non-modal: the window stays usable while a folder is processed. Signals
    from the worker arrive on the GUI thread; ``run_id`` is the running job.
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        settings: Settings | None = None,
        *,
        engine: str | None = None,
        weights: str | None = None,
        device: str | None = None,
        preview_mode: PreviewMode | str | None = None,
        preview_color: str | None = None,
        preview_background: str | None = None,
        decontamination: float | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Process a folder")
        # What the window's preview shows: the outputs when none were remembered, and the strength.
        self._preview_defaults = dialogs.preview_defaults(preview_mode, preview_color, preview_background)
        self._decontamination = decontamination
        self.setModal(False)
        self.settings = settings
        self._explicit_weights = weights
        self._device = device
        self.dim_weights: str | None = None
        self.weights_help = ""
        self._wanted_weights: str | None = None  # the file the user picked in the weights combo
        self.weights_listed = False
        self._wanted_engine = (settings.get_str(_KEY + "engine") if settings else "") or engine or ""

        self.worker = JobLane(self, "batch")
        self.tasks = TaskRunner(self, name="dim-studio-batch-probe")
        self.run_id: int | None = None
        self._stop = threading.Event()
        self._rows: dict[str, int] = {}
        self._total = 0
        self._done = 0
        self._current = ""
        self._images_dir = ""
        self.report: BatchReport | None = None
        self.report_path: str | None = None
        self.worker_thread_ident: int | None = None  # which thread planned and ran the last batch

        self._build()
        self._restore_settings()
        self._connect()
        self._sync_controls()
        self.refresh_weights()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._on_quit)

    # -- layout ---------------------------------------------------------------------

    def _build(self) -> None:
        # Folders ------------------------------------------------------------------
        self.images_row = _FolderRow("Folder of photos", "Folder of photos to cut out", self._browse)
        self.partners_row = _FolderRow("Folder of trimaps", "Folder of trimaps (or masks) with the same names",
                                       self._browse)
        self.output_row = _FolderRow("Output folder", "Where the alphas, cutouts and report go", self._browse)
        self.trimaps_radio = QRadioButton("Trimaps")
        self.trimaps_radio.setToolTip(
            "Grey-level trimaps: black = background, white = foreground, grey = unknown.\n"
            "Matched by name: x.jpg pairs with x.png, x_trimap.png, x-trimap.png, x_tri.png …"
        )
        self.masks_radio = QRadioButton("Rough masks")
        self.masks_radio.setToolTip(
            "Black-and-white masks (or the alpha channel of RGBA files), turned into trimaps\n"
            "with an unknown band along the edge. Matched by name: x_mask.png, x_matte.png …"
        )
        self.partner_group = QButtonGroup(self)
        self.partner_group.addButton(self.trimaps_radio)
        self.partner_group.addButton(self.masks_radio)
        self.trimaps_radio.setChecked(True)
        self.band = QSpinBox()
        self.band.setRange(0, 500)
        self.band.setValue(10)
        self.band.setSuffix(" px")
        self.band.setToolTip("Unknown band width: pixels on each side of the mask's edge")
        self.band_label = QLabel("Band width:")
        kind_row = QHBoxLayout()
        kind_row.addWidget(self.trimaps_radio)
        kind_row.addWidget(self.masks_radio)
        kind_row.addSpacing(16)
        kind_row.addWidget(self.band_label)
        kind_row.addWidget(self.band)
        kind_row.addStretch(1)

        folders = QGroupBox("Folders")
        form = QFormLayout(folders)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Photos:", self.images_row)
        form.addRow("Matched with:", kind_row)
        self.partners_label = QLabel("Trimaps:")
        form.addRow(self.partners_label, self.partners_row)
        form.addRow("Output:", self.output_row)

        # Outputs ----------------------------------------------------------------------
        self.alpha_check = QCheckBox("Alpha matte")
        self.alpha_check.setToolTip("<stem>_alpha.png: greyscale alpha")
        self.cutout_check = QCheckBox("RGBA cutout")
        self.cutout_check.setToolTip("<stem>_cutout.png: the estimated foreground colours with the alpha, "
                                     "so no old background shows through soft edges")
        self.composite_check = QCheckBox("Composite")
        self.composite_check.setToolTip("<stem>_composite.png: the cutout over a new background")
        self.alpha_check.setChecked(True)
        self.bg_kind = QComboBox()
        self.bg_kind.addItem("Colour", dialogs.BG_COLOR)
        self.bg_kind.addItem("Image", dialogs.BG_IMAGE)
        self.bg_kind.addItem("Checkerboard", dialogs.BG_CHECKERBOARD)
        self._bg_color = QColor("#ffffff")
        self.color_button = QPushButton()
        self.color_button.setToolTip("Background colour of the composites")
        self.bg_image = QLineEdit()
        self.bg_image.setPlaceholderText("background photo")
        self.bg_browse = QToolButton()
        self.bg_browse.setText("…")
        self.bg_browse.setToolTip("Choose the background photo")
        self.depth = QComboBox()
        self.depth.addItem("8 bit", 8)
        self.depth.addItem("16 bit", 16)
        self.decontaminate = dialogs.StrengthSlider(self._decontamination)
        self.decontaminate_label = QLabel("Edge colours:")
        self.decontaminate_label.setToolTip("Decontaminate edge colours of the cutouts and composites")
        self._apply_preview_defaults()
        self._update_color_button()

        outputs = QGroupBox("Outputs")
        grid = QGridLayout(outputs)
        grid.addWidget(self.alpha_check, 0, 0)
        grid.addWidget(self.cutout_check, 1, 0)
        grid.addWidget(self.composite_check, 2, 0)
        bg_row = QHBoxLayout()
        bg_row.setSpacing(4)
        bg_row.addWidget(self.bg_kind)
        bg_row.addWidget(self.color_button)
        bg_row.addWidget(self.bg_image, 1)
        bg_row.addWidget(self.bg_browse)
        grid.addLayout(bg_row, 2, 1)
        grid.addWidget(QLabel("Bit depth:"), 3, 0)
        grid.addWidget(self.depth, 3, 1, Qt.AlignmentFlag.AlignLeft)
        grid.addWidget(self.decontaminate_label, 4, 0)
        grid.addWidget(self.decontaminate, 4, 1)
        grid.setColumnStretch(1, 1)

        # Engine and options ------------------------------------------------------------
        self.engine = QComboBox()
        self.engine.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.weights_combo = QComboBox()
        self.weights_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.weights_combo.setToolTip("The weights file the dim engine uses for this batch")
        self.weights_label = QLabel("Weights:")
        self.engine_note = QLabel()
        self.engine_note.setWordWrap(True)
        self.engine_note.setStyleSheet("color: palette(mid);")
        self.recursive_check = QCheckBox("Include sub-folders")
        self.recursive_check.setToolTip("Also process sub-folders; the output folder mirrors them")
        self.overwrite_check = QCheckBox("Redo finished files")
        self.overwrite_check.setToolTip("Overwrite outputs that already exist (default: skip them, "
                                        "so a stopped run continues where it stopped)")
        self.retry_check = QCheckBox("Retry only the failed files")
        self.retry_check.setToolTip("Re-run only the files the output folder's previous report lists "
                                    "as failed or not processed")
        processing = QGroupBox("Processing")
        pform = QFormLayout(processing)
        pform.addRow("Engine:", self.engine)
        pform.addRow(self.weights_label, self.weights_combo)
        pform.addRow("", self.engine_note)
        options = QVBoxLayout()
        options.setSpacing(2)
        options.addWidget(self.recursive_check)
        options.addWidget(self.overwrite_check)
        options.addWidget(self.retry_check)
        pform.addRow("Options:", options)

        middle = QHBoxLayout()
        middle.addWidget(outputs, 1)
        middle.addWidget(processing, 1)

        # Progress and results -------------------------------------------------------------
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.current_label = QLabel("Ready.")
        self.current_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.only_problems = QCheckBox("Show only problems")
        self.only_problems.setToolTip("Hide files that were done or skipped")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["File", "Status", "Time", "Details"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_FILE, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_STATUS, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_TIME, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_DETAILS, QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.setColumnWidth(COL_FILE, 200)
        self.table.setMinimumHeight(160)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        results = QGroupBox("Progress")
        rlayout = QVBoxLayout(results)
        rlayout.addWidget(self.progress)
        status_row = QHBoxLayout()
        status_row.addWidget(self.current_label, 1)
        status_row.addWidget(self.only_problems)
        rlayout.addLayout(status_row)
        rlayout.addWidget(self.table, 1)
        rlayout.addWidget(self.summary_label)

        # Buttons --------------------------------------------------------------------------
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Abandon the current file and stop; finished files are kept "
                                    "and the report is written. Start again later to continue.")
        self.open_button = QPushButton("Open output folder")
        self.close_button = QPushButton("Close")
        self.close_button.setAutoDefault(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(folders)
        layout.addLayout(middle)
        layout.addWidget(results, 1)
        layout.addLayout(buttons)
        self.resize(QSize(900, 720))

    def _connect(self) -> None:
        self.masks_radio.toggled.connect(self._sync_controls)
        self.composite_check.toggled.connect(self._sync_controls)
        self.cutout_check.toggled.connect(self._sync_controls)
        self.images_row.edit.editingFinished.connect(self._on_images_typed)
        self.bg_kind.currentIndexChanged.connect(self._sync_controls)
        self.color_button.clicked.connect(self._pick_color)
        self.bg_browse.clicked.connect(self._pick_background_image)
        self.engine.currentIndexChanged.connect(self._on_engine_chosen)
        self.weights_combo.currentIndexChanged.connect(self._on_weights_chosen)
        self.output_row.edit.textChanged.connect(self._sync_controls)
        self.only_problems.toggled.connect(self._apply_filter)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.open_button.clicked.connect(self.open_output_folder)
        self.close_button.clicked.connect(self.close)
        self.worker.partial.connect(self._on_partial)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        app_events().weightsChanged.connect(self.refresh_weights)

    # -- engine list ----------------------------------------------------------------------

    def refresh_weights(self, installed: object = None) -> None:
        """Look for the dim engine's weights again (``app_events().weightsChanged`` calls this)."""
        if installed is not None:
            self._explicit_weights = str(installed)  # exactly what the user just installed
            self._wanted_weights = None
        explicit = self._explicit_weights
        self._fill_engines()
        self.tasks.submit(lambda: weights_status(explicit), self._on_weights_probed)
        load_known_weights(self.tasks, explicit, self._on_weights_listed, lambda _error: None)

    def _on_weights_listed(self, known: object) -> None:
        """Fill the weights combo (``known_weights``: the one in use first); a choice the user made sticks."""
        select = self._wanted_weights or self._explicit_weights or self.dim_weights
        fill_weights_combo(self.weights_combo, list(known), select=select)  # type: ignore[arg-type]
        self.weights_listed = True
        self._update_engine_note()

    def _on_weights_probed(self, result: object) -> None:
        if isinstance(result, JobError):
            self.dim_weights, self.weights_help = None, result.message
        else:
            self.dim_weights = None if result.path is None else str(result.path)  # type: ignore[attr-defined]
            self.weights_help = "" if result.path is not None else result.explain()  # type: ignore[attr-defined]
        self._fill_engines()

    def _fill_engines(self) -> None:
        """Every registered engine; those needing weights only when weights were found."""
        wanted = self._wanted_engine or self.engine.currentData() or ""
        if not wanted:
            wanted = "dim" if self.dim_weights else OFFLINE_DEFAULT
        self.engine.blockSignals(True)
        self.engine.clear()
        for name in engine_names():
            info = engine_info(name)
            if info.needs_weights and not self.dim_weights:
                continue
            self.engine.addItem(name, name)
            self.engine.setItemData(self.engine.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        index = self.engine.findData(wanted)
        self.engine.setCurrentIndex(index if index >= 0 else max(0, self.engine.findData(OFFLINE_DEFAULT)))
        self.engine.blockSignals(False)
        self._update_engine_note()

    def _on_engine_chosen(self) -> None:
        # A choice the user made sticks, even across a weights probe that re-fills the list.
        self._wanted_engine = self.engine.currentData() or ""
        self._update_engine_note()

    def _on_weights_chosen(self) -> None:
        self._wanted_weights = self.weights_combo.currentData() or None
        self._update_engine_note()

    def chosen_weights(self) -> str | None:
        """The dim engine's weights for this batch: the combo's file, else the one found."""
        return self.weights_combo.currentData() or self.dim_weights

    def _update_engine_note(self) -> None:
        name = self.engine.currentData()
        show_weights = name == "dim" and self.weights_combo.count() > 0
        self.weights_combo.setVisible(show_weights)
        self.weights_label.setVisible(show_weights)
        if name == "dim" and self.dim_weights:
            weights = self.chosen_weights() or self.dim_weights
            self.engine_note.setText("" if show_weights else f"Weights: {Path(weights).name}")
            self.engine_note.setToolTip(weights)
        elif not self.dim_weights and "dim" in engine_names():
            self.engine_note.setText("The dim engine appears here once its weights are installed "
                                     "(Weights menu).")
            self.engine_note.setToolTip(self.weights_help)
        else:
            self.engine_note.setText("")
            self.engine_note.setToolTip("")

    def engine_options(self, name: str) -> dict[str, Any]:
        """Constructor options, as the CLI builds them: the found weights and the window's device."""
        return engine_options(name, weights=self.chosen_weights(), device=self._device)

    # -- widgets <-> request ------------------------------------------------------------------

    def _sync_controls(self, *_: object) -> None:
        masks = self.masks_radio.isChecked()
        self.band.setEnabled(masks)
        self.band_label.setEnabled(masks)
        self.partners_label.setText("Masks:" if masks else "Trimaps:")
        self.partners_row.title = "Folder of masks" if masks else "Folder of trimaps"
        composite = self.composite_check.isChecked()
        kind = self.bg_kind.currentData()
        self.bg_kind.setEnabled(composite)
        self.color_button.setVisible(kind == dialogs.BG_COLOR)
        self.bg_image.setVisible(kind == dialogs.BG_IMAGE)
        self.bg_browse.setVisible(kind == dialogs.BG_IMAGE)
        for widget in (self.color_button, self.bg_image, self.bg_browse):
            widget.setEnabled(composite)
        colours = composite or self.cutout_check.isChecked()  # the strength changes only these
        self.decontaminate.setEnabled(colours)
        self.decontaminate_label.setEnabled(colours)
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not self._stop.is_set())
        out = self.output_row.text()
        self.open_button.setEnabled(bool(out) and Path(out).is_dir())
        for widget in (self.images_row, self.partners_row, self.output_row, self.trimaps_radio,
                       self.masks_radio, self.alpha_check, self.cutout_check, self.composite_check,
                       self.depth, self.engine, self.weights_combo, self.recursive_check, self.overwrite_check, self.retry_check):
            widget.setEnabled(not running)
        if running:
            for widget in (self.band, self.band_label, self.bg_kind, self.color_button, self.bg_image,
                           self.bg_browse, self.decontaminate, self.decontaminate_label):
                widget.setEnabled(False)

    def _apply_preview_defaults(self) -> None:
        """Outputs and composite background as the window's preview shows them (see ``dialogs.preview_defaults``)."""
        d = self._preview_defaults
        self.alpha_check.setChecked(d.alpha)
        self.cutout_check.setChecked(d.cutout)
        self.composite_check.setChecked(d.composite)
        self.bg_kind.setCurrentIndex(max(0, self.bg_kind.findData(d.background_kind)))
        color = QColor(d.background_color)
        self._bg_color = color if color.isValid() else QColor("#ffffff")
        self.bg_image.setText(d.background_image)

    def _update_color_button(self) -> None:
        self.color_button.setIcon(dialogs.color_icon(self._bg_color))
        self.color_button.setText(self._bg_color.name())

    def _pick_color(self) -> None:
        color = dialogs.choose_color(self, self._bg_color, "Composite background colour")
        if color is not None:
            self._bg_color = color
            self._update_color_button()

    def _pick_background_image(self) -> None:
        start = self.bg_image.text() or (self.settings.last_folder("background") if self.settings else "")
        path = dialogs.get_open_path(self, "Background image", start or str(Path.home()))
        if path:
            self.bg_image.setText(path)
            if self.settings is not None:
                self.settings.set_last_folder("background", path)

    def _browse(self, row: _FolderRow) -> None:
        start = row.text() or self.images_row.text() or str(Path.home())
        path = choose_folder(self, row.title, start)
        if path:
            path = absolute_path(path)
            row.set_text(path)
            if row is self.images_row:
                self._suggest_folders(Path(path))

    def _on_images_typed(self) -> None:
        text = self.images_row.text()
        if text and Path(text).expanduser().is_dir():
            self._suggest_folders(Path(text))

    def _suggest_folders(self, images: Path) -> None:
        """Fill empty fields from the usual layout: photos/ with trimaps/ (or masks/) beside it.

        The output folder proposed is ``<photos>-matted`` next to the photos, as an absolute path.
        """
        images = Path(absolute_path(images))
        if not self.partners_row.text():
            name = "masks" if self.masks_radio.isChecked() else "trimaps"
            beside = images.parent / name
            if beside.is_dir():
                self.partners_row.set_text(str(beside))
        if not self.output_row.text():
            self.output_row.set_text(str(images.parent / f"{images.name}-matted"))

    def outputs(self) -> tuple[str, ...]:
        checks = ((self.alpha_check, "alpha"), (self.cutout_check, "cutout"), (self.composite_check, "composite"))
        return tuple(kind for check, kind in checks if check.isChecked())

    def background_spec(self) -> str | None:
        """The ``--background`` value for composites (None when no composite is written)."""
        if not self.composite_check.isChecked():
            return None
        kind = self.bg_kind.currentData()
        if kind == dialogs.BG_CHECKERBOARD:
            return "checkerboard"
        if kind == dialogs.BG_IMAGE:
            return self.bg_image.text().strip()
        return self._bg_color.name()

    def request(self) -> BatchRequest:
        """The run the widgets describe (no checks; see ``problem``)."""
        name = str(self.engine.currentData() or OFFLINE_DEFAULT)
        return BatchRequest(
            images_dir=self.images_row.text(),
            partners_dir=self.partners_row.text(),
            use_masks=self.masks_radio.isChecked(),
            out_dir=self.output_row.text(),
            outputs=self.outputs(),
            band=self.band.value(),
            background=self.background_spec(),
            depth=int(self.depth.currentData()),
            engine=EngineChoice(name, self.engine_options(name)),
            recursive=self.recursive_check.isChecked(),
            overwrite=self.overwrite_check.isChecked(),
            retry_failed=self.retry_check.isChecked(),
            decontaminate=self.decontaminate.strength(),
        )

    def problem(self) -> str | None:
        """What is missing before a run can start (checked on the GUI thread: no disk access)."""
        if not self.images_row.text():
            return "Choose the folder of photos."
        if not self.partners_row.text():
            return f"Choose the folder of {'masks' if self.masks_radio.isChecked() else 'trimaps'}."
        if not self.output_row.text():
            return "Choose the output folder."
        if not self.outputs():
            return "Choose at least one output: alpha matte, RGBA cutout or composite."
        if (self.composite_check.isChecked() and self.bg_kind.currentData() == dialogs.BG_IMAGE
                and not self.bg_image.text().strip()):
            return "Choose a background image for the composites."
        if self.engine.currentData() is None:
            return "No matting engine is available."
        return None

    # -- settings --------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        if s is None:
            return
        # Absolute folders only: a relative one (an older version's) would depend on the current directory.
        self.images_row.set_text(s.get_folder(_KEY + "images"))
        self.partners_row.set_text(s.get_folder(_KEY + "partners"))
        self.output_row.set_text(s.get_folder(_KEY + "output"))
        (self.masks_radio if s.get_bool(_KEY + "masks", False) else self.trimaps_radio).setChecked(True)
        self.band.setValue(s.get_int(_KEY + "band", 10, 0, 500))
        kinds = set(s.get_list(_KEY + "outputs"))
        if kinds:  # the outputs chosen last time; else what the preview shows (already set)
            self.alpha_check.setChecked("alpha" in kinds)
            self.cutout_check.setChecked("cutout" in kinds)
            self.composite_check.setChecked("composite" in kinds)
            self.bg_kind.setCurrentIndex(max(0, self.bg_kind.findData(s.get_str(_KEY + "background_kind"))))
            color = QColor(s.get_str(_KEY + "background_color", "#ffffff"))
            self._bg_color = color if color.isValid() else QColor("#ffffff")
            self._update_color_button()
            self.bg_image.setText(s.get_folder(_KEY + "background_image"))
        self.depth.setCurrentIndex(1 if s.get_int(_KEY + "depth", 8) == 16 else 0)
        self.recursive_check.setChecked(s.get_bool(_KEY + "recursive", False))

    def _save_settings(self, request: BatchRequest) -> None:
        s = self.settings
        if s is None:
            return
        s.set_folder(_KEY + "images", request.images_dir)
        s.set_folder(_KEY + "partners", request.partners_dir)
        s.set_folder(_KEY + "output", request.out_dir)
        s.set(_KEY + "masks", request.use_masks)
        s.set(_KEY + "band", request.band)
        s.set(_KEY + "outputs", list(request.outputs))
        s.set(_KEY + "background_kind", str(self.bg_kind.currentData()))
        s.set(_KEY + "background_color", self._bg_color.name())
        s.set_folder(_KEY + "background_image", self.bg_image.text().strip())
        s.set(_KEY + "depth", request.depth)
        s.set(_KEY + "engine", request.engine.name)
        s.set(_KEY + "recursive", request.recursive)
        s.sync()

    # -- running ------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.run_id is not None

    def start(self) -> int | None:
        """Start a run in the worker; returns its id, or None when something is missing."""
        if self.is_running():
            return None
        problem = self.problem()
        if problem:
            dialogs.show_error(self, "Process a folder", problem)
            return None
        request = self.request()
        self._images_dir = request.images_dir
        self._save_settings(request)
        self._stop = threading.Event()
        stop = self._stop
        self.report = None
        self.report_path = None
        self.table.setRowCount(0)
        self._rows.clear()
        self._total = self._done = 0
        self._current = ""
        self.progress.setRange(0, 0)  # busy until the plan says how many files there are
        self.progress.setFormat("")
        self.current_label.setText("Starting…")
        self.summary_label.setText("")
        self.run_id = self.worker.submit(lambda ctx: run_batch_job(ctx, request, stop), supersedable=False)
        self._sync_controls()
        return self.run_id

    def stop(self) -> None:
        """Abandon the current file and stop; the rest are listed as not processed."""
        if not self.is_running():
            return
        self._stop.set()
        self.current_label.setText("Stopping…")
        self._sync_controls()

    def _on_partial(self, request_id: int, payload: object) -> None:
        if request_id != self.run_id:
            return
        if isinstance(payload, BatchEvent):
            self._on_event(payload)
        elif isinstance(payload, BatchPlanned):
            self._show_plan(payload)
        elif isinstance(payload, BatchPhase) and not self._stop.is_set():
            self.current_label.setText(payload.text)

    def _show_plan(self, planned: BatchPlanned) -> None:
        self.worker_thread_ident = planned.thread_ident
        self.report_path = planned.report_path
        self._total = len(planned.rows)
        self.progress.setRange(0, max(1, self._total) * PROGRESS_STEPS)
        self.progress.setValue(0)
        self._set_progress_text()
        self.table.setUpdatesEnabled(False)
        self.table.setRowCount(len(planned.rows))
        for row, (name, _status, _reason) in enumerate(planned.rows):
            self._rows[name] = row
            item = QTableWidgetItem(name)
            item.setToolTip(name)
            self.table.setItem(row, COL_FILE, item)
            self._set_row(row, WAITING, "", "")
        self.table.setUpdatesEnabled(True)
        self._sync_controls()  # the output folder exists now: it can be opened

    def _on_event(self, event: BatchEvent) -> None:
        if event.total and event.total != self._total:
            self._total = event.total
            self.progress.setRange(0, event.total * PROGRESS_STEPS)
        self._done = event.done
        kind = event.kind
        if kind == BatchEventKind.FILE_STARTED:
            self._current = event.name
            row = self._rows.get(event.name)
            if row is not None:
                self._set_row(row, WORKING, "", "")
                self.table.scrollToItem(self.table.item(row, COL_FILE),
                                        QAbstractItemView.ScrollHint.EnsureVisible)
            if not self._stop.is_set():
                self.current_label.setText(f"Matting {event.name}")
            self._advance(event.done * PROGRESS_STEPS)
        elif kind == BatchEventKind.FILE_PROGRESS:
            self._advance(int(event.done * PROGRESS_STEPS + event.fraction * (PROGRESS_STEPS - 1)))
            if not self._stop.is_set():
                self.current_label.setText(f"Matting {event.name} ({event.fraction:.0%})")
        elif kind in _EVENT_STATUS:
            status = _EVENT_STATUS[kind]
            row = self._rows.get(event.name)
            if row is not None:
                seconds = _format_seconds(event.seconds) if status == FileStatus.DONE else ""
                details = self._outputs_text(event.name) if status == FileStatus.DONE else event.reason
                self._set_row(row, status, seconds, self._short_reason(event.name, details), details)
            self._advance(event.done * PROGRESS_STEPS)
        self._set_progress_text()

    def _advance(self, value: int) -> None:
        # Never backwards: a file's outputs are written while the next file starts, so the
        # count of finished files in a "file-started" event can lag the progress already shown.
        if value > self.progress.value():
            self.progress.setValue(value)

    def _short_reason(self, name: str, reason: str) -> str:
        """The reason without the photo's full path in front (the File column names it)."""
        if self._images_dir:
            prefix = f"{Path(self._images_dir) / name}: "
            if reason.startswith(prefix):
                return reason[len(prefix):]
        return reason

    def _outputs_text(self, name: str) -> str:
        stem = Path(name).stem
        return ", ".join(f"{stem}_{kind}.png" for kind in self.outputs())

    def _set_progress_text(self) -> None:
        self.progress.setFormat(f"{self._done} of {self._total} files  (%p%)")

    def _set_row(self, row: int, status: str, seconds: str, details: str, full: str = "") -> None:
        color = _STATUS_COLOR[status]
        status_item = QTableWidgetItem(_dot_icon(color), _STATUS_TEXT[status])
        status_item.setData(Qt.ItemDataRole.UserRole, str(status))
        if status in (FileStatus.FAILED, FileStatus.NOT_PROCESSED):
            status_item.setForeground(color)
        time_item = QTableWidgetItem(seconds)
        time_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        details_item = QTableWidgetItem(details)
        # The reason may be long (it names folders): the tooltip shows all of it.
        full = full or details
        tip = f"{_STATUS_TEXT[status]}: {full}" if full else _STATUS_TEXT[status]
        for item in (status_item, details_item):
            item.setToolTip(tip)
        file_item = self.table.item(row, COL_FILE)
        if file_item is not None:
            file_item.setToolTip(f"{file_item.text()}\n{tip}")
        self.table.setItem(row, COL_STATUS, status_item)
        self.table.setItem(row, COL_TIME, time_item)
        self.table.setItem(row, COL_DETAILS, details_item)
        if self.only_problems.isChecked():
            self.table.setRowHidden(row, status in (FileStatus.DONE, FileStatus.SKIPPED))

    def _apply_filter(self) -> None:
        only = self.only_problems.isChecked()
        for row in range(self.table.rowCount()):
            self.table.setRowHidden(row, only and self.row_status(row) in (FileStatus.DONE, FileStatus.SKIPPED))

    def row_status(self, row: int) -> str:
        """The state of one row: waiting, working, done, skipped, failed or not-processed."""
        item = self.table.item(row, COL_STATUS)
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def results(self) -> dict[str, tuple[str, str]]:
        """{file: (state, details)} as the list shows them."""
        out = {}
        for name, row in self._rows.items():
            details = self.table.item(row, COL_DETAILS)
            out[name] = (self.row_status(row), details.text() if details is not None else "")
        return out

    def _end_run(self) -> None:
        self.run_id = None
        self._current = ""
        self._sync_controls()

    def _on_finished(self, request_id: int, result: object) -> None:
        if request_id != self.run_id:
            return
        assert isinstance(result, BatchReport)
        self.report = result
        self.report_path = str(result.path) if result.path is not None else self.report_path
        totals = result.totals()
        self._done = totals["images"]
        self.progress.setValue(self.progress.maximum())
        self._set_progress_text()
        parts = [f"{totals['done']} done", f"{totals['skipped']} skipped", f"{totals['failed']} failed"]
        if totals["not_processed"]:
            parts.append(f"{totals['not_processed']} not processed")
        counts = ", ".join(parts)
        if result.cancelled or result.interrupted:
            head = "Stopped"
            tail = " Start again to continue: finished files are skipped."
        else:
            head = "Finished"
            tail = " Tick “Retry only the failed files” to redo the failures." if totals["failed"] else ""
        self.current_label.setText(f"{head}: {counts} ({result.seconds:.1f} s, {result.engine}).")
        ignored = len(result.plan.ignored)
        note = f" {ignored} file(s) that are not images were ignored." if ignored else ""
        note += "".join(f" Note: {warning}." for warning in result.plan.warnings)
        self.summary_label.setText(f"Report: {self.report_path}.{tail}{note}")
        self._end_run()

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id != self.run_id:
            return
        message = error.message if isinstance(error, JobError) else str(error)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.current_label.setText("Not started: see the message." if not self._rows else "Failed.")
        self.summary_label.setText(message)
        self._end_run()
        dialogs.show_error(self, "Process a folder", message)

    def _on_cancelled(self, request_id: int) -> None:
        # Only when the worker itself shut down (the application is quitting).
        if request_id == self.run_id:
            self.current_label.setText("Stopped.")
            self._end_run()

    # -- other buttons ---------------------------------------------------------------------------

    def open_output_folder(self) -> None:
        out = self.output_row.text()
        if not out or not Path(out).is_dir():
            dialogs.show_error(self, "Open output folder", f"{out or 'The output folder'} does not exist yet.")
            return
        if not open_folder(out):
            dialogs.show_error(self, "Open output folder", f"Could not open {out} in the file manager.")

    def _confirm_stop(self) -> bool:
        """Closing while a run goes on: stop it (True) or keep the dialog open (False)."""
        if not self.is_running():
            return True
        if not dialogs.ask_yes_no(
            self, "Stop the batch?",
            "A folder is being processed. Stop it and close?\n\nFinished files are kept and the "
            "report is written; start the same batch again later to continue.",
        ):
            return False
        self.stop()
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        if self._confirm_stop():
            event.accept()
        else:
            event.ignore()

    def reject(self) -> None:
        # Escape goes through reject(), not closeEvent: ask the same question.
        if self._confirm_stop():
            super().reject()

    def _on_quit(self) -> None:
        # The worker is a daemon thread: give it a moment to abandon the file and write the report.
        # Stopping abandons the current file at once; waiting a little lets the report be written.
        running = self.is_running()
        self._stop.set()
        self.worker.shutdown()
        if running:
            self.worker.join(5.0)


def open_batch_dialog(window: QMainWindow | QWidget | None, settings: Settings | None = None) -> BatchDialog:
    """Show the window's batch dialog (created on first use, then reused so a run stays visible).

    Defaults come from the window: its settings, engine, weights and device, and
    its preview pane (the outputs it shows, when none were remembered, and the
    decontamination strength).
    """
    dialog = window.findChild(BatchDialog) if window is not None else None
    if dialog is None:
        pane = getattr(window, "preview_pane", None)
        color = getattr(pane, "color", None)
        dialog = BatchDialog(
            window,
            settings if settings is not None else getattr(window, "settings", None),
            engine=getattr(window, "engine_name", None),
            weights=getattr(window, "weights", None),
            device=getattr(window, "device", None),
            preview_mode=getattr(pane, "mode", None),
            preview_color=color.name() if isinstance(color, QColor) else None,
            preview_background=getattr(pane, "background_path", None) or None,
            decontamination=getattr(pane, "decontamination", None),
        )
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
