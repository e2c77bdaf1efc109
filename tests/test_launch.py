"""Starting the program as a desktop user does: a photo as the only argument,
a machine whose Qt cannot open a window, and ``--self-test`` on an installation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dim_studio.gui import platform_check
from dim_studio.gui.platform_check import APT_LINE, platform_problem
from dim_studio.resources import SAMPLE_IMAGE, SAMPLE_TRIMAP

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list:
    """The arguments the window would have been opened with (no window is shown)."""
    calls: list = []
    import dim_studio.gui.app as app

    monkeypatch.setattr(app, "run_app", lambda args: calls.append(args) or 0)
    return calls


@pytest.mark.parametrize("argv", [
    ["PHOTO"],
    ["PHOTO", "--trimap", "TRIMAP"],
    ["--trimap", "TRIMAP", "PHOTO"],
    ["--max-megapixels", "50", "PHOTO", "--trimap", "TRIMAP"],
])
def test_a_photo_as_the_only_argument_opens_the_window_on_it(opened: list, run_cli, argv: list[str]) -> None:
    words = [str(SAMPLE_IMAGE) if w == "PHOTO" else str(SAMPLE_TRIMAP) if w == "TRIMAP" else w for w in argv]
    result = run_cli(*words)
    assert result.code == 0, result.err
    assert len(opened) == 1
    assert opened[0].image == str(SAMPLE_IMAGE)
    assert opened[0].trimap == (str(SAMPLE_TRIMAP) if "TRIMAP" in argv else None)


def test_commands_and_program_options_are_not_taken_for_photos(opened: list, run_cli, tmp_path: Path) -> None:
    result = run_cli("matte", SAMPLE_IMAGE, "--trimap", SAMPLE_TRIMAP, "--engine", "closed-form",
                     "-o", tmp_path / "a.png")
    assert result.code == 0, result.err
    assert (tmp_path / "a.png").is_file() and not opened
    assert run_cli("--version").out.startswith("dim-studio ")
    assert run_cli().code == 0 and opened[-1].image is None  # no argument: the empty window


def test_a_missing_system_library_is_named_with_the_apt_line(tmp_path: Path) -> None:
    (tmp_path / "platforms").mkdir()
    (tmp_path / "platforms" / "libqxcb.so").write_bytes(b"")

    def load(path: str) -> None:
        raise OSError(f"{path}: libxcb-icccm.so.4: cannot open shared object file: No such file or directory")

    problem = platform_problem({"DISPLAY": ":0"}, load=load, plugins=tmp_path)
    assert problem is not None and "libxcb-icccm.so.4 is missing" in problem
    assert APT_LINE in problem and "libxcb-icccm4" in APT_LINE
    assert platform_problem({"DISPLAY": ":0"}, load=lambda p: None, plugins=tmp_path, connect=False) is None


def test_no_display_and_offscreen(tmp_path: Path) -> None:
    assert "no display" in platform_problem({}, plugins=tmp_path)
    assert "offscreen platform plugin is missing" in platform_problem({"QT_QPA_PLATFORM": "offscreen"},
                                                                       plugins=tmp_path)
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None  # this installation has it
    assert platform_check.qt_platform({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_the_window_without_a_display_is_one_line_not_an_abort(tmp_path: Path) -> None:
    env = _env(QT_QPA_PLATFORM=None, DISPLAY=None, WAYLAND_DISPLAY=None)
    done = subprocess.run([sys.executable, "-m", "dim_studio", str(SAMPLE_IMAGE)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dim-studio: error: there is no display")


@pytest.mark.slow
def test_self_test_passes_on_this_installation_and_reports_what_it_found(tmp_path: Path) -> None:
    # The session's compiled kernels: a fresh cache would spend a minute compiling.
    env = _env(QT_QPA_PLATFORM="offscreen", DIM_STUDIO_CACHE_DIR=str(ROOT / ".pytest_cache" / "dim-studio"))
    done = subprocess.run([sys.executable, "-m", "dim_studio", "--self-test"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("ok    packages: DIM Studio", "ok    Qt: PySide6", "ok    bundled sample: lemur.png 680x440",
                 "ok    default engine: ifm matted the sample", "ok    device: CPU",
                 "note  network weights: No weights found"):
        assert line in out
    assert out.strip().endswith("self-test passed")


def test_self_test_names_what_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dim_studio.workflows import selftest

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DIM_STUDIO_CACHE_DIR", str(blocked))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    cache = selftest.check_numba_cache()
    assert not cache.ok and str(blocked) in cache.detail and "DIM_STUDIO_CACHE_DIR" in cache.detail
    engine = selftest.check_engine(None)
    assert not engine.ok and "sample could not be read" in engine.detail
    assert not selftest.passed([cache, engine])
    assert cache.line().startswith("FAIL  compilation cache: ")


def test_engine_help_names_the_real_offline_default(run_cli) -> None:
    # The help text names the default without importing the engines (fast --help).
    from dim_studio.workflows.engine_choice import OFFLINE_DEFAULT, choose_engine

    result = run_cli("matte", "--help")
    assert f"else {OFFLINE_DEFAULT})" in " ".join(result.out.split())
    assert choose_engine(None).name == OFFLINE_DEFAULT  # no weights in the test's user folders
