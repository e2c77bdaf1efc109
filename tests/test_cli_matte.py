"""`dim-studio matte` and the command line's general behaviour."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dim_studio import __version__
from dim_studio.cli import build_parser, main


def _write_scene(folder, h=40, w=56):
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((12.0 - r) / 3.0 + 0.5, 0, 1)
    fg = np.array([240, 200, 40], float)
    bg = np.dstack([20 + 60 * (xx % 7) / 7, 40 + 0 * xx, 160 + 40 * (yy % 5) / 5])
    img = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    tri = np.full((h, w), 128, np.uint8)
    tri[r > 17] = 0
    tri[r < 7] = 255
    Image.fromarray(img).save(folder / "photo.png")
    Image.fromarray(tri).save(folder / "photo_trimap.png")
    return folder / "photo.png", folder / "photo_trimap.png"


def test_matte_writes_alpha_cutout_composite(tmp_path, capsys):
    image, trimap = _write_scene(tmp_path)
    out = tmp_path / "out"
    code = main([
        "matte", str(image), "--trimap", str(trimap), "-o", str(out / "a.png"),
        "--cutout", str(out / "c.png"), "--composite", str(out / "m.png"), "--background", "#00ff00",
    ])
    assert code == 0
    alpha = np.asarray(Image.open(out / "a.png"))
    assert alpha.shape == (40, 56) and alpha.dtype == np.uint8
    assert alpha[20, 28] == 255 and alpha[0, 0] == 0
    assert 0 < alpha[20, 28 + 12] < 255  # soft edge
    cut = np.asarray(Image.open(out / "c.png"))
    assert cut.shape == (40, 56, 4)
    np.testing.assert_array_equal(cut[..., 3], alpha)
    comp = np.asarray(Image.open(out / "m.png").convert("RGB")).astype(int)
    assert tuple(comp[0, 0]) == (0, 255, 0)  # background replaced by green
    assert "wrote" in capsys.readouterr().out


def test_matte_16_bit(tmp_path):
    image, trimap = _write_scene(tmp_path)
    assert main(["matte", str(image), "--trimap", str(trimap), "-o", str(tmp_path / "a16.png"),
                 "--alpha-depth", "16", "-q"]) == 0
    assert np.asarray(Image.open(tmp_path / "a16.png")).dtype in (np.uint16, np.int32)


def test_matte_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    image, trimap = _write_scene(tmp_path)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small_trimap.png")
    code = main(["matte", str(image), "--trimap", str(tmp_path / "small_trimap.png"),
                 "-o", str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("dim-studio: error:") and "10x10" in err and "56x40" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "a.png").exists()

    assert main(["matte", str(tmp_path / "missing.png"), "--trimap", str(trimap),
                 "-o", str(tmp_path / "a.png")]) == 1
    assert "missing.png: file not found" in capsys.readouterr().err

    assert main(["matte", str(image), "--trimap", str(trimap), "-o", str(image)]) == 1
    assert "refusing to overwrite the photo" in capsys.readouterr().err

    assert main(["matte", str(image), "--trimap", str(trimap), "-o", str(tmp_path / "a.png"),
                 "--composite", str(tmp_path / "m.png"), "--background", "notacolour"]) == 1
    assert "notacolour" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_version_and_help_for_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # the registered subcommands
    assert {"matte", "batch", "eval", "gui"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: dim-studio " + name in capsys.readouterr().out


def test_console_script_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "dim_studio", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"dim-studio {__version__}"
