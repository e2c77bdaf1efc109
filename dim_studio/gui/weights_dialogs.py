"""The Weights menu: import a weights file, download the published DIM weights, show info.

The same workflow calls as ``dim-studio weights import|download|info``
(``workflows.weights.install_weights``, ``download_weights`` and
``weights_status``), each run off the GUI thread:

- Import converts a checkpoint (OpenMMLab .pth, torchvision VGG-16 .pth,
  VGG-16 weights in .npz format) into ``<user data folder>/<stem>.safetensors``; a .safetensors
  file already in DIM Studio's format is checked and copied there. A busy
  indicator shows while it works (import has no progress or cancel hooks).
- Download shows a progress dialog with the percentage and Cancel. Cancel
  keeps the partial file, so choosing Download again resumes; a network error
  shows ``DownloadError``'s message, which says what to do in terms of this
  menu's entries (``net.download.gui_message``), not shell commands.
- After a successful import or download, ``announce_weights_changed(path)``
  tells the whole application: the window looks for weights again and
  offers the ``dim`` engine, open batch dialogs re-check their engine list,
  and every lane drops its cached engines.

Nothing here imports torch on the GUI thread: the workflows import it inside
the background jobs. Messages go through ``dialogs`` and
``show_weights_message``, so tests replace them.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QProgressDialog, QWidget

from dim_studio.paths import user_data_dir
from dim_studio.workflows.jobs import JobContext, JobError
from dim_studio.workflows.weights import (
    InstalledWeights, describe_weights, download_target, download_weights, install_target,
    install_weights, weights_status,
)

from . import dialogs
from .jobs import JobLane, TaskRunner, announce_weights_changed

__all__ = [
    "WEIGHTS_FILTER", "DownloadJob", "ImportJob", "WeightsActions", "download_published_weights",
    "import_weights_file", "install_weights_menu", "show_weights_info", "show_weights_message",
]

WEIGHTS_FILTER = (
    "Weights files (*.pth *.pt *.safetensors *.npz);;PyTorch checkpoints (*.pth *.pt);;"
    "DIM Studio weights (*.safetensors);;NumPy archives (*.npz);;All files (*)"
)
DOWNLOAD_NAME = "dim-stage3"


def show_weights_message(parent: QWidget | None, title: str, text: str, details: str = "") -> None:
    """An information box; ``details`` (a weights summary) is shown in a fixed-width font.

    ``WeightsInfo.describe()`` aligns its values in columns, which a
    proportional font would scramble.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setTextFormat(Qt.TextFormat.RichText)
    body = f"<p>{html.escape(text)}</p>"
    if details:
        body += f"<pre style='font-size: small'>{html.escape(details)}</pre>"
    box.setText(body)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()


def _busy_dialog(parent: QWidget | None, title: str, text: str, cancel: str | None) -> QProgressDialog:
    dialog = QProgressDialog(text, cancel or "", 0, 100, parent)
    if cancel is None:
        dialog.setCancelButton(None)
    dialog.setWindowTitle(title)
    # Not modal: the user can go on painting while weights arrive.
    dialog.setWindowModality(Qt.WindowModality.NonModal)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setMinimumWidth(420)
    return dialog


# --------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------


class ImportJob(QObject):
    """One import running in the background; ``completed`` carries the installed path or None."""

    completed = Signal(object)

    def __init__(self, parent: QWidget | None, src: Path, dst: Path) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.src, self.dst = src, dst
        self.installed: Path | None = None
        self.error: str | None = None
        self.progress = _busy_dialog(parent, "Import weights", f"Converting {src.name}…", None)
        self.progress.setRange(0, 0)  # no progress hooks in the importer: a busy bar
        self.progress.show()
        self.tasks = TaskRunner(self, name="dim-studio-weights-import")
        self.tasks.submit(lambda: install_weights(src, dst), self._on_done, self._on_error)

    def _finish(self) -> None:
        self.progress.close()
        self.progress.deleteLater()
        self.tasks.shutdown()

    def _on_done(self, result: object) -> None:
        self._finish()
        assert isinstance(result, InstalledWeights)
        self.installed = result.path
        announce_weights_changed(self.installed)
        show_weights_message(
            self.parent_widget, "Weights installed",
            f"{self.src.name} was installed as {self.installed}. The dim engine can use it now.",
            result.summary,
        )
        self.completed.emit(self.installed)

    def _on_error(self, error: object) -> None:
        self._finish()
        self.error = error.message if isinstance(error, JobError) else str(error)
        dialogs.show_error(self.parent_widget, "Import weights", self.error)
        self.completed.emit(None)


def import_weights_file(parent: QWidget | None, src: str | Path | None = None) -> ImportJob | None:
    """Ask for a checkpoint (unless ``src`` is given) and install it into the user data folder."""
    if src is None:
        chosen = dialogs.get_open_path(parent, "Import weights file", str(Path.home()), WEIGHTS_FILTER)
        if not chosen:
            return None
        src = chosen
    src_path = Path(src)
    dst = install_target(src_path)
    if dst.exists() and dst.resolve() != src_path.resolve() and not dialogs.ask_yes_no(
        parent, "Replace weights?", f"{dst} already exists. Replace it with {src_path.name}?"
    ):
        return None
    return ImportJob(parent, src_path, dst)


# --------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------


def _download(ctx: JobContext, name: str) -> InstalledWeights:
    from dim_studio.errors import DownloadError
    from dim_studio.net.download import gui_message

    try:
        return download_weights(name, progress=ctx.progress, cancel=ctx.cancelled)
    except DownloadError as exc:
        # The same advice, naming this menu's entries instead of shell commands.
        raise DownloadError(gui_message(exc)) from exc


class DownloadJob(QObject):
    """One download with its progress dialog; ``completed`` carries the installed path or None."""

    completed = Signal(object)

    def __init__(self, parent: QWidget | None, name: str = DOWNLOAD_NAME) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.installed: Path | None = None
        self.error: str | None = None
        self.was_cancelled = False
        self.percent = 0  # the highest percentage shown
        self.final_value = 0
        self._installing = False
        self._started = time.time()
        from dim_studio.net.download import KNOWN_DOWNLOADS  # no torch: the spec table only

        self._target = download_target(name)
        self.progress = _busy_dialog(
            parent, "Download DIM weights",
            f"Downloading OpenMMLab's published DIM weights (about {KNOWN_DOWNLOADS[name].approx_mb} MB)…",
            "Cancel",
        )
        self.progress.canceled.connect(self.cancel)
        self.progress.show()
        self.worker = JobLane(self, "download")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.request_id = self.worker.submit(lambda ctx: _download(ctx, name), supersedable=False)

    def cancel(self) -> None:
        """Stop the download; the part already fetched is kept for a resume."""
        self.progress.setLabelText("Cancelling…")
        self.worker.cancel(self.request_id)

    def _on_progress(self, request_id: int, fraction: float) -> None:
        if request_id != self.request_id:
            return
        self.percent = max(self.percent, int(round(100 * fraction)))
        self.progress.setValue(self.percent)
        if fraction >= 1.0 and not self._installing:
            # Every byte is here; checking the sha256 and converting take a few seconds more
            # and cannot be interrupted, so Cancel would only mislead.
            self._installing = True
            self.progress.setLabelText("Verifying and installing the weights…")
            self.progress.setCancelButton(None)

    def _finish(self) -> None:
        self.final_value = self.progress.value()  # what the dialog showed last (tests, logs)
        self.progress.canceled.disconnect(self.cancel)  # closing the dialog emits canceled
        self.progress.close()
        self.progress.deleteLater()
        self.worker.shutdown()

    def _on_finished(self, request_id: int, result: object) -> None:
        if request_id != self.request_id:
            return
        assert isinstance(result, InstalledWeights)
        self.installed = result.path
        self._finish()
        announce_weights_changed(self.installed)
        show_weights_message(
            self.parent_widget, "Weights installed",
            f"The DIM weights were downloaded, verified and installed as {self.installed}. "
            "The dim engine can use them now.",
            result.summary,
        )
        self.completed.emit(self.installed)

    def _on_failed(self, request_id: int, error: object) -> None:
        if request_id != self.request_id:
            return
        self._finish()
        # DownloadError's message already says what to do (offline, resume, import by hand).
        self.error = error.message if isinstance(error, JobError) else str(error)
        dialogs.show_error(self.parent_widget, "Download failed", self.error)
        self.completed.emit(None)

    def _on_cancelled(self, request_id: int) -> None:
        if request_id != self.request_id:
            return
        if self._target.exists() and self._target.stat().st_mtime >= self._started - 1.0:
            # Cancel was pressed as the last step finished: the weights are installed after all.
            self._on_finished(request_id, InstalledWeights(self._target, describe_weights(self._target)))
            return
        self.was_cancelled = True
        self._finish()
        dialogs.show_info(
            self.parent_widget, "Download cancelled",
            "The download was cancelled. The part already downloaded is kept in "
            f"{user_data_dir()}: choose Download again to resume where it stopped.",
        )
        self.completed.emit(None)


def download_published_weights(parent: QWidget | None, name: str = DOWNLOAD_NAME) -> DownloadJob | None:
    """Download, verify and install the published DIM weights with a progress dialog."""
    installed = download_target(name)
    if installed.exists() and not dialogs.ask_yes_no(
        parent, "Download again?",
        f"The published weights are already installed ({installed}). Download them again?",
    ):
        return None
    return DownloadJob(parent, name)


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------


def _weights_summary() -> tuple[str, str, bool]:
    """(text, details, found) about the weights the app would use. Task thread (imports torch)."""
    status = weights_status()
    if status.unusable is not None:
        return "The dim engine cannot use its weights file.", status.explain(gui=True), False
    if status.path is None:
        return "No weights found for the dim engine.", status.explain(gui=True), False
    return f"The dim engine uses {status.path}.", describe_weights(status.path), True


class _InfoJob(QObject):
    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.tasks = TaskRunner(self, name="dim-studio-weights-info")
        self.tasks.submit(_weights_summary, self._on_done, self._on_error)

    def _on_done(self, result: object) -> None:
        self.tasks.shutdown()
        text, details, found = result  # type: ignore[misc]
        if found:
            show_weights_message(self.parent_widget, "Weights", text, details)
        else:
            dialogs.show_error(self.parent_widget, "Weights", f"{text}\n\n{details}")
        self.deleteLater()

    def _on_error(self, error: object) -> None:
        self.tasks.shutdown()
        dialogs.show_error(self.parent_widget, "Weights", error.message if isinstance(error, JobError) else str(error))
        self.deleteLater()


def show_weights_info(parent: QWidget | None) -> QObject:
    """Describe the weights the dim engine would use (or say how to get some)."""
    return _InfoJob(parent)


# --------------------------------------------------------------------------
# the menu
# --------------------------------------------------------------------------


class WeightsActions(QObject):
    """The three actions, owned by the window; the last started job is kept in ``job``."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.main_window = window
        self.job: QObject | None = None
        self.import_action = QAction("&Import weights file…", window)
        self.import_action.setStatusTip("Convert a DIM checkpoint (.pth, .npz) or install a .safetensors file")
        self.import_action.triggered.connect(self.import_file)
        self.download_action = QAction("&Download published DIM weights…", window)
        self.download_action.setStatusTip("Download OpenMMLab's DIM stage-3 weights (about 100 MB), "
                                          "verify and install them")
        self.download_action.triggered.connect(self.download)
        self.info_action = QAction("Show weights &info", window)
        self.info_action.setStatusTip("Which weights the dim engine uses, and where they came from")
        self.info_action.triggered.connect(self.info)

    def import_file(self) -> Any:
        self.job = import_weights_file(self.main_window)
        return self.job

    def download(self) -> Any:
        self.job = download_published_weights(self.main_window)
        return self.job

    def info(self) -> Any:
        self.job = show_weights_info(self.main_window)
        return self.job


def install_weights_menu(window: QMainWindow, menu: QMenu) -> None:
    """Add Import / Download / Show info to ``menu``; installs announce ``weightsChanged``.

    The ``WeightsActions`` object is a child of ``window`` (find it with
    ``window.findChild(WeightsActions)``).
    """
    actions = WeightsActions(window)
    menu.addAction(actions.import_action)
    menu.addAction(actions.download_action)
    menu.addSeparator()
    menu.addAction(actions.info_action)
