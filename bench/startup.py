#!/usr/bin/env python3
"""Start-up time: how long the user waits, on the first launch and on every later one.

    .venv/bin/python bench/startup.py [--runs 3] [--cases version,matte,window]

Every measurement is a fresh Python process, timed from its start to its
exit with ``time.perf_counter`` in this process:

- ``version``: ``dim-studio --version``;
- ``matte``: ``dim-studio matte`` on the bundled sample (lemur, 680x440) with
  ``--engine closed-form``, writing the alpha to a temporary folder;
- ``window``: the desktop application as ``dim-studio SAMPLE --trimap
  SAMPLE_TRIMAP --engine closed-form`` starts it (offscreen Qt): command line,
  window, photo, trimap, until the first final preview is shown; the process
  then ends at once (``os._exit``), so closing the window is not counted.

**cold** is the first run with an empty Numba cache folder (a fresh
``DIM_STUDIO_CACHE_DIR``): PyMatting's kernels are compiled, as on a fresh
install. **warm** is the median of ``--runs`` later runs with the same
folder, as on every later launch. Operating-system file caches are warm in
both (this script has already read the libraries), so "cold" is about
Numba, not the disk. The user's settings and data folders are replaced by
empty temporary ones, so no dialog (an autosave to restore) interrupts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dim_speed import cpu_name, table  # noqa: E402  (bench/ is on sys.path as the script's folder)
from dim_studio import __version__  # noqa: E402
from dim_studio.resources import SAMPLE_IMAGE, SAMPLE_TRIMAP  # noqa: E402

CASES = ("version", "matte", "window")
LABELS = {
    "version": "dim-studio --version",
    "matte": "dim-studio matte SAMPLE (closed-form)",
    "window": "open the window to the first preview",
}

# The application's own start-up (dim_studio.cli.main -> gui.app.run_app), with the
# window class wrapped so that the first final preview ends the process.
_WINDOW_CHILD = textwrap.dedent("""
    import os, sys
    import dim_studio.gui.app as app

    class _FirstPreview(app.MainWindow):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.previewUpdated.connect(self._done)

        def _done(self, result):
            if getattr(result, "final", True):
                sys.stdout.flush()
                os._exit(0)

    app.MainWindow = _FirstPreview
    from dim_studio.cli import main
    sys.exit(main(sys.argv[1:]) or 3)  # the window closed before any preview: an error
""")


def command(case: str, out_dir: Path) -> list[str]:
    py = sys.executable
    if case == "version":
        return [py, "-m", "dim_studio", "--version"]
    if case == "matte":
        return [py, "-m", "dim_studio", "matte", str(SAMPLE_IMAGE), "--trimap", str(SAMPLE_TRIMAP),
                "-o", str(out_dir / "alpha.png"), "--engine", "closed-form", "-q"]
    if case == "window":
        return [py, "-c", _WINDOW_CHILD, "gui", str(SAMPLE_IMAGE), "--trimap", str(SAMPLE_TRIMAP),
                "--engine", "closed-form"]
    raise ValueError(case)


def timed_run(case: str, cache: Path, scratch: Path, timeout: float) -> float:
    """Seconds from starting the process to its exit; raises if it failed."""
    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)  # DIM Studio's own folder, as for most users
    env.update({
        "DIM_STUDIO_CACHE_DIR": str(cache),
        "DIM_STUDIO_CONFIG_DIR": str(run_dir / "config"),
        "DIM_STUDIO_DATA_DIR": str(run_dir / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    })
    start = time.perf_counter()
    proc = subprocess.run(command(case, run_dir), env=env, cwd=run_dir, capture_output=True,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{case} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def machine() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"machine: {platform.system()} {platform.machine()}, {cpu_name()}, {cores} cores usable\n"
            f"Python {platform.python_version()}, dim-studio {__version__}, torch {version('torch')}, "
            f"PyMatting {version('pymatting')}, Numba {version('numba')}, "
            f"PySide6 {version('PySide6-Essentials')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs per case; the median is shown (default 3)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run before giving up")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")

    print(machine())
    print()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dim-studio-startup-") as tmp:
        scratch = Path(tmp)
        for case in cases:
            cache = scratch / f"cache-{case}"  # empty: the cold run fills it
            cold = timed_run(case, cache, scratch, args.timeout)
            warm = [timed_run(case, cache, scratch, args.timeout) for _ in range(max(1, args.runs))]
            cached = sum(1 for p in (cache / "numba").rglob("*.nbc"))
            rows.append([LABELS[case], f"{cold:.2f}", f"{statistics.median(warm):.2f}",
                         f"{min(warm):.2f}-{max(warm):.2f}", str(cached)])
            print(f"  {LABELS[case]}: cold {cold:.2f} s, warm {', '.join(f'{w:.2f}' for w in warm)} s",
                  file=sys.stderr)
    print(f"wall time in seconds, process start to exit; warm = median of {max(1, args.runs)} runs")
    table(["case", "cold s", "warm s", "warm range", "cached kernels"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
