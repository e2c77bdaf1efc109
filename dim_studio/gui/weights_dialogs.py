"""The Weights menu: import a weights file, download the published DIM weights, show info.

The same library calls as ``dim-studio weights import|download|info``
(``net.importers.import_weights``, ``net.download.download_checkpoint``,
``net.weights.read_weights_info``), each run off the GUI thread:

- Import converts a checkpoint (OpenMMLab .pth, torchvision VGG-16 .pth, the
  seed's .npz) into ``<user data folder>/<stem>.safetensors``; a .safetensors
  file already in DIM Studio's format is checked and copied there. A busy
  indicator shows while it works (import has no progress or cancel hooks).
- Download shows a progress dialog with the percentage and Cancel. Cancel
  keeps the partial file, so choosing Download again resumes; a network error
  shows ``DownloadError``'s message, which says what to do.
- After a successful import or download ``on_weights_changed(path)`` is
  called so the window can look for weights again and offer the ``dim``
  engine; any open batch dialog re-checks its engine list too.

Nothing here imports torch on the GUI thread: the ``net`` modules that need it
are imported inside the background jobs. Messages go through ``dialogs``
(looked up at call time) and ``show_weights_message``, so tests replace them.
"""

from __future__ import annotations

import html
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QProgressDialog, QWidget

from dim_studio.errors import WeightsError
from dim_studio.paths import user_data_dir

from . import dialogs
from .worker import JobContext, JobError, MattingWorker, TaskRunner

__all__ = [
    "WEIGHTS_FILTER", "DownloadJob", "ImportJob", "WeightsActions", "download_published_weights",
    "import_weights_file", "install_weights_menu", "show_weights_info", "show_weights_message",
]

WEIGHTS_FILTER = (
    "Weights files (*.pth *.pt *.safetensors *.npz);;PyTorch checkpoints (*.pth *.pt);;"
    "DIM Studio weights (*.safetensors);;NumPy archives (*.npz);;All files (*)"
)
DOWNLOAD_NAME = "dim-stage3"

WeightsChanged = Callable[[Path], None]


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


def _notify(parent: QWidget | None, on_weights_changed: WeightsChanged | None, path: Path) -> None:
    """Tell the window, and any open batch dialog, that weights were installed."""
    if on_weights_changed is not None:
        on_weights_changed(path)
    if parent is not None:
        from .batch_dialog import BatchDialog

        for dialog in parent.findChildren(BatchDialog):
            dialog.refresh_weights()


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


def _install_file(src: Path, dst: Path) -> tuple[Path, str]:
    """Convert (or check and copy) ``src`` to ``dst``; returns (dst, summary). Worker thread."""
    from dim_studio.net.importers import import_weights
    from dim_studio.net.weights import describe_format, load_weights, read_weights_info

    if not src.is_file():
        raise WeightsError(f"{src} does not exist")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if describe_format(src) == "safetensors":
        # Already DIM Studio's format: loading it checks every key and shape before it is installed.
        load_weights(src)
        if src.resolve() != dst.resolve():
            tmp = dst.with_name(f".{dst.name}.copying")
            try:
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
            finally:
                tmp.unlink(missing_ok=True)
    else:
        import_weights(src, dst)
    return dst, read_weights_info(dst).describe()


class ImportJob(QObject):
    """One import running in the background; ``completed`` carries the installed path or None."""

    completed = Signal(object)

    def __init__(self, parent: QWidget | None, src: Path, dst: Path, on_weights_changed: WeightsChanged | None) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.src, self.dst = src, dst
        self.on_weights_changed = on_weights_changed
        self.installed: Path | None = None
        self.error: str | None = None
        self.progress = _busy_dialog(parent, "Import weights", f"Converting {src.name}…", None)
        self.progress.setRange(0, 0)  # no progress hooks in the importer: a busy bar
        self.progress.show()
        self.tasks = TaskRunner(self, name="dim-studio-weights-import")
        self.tasks.submit(lambda: _install_file(src, dst), self._on_done, self._on_error)

    def _finish(self) -> None:
        self.progress.close()
        self.progress.deleteLater()
        self.tasks.shutdown()

    def _on_done(self, result: object) -> None:
        self._finish()
        path, summary = result  # type: ignore[misc]
        self.installed = Path(path)
        _notify(self.parent_widget, self.on_weights_changed, self.installed)
        show_weights_message(
            self.parent_widget, "Weights installed",
            f"{self.src.name} was installed as {self.installed}. The dim engine can use it now.",
            summary,
        )
        self.completed.emit(self.installed)

    def _on_error(self, error: object) -> None:
        self._finish()
        self.error = error.message if isinstance(error, JobError) else str(error)
        dialogs.show_error(self.parent_widget, "Import weights", self.error)
        self.completed.emit(None)


def import_weights_file(
    parent: QWidget | None, on_weights_changed: WeightsChanged | None = None, src: str | Path | None = None
) -> ImportJob | None:
    """Ask for a checkpoint (unless ``src`` is given) and install it into the user data folder."""
    if src is None:
        chosen = dialogs.get_open_path(parent, "Import weights file", str(Path.home()), WEIGHTS_FILTER)
        if not chosen:
            return None
        src = chosen
    src_path = Path(src)
    dst = user_data_dir() / f"{src_path.stem}.safetensors"
    if dst.exists() and dst.resolve() != src_path.resolve() and not dialogs.ask_yes_no(
        parent, "Replace weights?", f"{dst} already exists. Replace it with {src_path.name}?"
    ):
        return None
    return ImportJob(parent, src_path, dst, on_weights_changed)


# --------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------


def _download(ctx: JobContext, name: str) -> tuple[Path, str]:
    """Worker thread: download, verify, convert, install; returns (path, summary)."""
    from dim_studio.net import download as download_module
    from dim_studio.net.weights import read_weights_info

    # Looked up on the module at run time, so a test can wrap it.
    path = download_module.download_checkpoint(name, progress=ctx.progress, cancel=ctx.cancelled)
    return path, read_weights_info(path).describe()


def _describe(path: Path) -> str:
    try:
        from dim_studio.net.weights import read_weights_info

        return read_weights_info(path).describe()
    except Exception as exc:  # noqa: BLE001 - a summary is never worth an error box
        return str(exc)


class DownloadJob(QObject):
    """One download with its progress dialog; ``completed`` carries the installed path or None."""

    completed = Signal(object)

    def __init__(self, parent: QWidget | None, on_weights_changed: WeightsChanged | None, name: str = DOWNLOAD_NAME) -> None:
        super().__init__(parent)
        from dim_studio.net.download import KNOWN_DOWNLOADS

        spec = KNOWN_DOWNLOADS[name]
        self.parent_widget = parent
        self.on_weights_changed = on_weights_changed
        self.installed: Path | None = None
        self.error: str | None = None
        self.was_cancelled = False
        self.percent = 0  # the highest percentage shown
        self.final_value = 0
        self._installing = False
        self._started = time.time()
        self._target = user_data_dir() / spec.install_as
        self.progress = _busy_dialog(
            parent, "Download DIM weights",
            f"Downloading OpenMMLab's published DIM weights (about {spec.approx_mb} MB)…", "Cancel",
        )
        self.progress.canceled.connect(self.cancel)
        self.progress.show()
        self.worker = MattingWorker(self)
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
        path, summary = result  # type: ignore[misc]
        self.installed = Path(path)
        self._finish()
        _notify(self.parent_widget, self.on_weights_changed, self.installed)
        show_weights_message(
            self.parent_widget, "Weights installed",
            f"The DIM weights were downloaded, verified and installed as {self.installed}. "
            "The dim engine can use them now.",
            summary,
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
            self._on_finished(request_id, (self._target, _describe(self._target)))
            return
        self.was_cancelled = True
        self._finish()
        dialogs.show_info(
            self.parent_widget, "Download cancelled",
            "The download was cancelled. The part already downloaded is kept in "
            f"{user_data_dir()}: choose Download again to resume where it stopped.",
        )
        self.completed.emit(None)


def download_published_weights(
    parent: QWidget | None, on_weights_changed: WeightsChanged | None = None, name: str = DOWNLOAD_NAME
) -> DownloadJob | None:
    """Download, verify and install the published DIM weights with a progress dialog."""
    from dim_studio.net.download import KNOWN_DOWNLOADS

    installed = user_data_dir() / KNOWN_DOWNLOADS[name].install_as
    if installed.exists() and not dialogs.ask_yes_no(
        parent, "Download again?",
        f"The published weights are already installed ({installed}). Download them again?",
    ):
        return None
    return DownloadJob(parent, on_weights_changed, name)


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------


def _weights_summary() -> tuple[str, str, bool]:
    """(text, details, found) about the weights the app would use. Worker thread (imports torch)."""
    from dim_studio.net.weights import find_weights, how_to_get_weights, read_weights_info, weights_search_locations

    path = find_weights()
    if path is None:
        places = "\n".join(f"{label}: {place}" for label, place in weights_search_locations())
        return "No weights found for the dim engine.", f"Looked in:\n{places}\n\n{how_to_get_weights()}", False
    return f"The dim engine uses {path}.", read_weights_info(path).describe(), True


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

    def __init__(self, window: QMainWindow, on_weights_changed: WeightsChanged) -> None:
        super().__init__(window)
        self.main_window = window
        self.on_weights_changed = on_weights_changed
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
        self.job = import_weights_file(self.main_window, self.on_weights_changed)
        return self.job

    def download(self) -> Any:
        self.job = download_published_weights(self.main_window, self.on_weights_changed)
        return self.job

    def info(self) -> Any:
        self.job = show_weights_info(self.main_window)
        return self.job


def install_weights_menu(window: QMainWindow, menu: QMenu, on_weights_changed: WeightsChanged) -> None:
    """Add Import / Download / Show info to ``menu``; ``on_weights_changed(path)`` runs after an install.

    The ``WeightsActions`` object is a child of ``window`` (find it with
    ``window.findChild(WeightsActions)``).
    """
    actions = WeightsActions(window, on_weights_changed)
    menu.addAction(actions.import_action)
    menu.addAction(actions.download_action)
    menu.addSeparator()
    menu.addAction(actions.info_action)
