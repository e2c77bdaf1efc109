"""``dim-studio batch`` against broken and hostile folders.

Each case is what an attacker or a careless user leaves lying around: an
output folder that holds the inputs, a background inside the output folder,
symbolic-link loops, unreadable sub-folders, pipes named .png, a damaged or
forged report, outputs deleted since the last run, an output that cannot be
written. The checks are what the user sees: the exit status, one line naming
the file and the problem (no traceback), the report, no input changed, no
temporary or partial file left, and the other photos still done.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dim_studio import batch as batchlib
from dim_studio.batch import planning
from dim_studio.engines import create_engine
from dim_studio.errors import DimStudioError

from conftest import (
    batch_report as _report, by_image as _by_image, files_under as _files, save_gray,
    temporaries as _temporaries,
)

ENGINE = ("--engine", "closed-form")
REPORT = batchlib.REPORT_NAME


# --- helpers -------------------------------------------------------------------


def _snapshot(*folders: Path) -> dict[str, object]:
    """Every entry under ``folders``: file bytes, or where a link points (loops included)."""
    out: dict[str, object] = {}
    for folder in folders:
        for root, dirs, names in os.walk(folder):
            for name in sorted(dirs + names):
                path = Path(root) / name
                if path.is_symlink():
                    out[str(path)] = ("link", os.readlink(path))
                elif path.is_file():
                    out[str(path)] = path.read_bytes()
    return out


def _no_traceback(result) -> None:
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err


def _one_error_line(result) -> str:
    _no_traceback(result)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dim-studio: error: ")
    return lines[0]


def _failed_lines(result) -> dict[str, str]:
    """The "failed: NAME: REASON" lines the CLI prints, by name."""
    out = {}
    for line in result.err.splitlines():
        if line.startswith("failed: "):
            name, _, reason = line[len("failed: "):].partition(": ")
            out[name] = reason
    return out


def _alpha_ok(path: Path, size: tuple[int, int] = (40, 30)) -> None:
    with Image.open(path) as img:
        assert img.size == size
        assert np.asarray(img).max() == 255


def _good(synth, n: int = 3, images: Path | None = None, trimaps: Path | None = None):
    images = images or synth.dir("images")
    trimaps = trimaps or synth.dir("trimaps")
    for i in range(n):
        synth.photo(images, f"p{i + 1}", trimap_dir=trimaps, seed=10 + i)
    return images, trimaps, synth.root / "out"


# --- outputs that would land on inputs: refused up front ------------------------


def test_a_background_inside_the_output_folder_is_never_overwritten(synth, run_cli):
    images, trimaps, out = _good(synth)
    first = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                    "--outputs", "composite")
    assert first.code == 0, first.err
    background = out / "p2_composite.png"  # last run's composite, now a background
    before = _snapshot(images, trimaps, out)

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                     "--outputs", "alpha,composite", "--background", background, "--overwrite")

    assert result.code == 1
    line = _one_error_line(result)
    assert line == (
        f"dim-studio: error: {background}: refusing to overwrite the background image "
        "with the p2.png composite output; choose another output folder"
    )
    assert result.out == ""
    assert _snapshot(images, trimaps, out) == before  # nothing written, not even the report


def test_run_batch_checks_a_background_the_plan_did_not_see(synth):
    images, trimaps, out = _good(synth, 2)
    run = batchlib.run_batch(batchlib.plan_batch(images, out, trimaps_dir=trimaps,
                                                 outputs=("composite",)),
                             create_engine("closed-form"))
    assert len(run.done) == 2
    background = out / "p1_composite.png"
    before = background.read_bytes()
    plan = batchlib.plan_batch(images, out, trimaps_dir=trimaps, outputs=("composite",),
                               overwrite=True)
    with pytest.raises(DimStudioError, match="refusing to overwrite the background image"):
        batchlib.run_batch(plan, create_engine("closed-form"), background=str(background))
    assert background.read_bytes() == before


def test_an_output_folder_that_is_the_trimaps_folder_never_overwrites_a_trimap(synth, run_cli):
    # x.png's alpha (out/x_alpha.png) is the trimap of the photo x_alpha.png.
    images, folder = synth.dir("images"), synth.dir("trimaps-and-out")
    synth.photo(images, "x", trimap_dir=folder, trimap_name="x.png", seed=1)
    synth.photo(images, "x_alpha", trimap_dir=folder, trimap_name="x_alpha.png", seed=2)
    before = _snapshot(images, folder)

    result = run_cli("batch", images, "--trimaps", folder, "-o", folder, *ENGINE)

    assert result.code == 1
    line = _one_error_line(result)
    assert line == (
        f"dim-studio: error: {folder / 'x_alpha.png'}: refusing to overwrite the trimap of "
        "x_alpha.png with the x.png alpha output; choose another output folder"
    )
    assert _snapshot(images, folder) == before


def test_an_output_folder_that_contains_the_images_folder_never_overwrites_a_photo(synth, run_cli):
    # With -r, OUT/in/y_alpha.png is both the output of in/y.png and a photo itself.
    out = synth.dir("out")
    images, trimaps = synth.dir("out", "in"), synth.dir("trimaps")
    synth.photo(images / "in", "y", trimap_dir=trimaps / "in", seed=1)
    synth.photo(images, "y_alpha", trimap_dir=trimaps, seed=2)
    before = _snapshot(out, trimaps)

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "-r")

    assert result.code == 1
    line = _one_error_line(result)
    assert line == (
        f"dim-studio: error: {images / 'y_alpha.png'}: refusing to overwrite the photo y_alpha.png "
        "with the in/y.png alpha output; choose another output folder"
    )
    assert _snapshot(out, trimaps) == before


def test_an_output_folder_that_is_the_images_folder_reached_through_a_link(synth, run_cli):
    # The masks folder is the photos folder; -o names it through a symbolic link.
    folder = synth.dir("work")
    link = synth.root / "link-to-work"
    link.symlink_to(folder, target_is_directory=True)
    synth.photo(folder, "x", mask_dir=folder, mask_name="x_alpha.png", seed=1)
    before = _snapshot(folder)

    result = run_cli("batch", folder, "--masks", folder, "-o", link, *ENGINE)

    assert result.code == 1
    assert "refusing to overwrite the mask of x.png with the x.png alpha output" in _one_error_line(result)
    assert _snapshot(folder) == before


def test_two_outputs_of_one_photo_that_are_one_file_are_refused(synth, run_cli):
    images, trimaps, out = _good(synth, 2)
    out.mkdir()
    (out / "p1_cutout.png").symlink_to("p1_alpha.png")  # left by someone: the same file
    before = _snapshot(images, trimaps, out)

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                     "--outputs", "alpha,cutout")

    assert result.code == 1
    line = _one_error_line(result)
    assert line == (
        f"dim-studio: error: {out / 'p1_cutout.png'}: named as both the p1.png alpha and the "
        "p1.png cutout output; give each output its own file; choose another output folder"
    )
    assert _snapshot(images, trimaps, out) == before


# --- one bad entry never stops the run ------------------------------------------


def test_symbolic_link_loops_fail_their_own_photo_only(synth, run_cli):
    images, trimaps, out = _good(synth)
    # A loop as the trimap of x.png, a loop among the photos, an unrelated loop in
    # the trimaps folder, and with -r a folder loop and a folder link back up the tree.
    synth.photo(images, "x", seed=4)
    (trimaps / "x_trimap.png").symlink_to("x_trimap.png")
    (trimaps / "ta.png").symlink_to("tb.png")
    (trimaps / "tb.png").symlink_to("ta.png")
    (images / "la.png").symlink_to("lb.png")
    (images / "lb.png").symlink_to("la.png")
    (images / "da").symlink_to("db", target_is_directory=True)
    (images / "db").symlink_to("da", target_is_directory=True)
    (images / "up").symlink_to(images, target_is_directory=True)
    before = _snapshot(images, trimaps)

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "-r")

    assert result.code == 1
    _no_traceback(result)
    assert result.err.splitlines()[-1].startswith("dim-studio: error: 3 of 6 file(s) failed")
    assert _failed_lines(result) == {
        "la.png": f"{images / 'la.png'}: symbolic link loop",
        "lb.png": f"{images / 'lb.png'}: symbolic link loop",
        "x.png": f"{trimaps / 'x_trimap.png'}: symbolic link loop",
    }
    report = _report(out)
    assert set(_by_image(report["done"])) == {"p1.png", "p2.png", "p3.png"}
    assert _by_image(report["failed"])["x.png"]["reason"] == f"{trimaps / 'x_trimap.png'}: symbolic link loop"
    assert _files(out) == {"p1_alpha.png", "p2_alpha.png", "p3_alpha.png", REPORT}
    assert not _temporaries(out)
    assert _snapshot(images, trimaps) == before


def _unreadable(monkeypatch, folder: Path) -> None:
    """Make ``folder`` unlistable: chmod 000, or (as root, who reads anyway) a refusing scandir."""
    if os.geteuid() != 0:
        folder.chmod(0)  # the restore_modes fixture gives it back
        return
    real_scandir = os.scandir
    target = os.path.realpath(folder)

    def scandir(path="."):
        if os.path.realpath(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.fixture
def restore_modes():
    folders: list[Path] = []
    yield folders
    for folder in folders:
        folder.chmod(0o755)


def test_an_unreadable_sub_folder_fails_alone_and_retry_picks_it_up(synth, run_cli, monkeypatch,
                                                                    restore_modes):
    images, trimaps, out = _good(synth)
    locked = images / "locked"
    synth.photo(locked, "deep", trimap_dir=trimaps / "locked", seed=5)
    restore_modes.append(locked)
    before = _snapshot(images, trimaps)
    with monkeypatch.context() as patch:
        _unreadable(patch, locked)
        result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "-r")
        if os.geteuid() != 0:
            locked.chmod(0o755)

    assert result.code == 1
    _no_traceback(result)
    reason = f"{locked}: cannot list the folder (Permission denied); the photos in it were not processed"
    assert _failed_lines(result) == {"locked/": reason}
    report = _report(out)
    assert set(_by_image(report["done"])) == {"p1.png", "p2.png", "p3.png"}
    assert _by_image(report["failed"]) == {"locked/": {"image": "locked/", "trimap": None, "reason": reason}}
    assert _snapshot(images, trimaps) == before

    # Readable again: --retry-failed does the folder's photos and keeps the rest.
    retry = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "-r", "--retry-failed")
    assert retry.code == 0, retry.err
    report = _report(out)
    assert set(_by_image(report["done"])) == {"p1.png", "p2.png", "p3.png", "locked/deep.png"}
    assert report["failed"] == []
    _alpha_ok(out / "locked" / "deep_alpha.png")


def test_an_unreadable_trimaps_sub_folder_says_so(synth, run_cli, monkeypatch, restore_modes):
    images, trimaps, out = _good(synth, 1)
    synth.photo(images / "day2", "q", trimap_dir=trimaps / "day2", seed=6)
    restore_modes.append(trimaps / "day2")
    with monkeypatch.context() as patch:
        _unreadable(patch, trimaps / "day2")
        result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "-r")
    assert result.code == 1
    _no_traceback(result)
    assert _failed_lines(result) == {
        "day2/q.png": f"no trimap found: {trimaps / 'day2'}: cannot list the folder (Permission denied)",
    }
    assert set(_by_image(_report(out)["done"])) == {"p1.png"}


@pytest.mark.parametrize("where", ["photo", "trimap"])
def test_a_pipe_named_png_fails_without_blocking_the_run(synth, run_cli, where):
    images, trimaps, out = _good(synth, 2)
    synth.photo(images, "pipe", trimap_dir=trimaps, seed=7)  # a regular photo and trimap...
    pipe = images / "pipe.png" if where == "photo" else trimaps / "pipe_trimap.png"
    pipe.unlink()
    os.mkfifo(pipe)  # ...one of which is now a pipe

    # Whatever opens the pipe to read waits for a writer forever: this watchdog
    # plays the writer after a while, so a regression fails instead of hanging.
    finished = threading.Event()

    def unblock() -> None:
        if finished.wait(20):
            return
        while not finished.wait(0.5):
            try:
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader waiting right now

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    finally:
        finished.set()
        watchdog.join()

    assert result.code == 1
    _no_traceback(result)
    assert _failed_lines(result) == {"pipe.png": f"{pipe}: not a regular file (a pipe, socket or device)"}
    assert set(_by_image(_report(out)["done"])) == {"p1.png", "p2.png"}


def test_a_photo_whose_outputs_cannot_all_be_written_fails_alone(synth, run_cli):
    images, trimaps, out = _good(synth)
    (out / "p2_cutout.png").mkdir(parents=True)  # the cutout's place is taken by a folder
    before = _snapshot(images, trimaps)

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                     "--outputs", "alpha,cutout")

    assert result.code == 1
    _no_traceback(result)
    failed = _failed_lines(result)
    assert set(failed) == {"p2.png"} and str(out / "p2_cutout.png") in failed["p2.png"]
    report = _report(out)
    assert set(_by_image(report["done"])) == {"p1.png", "p3.png"}
    assert set(_by_image(report["failed"])) == {"p2.png"}
    # All of a photo's outputs or none: no alpha without its cutout, no temporary file.
    assert _files(out) == {"p1_alpha.png", "p1_cutout.png", "p3_alpha.png", "p3_cutout.png", REPORT}
    assert not _temporaries(out)
    assert _snapshot(images, trimaps) == before


# --- the previous report ---------------------------------------------------------


def _set(key, value):
    def change(report):
        report[key] = value
    return change


def _set_in_first_done(key, value):
    def change(report):
        report["done"][0][key] = value
    return change


DAMAGED_REPORTS = {
    '"skipped": 7': _set("skipped", 7),
    '"done" a dict': _set("done", {"p1.png": "done"}),
    '"failed" a list of names': _set("failed", ["lonely.png"]),
    '"seconds" as text': _set_in_first_done("seconds", "fast"),
    '"seconds" NaN': _set_in_first_done("seconds", float("nan")),
    '"outputs" a string': _set_in_first_done("outputs", "p1_alpha.png"),
    '"image" a number': _set_in_first_done("image", 3),
    '"totals" a list': _set("totals", [1, 2, 3]),
    '"totals" as text': _set("totals", {"done": "three"}),
    "a photo listed twice": lambda r: r["failed"].append(dict(r["done"][0])),
    "a JSON list": lambda r: [r],
    "not JSON": "{not json",
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "bad UTF-8": b"\xff\xfe\x00",
}


@pytest.mark.parametrize("case", list(DAMAGED_REPORTS))
def test_retry_failed_sets_a_damaged_report_aside(synth, run_cli, case):
    images, trimaps, out = _good(synth)
    synth.photo(images, "lonely", seed=4)  # fails: no trimap
    assert run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE).code == 1
    save_gray(trimaps / "lonely_trimap.png", synth.scene(seed=4).trimap)  # fixed since
    damage = DAMAGED_REPORTS[case]
    if isinstance(damage, bytes):
        (out / REPORT).write_bytes(damage)
    elif isinstance(damage, str):
        (out / REPORT).write_text(damage, encoding="utf-8")
    else:
        data = _report(out)
        data = damage(data) or data
        (out / REPORT).write_text(json.dumps(data), encoding="utf-8")
    damaged = (out / REPORT).read_bytes()
    alphas = {p: p.read_bytes() for p in out.glob("p*_alpha.png")}

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "--retry-failed")

    assert result.code == 0, result.err
    _no_traceback(result)
    warnings = [line for line in result.err.splitlines() if line.strip()]
    assert len(warnings) == 1, result.err
    assert warnings[0].startswith(f"dim-studio: warning: {out / REPORT}: ")
    assert warnings[0].endswith(
        f"; renamed it to {REPORT}.bad and redoing every photo whose outputs are missing or incomplete"
    )
    assert (out / f"{REPORT}.bad").read_bytes() == damaged  # kept for a look, not lost
    report = _report(out)
    assert set(_by_image(report["done"])) == {"lonely.png"}
    assert set(_by_image(report["skipped"])) == {"p1.png", "p2.png", "p3.png"}
    assert {p: p.read_bytes() for p in alphas} == alphas  # the finished work was not redone
    assert not _temporaries(out)


@pytest.mark.parametrize("flags", [(), ("--overwrite",)])
def test_retry_failed_redoes_done_photos_whose_outputs_vanished(synth, run_cli, flags):
    images, trimaps, out = _good(synth, 4)
    synth.photo(images, "lonely", seed=4)
    assert run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                   "--outputs", "alpha,cutout").code == 1
    first = _by_image(_report(out)["done"])
    (out / "p2_alpha.png").unlink()  # deleted
    cutout = out / "p3_cutout.png"
    cutout.write_bytes(cutout.read_bytes()[:60])  # truncated
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(out / "p4_alpha.png")  # replaced: wrong size
    kept = (out / "p1_alpha.png").stat().st_mtime_ns

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                     "--outputs", "alpha,cutout", "--retry-failed", *flags)

    assert result.code == 1  # lonely.png still has no trimap
    _no_traceback(result)
    done = _by_image(_report(out)["done"])
    assert set(done) == {"p1.png", "p2.png", "p3.png", "p4.png"}
    assert done["p1.png"] == first["p1.png"]  # kept verbatim
    for name in ("p2", "p3", "p4"):
        # Redone: each of these outputs was missing, truncated or the wrong size.
        assert planning._output_complete(out / f"{name}_alpha.png", (30, 40))  # (height, width)
        assert planning._output_complete(out / f"{name}_cutout.png", (30, 40))
    assert (out / "p1_alpha.png").stat().st_mtime_ns == kept
    assert set(_by_image(_report(out)["failed"])) == {"lonely.png"}


def test_a_report_path_taken_by_a_folder_is_refused_before_any_matting(synth, run_cli):
    images, trimaps, out = _good(synth, 1)
    (out / REPORT).mkdir(parents=True)
    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert result.code == 1
    assert "is a folder, so the batch report cannot be written" in _one_error_line(result)
    assert _files(out) == set()
