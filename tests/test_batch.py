"""Folder export (``dim-studio batch`` and ``dim_studio.batch``) on tiny real inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dim_studio import batch as batchlib
from dim_studio.commands import batch as batch_command
from dim_studio.engines import create_engine
from dim_studio.engines.classical import ClosedFormEngine
from dim_studio.errors import DimStudioError
from dim_studio.workflows import batch as batch_workflow

from conftest import (
    batch_report as _report, by_image as _by_image, files_under as _files, save_gray,
    temporaries as _temporaries,
)

GOOD = ("a.png", "b.jpg", "c.png")
ENGINE = ("--engine", "closed-form")


def _alpha_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L"
        return np.asarray(img)


@pytest.fixture
def mixed(synth):
    """A folder of three good photos and every kind of trouble.

    - a.png / a_trimap.png, b.jpg / b-trimap.png, c.png / c.trimap.bmp: good
    - corrupt.png: a truncated PNG (with a trimap)
    - fake.png: a text file named .png (with a trimap)
    - notes.txt: not an image, ignored
    - lonely.png: no trimap
    - wrongsize.png: its trimap is 20x15
    """
    images, trimaps, out = synth.dir("images"), synth.dir("trimaps"), synth.root / "out"
    scenes = {
        "a.png": synth.photo(images, "a", trimap_dir=trimaps, seed=1),
        "b.jpg": synth.photo(images, "b", ext=".jpg", trimap_dir=trimaps,
                             trimap_name="b-trimap.png", seed=2),
        "c.png": synth.photo(images, "c", trimap_dir=trimaps, trimap_name="c.trimap.bmp",
                             seed=3, center=(18, 16)),
    }
    synth.truncated_png(images / "corrupt.png")
    save_gray(trimaps / "corrupt_trimap.png", scenes["a.png"].trimap)
    synth.text_file(images / "fake.png")
    save_gray(trimaps / "fake_trimap.png", scenes["a.png"].trimap)
    synth.text_file(images / "notes.txt", "remember to matte these\n")
    synth.photo(images, "lonely", seed=4)
    synth.photo(images, "wrongsize", trimap_dir=trimaps, seed=5)
    save_gray(trimaps / "wrongsize_trimap.png", synth.scene(width=20, height=15).trimap)
    return images, trimaps, out, scenes


def test_mixed_folder_writes_good_outputs_and_reports_every_failure(mixed, run_cli):
    images, trimaps, out, scenes = mixed
    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)

    assert result.code == 1
    assert _files(out) == {"a_alpha.png", "b_alpha.png", "c_alpha.png", batchlib.REPORT_NAME}
    assert not _temporaries(out)
    for name, scene in scenes.items():
        alpha = _alpha_png(out / f"{Path(name).stem}_alpha.png")
        assert alpha.shape == (scene.height, scene.width)
        cx, cy = scene.center
        assert alpha[cy, cx] == 255
        assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
        soft = scene.trimap == 128
        # Real matting in the band: close to the exact alpha, with soft values.
        assert np.mean(np.abs(alpha[soft] / 255.0 - scene.alpha[soft])) < 0.05
        assert np.any((alpha[soft] > 20) & (alpha[soft] < 235))

    report = _report(out)
    assert report["engine"] == "closed-form"
    assert report["status"] == "completed"
    assert report["started"] and report["finished"]
    assert report["totals"] == {"images": 7, "done": 3, "skipped": 0, "failed": 4, "not_processed": 0}
    done = _by_image(report["done"])
    assert set(done) == set(GOOD)
    assert all(e["seconds"] > 0 for e in done.values())
    assert done["a.png"]["outputs"] == ["a_alpha.png"]
    failed = _by_image(report["failed"])
    assert set(failed) == {"corrupt.png", "fake.png", "lonely.png", "wrongsize.png"}
    assert "truncated" in failed["corrupt.png"]["reason"]
    assert "not a readable image" in failed["fake.png"]["reason"]
    assert "no trimap found" in failed["lonely.png"]["reason"]
    assert "20x15" in failed["wrongsize.png"]["reason"]
    assert "40x30" in failed["wrongsize.png"]["reason"]
    assert "notes.txt" not in json.dumps(report)

    assert "Traceback" not in result.err
    assert "dim-studio: error: 4 of 7 file(s) failed" in result.err
    assert "failed: corrupt.png:" in result.err


def test_second_run_skips_finished_files_and_overwrite_redoes_them(mixed, run_cli):
    images, trimaps, out, _ = mixed
    assert run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE).code == 1
    alphas = [out / f"{Path(n).stem}_alpha.png" for n in GOOD]
    before = {p: p.stat().st_mtime_ns for p in alphas}

    again = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert again.code == 1  # the bad inputs are still bad
    assert {p: p.stat().st_mtime_ns for p in alphas} == before
    report = _report(out)
    assert set(_by_image(report["skipped"])) == set(GOOD)
    assert report["done"] == []
    assert report["totals"]["failed"] == 4
    assert "0 done, 3 skipped, 4 failed" in again.out

    # An output that is incomplete (truncated) is redone even without --overwrite.
    data = alphas[0].read_bytes()
    alphas[0].write_bytes(data[: len(data) // 2])
    run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert set(_by_image(_report(out)["done"])) == {"a.png"}
    assert _alpha_png(alphas[0]).shape == (30, 40)

    for p in alphas:
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    redo = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "--overwrite")
    assert redo.code == 1
    assert all(p.stat().st_mtime_ns != 1_000_000_000 for p in alphas)
    assert set(_by_image(_report(out)["done"])) == set(GOOD)


def test_retry_failed_reruns_only_the_failures(mixed, synth, run_cli):
    images, trimaps, out, _ = mixed
    run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    first = _report(out)
    alphas = [out / f"{Path(n).stem}_alpha.png" for n in GOOD]
    for p in alphas:
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))

    # Fix one failure: give lonely.png its trimap.
    save_gray(trimaps / "lonely_trimap.png", synth.scene(seed=4).trimap)
    retry = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "--retry-failed")

    assert retry.code == 1  # three inputs are still broken
    assert (out / "lonely_alpha.png").is_file()
    assert all(p.stat().st_mtime_ns == 1_000_000_000 for p in alphas)  # not re-run
    report = _report(out)
    done = _by_image(report["done"])
    assert set(done) == set(GOOD) | {"lonely.png"}
    for name in GOOD:  # kept exactly as the earlier report had them
        assert done[name] == _by_image(first["done"])[name]
    assert set(_by_image(report["failed"])) == {"corrupt.png", "fake.png", "wrongsize.png"}
    assert report["settings"]["retry_failed"] is True


def test_retry_failed_without_a_report_is_a_clear_error(mixed, run_cli):
    images, trimaps, out, _ = mixed
    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "--retry-failed")
    assert result.code == 1
    assert result.err.startswith("dim-studio: error: ")
    assert "no report from an earlier run" in result.err
    assert "Traceback" not in result.err


def test_masks_with_band(synth, run_cli):
    images, masks, out = synth.dir("images"), synth.dir("masks"), synth.root / "out"
    scene = synth.photo(images, "x", mask_dir=masks, seed=7)
    synth.photo(images, "y", mask_dir=masks, mask_name="y-matte.png", seed=8)
    result = run_cli("batch", images, "--masks", masks, "--band", "3", "-o", out, *ENGINE, "-q")

    assert result.code == 0, result.err
    assert result.out == ""  # --quiet
    alpha = _alpha_png(out / "x_alpha.png")
    cx, cy = scene.center
    assert alpha[cy, cx] == 255 and alpha[0, 0] == 0
    edge = (alpha > 0) & (alpha < 255)
    assert edge.any()
    # The unknown band follows the mask's edge: nothing soft far from it.
    ys, xs = np.nonzero(edge)
    dist = np.hypot(xs - 19.5, ys - 14.5)
    assert np.all(np.abs(dist - 9) <= 5)
    assert (out / "y_alpha.png").is_file()
    report = _report(out)
    assert report["settings"]["band"] == 3
    assert report["masks"] == str(masks)


def test_recursive_mirrors_sub_folders(synth, run_cli):
    images, trimaps, out = synth.dir("images"), synth.dir("trimaps"), synth.root / "out"
    synth.photo(images, "top", trimap_dir=trimaps, seed=1)
    synth.photo(images / "a" / "b", "deep", trimap_dir=trimaps / "a" / "b", seed=2)

    flat = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert flat.code == 0
    assert _files(out) == {"top_alpha.png", batchlib.REPORT_NAME}

    deep = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "--recursive")
    assert deep.code == 0, deep.err
    assert _files(out) == {"top_alpha.png", "a/b/deep_alpha.png", batchlib.REPORT_NAME}
    report = _report(out)
    assert set(_by_image(report["done"])) == {"a/b/deep.png"}
    assert set(_by_image(report["skipped"])) == {"top.png"}
    assert _by_image(report["done"])["a/b/deep.png"]["outputs"] == ["a/b/deep_alpha.png"]


def test_all_three_outputs(synth, run_cli):
    images, trimaps, out = synth.dir("images"), synth.dir("trimaps"), synth.root / "out"
    scene = synth.photo(images, "x", trimap_dir=trimaps, seed=3)
    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                     "--outputs", "alpha,cutout,composite", "--background", "#ff0000")
    assert result.code == 0, result.err
    assert _files(out) == {"x_alpha.png", "x_cutout.png", "x_composite.png", batchlib.REPORT_NAME}

    alpha = _alpha_png(out / "x_alpha.png")
    with Image.open(out / "x_cutout.png") as img:
        assert img.mode == "RGBA" and img.size == scene.size
        cutout = np.asarray(img)
    np.testing.assert_array_equal(cutout[:, :, 3], alpha)
    with Image.open(out / "x_composite.png") as img:
        assert img.mode == "RGB" and img.size == scene.size
        comp = np.asarray(img).astype(int)
    assert tuple(comp[0, 0]) == (255, 0, 0)  # background pixel: the new background
    cx, cy = scene.center
    expected = np.round(scene.image[cy, cx] * 255)
    assert np.all(np.abs(comp[cy, cx] - expected) <= 3)  # subject pixel: the photo
    assert _report(out)["settings"]["background"] == "#ff0000"


def test_sixteen_bit_alpha(synth, run_cli):
    images, trimaps, out = synth.dir("images"), synth.dir("trimaps"), synth.root / "out"
    synth.photo(images, "x", trimap_dir=trimaps)
    assert run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE,
                   "--alpha-depth", "16").code == 0
    with Image.open(out / "x_alpha.png") as img:
        assert img.mode.startswith("I;16") or img.mode == "I"
        assert np.asarray(img).max() == 65535


def test_same_folder_for_inputs_and_outputs(synth, run_cli):
    folder = synth.dir("work")
    synth.photo(folder, "x", trimap_dir=folder, seed=1)
    assert run_cli("batch", folder, "--trimaps", folder, "-o", folder, *ENGINE).code == 0
    assert (folder / "x_alpha.png").is_file()
    # The output and the trimap are not taken for photos on the next run.
    again = run_cli("batch", folder, "--trimaps", folder, "-o", folder, *ENGINE)
    assert again.code == 0
    report = _report(folder)
    assert [e["image"] for e in report["skipped"]] == ["x.png"]
    assert report["totals"]["images"] == 1


def test_an_output_never_overwrites_an_input(synth, run_cli):
    folder = synth.dir("work")
    synth.photo(folder, "x", mask_dir=folder, mask_name="x_alpha.png", seed=1)
    mask_before = (folder / "x_alpha.png").read_bytes()
    before = _files(folder)
    result = run_cli("batch", folder, "--masks", folder, "-o", folder, *ENGINE)
    assert result.code == 1
    # Refused as a whole, before anything is written: the command needs another output folder.
    assert result.err == (
        f"dim-studio: error: {folder / 'x_alpha.png'}: refusing to overwrite the mask of x.png "
        "with the x.png alpha output; choose another output folder\n"
    )
    assert (folder / "x_alpha.png").read_bytes() == mask_before
    assert _files(folder) == before  # no report, no temporary file


def _no_engine(monkeypatch) -> list[str]:
    """Record engine creation instead of doing it: nothing may be matted."""
    made: list[str] = []
    monkeypatch.setattr(batch_command, "create_engine", lambda name, **kw: made.append(name))
    return made


def test_an_output_folder_that_cannot_be_created_fails_before_any_matting(synth, run_cli, monkeypatch):
    images, trimaps = synth.dir("images"), synth.dir("trimaps")
    synth.photo(images, "x", trimap_dir=trimaps, seed=1)
    made = _no_engine(monkeypatch)
    # Tests may run as root, where chmod does not stop writes: the output folder is below a file.
    blocker = synth.root / "a-file"
    blocker.write_text("x", encoding="utf-8")
    before = _files(synth.root)
    out = blocker / "out"

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert result.code == 1
    assert result.err.startswith(f"dim-studio: error: {out}: cannot create the output folder (")
    assert result.err.endswith("; choose another folder\n") and result.err.count("\n") == 1
    assert "Traceback" not in result.err and result.out == ""
    assert made == []  # no engine, so nothing matted
    assert _files(synth.root) == before and blocker.read_text(encoding="utf-8") == "x"


def test_an_unwritable_output_folder_fails_before_any_matting(synth, run_cli, monkeypatch):
    images, trimaps, out = synth.dir("images"), synth.dir("trimaps"), synth.dir("out")
    synth.photo(images, "x", trimap_dir=trimaps, seed=1)
    made = _no_engine(monkeypatch)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root writes anywhere, so the write test itself is refused.
    monkeypatch.setattr(batch_workflow.tempfile, "NamedTemporaryFile", refuse)
    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert result.code == 1
    assert result.err == (
        f"dim-studio: error: {out}: the output folder is not writable (Permission denied); "
        "choose another folder\n"
    )
    assert result.out == "" and made == [] and list(out.iterdir()) == []


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_empty_folder_is_a_clear_error(synth, run_cli, content):
    images, trimaps = synth.dir("images"), synth.dir("trimaps")
    if content:
        synth.text_file(images / content)
    result = run_cli("batch", images, "--trimaps", trimaps, "-o", synth.root / "out")
    assert result.code == 1
    assert result.err.startswith(f"dim-studio: error: no images found in {images}")
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err


def test_missing_folder_and_bad_outputs_option(synth, run_cli):
    trimaps = synth.dir("trimaps")
    missing = run_cli("batch", synth.root / "nope", "--trimaps", trimaps, "-o", synth.root / "o")
    assert missing.code == 1 and "images folder not found" in missing.err
    bad = run_cli("batch", trimaps, "--trimaps", trimaps, "-o", synth.root / "o",
                  "--outputs", "alpha,mask")
    assert bad.code == 2 and "choose one or more of alpha,cutout,composite" in bad.err


# --- the library, as the GUI uses it --------------------------------------


def _good_folder(synth, n=3):
    images, trimaps = synth.dir("images"), synth.dir("trimaps")
    for i in range(n):
        synth.photo(images, f"p{i + 1}", trimap_dir=trimaps, seed=10 + i)
    return images, trimaps, synth.root / "out"


def test_statuses_and_event_kinds_read_as_their_plain_values():
    members = [*batchlib.PlanStatus, *batchlib.FileStatus, *batchlib.BatchEventKind, *batchlib.RunStatus]
    assert {m.value for m in batchlib.PlanStatus} == {"todo", "skip", "missing-trimap", "invalid", "kept"}
    assert {m.value for m in batchlib.FileStatus} == {"done", "failed", "skipped", "not-processed"}
    assert {m.value for m in batchlib.RunStatus} == {"completed", "interrupted", "cancelled"}
    assert {m.value for m in batchlib.BatchEventKind} == {
        "start", "file-started", "file-progress", "file-done", "file-failed", "file-skipped",
        "file-not-processed", "finished",
    }
    for member in members:  # printed, formatted, compared, hashed and serialised as the plain string
        value = member.value
        assert member == value and hash(member) == hash(value) and {value: 1}[member] == 1
        assert str(member) == f"{member}" == "{}".format(member) == "%s" % member == value
        assert json.dumps({"s": member, "l": [member]}) == json.dumps({"s": value, "l": [value]})


def test_plan_and_events(mixed):
    images, trimaps, out, _ = mixed
    plan = batchlib.plan_batch(images, out, trimaps_dir=trimaps)
    status = {item.rel: item.status for item in plan.items}
    assert status == {
        "a.png": "todo", "b.jpg": "todo", "c.png": "todo", "corrupt.png": "todo",
        "fake.png": "todo", "lonely.png": "missing-trimap", "wrongsize.png": "todo",
    }
    assert [p.name for p in plan.ignored] == ["notes.txt"]

    events: list[batchlib.BatchEvent] = []
    report = batchlib.run_batch(plan, create_engine("closed-form"), on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "finished"
    assert all(e.total == 7 for e in events)
    finished = [e for e in events if e.kind in ("file-done", "file-failed", "file-skipped")]
    assert sorted(e.name for e in finished) == sorted(status)
    assert [e.done for e in finished] == list(range(1, 8))
    assert {e.name for e in events if e.kind == "file-done"} == set(GOOD)
    failed = {e.name: e.reason for e in events if e.kind == "file-failed"}
    assert "truncated" in failed["corrupt.png"]
    assert any(e.kind == "file-progress" and 0 < e.fraction <= 1 for e in events)
    assert report.path == out / batchlib.REPORT_NAME and report.path.is_file()
    assert len(report.done) == 3 and len(report.failed) == 4


def test_cancel_abandons_the_current_file_and_marks_the_rest(synth):
    images, trimaps, out = _good_folder(synth)
    plan = batchlib.plan_batch(images, out, trimaps_dir=trimaps, outputs=("alpha", "cutout"))
    started: list[str] = []

    def on_event(event):
        if event.kind == "file-started":
            started.append(event.name)

    # Stop as soon as the second file has started: the engine sees it first.
    report = batchlib.run_batch(plan, create_engine("closed-form"), on_event=on_event,
                                cancel=lambda: len(started) >= 2)
    assert started == ["p1.png", "p2.png"]
    assert report.cancelled and report.status == "cancelled"
    assert [r.image for r in report.done] == ["p1.png"]
    assert {r.image: r.reason for r in report.not_processed} == {
        "p2.png": "not processed: cancelled", "p3.png": "not processed: cancelled",
    }
    assert _files(out) == {"p1_alpha.png", "p1_cutout.png", batchlib.REPORT_NAME}
    assert not _temporaries(out)
    assert _report(out)["status"] == "cancelled"

    # Resuming does the rest.
    plan = batchlib.plan_batch(images, out, trimaps_dir=trimaps, outputs=("alpha", "cutout"))
    assert [i.status for i in plan.items] == ["skip", "todo", "todo"]


class InterruptOnSecondFile(ClosedFormEngine):
    """Closed-form matting that gets Ctrl-C while matting the second file."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _estimate_crop(self, image, trimap, progress, cancel):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super()._estimate_crop(image, trimap, progress, cancel)


def test_ctrl_c_writes_the_report_and_exits_130(synth, run_cli, monkeypatch):
    images, trimaps, out = _good_folder(synth)
    engine = InterruptOnSecondFile()
    monkeypatch.setattr(batch_command, "create_engine", lambda name, **kw: engine)

    result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert result.code == 130
    assert "interrupted" in result.err and "Traceback" not in result.err
    assert _files(out) == {"p1_alpha.png", batchlib.REPORT_NAME}
    assert not _temporaries(out)
    report = _report(out)
    assert report["status"] == "interrupted"
    assert [e["image"] for e in report["done"]] == ["p1.png"]
    assert _by_image(report["not_processed"]) == {
        "p2.png": {"image": "p2.png", "trimap": str(trimaps / "p2_trimap.png"),
                   "reason": "not processed: interrupted"},
        "p3.png": {"image": "p3.png", "trimap": str(trimaps / "p3_trimap.png"),
                   "reason": "not processed: interrupted"},
    }

    # Running the same command again continues where it stopped.
    monkeypatch.undo()
    resumed = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE)
    assert resumed.code == 0
    assert "2 done, 1 skipped, 0 failed" in resumed.out


def test_stop_finishes_the_current_file(synth):
    images, trimaps, out = _good_folder(synth)
    plan = batchlib.plan_batch(images, out, trimaps_dir=trimaps)
    started: list[str] = []
    report = batchlib.run_batch(
        plan, create_engine("closed-form"),
        on_event=lambda e: started.append(e.name) if e.kind == "file-started" else None,
        stop=lambda: len(started) >= 1,
    )
    assert report.interrupted
    assert [r.image for r in report.done] == ["p1.png"]
    assert [r.image for r in report.not_processed] == ["p2.png", "p3.png"]


def test_pairing_suffixes_and_extensions(synth):
    images, trimaps = synth.dir("images"), synth.dir("trimaps")
    names = {"a": "a_trimap.png", "b": "b-trimap.jpg", "c": "c.trimap.tif", "d": "d_tri.png",
             "e": "e.bmp", "F": "f_TRIMAP.png"}
    for stem, trimap_name in names.items():
        synth.photo(images, stem, ext=".jpg", trimap_dir=trimaps, trimap_name=trimap_name)
    pairs, ignored = batchlib.find_pairs(images, trimaps)
    assert {p.rel: p.partner.name for p in pairs} == {f"{k}.jpg": v for k, v in names.items()}
    assert ignored == []

    with pytest.raises(DimStudioError, match="trimaps folder not found"):
        batchlib.plan_batch(images, synth.root / "o", trimaps_dir=synth.root / "missing")


def test_trimaps_and_outputs_inside_the_images_folder(synth, run_cli):
    images = synth.dir("shoot")
    trimaps, out = images / "trimaps", images / "out"
    synth.photo(images, "x", trimap_dir=trimaps, seed=1)
    synth.photo(images / "day2", "y", trimap_dir=trimaps / "day2", seed=2)
    for _ in range(2):  # the second run must not pick up the first run's outputs
        result = run_cli("batch", images, "--trimaps", trimaps, "-o", out, *ENGINE, "-r")
        assert result.code == 0, result.err
        report = _report(out)
        assert report["totals"]["images"] == 2
    assert _files(out) == {"x_alpha.png", "day2/y_alpha.png", batchlib.REPORT_NAME}
    assert set(_by_image(report["skipped"])) == {"x.png", "day2/y.png"}
