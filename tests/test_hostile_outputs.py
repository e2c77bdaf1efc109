"""Outputs never land on inputs, appear together or not at all, and leave no temporary files.

Each case is what a careless user (or a script with a typo) would type; the
checks are what they would see: a non-zero exit, one line naming the file,
no input changed, nothing half-written left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import save_gray, save_rgb

from dim_studio import export as export_module
from dim_studio.atomic import atomic_output, staged_outputs, sweep_stale_temporaries
from dim_studio.errors import ImageWriteError


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


@pytest.fixture
def photo(tmp_path, scene):
    image = save_rgb(tmp_path / "photo.png", scene.image)
    trimap = save_gray(tmp_path / "photo_trimap.png", scene.trimap)
    background = save_rgb(tmp_path / "bg.png", np.full_like(scene.image, 0.3))
    return image, trimap, background


def _snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("flags", [
    ("-o", "{bg}", "--composite", "{out}/c.png", "--background", "{bg}"),
    ("-o", "{out}/a.png", "--composite", "{bg}", "--background", "{bg}"),
    ("-o", "{out}/a.png", "--cutout", "{bg}", "--background", "{bg}"),
    ("-o", "{out}/a.png", "--cutout", "{image}"),
    ("-o", "{tri}", ),
    ("-o", "{image_dotted}", ),
])
def test_matte_refuses_to_overwrite_any_input(run_cli, tmp_path, photo, flags):
    image, trimap, bg = photo
    out = tmp_path / "out"
    names = {"bg": bg, "out": out, "image": image, "tri": trimap,
             "image_dotted": tmp_path / "." / "sub" / ".." / "photo.png"}
    (tmp_path / "sub").mkdir()
    before = _snapshot(image, trimap, bg)
    args = [f.format(**names) for f in flags]
    result = run_cli("matte", image, "--trimap", trimap, *args)
    assert result.code != 0
    line = _one_error_line(result.err)
    assert "refusing to overwrite" in line
    assert _snapshot(image, trimap, bg) == before
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_matte_refuses_an_output_that_is_a_link_to_the_photo(run_cli, tmp_path, photo):
    image, trimap, _ = photo
    before = image.read_bytes()
    os.link(image, tmp_path / "hard.png")
    os.symlink(image, tmp_path / "soft.png")
    for alias in ("hard.png", "soft.png"):
        result = run_cli("matte", image, "--trimap", trimap, "-o", tmp_path / alias)
        assert result.code != 0
        assert "refusing to overwrite the photo" in _one_error_line(result.err)
    assert image.read_bytes() == before


def test_two_outputs_naming_one_file_are_refused(run_cli, tmp_path, photo):
    image, trimap, _ = photo
    target = tmp_path / "out" / "x.png"
    result = run_cli("matte", image, "--trimap", trimap, "-o", target,
                     "--cutout", tmp_path / "out" / "." / "x.png")
    assert result.code != 0
    line = _one_error_line(result.err)
    assert "x.png" in line and "alpha" in line and "cutout" in line
    assert not target.exists()


def test_a_symlink_loop_is_one_line_not_a_traceback(run_cli, tmp_path, photo):
    _, trimap, _ = photo
    os.symlink(tmp_path / "b.png", tmp_path / "a.png")
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    result = run_cli("matte", tmp_path / "a.png", "--trimap", trimap, "-o", tmp_path / "o.png")
    assert result.code != 0
    assert "a.png" in _one_error_line(result.err)
    result = run_cli("matte", photo[0], "--trimap", trimap, "-o", tmp_path / "b.png")
    assert result.code != 0
    assert "b.png" in _one_error_line(result.err)
    assert not (tmp_path / "o.png").exists()


def test_when_the_cutout_cannot_be_written_the_alpha_is_not_left_behind(run_cli, tmp_path, photo):
    image, trimap, _ = photo
    out = tmp_path / "out"
    out.mkdir()
    old_alpha = save_gray(out / "a.png", np.full((4, 4), 0.5))  # from an earlier run
    before = old_alpha.read_bytes()
    (tmp_path / "blocker").write_text("a file where a folder should be")
    result = run_cli("matte", image, "--trimap", trimap, "-o", out / "a.png",
                     "--cutout", tmp_path / "blocker" / "c.png")
    assert result.code != 0
    assert "c.png" in _one_error_line(result.err)
    assert old_alpha.read_bytes() == before  # neither replaced nor removed
    assert _leftovers(tmp_path) == []


def test_write_outputs_is_all_or_nothing(tmp_path, scene, monkeypatch):
    def disk_full(path, *args, **kwargs):
        raise ImageWriteError(f"{path}: cannot write (No space left on device)")

    monkeypatch.setattr(export_module, "write_rgb", disk_full)
    with pytest.raises(ImageWriteError):
        export_module.write_outputs(
            scene.image, scene.alpha, alpha_path=tmp_path / "a.png",
            cutout_path=tmp_path / "c.png", composite_path=tmp_path / "m.png",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()
    written = export_module.write_outputs(
        scene.image, scene.alpha, alpha_path=tmp_path / "a.png", cutout_path=tmp_path / "c.png",
    )
    assert [p.name for p in written] == ["a.png", "c.png"]
    assert np.asarray(Image.open(tmp_path / "c.png")).shape[2] == 4


def test_staged_outputs_appear_only_when_the_block_ends(tmp_path):
    with staged_outputs():
        with atomic_output(tmp_path / "one.txt") as tmp:
            tmp.write_text("1")
        assert not (tmp_path / "one.txt").exists()
    assert (tmp_path / "one.txt").read_text() == "1"


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from dim_studio.atomic import atomic_output
    with atomic_output(sys.argv[1]) as tmp:
        tmp.write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_run_removes(run_cli, tmp_path, photo):
    image, trimap, _ = photo
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out / "a.png")])
    assert proc.returncode == -signal.SIGKILL
    assert len(_leftovers(out)) == 1 and not (out / "a.png").exists()
    # Files that are not ours, and a live writer's temporary, are left alone.
    (out / ".keep.tmp").write_text("user's file")
    live = out / f".b.{os.getpid()}-abcdefgh.tmp.png"
    live.write_bytes(b"being written")

    result = run_cli("matte", image, "--trimap", trimap, "-o", out / "a.png")
    assert result.code == 0, result.err
    assert _leftovers(out) == sorted([".keep.tmp", live.name])
    assert (out / "a.png").is_file()


def test_old_temporaries_are_removed_even_if_their_pid_is_reused(tmp_path):
    stale = tmp_path / f".a.{os.getpid()}-abcdefgh.tmp.png"
    stale.write_bytes(b"x")
    assert sweep_stale_temporaries(tmp_path) == []
    os.utime(stale, (0, 0))
    assert sweep_stale_temporaries(tmp_path) == [stale]


def test_an_unexpected_exception_is_one_line(run_cli, monkeypatch, tmp_path, photo):
    from dim_studio.commands import matte

    def broken(args):
        raise KeyError("oops")

    monkeypatch.setattr(matte, "run", broken)
    result = run_cli("matte", photo[0], "--trimap", photo[1], "-o", tmp_path / "a.png")
    assert result.code == 1
    assert "internal error" in _one_error_line(result.err)
    monkeypatch.setenv("DIM_STUDIO_DEBUG", "1")
    with pytest.raises(KeyError):
        run_cli("matte", photo[0], "--trimap", photo[1], "-o", tmp_path / "a.png")
