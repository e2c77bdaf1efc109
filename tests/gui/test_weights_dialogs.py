"""The Weights menu (pytest-qt, offscreen): import, download (local server), cancel, errors, info.

The checkpoints come from the builders of the core tests (``test_importers``
and ``test_download``); downloads go to a local HTTP server on 127.0.0.1.
The user data folder is a temporary folder (``DIM_STUDIO_DATA_DIR``).
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QMainWindow, QMenu, QPushButton

from dim_studio.gui import dialogs, weights_dialogs
from dim_studio.gui.jobs import app_events
from dim_studio.gui.weights_dialogs import WeightsActions, install_weights_menu
from dim_studio.net import download as download_module
from dim_studio.net import weights as weights_module
from test_download import checkpoint, server  # noqa: F401 - shared pytest fixtures
from test_importers import openmmlab_state_dict

TIMEOUT = 120_000  # ms: converting a full-size (random) DIM checkpoint on a small shared machine


class Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.messages: list[tuple[str, str, str]] = []
        self.open_path: str | None = None
        self.changed: list[Path] = []
        monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: self.errors.append((title, msg)))
        monkeypatch.setattr(dialogs, "show_info", lambda parent, title, msg: self.infos.append((title, msg)))
        monkeypatch.setattr(dialogs, "ask_yes_no", lambda parent, title, text: True)
        monkeypatch.setattr(dialogs, "get_open_path", self._open)
        monkeypatch.setattr(weights_dialogs, "show_weights_message",
                            lambda parent, title, text, details="": self.messages.append((title, text, details)))

    def _open(self, parent, title, folder, file_filter=""):
        assert "*.pth" in file_filter and "*.safetensors" in file_filter and "*.npz" in file_filter
        return self.open_path


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    return Recorder(monkeypatch)


@pytest.fixture
def window(qtbot, recorder):
    win = QMainWindow()
    qtbot.addWidget(win)
    menu = QMenu("&Weights", win)
    win.menuBar().addMenu(menu)
    install_weights_menu(win, menu)
    # Installs are announced application-wide; the recorder listens like any window would.
    app_events().weightsChanged.connect(recorder.changed.append)
    win.weights_menu = menu
    return win


def trigger(window: QMainWindow, text: str):
    """Click the menu entry whose text starts with ``text``; returns the job it started."""
    action = next(a for a in window.weights_menu.actions() if a.text().replace("&", "").startswith(text))
    action.trigger()
    return window.findChild(WeightsActions).job


def test_menu_has_the_three_actions(window):
    texts = [a.text().replace("&", "") for a in window.weights_menu.actions() if not a.isSeparator()]
    assert texts == ["Import weights file…", "Download published DIM weights…", "Show weights info"]


def test_import_openmmlab_checkpoint_installs_into_the_user_data_folder(qtbot, tmp_path, window, recorder):
    src = tmp_path / "my_dim.pth"
    # The core tests' builder (published key names and shapes); float16 halves what is written.
    state = openmmlab_state_dict(3, dtype=torch.float16)
    torch.save({"state_dict": state, "meta": {"iter": 1000}}, src)
    del state
    recorder.open_path = str(src)

    job = trigger(window, "Import")
    with qtbot.waitSignal(job.completed, timeout=TIMEOUT) as signal:
        pass
    installed = tmp_path / "data" / "my_dim.safetensors"
    assert recorder.errors == []
    assert signal.args == [installed] and installed.is_file()
    assert recorder.changed == [installed]
    title, text, details = recorder.messages[-1]
    assert title == "Weights installed" and str(installed) in text
    assert "openmmlab" in details and "Parameters:" in details
    info = weights_module.read_weights_info(installed)
    assert info.provenance["source"] == "openmmlab" and info.config.refine

    # Show weights info now finds it.
    trigger(window, "Show weights info")
    qtbot.waitUntil(lambda: len(recorder.messages) == 2, timeout=TIMEOUT)
    title, text, details = recorder.messages[-1]
    assert str(installed) in text and "Provenance:" in details

    # A file that is not a checkpoint: a clear error, nothing installed, no callback.
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint", encoding="utf-8")
    recorder.open_path = str(bad)
    job = trigger(window, "Import")
    with qtbot.waitSignal(job.completed, timeout=TIMEOUT) as signal:
        pass
    assert signal.args == [None]
    assert recorder.errors and recorder.errors[-1][0] == "Import weights" and "notes.pth" in recorder.errors[-1][1]
    assert not (tmp_path / "data" / "notes.safetensors").exists()
    assert recorder.changed == [installed]


def test_import_cancelled_in_the_file_dialog_does_nothing(window, recorder):
    recorder.open_path = None
    assert trigger(window, "Import") is None
    assert recorder.errors == [] and recorder.changed == []


def test_show_weights_info_without_weights_says_how_to_get_them(qtbot, window, recorder):
    trigger(window, "Show weights info")
    qtbot.waitUntil(lambda: bool(recorder.errors), timeout=TIMEOUT)
    title, message = recorder.errors[-1]
    assert "No weights found" in message and "Weights > Download published DIM weights" in message
    assert "Weights > Import weights file" in message and "dim-studio" not in message


# -------------------------------------------------------------------------- download




def publish_at(monkeypatch, url: str) -> None:
    """Make the menu's "published" address point to ``url``."""
    spec = download_module.KNOWN_DOWNLOADS["dim-stage3"]
    monkeypatch.setitem(download_module.KNOWN_DOWNLOADS, "dim-stage3", dataclasses.replace(spec, url=url))


def test_download_completes_at_100_percent_and_installs(qtbot, tmp_path, window, recorder, server, checkpoint,
                                                       monkeypatch):
    data, name = checkpoint
    publish_at(monkeypatch, server.url(name))
    job = trigger(window, "Download")
    assert job.progress.isVisible() and job.progress.maximum() == 100
    with qtbot.waitSignal(job.completed, timeout=TIMEOUT) as signal:
        pass
    installed = tmp_path / "data" / "dim-stage3.safetensors"
    assert recorder.errors == []
    assert signal.args == [installed] and installed.is_file()
    assert job.percent == 100 and job.final_value == 100
    assert recorder.changed == [installed]
    assert "verified and installed" in recorder.messages[-1][1]
    assert "openmmlab" in recorder.messages[-1][2]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dim-stage3.safetensors"]  # no .part


def test_cancelled_download_installs_nothing_and_can_resume(qtbot, tmp_path, window, recorder, server, checkpoint,
                                                            monkeypatch):
    data, name = checkpoint
    publish_at(monkeypatch, server.url(name))
    # Hold the download after its first progress report until the test has pressed Cancel,
    # so the cancel lands mid-download however fast the local server is.
    gate = threading.Event()
    real = download_module.download_checkpoint

    def gated(*args, progress=None, **kwargs):
        def report(fraction):
            progress(fraction)
            if fraction < 1.0:
                gate.wait(30)

        return real(*args, progress=report, **kwargs)

    monkeypatch.setattr(download_module, "download_checkpoint", gated)
    job = trigger(window, "Download")
    qtbot.waitUntil(lambda: job.percent > 0, timeout=TIMEOUT)
    assert job.progress.value() == job.percent < 100
    cancel_button = job.progress.findChild(QPushButton)
    cancel_button.click()
    gate.set()
    with qtbot.waitSignal(job.completed, timeout=TIMEOUT) as signal:
        pass
    assert signal.args == [None] and job.was_cancelled
    assert recorder.errors == [] and recorder.changed == []
    title, message = recorder.infos[-1]
    assert title == "Download cancelled" and "resume" in message
    folder = tmp_path / "data"
    assert not (folder / "dim-stage3.safetensors").exists()
    parts = list(folder.glob("*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(data)


def test_network_error_shows_the_download_error(qtbot, window, recorder, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    publish_at(monkeypatch, f"http://127.0.0.1:{port}/dim_stage3-0123456789abcdef.pth")
    job = trigger(window, "Download")
    with qtbot.waitSignal(job.completed, timeout=TIMEOUT):
        pass
    title, message = recorder.errors[-1]
    assert title == "Download failed" and "could not reach 127.0.0.1" in message
    # The advice names this window's menu, not a shell command.
    assert "Weights > Import weights file" in message and "dim-studio weights" not in message
    assert recorder.changed == []
