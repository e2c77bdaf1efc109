"""Reading and writing images, trimaps and alphas."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from dim_studio.errors import ImageReadError, ImageWriteError, TrimapError
from dim_studio.images import (
    read_alpha, read_image, read_mask, read_trimap, write_alpha, write_rgba, write_trimap,
)


def _gradient_rgb(h: int = 12, w: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)]).astype(np.uint8)


def test_8bit_png_rgb_values(tmp_path):
    rgb = _gradient_rgb()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.dtype == np.float32 and img.shape == (12, 16, 3)
    np.testing.assert_allclose(img, rgb / 255.0, atol=1e-6)


def test_16bit_png_keeps_precision(tmp_path):
    h, w = 8, 10
    rgb16 = (np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3) * 271 % 65536).astype(np.uint16)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    (tmp_path / "deep.png").write_bytes(buf.tobytes())
    img = read_image(tmp_path / "deep.png")
    # Channel order is RGB and values are not truncated to 8 bits.
    np.testing.assert_allclose(img, rgb16 / 65535.0, atol=1e-6)


def test_greyscale_is_replicated(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(img[:, :, c], grey / 255.0, atol=1e-6)


def test_rgba_drops_alpha_for_image_but_mask_uses_it(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    img = read_image(tmp_path / "c.png")
    assert img.shape == (4, 5, 3)
    np.testing.assert_allclose(img[..., 0], 200 / 255.0, atol=1e-6)
    np.testing.assert_allclose(read_mask(tmp_path / "c.png"), rgba[..., 3] / 255.0, atol=1e-6)


def test_palette_png(tmp_path):
    pal = Image.new("P", (6, 4))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    pal.putdata([0, 1, 2] * 8)
    pal.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.shape == (4, 6, 3)
    np.testing.assert_allclose(img[0, 1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(img[0, 2], [0.0, 0.0, 1.0])


def test_palette_trimap_like_alphamatting(tmp_path):
    # The alphamatting trimaps are palette PNGs whose grey levels are 0/128/255.
    pal = Image.new("P", (3, 2))
    pal.putpalette([0, 0, 0, 128, 128, 128, 255, 255, 255] + [0] * (253 * 3))
    pal.putdata([0, 1, 2, 2, 1, 0])
    pal.save(tmp_path / "t.png")
    tri = read_trimap(tmp_path / "t.png")
    np.testing.assert_array_equal(tri, [[0, 128, 255], [255, 128, 0]])


def test_exif_rotated_jpeg_is_upright(tmp_path):
    # A 20x10 (w x h) image stored with orientation 6 ("rotate 90 CW to view")
    # must come back 10 wide and 20 high, with the left column on top.
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :5] = (255, 0, 0)  # red on the stored left
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (20, 10, 3)
    assert out[1, 5, 0] > 0.8 and out[1, 5, 2] < 0.2  # red now at the top
    assert out[-2, 5, 0] < 0.2


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "Фото été 写真"
    folder.mkdir()
    Image.fromarray(_gradient_rgb()).save(folder / "ćmielów.png")
    assert read_image(folder / "ćmielów.png").shape == (12, 16, 3)
    write_alpha(folder / "álpha.png", np.full((3, 3), 0.5, np.float32))
    assert read_alpha(folder / "álpha.png")[0, 0] == pytest.approx(128 / 255)


def test_truncated_file_names_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(path)


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match="notes.png.*not a readable image"):
        read_image(path)


def test_missing_and_empty_file(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("unknown", [102, 127, 128])
def test_trimap_quantisation(tmp_path, unknown):
    raw = np.array([[0, 10, 63, 64, unknown], [191, 192, 250, 255, unknown]], np.uint8)
    # Inside a trimap that is otherwise clean: a file mostly of such in-between
    # levels is refused as not a trimap (tests/test_rough_edges.py).
    page = np.zeros((20, 20), np.uint8)
    page[:2, :5] = raw
    Image.fromarray(page, "L").save(tmp_path / "t.png")
    tri = read_trimap(tmp_path / "t.png")
    np.testing.assert_array_equal(tri[:2, :5], [[0, 0, 0, 128, 128], [128, 255, 255, 255, 128]])


def test_trimap_size_mismatch_names_both_sizes(tmp_path):
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "t.png")
    with pytest.raises(TrimapError, match=r"40x30.*50x20"):
        read_trimap(tmp_path / "t.png", shape=(20, 50))


def test_alpha_8_and_16_bit_round_trip(tmp_path):
    alpha = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    write_alpha(tmp_path / "a8.png", alpha)
    write_alpha(tmp_path / "a16.png", alpha, depth=16)
    a8 = cv2.imdecode(np.fromfile(tmp_path / "a8.png", np.uint8), cv2.IMREAD_UNCHANGED)
    a16 = cv2.imdecode(np.fromfile(tmp_path / "a16.png", np.uint8), cv2.IMREAD_UNCHANGED)
    assert a8.dtype == np.uint8 and a8.ndim == 2
    assert a16.dtype == np.uint16 and a16.ndim == 2
    np.testing.assert_allclose(read_alpha(tmp_path / "a16.png"), alpha, atol=1e-4)
    np.testing.assert_allclose(read_alpha(tmp_path / "a8.png"), alpha, atol=1 / 255)


def test_rgba_written_straight_in_rgb_order(tmp_path):
    rgba = np.zeros((2, 2, 4), np.float32)
    rgba[..., 0] = 1.0  # red
    rgba[..., 3] = 0.5
    write_rgba(tmp_path / "c.png", rgba)
    back = np.asarray(Image.open(tmp_path / "c.png"))
    assert back.shape == (2, 2, 4)
    assert tuple(back[0, 0]) == (255, 0, 0, 128)
    with pytest.raises(ImageWriteError, match="JPEG"):
        write_rgba(tmp_path / "c.jpg", rgba)


def test_trimap_round_trip(tmp_path):
    tri = np.array([[0, 128], [255, 128]], np.uint8)
    write_trimap(tmp_path / "t.png", tri)
    np.testing.assert_array_equal(read_trimap(tmp_path / "t.png"), tri)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageWriteError, match="No space left"):
        write_alpha(target, np.zeros((4, 4), np.float32))
    monkeypatch.undo()
    assert target.read_bytes() == b"previous"  # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp left over


def test_unwritable_folder_is_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageWriteError, match="cannot write"):
        write_alpha(blocker / "sub" / "a.png", np.zeros((2, 2), np.float32))


def test_outputs_get_normal_file_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_alpha(tmp_path / "a.png", np.zeros((2, 2), np.float32))
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o644


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_alike_by_every_decoder(tmp_path, orientation):
    """8-bit files go through Pillow, 16-bit ones through OpenCV (which turns TIFFs
    itself): all come out as Pillow's exif_transpose shows the 8-bit PNG, and
    ``image_size`` predicts the shape without decoding."""
    from PIL import ImageOps

    from dim_studio.images import image_size, read_raw

    stored8 = (np.arange(5 * 7, dtype=np.uint8) * 7).reshape(5, 7)
    stored16 = stored8.astype(np.uint16) * 257
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored8).save(tmp_path / "p8.png", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "p8.png")))
    Image.fromarray(stored16).save(tmp_path / "p16.png", exif=exif.tobytes())
    Image.fromarray(stored8).save(tmp_path / "t8.tif", tiffinfo={0x0112: orientation})
    Image.fromarray(stored16).save(tmp_path / "t16.tif", tiffinfo={0x0112: orientation})
    for name in ("p8.png", "p16.png", "t8.tif", "t16.tif"):
        raw = read_raw(tmp_path / name)
        assert raw.dtype == (np.uint16 if "16" in name else np.uint8), name
        np.testing.assert_array_equal(raw if raw.dtype == np.uint8 else raw // 257, expected,
                                      err_msg=name)
        assert image_size(tmp_path / name) == expected.shape
