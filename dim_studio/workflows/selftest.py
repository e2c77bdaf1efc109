"""``dim-studio --self-test``: is this installation whole? Checked without a screen.

Each check is one line a user can act on: what was checked, what was found,
and for a failure what is missing or broken. The checks run in order and
never stop at the first failure, so one run names everything that is wrong.
Qt is checked by the front end (``gui.selftest``), which passes its check in:
this module stays Qt-free like every workflow.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from .. import __version__

#: (name users know, distribution, module) of each package whose version the report shows.
PACKAGES = (
    ("numpy", "numpy", "numpy"), ("OpenCV", "opencv-python-headless", "cv2"),
    ("PySide6", "PySide6-Essentials", "PySide6"), ("torch", "torch", "torch"),
    ("PyMatting", "pymatting", "pymatting"), ("Numba", "numba", "numba"),
    ("safetensors", "safetensors", "safetensors"),
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    #: A failure that does not make the installation broken (no weights yet).
    optional: bool = False

    def line(self) -> str:
        mark = "ok  " if self.ok else ("note" if self.optional else "FAIL")
        return f"{mark}  {self.name}: {self.detail}"


def _version(distribution: str, module: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    # A frozen build carries modules without their distribution metadata.
    try:
        return str(getattr(__import__(module), "__version__", "present"))
    except ImportError:
        return None


def check_versions() -> Check:
    found, missing = [], []
    for label, distribution, module in PACKAGES:
        version = _version(distribution, module)
        if version:
            found.append(f"{label} {version}")
        else:
            missing.append(label)
    detail = (f"DIM Studio {__version__}, Python {platform.python_version()} ({sys.platform}), "
              + ", ".join(found))
    if missing:
        return Check("packages", False, f"missing: {', '.join(missing)} (found {detail})")
    return Check("packages", True, detail)


def check_sample() -> tuple[Check, tuple | None]:
    from ..images import read_image, read_trimap
    from ..resources import SAMPLE_IMAGE, SAMPLE_TRIMAP

    try:
        image = read_image(SAMPLE_IMAGE)
        trimap = read_trimap(SAMPLE_TRIMAP, image.shape[:2])
    except Exception as exc:  # noqa: BLE001 - reported as the failure it is
        return Check("bundled sample", False, f"cannot read {SAMPLE_IMAGE}: {exc}"), None
    return Check("bundled sample", True, f"{SAMPLE_IMAGE.name} {image.shape[1]}x{image.shape[0]}"), (image, trimap)


def check_engine(sample: tuple | None) -> Check:
    """Run the default engine on the sample; its result must be a valid matte that keeps the known pixels."""
    import numpy as np

    from ..engines import create_engine
    from ..trimap import BACKGROUND, FOREGROUND
    from .engine_choice import choose_engine

    if sample is None:
        return Check("default engine", False, "not run: the bundled sample could not be read")
    image, trimap = sample
    choice = choose_engine(None)
    try:
        start = time.perf_counter()
        alpha = create_engine(choice.name, **choice.options).estimate(image, trimap)
        seconds = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001
        return Check("default engine", False, f"{choice.name} failed on the sample: {exc}")
    if (alpha.shape != trimap.shape or not np.isfinite(alpha).all() or alpha.min() < 0 or alpha.max() > 1
            or (alpha[trimap == FOREGROUND] != 1).any() or (alpha[trimap == BACKGROUND] != 0).any()):
        return Check("default engine", False, f"{choice.name} returned an invalid matte on the sample")
    notes = f" ({'; '.join(choice.notes)})" if choice.notes else ""
    return Check("default engine", True, f"{choice.name} matted the sample in {seconds:.2f} s{notes}")


def check_device() -> Check:
    try:
        from ..engines.device import available_devices, describe_device
    except ImportError as exc:
        return Check("device", False, f"torch cannot be imported ({exc}); only the classical engines work")
    devices = [describe_device(name) for name in available_devices()]
    return Check("device", True, ", ".join(devices))


def check_weights() -> Check:
    from .weights import weights_status

    status = weights_status()
    if status.path is not None:
        return Check("network weights", True, str(status.path))
    return Check("network weights", False, " ".join(status.explain().split()), optional=True)


def check_numba_cache() -> Check:
    from ..numba_cache import configure

    folder = configure()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".dim-studio-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Check("compilation cache", False, f"{folder} is not writable ({exc.strerror}); "
                     "PyMatting recompiles on every start. Set DIM_STUDIO_CACHE_DIR to a writable folder")
    return Check("compilation cache", True, str(folder))


def run_self_test(qt_check: Callable[[], Check] | None = None,
                  report: Callable[[Check], None] | None = None) -> list[Check]:
    """Run every check in order, reporting each as it finishes."""
    checks: list[Check] = []
    sample: tuple | None = None

    def run(name: str, check: Callable[[], Check]) -> None:
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - a broken part is this test's finding, not its crash
            result = Check(name, False, f"{type(exc).__name__}: {exc}")
        checks.append(result)
        if report is not None:
            report(result)

    def sample_check() -> Check:
        nonlocal sample
        result, sample = check_sample()
        return result

    run("packages", check_versions)
    if qt_check is not None:
        run("Qt", qt_check)
    run("bundled sample", sample_check)
    run("compilation cache", check_numba_cache)
    run("default engine", lambda: check_engine(sample))
    run("device", check_device)
    run("network weights", check_weights)
    return checks


def passed(checks: list[Check]) -> bool:
    return all(c.ok or c.optional for c in checks)


__all__ = ["Check", "check_device", "check_engine", "check_numba_cache", "check_sample", "check_versions",
           "check_weights", "passed", "run_self_test"]
