"""Decompression bombs and the image-size limit, wherever an image is read.

A few bytes of PNG can declare 60000x60000 pixels. Every reader checks the
size from the header before decoding, against ``limits.max_pixels()`` (120 MP
by default, ``DIM_STUDIO_MAX_MEGAPIXELS`` to change it), and says so in one
line naming the file, its size, the limit and how to raise it. The inputs are
crafted here: valid PNG headers over a few bytes of data, so nothing real is
ever decoded; where it matters, the decoders are replaced by ones that fail
the test if they are called.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import save_gray, save_rgb
from dim_studio import limits
from dim_studio.autosave import AutosaveStore
from dim_studio.errors import ImageReadError, TrimapError
from dim_studio.evaluation import evaluate_folder
from dim_studio.engines import create_engine
from dim_studio.export import resolve_background
from dim_studio.images import (
    check_size, image_size, read_alpha, read_image, read_mask, read_raw, read_trimap,
)

BOMB_SIZE = "60000x60000 = 3600 MP"
LIMIT = "over the 120 MP limit on image size"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose IHDR is valid and declares width x height; its pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def write_bomb(path: Path, depth: int = 8, size: int = 60000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_header(size, size, depth))
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decode (Pillow's or OpenCV's) fails the test."""

    def pillow_load(self, *args, **kwargs):
        raise AssertionError(f"Pillow decoded {self.size}")

    def opencv_decode(*args, **kwargs):
        raise AssertionError("OpenCV decoded an image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", pillow_load)
    monkeypatch.setattr(cv2, "imdecode", opencv_decode)


def _assert_size_message(message: str, name: str, size: str = BOMB_SIZE) -> None:
    assert name in message and size in message and LIMIT in message
    assert limits.MAX_MEGAPIXELS_ENV in message and "--max-megapixels" in message
    assert "\n" not in message


# --- every reader ----------------------------------------------------------


@pytest.mark.parametrize("depth", [8, 16])
def test_a_bomb_photo_is_refused_from_its_header(tmp_path, no_decoding, depth):
    bomb = write_bomb(tmp_path / "huge.png", depth)
    assert bomb.stat().st_size < 200
    for read in (read_raw, read_image, image_size):
        with pytest.raises(ImageReadError) as exc:
            read(bomb)
        _assert_size_message(str(exc.value), "huge.png")


def test_image_size_reads_only_the_header(tmp_path, no_decoding, monkeypatch):
    photo = write_bomb(tmp_path / "p144.png", size=12000)  # 144 MP in 79 bytes
    with pytest.raises(ImageReadError, match=r"12000x12000 = 144 MP is over the 120 MP limit"):
        image_size(photo)
    monkeypatch.setenv(limits.MAX_MEGAPIXELS_ENV, "200")
    assert image_size(photo) == (12000, 12000)


def test_image_size_is_the_oriented_size(tmp_path):
    # Stored 20 wide and 10 high, with EXIF orientation 6 (turn 90 degrees to view).
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert image_size(tmp_path / "r.jpg") == (20, 10) == read_image(tmp_path / "r.jpg").shape[:2]


@pytest.mark.parametrize("depth", [8, 16])
def test_a_bomb_trimap_is_refused(tmp_path, no_decoding, depth):
    bomb = write_bomb(tmp_path / "t.png", depth)
    with pytest.raises(ImageReadError) as exc:
        read_trimap(bomb, (30, 40))
    _assert_size_message(str(exc.value), "t.png")


def test_a_trimap_of_another_size_is_refused_before_decoding(tmp_path, no_decoding, monkeypatch):
    monkeypatch.setenv(limits.MAX_MEGAPIXELS_ENV, "200")
    photo = write_bomb(tmp_path / "photo.png", size=12000)  # a 144 MP photo, never decoded
    trimap = tmp_path / "photo_trimap.png"
    trimap.write_bytes(png_header(40, 30, colour=0))
    with pytest.raises(TrimapError, match=r"trimap photo_trimap.png is 40x30 but image is 12000x12000"):
        read_trimap(trimap, image_path=photo)
    with pytest.raises(TrimapError, match=r"40x30.*12000x12000"):
        check_size(trimap, image_size(photo))
    with pytest.raises(TrimapError, match=r"40x30.*50x20"):
        read_trimap(trimap, (20, 50))


def test_a_trimap_is_compared_with_the_photo_as_shown(tmp_path):
    """A photo stored 20x10 with EXIF rotation is 10x20 on screen; its trimap is too."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    upright = np.zeros((20, 10), np.uint8)
    upright[5:15] = 128
    save_gray(tmp_path / "r_trimap.png", upright)
    np.testing.assert_array_equal(read_trimap(tmp_path / "r_trimap.png", image_path=tmp_path / "r.jpg"),
                                  upright)
    save_gray(tmp_path / "stored_trimap.png", np.zeros((10, 20), np.uint8))
    with pytest.raises(TrimapError, match=r"20x10 but image is 10x20"):
        read_trimap(tmp_path / "stored_trimap.png", image_path=tmp_path / "r.jpg")


def test_a_bomb_mask_or_alpha_is_refused(tmp_path, no_decoding):
    bomb = write_bomb(tmp_path / "m.png", 16)
    for read in (read_mask, read_alpha):
        with pytest.raises(ImageReadError) as exc:
            read(bomb)
        _assert_size_message(str(exc.value), "m.png")
    small = tmp_path / "small.png"
    small.write_bytes(png_header(10, 10, colour=0))
    with pytest.raises(TrimapError, match=r"ground-truth alpha small.png is 10x10 but image is 40x30"):
        read_alpha(small, (30, 40), what="ground-truth alpha")


def test_a_bomb_background_is_refused(tmp_path, no_decoding):
    bomb = write_bomb(tmp_path / "bg.png")
    with pytest.raises(ImageReadError) as exc:
        resolve_background(str(bomb))
    _assert_size_message(str(exc.value), "bg.png")


def test_an_autosaved_bomb_is_never_decoded_and_is_dropped(tmp_path, scene, no_decoding):
    photo = save_rgb(tmp_path / "photo.png", scene.image)
    store = AutosaveStore(tmp_path / "autosave")
    png = store.save(photo, scene.trimap)
    entry = store.find(photo)
    assert entry is not None
    write_bomb(png)  # the autosaved trimap replaced by a bomb after it was offered
    with pytest.raises(ImageReadError) as exc:
        store.load(entry)
    _assert_size_message(str(exc.value), png.name)
    assert store.find(photo) is None  # dropped, not offered again

    png = store.save(photo, scene.trimap)
    write_bomb(png)
    assert store.load_for(photo, scene.trimap.shape) is None
    assert not png.exists()


# --- Pillow's and OpenCV's own limits and errors ---------------------------


def _gif(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A GIF whose first frame is ``frame`` (disposal 2, so Pillow sizes a canvas for it)."""
    out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    out += b"\x21\xf9\x04\x08\x00\x00\x00\x00"
    out += b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x44\x01\x00\x3b"
    return out


def _webp_canvas(width: int, height: int) -> bytes:
    """A WebP whose VP8X chunk declares a width x height canvas around a 1x1 picture."""
    small = io.BytesIO()
    Image.new("RGB", (1, 1)).save(small, "WEBP", lossless=True)
    data = small.getvalue()
    vp8l = data[data.index(b"VP8L"):]
    vp8x = (b"VP8X" + struct.pack("<I", 10) + bytes(4)
            + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("name, data", [
    ("frame.gif", _gif((10, 10), (65535, 65535))),  # a canvas Pillow would fill while opening
    ("screen.gif", _gif((60000, 60000), (10, 10))),
    ("canvas.webp", _webp_canvas(1 << 24, 256)),  # libwebp allocates the canvas while opening
])
def test_formats_that_allocate_while_opening_are_refused_as_ours(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageReadError) as exc:
        read_image(path)
    message = str(exc.value)
    assert name in message and "MP is over the 120 MP limit" in message
    assert limits.MAX_MEGAPIXELS_ENV in message and "\n" not in message


def test_pillows_own_limit_never_fires_before_ours(tmp_path, monkeypatch):
    """Pillow's MAX_IMAGE_PIXELS (here lowered to 100 px) neither warns nor refuses
    an image within our limit, and is left as it was."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    pixels = (np.arange(20 * 30 * 3) % 251).astype(np.uint8).reshape(20, 30, 3)
    for suffix in (".png", ".tif", ".gif", ".webp", ".jpg", ".bmp"):
        Image.fromarray(pixels).save(tmp_path / f"p{suffix}")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert read_image(tmp_path / f"p{suffix}").shape == (20, 30, 3), suffix
    assert Image.MAX_IMAGE_PIXELS == 100
    monkeypatch.setenv(limits.MAX_MEGAPIXELS_ENV, "0.0005")  # 500 pixels: ours refuses
    with pytest.raises(ImageReadError, match=r"30x20 = 0.0006 MP is over the 0.0005 MP limit"):
        read_image(tmp_path / "p.tif")


def test_a_tiff_pillow_cannot_decode_is_still_sized_from_its_tags(tmp_path, no_decoding):
    """Pillow cannot open float RGB TIFFs (OpenCV decodes them): their tags give the size."""
    ok, buf = cv2.imencode(".tif", np.zeros((5, 7, 3), np.float32))
    data = bytearray(buf.tobytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength
            struct.pack_into("<I" if kind == 4 else "<H", data, entry + 8, 60000)
    (tmp_path / "float.tif").write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as exc:
        read_image(tmp_path / "float.tif")
    _assert_size_message(str(exc.value), "float.tif")


def test_opencv_errors_and_running_out_of_memory_are_one_line(tmp_path, monkeypatch):
    deep = tmp_path / "deep.png"
    deep.write_bytes(cv2.imencode(".png", np.zeros((5, 7), np.uint16))[1].tobytes())

    def failing(message):
        def imdecode(*args, **kwargs):
            raise cv2.error(message)
        return imdecode

    monkeypatch.setattr(cv2, "imdecode", failing(
        "OpenCV(5.0.0) /io/alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 70 bytes"))
    with pytest.raises(ImageReadError, match=r"deep.png: not enough memory to decode a 7x5 image$"):
        read_image(deep)
    monkeypatch.setattr(cv2, "imdecode", failing(
        "OpenCV(5.0.0) /io/loadsave.cpp:77: error: (-215:Assertion failed) "
        "pixels <= CV_IO_MAX_IMAGE_PIXELS in function 'validateInputImageSize'\n"))
    with pytest.raises(ImageReadError, match="OPENCV_IO_MAX_IMAGE_PIXELS") as exc:
        read_image(deep)
    assert "\n" not in str(exc.value)
    monkeypatch.undo()

    def no_memory(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_memory)
    save_rgb(tmp_path / "eight.png", np.zeros((5, 7, 3), np.float32))
    with pytest.raises(ImageReadError, match=r"eight.png: not enough memory to decode a 7x5 image"):
        read_image(tmp_path / "eight.png")


def test_only_the_first_page_counts(tmp_path):
    first = np.full((5, 7), 40, np.uint8)
    Image.fromarray(first).save(tmp_path / "pages.tif", save_all=True,
                                append_images=[Image.fromarray(np.zeros((300, 200), np.uint8))])
    assert image_size(tmp_path / "pages.tif") == (5, 7)
    np.testing.assert_array_equal(read_raw(tmp_path / "pages.tif"), first)


# --- the limit the user sets ----------------------------------------------


def test_the_limit_is_raised_and_lowered_with_the_environment(tmp_path, monkeypatch):
    photo = save_rgb(tmp_path / "p.png", np.full((200, 200, 3), 0.5, np.float32))
    monkeypatch.setenv(limits.MAX_MEGAPIXELS_ENV, "0.01")
    with pytest.raises(ImageReadError) as exc:
        read_image(photo)
    assert "p.png: 200x200 = 0.04 MP is over the 0.01 MP limit on image size" in str(exc.value)
    monkeypatch.setenv(limits.MAX_MEGAPIXELS_ENV, "0.05")
    assert read_image(photo).shape == (200, 200, 3)


# --- the commands ----------------------------------------------------------


@pytest.mark.parametrize("role", ["photo", "trimap", "background"])
def test_matte_refuses_a_bomb_in_one_line_and_writes_nothing(tmp_path, scene, run_cli, role):
    photo = save_rgb(tmp_path / "photo.png", scene.image)
    trimap = save_gray(tmp_path / "trimap.png", scene.trimap)
    background = save_rgb(tmp_path / "bg.png", scene.image)
    bomb = write_bomb(tmp_path / "bomb.png", 16)
    paths = {"photo": photo, "trimap": trimap, "background": background, role: bomb}
    out = tmp_path / "out"
    result = run_cli("matte", paths["photo"], "--trimap", paths["trimap"], "-o", out / "a.png",
                     "--composite", out / "c.png", "--background", paths["background"], "-q")
    assert result.code == 1
    assert result.err.startswith("dim-studio: error: ") and result.err.count("\n") == 1
    _assert_size_message(result.err.strip(), "bomb.png")
    assert not out.exists() or not any(out.iterdir())


def test_matte_refuses_a_mismatched_trimap_without_decoding_the_photo(
    tmp_path, scene, run_cli, monkeypatch, no_decoding
):
    monkeypatch.setenv(limits.MAX_MEGAPIXELS_ENV, "200")
    photo = write_bomb(tmp_path / "photo.png", size=12000)  # 144 MP declared in 79 bytes
    trimap = tmp_path / "trimap.png"
    trimap.write_bytes(png_header(40, 30, colour=0))
    result = run_cli("matte", photo, "--trimap", trimap, "-o", tmp_path / "a.png", "-q")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "trimap.png is 40x30 but image is 12000x12000" in result.err
    assert not (tmp_path / "a.png").exists()


@pytest.fixture
def bench(synth):
    """One good photo and four bad ones, each bad in one way."""
    images, trimaps, alphas = synth.dir("images"), synth.dir("trimaps"), synth.dir("gt")
    synth.photo(images, "good", trimap_dir=trimaps, alpha_dir=alphas, seed=1)
    small = synth.scene(width=20, height=16)
    synth.photo(images, "bomb", trimap_dir=trimaps, alpha_dir=alphas, seed=2)
    write_bomb(images / "bomb.png")
    synth.photo(images, "wide_trimap", trimap_dir=trimaps, alpha_dir=alphas, seed=3)
    save_gray(trimaps / "wide_trimap_trimap.png", small.trimap)
    synth.photo(images, "wide_alpha", trimap_dir=trimaps, alpha_dir=alphas, seed=4)
    save_gray(alphas / "wide_alpha.png", small.alpha)
    synth.photo(images, "text", trimap_dir=trimaps, alpha_dir=alphas, seed=5)
    synth.text_file(images / "text.png")
    return images, trimaps, alphas


def test_eval_reports_bad_photos_and_scores_the_rest(bench, synth, run_cli):
    images, trimaps, alphas = bench
    json_path = synth.root / "eval.json"
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas,
                     "--engine", "closed-form", "--json", json_path, "-q")
    assert result.code == 1
    assert "Traceback" not in result.err
    rows = [line.split() for line in result.out.splitlines() if line.startswith("closed-form")]
    assert [r[1] for r in rows] == ["good.png", "mean"]
    assert rows[0][2:6] == rows[1][2:6]  # the mean is the good photo's alone
    failed = {line.split()[3].rstrip(":"): line for line in result.err.splitlines()
              if line.startswith("dim-studio: error: failed ")}
    assert set(failed) == {"bomb.png", "wide_trimap.png", "wide_alpha.png", "text.png"}
    _assert_size_message(failed["bomb.png"], "bomb.png")
    assert "trimap wide_trimap_trimap.png is 20x16 but image is 40x30" in failed["wide_trimap.png"]
    assert "ground-truth alpha wide_alpha.png is 20x16 but image is 40x30" in failed["wide_alpha.png"]
    assert "not a readable image (a text file)" in failed["text.png"]
    assert "4 of 5 photos could not be evaluated" in result.err
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["images"] == ["good.png"]
    assert sorted(f["image"] for f in data["failed"]) == sorted(failed)


def test_eval_exits_zero_when_every_photo_is_evaluated(synth, run_cli):
    images, trimaps, alphas = synth.dir("images"), synth.dir("trimaps"), synth.dir("gt")
    synth.photo(images, "good", trimap_dir=trimaps, alpha_dir=alphas, seed=1)
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas, "-q")
    assert result.code == 0 and "failed" not in result.err


class _FailsOn:
    """An engine that fails on one photo (recognised by its width) and mattes the rest."""

    name = "picky"

    def __init__(self, width: int, error: Exception) -> None:
        self.width, self.error = width, error
        self.inner = create_engine("closed-form")

    def estimate(self, image, trimap, *, progress=None, cancel=None):
        if image.shape[1] == self.width:
            raise self.error
        return self.inner.estimate(image, trimap)


@pytest.mark.parametrize("error", [MemoryError(), TrimapError("the trimap has no unknown pixels")])
def test_an_engine_failing_on_one_photo_leaves_it_out_for_every_engine(synth, error):
    images, trimaps, alphas = synth.dir("images"), synth.dir("trimaps"), synth.dir("gt")
    synth.photo(images, "a", trimap_dir=trimaps, alpha_dir=alphas, seed=1)
    synth.photo(images, "b", trimap_dir=trimaps, alpha_dir=alphas, seed=2, width=44)
    engines = {"closed-form": create_engine("closed-form"), "picky": _FailsOn(44, error)}
    results = evaluate_folder(images, trimaps, alphas, engines, warmup=False)
    assert results.images == ["a.png"]
    assert [(r.engine, r.image) for r in results.rows] == [("closed-form", "a.png"), ("picky", "a.png")]
    assert len(results.failed) == 1 and results.failed[0][0] == "b.png"
    assert results.failed[0][1].startswith("picky")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_named_pipe_is_refused_instead_of_waiting_forever(tmp_path, run_cli, scene):
    pipe = tmp_path / "photo.png"
    os.mkfifo(pipe)
    trimap = save_gray(tmp_path / "t.png", scene.trimap)
    result = run_cli("matte", pipe, "--trimap", trimap, "-o", tmp_path / "a.png")
    assert result.code == 1
    assert "photo.png: not a regular file" in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "a.png").exists()


def test_the_limit_is_raised_on_the_command_line_before_or_after_the_subcommand(tmp_path, run_cli, scene):
    photo = save_rgb(tmp_path / "p.png", scene.image)  # well under 0.01 MP
    trimap = save_gray(tmp_path / "t.png", scene.trimap)
    tiny = str(scene.height * scene.width / 2e6)  # half the photo's size, in MP
    for args in (("--max-megapixels", tiny, "matte"), ("matte", "--max-megapixels", tiny)):
        result = run_cli(*args, photo, "--trimap", trimap, "-o", tmp_path / "a.png")
        assert result.code == 1 and "--max-megapixels" in result.err, result.err
        assert not (tmp_path / "a.png").exists()
    assert limits.max_megapixels() == limits.DEFAULT_MAX_MEGAPIXELS  # not left set after the command
    result = run_cli("matte", photo, "--trimap", trimap, "-o", tmp_path / "a.png",
                     "--max-megapixels", "1")
    assert result.code == 0, result.err
