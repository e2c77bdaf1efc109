"""Weights > Teach it this photo (fine-tune): train the network on the window's photo.

The dialog (non-modal) gathers the target alpha, the starting weights and the
length of the run, then runs ``run_finetune_on_photo`` in its own ``JobLane``
(never the preview lane), so the window keeps painting and previewing:

- Target "the current result (after your trimap corrections)": the job first
  computes the alpha at FULL resolution with the window's engine and the
  window's current trimap (a ``TrimapSnapshot`` taken when Start is pressed),
  exactly as File > Export would (``engine.estimate`` on the whole photo).
  The preview's alpha is not used: it may have been solved on a downscaled
  photo. The same trimap goes to the fine-tune as the user's trimap.
- Target "a ground-truth file": read and size-checked like
  ``workflows.finetune.run_finetune`` does; the window's trimap is used when
  it is ready to matte, else the fine-tune derives one from the alpha.
- Training: ``training.finetune.finetune`` with the job's cancel flag;
  its ``FinetuneProgress`` reports arrive through the lane's ``partial``
  signal and feed the progress bar, the loss curve and the status line.
  Cancel stops at the next step; the best weights so far are still written.
- The weights are written into a private temporary folder under the user
  data folder; "Save…" installs them (``install_weights``, in a
  ``TaskRunner``) under a name the user confirms, asking before replacing a
  file, then ``announce_weights_changed``. "Use now" saves first if needed,
  then ``MainWindow.use_weights`` switches the dim engine to the file.

torch is imported only inside the job (and the tasks), never on the GUI thread.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDialog, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
    QLabel, QLineEdit, QProgressBar, QPushButton, QRadioButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)

from dim_studio.paths import user_data_dir
from dim_studio.workflows.finetune import (
    FinetuneOutcome, FinetuneStage, PhotoFinetuneRequest, run_finetune_on_photo,
)
from dim_studio.workflows.jobs import JobError
from dim_studio.workflows.weights import InstalledWeights, install_weights

from . import dialogs
from .jobs import JobLane, TaskRunner, announce_weights_changed
from .weights_chooser import fill_weights_combo, load_known_weights

__all__ = ["DEFAULT_STEPS", "FinetuneDialog", "LossCurve", "open_finetune_dialog"]

DEFAULT_STEPS = 200
SAFETENSORS_FILTER = "DIM Studio weights (*.safetensors);;All files (*)"
NO_WEIGHTS = ""  # the combo's data for "none (start from scratch)"


# --------------------------------------------------------------------------
# the job (Qt-free: it could move to workflows/finetune.py as is)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# the loss curve
# --------------------------------------------------------------------------


class LossCurve(QWidget):
    """The training loss per step as a polyline, with its axes labelled (no QtCharts needed)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[tuple[int, float]] = []
        self.setMinimumSize(320, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def add_point(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            return  # step 0 (measuring) and a broken update carry no loss worth drawing
        if self.points and self.points[-1][0] == step:
            self.points[-1] = (step, loss)
        else:
            self.points.append((step, float(loss)))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        font = QFont(painter.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        left = metrics.horizontalAdvance("0.0000") + 10
        bottom = metrics.height() + 8
        plot = QRectF(left, 8, max(10.0, self.width() - left - 10), max(10.0, self.height() - bottom - 8 - metrics.height()))
        text_color = palette.text().color()
        painter.setPen(QPen(text_color, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignHCenter, "step")
        painter.drawText(QRectF(0, 0, left - 4, metrics.height()), Qt.AlignmentFlag.AlignRight, "loss")
        if not self.points:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "the loss appears here while training")
            painter.end()
            return
        steps = [p[0] for p in self.points]
        losses = [p[1] for p in self.points]
        s0, s1 = min(steps), max(steps)
        lo, hi = min(losses), max(losses)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5 * abs(lo or 1.0), hi + 0.5 * abs(hi or 1.0)
        painter.drawText(QRectF(0, plot.top(), left - 4, metrics.height()),
                         Qt.AlignmentFlag.AlignRight, f"{hi:.4g}")
        painter.drawText(QRectF(0, plot.bottom() - metrics.height(), left - 4, metrics.height()),
                         Qt.AlignmentFlag.AlignRight, f"{lo:.4g}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignLeft, str(s0))
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignRight, str(s1))

        def to_xy(step: int, loss: float) -> QPointF:
            x = plot.left() + (0.5 if s1 == s0 else (step - s0) / (s1 - s0)) * plot.width()
            y = plot.bottom() - (loss - lo) / (hi - lo) * plot.height()
            return QPointF(x, y)

        line = QPolygonF([to_xy(s, v) for s, v in self.points])
        painter.setPen(QPen(QColor(palette.highlight().color()), 1.5))
        if len(self.points) == 1:
            painter.drawEllipse(line[0], 2.5, 2.5)
        else:
            painter.drawPolyline(line)
        painter.end()


# --------------------------------------------------------------------------
# the dialog
# --------------------------------------------------------------------------


def _format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class FinetuneDialog(QDialog):
    """Teach the network the window's current photo; Start / Cancel / Save… / Use now / Close.

    ``options`` (a ``training.finetune.FinetuneOptions``) overrides the
    defaults of the training itself (sample size, device, evaluation
    interval): tests pass small samples; the steps or minutes always come
    from the dialog's widgets.
    """

    #: the job ended (FinetuneOutcome, or None when it failed or was cancelled before training)
    done = Signal(object)
    #: the list of starting weights arrived
    weightsListed = Signal()
    #: Save installed the weights (Path)
    saved = Signal(object)

    def __init__(self, window: Any, *, options: Any = None) -> None:
        super().__init__(window)
        self.window_ = window
        self.options = options
        self.setWindowTitle("Teach it this photo (fine-tune)")
        self.setModal(False)
        self.image: np.ndarray = window.image
        self.image_path: str = window.image_path
        self.stem = Path(self.image_path).stem
        self.lane = JobLane(self, "finetune")
        self.tasks = TaskRunner(self, name="dim-studio-finetune-tasks")
        self.run_id: int | None = None
        self.outcome: FinetuneOutcome | None = None
        self.saved_path: Path | None = None
        self.last_progress: Any = None
        self.progress_updates = 0
        self.weights_loaded = False
        self._work_dir: Path | None = None
        self._use_after_save = False
        self._saving = False
        self._minutes: float | None = None
        self._build()
        self._connect()
        self._sync()
        load_known_weights(self.tasks, getattr(window, "weights", None), self._on_weights_listed,
                           self._on_weights_list_failed)

    # -- layout -----------------------------------------------------------------------

    def _build(self) -> None:
        name = Path(self.image_path).name
        intro = QLabel(f"Train the network on <b>{name}</b> so it mattes this photo (and similar ones) "
                       "better. The window stays usable while it trains.")
        intro.setWordWrap(True)

        target = QGroupBox("Learn this alpha")
        self.current_radio = QRadioButton("The current result (after your trimap corrections)")
        self.current_radio.setToolTip("Computed at full resolution with the window's engine and trimap")
        self.file_radio = QRadioButton("A ground-truth file:")
        self.alpha_edit = QLineEdit()
        self.alpha_edit.setPlaceholderText("the correct alpha matte of this photo (PNG)")
        self.alpha_browse = QPushButton("Browse…")
        self.target_group = QButtonGroup(self)
        self.target_group.addButton(self.current_radio)
        self.target_group.addButton(self.file_radio)
        self.current_radio.setChecked(True)
        tgrid = QGridLayout(target)
        tgrid.addWidget(self.current_radio, 0, 0, 1, 3)
        tgrid.addWidget(self.file_radio, 1, 0)
        tgrid.addWidget(self.alpha_edit, 1, 1)
        tgrid.addWidget(self.alpha_browse, 1, 2)

        setup = QGroupBox("Training")
        form = QFormLayout(setup)
        self.base_combo = QComboBox()
        self.base_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.base_combo.addItem("none (start from scratch)", NO_WEIGHTS)
        form.addRow("Starting weights:", self.base_combo)
        self.steps_radio = QRadioButton("Steps:")
        self.minutes_radio = QRadioButton("Minutes:")
        self.length_group = QButtonGroup(self)
        self.length_group.addButton(self.steps_radio)
        self.length_group.addButton(self.minutes_radio)
        self.steps_radio.setChecked(True)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1_000_000)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.1, 24 * 60)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(5.0)
        length = QHBoxLayout()
        length.addWidget(self.steps_radio)
        length.addWidget(self.steps_spin)
        length.addSpacing(12)
        length.addWidget(self.minutes_radio)
        length.addWidget(self.minutes_spin)
        length.addStretch(1)
        form.addRow("Train for:", length)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.curve = LossCurve()
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop at the next step; the best weights so far are kept")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Install the tuned weights into your weights folder")
        self.use_button = QPushButton("Use now")
        self.use_button.setToolTip("Save the tuned weights (if not yet saved) and matte with them")
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.save_button, self.use_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(target)
        layout.addWidget(setup)
        layout.addWidget(self.progress)
        layout.addWidget(self.curve, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.resize(560, 560)

    def _connect(self) -> None:
        self.target_group.buttonToggled.connect(self._sync)
        self.length_group.buttonToggled.connect(self._sync)
        self.alpha_edit.textChanged.connect(self._sync)
        self.alpha_browse.clicked.connect(self._browse_alpha)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.save)
        self.use_button.clicked.connect(self.use_now)
        self.close_button.clicked.connect(self.close)
        self.lane.partial.connect(self._on_partial)
        self.lane.progressed.connect(self._on_progressed)
        self.lane.finished.connect(self._on_finished)
        self.lane.failed.connect(self._on_failed)
        self.lane.cancelled.connect(self._on_cancelled)

    # -- state ------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.run_id is not None

    def has_result(self) -> bool:
        return self.outcome is not None and Path(self.outcome.result.out).is_file()

    def _sync(self, *_: object) -> None:
        running = self.is_running()
        for widget in (self.current_radio, self.file_radio, self.base_combo, self.steps_radio, self.minutes_radio):
            widget.setEnabled(not running)
        self.alpha_edit.setEnabled(not running and self.file_radio.isChecked())
        self.alpha_browse.setEnabled(not running and self.file_radio.isChecked())
        self.steps_spin.setEnabled(not running and self.steps_radio.isChecked())
        self.minutes_spin.setEnabled(not running and self.minutes_radio.isChecked())
        self.start_button.setEnabled(not running and not self._saving)
        self.cancel_button.setEnabled(running)
        self.save_button.setEnabled(not running and not self._saving and self.has_result())
        self.use_button.setEnabled(not running and not self._saving and self.has_result())

    def _browse_alpha(self) -> None:
        path = dialogs.get_open_path(self, "Ground-truth alpha", str(Path(self.image_path).parent))
        if path:
            self.alpha_edit.setText(path)
            self.file_radio.setChecked(True)

    def _on_weights_listed(self, known: object) -> None:
        current = self.base_combo.currentData()
        fill_weights_combo(self.base_combo, list(known),  # type: ignore[arg-type]
                           select=current or getattr(self.window_, "weights", None),
                           extra=(("none (start from scratch)", NO_WEIGHTS),))
        self.weights_loaded = True
        self.weightsListed.emit()

    def _on_weights_list_failed(self, error: JobError) -> None:
        self.weights_loaded = True
        self.status.setText(f"Could not list the weights files: {error.message}")
        self.weightsListed.emit()

    def select_base(self, path: str | Path | None) -> bool:
        """Choose the starting weights by path (None: from scratch); False when not listed."""
        from .weights_chooser import same_file

        for index in range(self.base_combo.count()):
            data = self.base_combo.itemData(index)
            if (path is None and data == NO_WEIGHTS) or (path is not None and same_file(data, path)):
                self.base_combo.setCurrentIndex(index)
                return True
        return False

    # -- running ------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why Start cannot run now (GUI thread, no disk access beyond a file test), or None."""
        if self.file_radio.isChecked():
            if not self.alpha_edit.text().strip():
                return "Choose the ground-truth alpha file, or learn the current result."
            if not Path(self.alpha_edit.text().strip()).is_file():
                return f"{self.alpha_edit.text().strip()} does not exist."
        else:
            hint = self.window_._current_hint() if hasattr(self.window_, "_current_hint") else ""
            if hint:
                return f"The trimap is not ready to matte, so there is no current result to learn. {hint}"
        return None

    def spec(self) -> PhotoFinetuneRequest:
        """The job the widgets describe (takes the window's trimap snapshot and engine now)."""
        window = self.window_
        use_file = self.file_radio.isChecked()
        trimap = None
        if not use_file or not window._current_hint():
            trimap = window.canvas.document.snapshot()
        if self._work_dir is None:
            folder = user_data_dir()
            folder.mkdir(parents=True, exist_ok=True)
            self._work_dir = Path(tempfile.mkdtemp(prefix=".finetune-", dir=folder))
        out = self._work_dir / f"{self.stem}-tuned.safetensors"
        minutes = self.minutes_spin.value() if self.minutes_radio.isChecked() else None
        return PhotoFinetuneRequest(
            image=self.image, image_path=self.image_path, out=str(out),
            alpha_path=self.alpha_edit.text().strip() if use_file else None,
            trimap=trimap, engine=None if use_file else window.engine_choice(),
            weights=self.base_combo.currentData() or None,
            steps=None if minutes is not None else self.steps_spin.value(), minutes=minutes,
            options=self.options,
        )

    def start(self) -> int | None:
        if self.is_running():
            return None
        problem = self.problem()
        if problem:
            dialogs.show_error(self, "Fine-tune", problem)
            return None
        try:
            spec = self.spec()
        except Exception as exc:  # noqa: BLE001 - e.g. the user data folder cannot be created
            dialogs.show_error(self, "Fine-tune", str(exc))
            return None
        self.outcome = None
        self.saved_path = None
        self.last_progress = None
        self.progress_updates = 0
        self.curve.clear()
        self.progress.setValue(0)
        self.summary.setText("")
        self.status.setText("Starting…")
        self._minutes = spec.minutes
        self.run_id = self.lane.submit(lambda ctx: run_finetune_on_photo(ctx, spec), supersedable=False)
        self._sync()
        return self.run_id

    def cancel(self) -> None:
        """Stop at the next step; the best weights so far are still written."""
        if self.run_id is not None:
            self.status.setText("Stopping at the next step…")
            self.lane.cancel(self.run_id)

    def _on_partial(self, request_id: int, payload: object) -> None:
        if request_id != self.run_id:
            return
        if isinstance(payload, FinetuneStage):
            self.status.setText(payload.message[:1].upper() + payload.message[1:] + "…")
            return
        update: Any = payload
        self.last_progress = update
        self.progress_updates += 1
        self.curve.add_point(update.step, update.loss)
        if update.total:
            self.progress.setValue(int(round(1000 * min(1.0, update.step / update.total))))
        elif self._minutes:
            self.progress.setValue(int(round(1000 * min(1.0, update.elapsed / (60.0 * self._minutes)))))
        if update.message and update.step == 0:
            self.status.setText(update.message[:1].upper() + update.message[1:] + "…")
            return
        total = f"/{update.total}" if update.total else ""
        text = (f"Step {update.step}{total} · loss {_fmt(update.loss, 4)} · best SAD {_fmt(update.best_sad)}"
                f" · ETA {_format_eta(update.eta)}")
        if update.message:
            text += f"\n{update.message}"
        self.status.setText(text)

    def _on_progressed(self, request_id: int, fraction: float) -> None:
        if request_id == self.run_id and self.last_progress is None:
            self.progress.setValue(int(round(1000 * fraction)))

    def _end_run(self) -> None:
        self.run_id = None
        self._sync()

    def _on_finished(self, request_id: int, result: object) -> None:
        if request_id != self.run_id:
            return
        assert isinstance(result, FinetuneOutcome)
        self.outcome = result
        r = result.result
        for step, loss in enumerate(r.losses, start=1):
            if not self.curve.points or step > self.curve.points[-1][0]:
                self.curve.add_point(step, loss)
        if not r.cancelled:
            self.progress.setValue(1000)
        closed = f" (closed-form {_fmt(result.closed_form_sad)})" if result.closed_form_sad is not None else ""
        text = f"SAD before {_fmt(r.sad_before)} -> after {_fmt(r.sad_after)}{closed}"
        lines = [text]
        if r.cancelled:
            lines.append(f"Cancelled after {r.steps} steps; the best weights (step {r.best_step}) are kept.")
            self.status.setText("Cancelled: the best weights so far can be saved.")
        else:
            self.status.setText(f"Done: {r.steps} steps in {_format_eta(r.seconds)}.")
        lines.extend(r.notes)
        self.summary.setText("\n".join(lines))
        self._end_run()
        self.done.emit(result)

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id != self.run_id:
            return
        self._end_run()
        message = error.message if isinstance(error, JobError) else str(error)
        self.status.setText("The fine-tune failed.")
        dialogs.show_error(self, "Fine-tune failed", message)
        self.done.emit(None)

    def _on_cancelled(self, request_id: int) -> None:
        if request_id != self.run_id:
            return
        self._end_run()
        self.status.setText("Cancelled before training started: there are no weights to save.")
        self.done.emit(None)

    # -- save / use ---------------------------------------------------------------------------

    def default_save_path(self) -> Path:
        return user_data_dir() / f"{self.stem}-tuned.safetensors"

    def save(self) -> bool:
        """Ask for a name (default ``<stem>-tuned.safetensors`` in the weights folder) and install the file there.

        Installing runs in the background; ``saved`` is emitted when the file is in place.
        Returns False when nothing is being saved (no result, the user said no).
        """
        if not self.has_result() or self._saving:
            return False
        chosen = dialogs.get_save_path(self, "Save tuned weights", str(self.default_save_path()), SAFETENSORS_FILTER)
        if not chosen:
            self._use_after_save = False
            return False
        dst = Path(chosen)
        if dst.suffix != ".safetensors":
            dst = dst.with_name(dst.name + ".safetensors")
        if dst.exists() and not dialogs.ask_yes_no(self, "Replace weights?", f"{dst} already exists. Replace it?"):
            self._use_after_save = False
            return False
        src = Path(self.outcome.result.out)  # type: ignore[union-attr]
        self._saving = True
        self.status.setText(f"Saving {dst.name}…")
        self._sync()
        self.tasks.submit(lambda: install_weights(src, dst), self._on_saved, self._on_save_failed)
        return True

    def _on_saved(self, installed: object) -> None:
        self._saving = False
        assert isinstance(installed, InstalledWeights)
        self.saved_path = installed.path
        self.status.setText(f"Saved as {installed.path}.")
        self._sync()
        announce_weights_changed(installed.path)
        self.saved.emit(installed.path)
        if self._use_after_save:
            self._use_after_save = False
            self._use(installed.path)

    def _on_save_failed(self, error: object) -> None:
        self._saving = False
        self._use_after_save = False
        self._sync()
        message = error.message if isinstance(error, JobError) else str(error)
        self.status.setText("Saving failed.")
        dialogs.show_error(self, "Save tuned weights", message)

    def use_now(self) -> bool:
        """Save (when not saved yet) and make the window's dim engine use the tuned weights."""
        if self.saved_path is not None and self.saved_path.is_file():
            self._use(self.saved_path)
            return True
        self._use_after_save = True
        return self.save()

    def _use(self, path: Path) -> None:
        use = getattr(self.window_, "use_weights", None)
        if use is not None:
            use(path)
        self.status.setText(f"The dim engine now uses {path.name}.")

    # -- closing ---------------------------------------------------------------------------

    def _cleanup(self) -> None:
        if self._work_dir is not None and not self.is_running() and self.lane.is_idle():
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _confirm_close(self) -> bool:
        """Closing: stop a running fine-tune, or discard unsaved weights, only when the user agrees."""
        if self._saving:
            self.status.setText("Saving the weights: the dialog closes once they are in place.")
            return False  # the install must finish and be announced
        if self.is_running():
            if not dialogs.ask_yes_no(self, "Stop training?",
                                      "The fine-tune is still running. Stop it and close? "
                                      "Its weights are lost unless you save them first."):
                return False
            self.lane.cancel(self.run_id)
            self.run_id = None
        elif self.has_result() and self.saved_path is None:
            if not dialogs.ask_yes_no(self, "Discard tuned weights?",
                                      "The tuned weights are not saved. Close and discard them?"):
                return False
        self.tasks.shutdown()
        self.lane.shutdown()
        self._cleanup()
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        # Not QDialog.closeEvent: it would call reject() and ask again.
        if not self.isVisible() or self._confirm_close():
            event.accept()
        else:
            event.ignore()

    def reject(self) -> None:
        # Escape goes through reject(), not closeEvent: the same questions.
        if self._confirm_close():
            super().reject()


def open_finetune_dialog(window: Any, *, options: Any = None) -> FinetuneDialog | None:
    """Open the fine-tune dialog for ``window``'s current photo (one per window; a running one is shown)."""
    if getattr(window, "image", None) is None or not getattr(window, "image_path", None):
        dialogs.show_error(window, "Fine-tune", "Open a photo first.")
        return None
    existing = window.findChild(FinetuneDialog)
    if existing is not None and (existing.is_running()
                                 or (existing.isVisible() and existing.image_path == window.image_path)):
        existing.show()
        existing.raise_()
        existing.activateWindow()
        return existing
    if existing is not None:
        if existing.isVisible() and not existing.close():
            return existing  # the user kept the unsaved weights of another photo
        existing.setParent(None)
        existing.deleteLater()
    dialog = FinetuneDialog(window, options=options)
    dialog.show()
    return dialog
