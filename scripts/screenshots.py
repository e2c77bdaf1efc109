#!/usr/bin/env python3
"""Make the documentation screenshots (offscreen, with throw-away settings).

    .venv/bin/python scripts/screenshots.py            # all of them
    .venv/bin/python scripts/screenshots.py main_window

Each screenshot is one function registered with ``@screenshot("name")``; it
gets the QApplication and the output folder and returns the file it wrote.
To add one (the batch dialog, say), write another such function.

The offscreen platform draws text with whatever fonts fontconfig finds; if
the PNGs show boxes instead of letters, install a font first, e.g.
``apt-get install -y fonts-dejavu-core``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "dim_studio" / "resources" / "samples"
OUT = ROOT / "docs" / "screenshots"
WINDOW_SIZE = (1400, 850)

ShotFn = Callable[["QApplication", Path], Path]  # noqa: F821 - imported lazily
SHOTS: dict[str, ShotFn] = {}


def screenshot(name: str) -> Callable[[ShotFn], ShotFn]:
    def register(fn: ShotFn) -> ShotFn:
        SHOTS[name] = fn
        return fn

    return register


def wait_until(app: "QApplication", condition: Callable[[], bool], timeout: float = 60.0) -> None:  # noqa: F821
    """Run the event loop until ``condition`` holds (the GUI stays live meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not reach the expected state in time")
        app.processEvents()
        time.sleep(0.01)


def settle(app: "QApplication", seconds: float = 0.3) -> None:  # noqa: F821
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def paint_stroke(window: "MainWindow", points: list[tuple[float, float]], label: int, radius: float) -> None:  # noqa: F821
    """A brush stroke through the document, as the canvas does it (one undo step)."""
    doc = window.canvas.document
    window.canvas.strokeStarted.emit()
    doc.begin_stroke()
    for p0, p1 in zip(points[:-1], points[1:]):
        doc.paint_segment(p0, p1, radius, label)
    doc.end_stroke("Paint")


@screenshot("main_window")
def main_window(app: "QApplication", out: Path) -> Path:  # noqa: F821
    """The sample photo with its trimap, a touch-up stroke, and the cutout preview."""
    from dim_studio.gui.main_window import MainWindow
    from dim_studio.gui.preview import CHECKERBOARD
    from dim_studio.trimap import FOREGROUND

    window = MainWindow()  # probes devices and weights, as on a user's machine
    window.resize(*WINDOW_SIZE)
    window.show()
    wait_until(app, lambda: window.environment is not None)
    window.preview_pane.set_mode(CHECKERBOARD)
    assert window.open_image(str(SAMPLES / "lemur.png"), str(SAMPLES / "lemur_trimap.png"))
    # A visible edit, so the title shows unsaved changes and undo has an entry.
    paint_stroke(window, [(300, 300), (330, 320), (360, 330)], FOREGROUND, 12)
    window.preview.request_now()
    wait_until(app, lambda: window.preview.last_result is not None
               and window.preview.last_result.foreground is not None and window.preview_lane.is_idle())
    window.canvas.zoom_fit()
    settle(app)
    path = out / "main_window.png"
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    window.canvas.document.mark_saved()  # no "unsaved changes" prompt on close
    window.close()
    return path


@screenshot("quick_select")
def quick_select(app: "QApplication", out: Path) -> Path:  # noqa: F821
    """The quick start: the sample photo with no trimap, one box dragged round the lemur (Q)."""
    from dim_studio.gui.main_window import MainWindow
    from dim_studio.gui.preview import CHECKERBOARD

    window = MainWindow()
    window.resize(*WINDOW_SIZE)
    window.show()
    wait_until(app, lambda: window.environment is not None)
    window.preview_pane.set_mode(CHECKERBOARD)
    assert window.open_image(str(SAMPLES / "lemur.png"))
    window.canvas.set_tool("box")
    window.quick_select.select_box((150, 40, 600, 440))  # what a drag round the lemur gives
    wait_until(app, lambda: window.quick_select.active and not window.quick_select.busy, timeout=120)
    window.preview.request_now()
    wait_until(app, lambda: window.preview.last_result is not None
               and window.preview.last_result.foreground is not None and window.preview_lane.is_idle(),
               timeout=120)
    window.canvas.zoom_fit()
    settle(app)
    path = out / "quick_select.png"
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    window.canvas.document.mark_saved()
    window.close()
    return path


@screenshot("batch_dialog")
def batch_dialog(app: "QApplication", out: Path) -> Path:  # noqa: F821
    """The batch dialog after a run on a small mixed folder: successes and failures."""
    import shutil

    from dim_studio.gui.batch_dialog import BatchDialog

    folder = Path(tempfile.mkdtemp(prefix="dim-studio-batch-"))
    photos, trimaps = folder / "photos", folder / "trimaps"
    photos.mkdir()
    trimaps.mkdir()
    for name in ("lemur_001", "lemur_002", "lemur_003"):
        shutil.copy(SAMPLES / "lemur.png", photos / f"{name}.png")
        shutil.copy(SAMPLES / "lemur_trimap.png", trimaps / f"{name}_trimap.png")
    shutil.copy(SAMPLES / "lemur.png", photos / "no_trimap_yet.png")  # reported: no trimap
    (photos / "notes.png").write_text("not a photo")  # reported: not a readable image
    shutil.copy(SAMPLES / "lemur_trimap.png", trimaps / "notes_trimap.png")

    dialog = BatchDialog(None, None)
    dialog.images_row.set_text(str(photos))
    dialog.partners_row.set_text(str(trimaps))
    dialog.output_row.set_text(str(folder / "matted"))
    dialog.cutout_check.setChecked(True)
    dialog.resize(900, 720)
    dialog.show()
    dialog.start()
    wait_until(app, lambda: not dialog.is_running(), timeout=300)
    settle(app)
    path = out / "batch_dialog.png"
    if not dialog.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    dialog.close()
    shutil.rmtree(folder, ignore_errors=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"screenshots to make (default: all of {', '.join(SHOTS)})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SHOTS]
    if unknown:
        parser.error(f"unknown screenshot(s): {', '.join(unknown)}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Screenshots must not read or change the user's settings, autosaves or weights choice.
    scratch = tempfile.mkdtemp(prefix="dim-studio-shots-")
    os.environ["DIM_STUDIO_CONFIG_DIR"] = os.path.join(scratch, "config")
    os.environ["DIM_STUDIO_DATA_DIR"] = os.path.join(scratch, "data")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["dim-studio-screenshots"])
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(SHOTS):
        print(f"wrote {SHOTS[name](app, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
