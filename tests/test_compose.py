"""Compositing, cover-resize, colours, checkerboards and cutouts."""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.compose import (
    checkerboard,
    composite_over_checkerboard,
    composite_over_color,
    composite_over_image,
    cover_resize,
    estimate_foreground,
    make_cutout,
    parse_color,
)
from dim_studio.errors import DimStudioError

# 2x2 foreground: red, green / blue, white
FG = np.array(
    [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]], dtype=np.float32
)
ALPHA = np.array([[1.0, 0.0], [0.5, 0.25]], dtype=np.float32)


def test_composite_over_color_by_hand() -> None:
    bg = (0.2, 0.4, 0.6)
    # (0,0) alpha 1   -> F = red                      (1, 0, 0)
    # (0,1) alpha 0   -> B                            (0.2, 0.4, 0.6)
    # (1,0) 0.5 blue + 0.5 B = (0.1, 0.2, 0.5+0.3)    (0.1, 0.2, 0.8)
    # (1,1) 0.25 white + 0.75 B
    #       = (0.25+0.15, 0.25+0.3, 0.25+0.45)        (0.4, 0.55, 0.7)
    expected = np.array(
        [[[1, 0, 0], [0.2, 0.4, 0.6]], [[0.1, 0.2, 0.8], [0.4, 0.55, 0.7]]]
    )
    out = composite_over_color(FG, ALPHA, bg)
    assert out.dtype == np.float32 and out.shape == (2, 2, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_composite_over_color_accepts_a_colour_string() -> None:
    out = composite_over_color(FG, ALPHA, "#000000")
    # over black: alpha * F
    np.testing.assert_allclose(out, FG * ALPHA[:, :, None], atol=1e-7)


def test_composite_over_same_size_image_by_hand() -> None:
    bg = np.full((2, 2, 3), 0.5, dtype=np.float32)
    out = composite_over_image(FG, ALPHA, bg)
    # (1,1): 0.25 * 1 + 0.75 * 0.5 = 0.625 in every channel
    np.testing.assert_allclose(out[1, 1], [0.625] * 3, atol=1e-6)
    # (1,0): 0.5 * (0,0,1) + 0.5 * 0.5 = (0.25, 0.25, 0.75)
    np.testing.assert_allclose(out[1, 0], [0.25, 0.25, 0.75], atol=1e-6)


def _column_blocks(height: int, values: list[float], block: int) -> np.ndarray:
    """Background whose columns come in blocks of ``block`` with ``values``."""
    row = np.repeat(np.asarray(values, dtype=np.float32), block)
    return np.repeat(np.tile(row, (height, 1))[:, :, None], 3, axis=2)


def test_cover_resize_wide_background_is_centre_cropped_not_squashed() -> None:
    # 8x16 (wide) onto a 2x2 frame: scale = max(2/8, 2/16) = 1/4 -> 2x4, and
    # INTER_AREA by an exact factor 4 averages each 4x4 block:
    # columns 0.1 0.3 0.5 0.7; centre crop of width 2 starts at (4-2)//2 = 1.
    bg = _column_blocks(8, [0.1, 0.3, 0.5, 0.7], 4)
    out = cover_resize(bg, 2, 2)
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[:, :, 0], [[0.3, 0.5], [0.3, 0.5]], atol=1e-6)
    # squashing 16 columns into 2 would have given 0.2 and 0.6 instead


def test_cover_resize_tall_background_crops_rows() -> None:
    # the transposed case: 16x8 onto 2x2 keeps the middle two row blocks
    bg = _column_blocks(8, [0.1, 0.3, 0.5, 0.7], 4).transpose(1, 0, 2)
    out = cover_resize(bg, 2, 2)
    np.testing.assert_allclose(out[:, :, 1], [[0.3, 0.3], [0.5, 0.5]], atol=1e-6)


def test_cover_resize_onto_a_different_aspect_frame() -> None:
    # 8x16 onto a 2x3 frame: scale = max(2/8, 3/16) = 1/4 -> 2x4, crop x0 = 0
    bg = _column_blocks(8, [0.1, 0.3, 0.5, 0.7], 4)
    out = composite_over_image(
        np.zeros((2, 3, 3), np.float32), np.zeros((2, 3), np.float32), bg
    )
    np.testing.assert_allclose(out[0, :, 2], [0.1, 0.3, 0.5], atol=1e-6)


def test_cover_resize_enlarging_is_clipped_and_centred() -> None:
    # 2x4 black|white onto a 4x4 frame: scale 2 -> 4x8, crop columns 2..5,
    # so the edge between black and white stays in the middle of the frame.
    bg = _column_blocks(2, [0.0, 1.0], 2)
    out = cover_resize(bg, 4, 4)
    assert out.shape == (4, 4, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0  # cubic overshoot clipped
    assert out[:, :2].mean() < 0.25 and out[:, 2:].mean() > 0.75
    np.testing.assert_allclose(out[:, :2].mean(), 1 - out[:, 2:].mean(), atol=1e-6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#ff8000", (1.0, 128 / 255, 0.0)),
        ("#F80", (1.0, 0x88 / 255, 0.0)),
        (" 255, 0 ,10 ", (1.0, 0.0, 10 / 255)),
        ("White", (1.0, 1.0, 1.0)),
        ("black", (0.0, 0.0, 0.0)),
        ("green", (0.0, 1.0, 0.0)),
        ("grey", (128 / 255,) * 3),
        ("gray", (128 / 255,) * 3),
    ],
)
def test_parse_color(text: str, expected: tuple[float, float, float]) -> None:
    assert parse_color(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["#12345", "300,0,0", "1,2", "banana", "", "#ggg"])
def test_parse_color_rejects_nonsense(text: str) -> None:
    with pytest.raises(DimStudioError) as err:
        parse_color(text)
    assert "#rrggbb" in str(err.value) or "0 and 255" in str(err.value)


def test_checkerboard_pattern() -> None:
    board = checkerboard(4, 6, square=2, light=0.8, dark=0.6)
    L, D = 0.8, 0.6
    expected = np.array(
        [
            [L, L, D, D, L, L],
            [L, L, D, D, L, L],
            [D, D, L, L, D, D],
            [D, D, L, L, D, D],
        ],
        dtype=np.float32,
    )
    assert board.shape == (4, 6, 3) and board.dtype == np.float32
    for c in range(3):
        np.testing.assert_array_equal(board[:, :, c], expected)


def test_composite_over_checkerboard() -> None:
    fg = np.full((4, 4, 3), 0.2, np.float32)
    alpha = np.zeros((4, 4), np.float32)
    alpha[0, 0] = 1.0
    out = composite_over_checkerboard(fg, alpha, square=2)
    board = checkerboard(4, 4, square=2)
    assert out[0, 0].tolist() == pytest.approx([0.2] * 3)
    np.testing.assert_allclose(out[1:], board[1:])


def test_mismatched_alpha_is_an_error() -> None:
    with pytest.raises(DimStudioError, match="differ in size"):
        composite_over_color(FG, np.zeros((3, 2), np.float32), (0, 0, 0))


# --------------------------------------------------------------------------
# foreground estimation and cutouts (pymatting)
# --------------------------------------------------------------------------

def _synthetic(size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Known orange F over known blue B with a soft alpha ramp in the middle."""
    f = np.array([0.9, 0.5, 0.1], np.float32)
    b = np.array([0.1, 0.3, 0.9], np.float32)
    alpha = np.clip((np.arange(size, dtype=np.float32) - 8) / 16, 0, 1)
    alpha = np.tile(alpha, (size, 1))
    image = alpha[:, :, None] * f + (1 - alpha[:, :, None]) * b
    fg_true = np.broadcast_to(f, image.shape)
    return image.astype(np.float32), alpha, fg_true


def test_cutout_recovers_foreground_without_background_bleed() -> None:
    image, alpha, fg_true = _synthetic()
    cut = make_cutout(image, alpha)
    assert cut.shape == (32, 32, 4) and cut.dtype == np.float32
    np.testing.assert_array_equal(cut[:, :, 3], alpha)
    mixed = (alpha > 0.05) & (alpha < 0.95)
    raw_err = np.abs(image - fg_true)[mixed].mean()
    cut_err = np.abs(cut[:, :, :3] - fg_true)[mixed].mean()
    # the photo carries the blue background in the ramp; the cutout should not
    assert cut_err < 0.25 * raw_err
    assert 0.0 <= cut[:, :, :3].min() and cut[:, :, :3].max() <= 1.0


def test_foreground_is_solved_only_near_the_soft_pixels() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((64, 64, 3)).astype(np.float32)
    alpha = np.zeros((64, 64), np.float32)
    alpha[30:34, 30:34] = 0.5
    alpha[34:40, 30:40] = 1.0
    fg = estimate_foreground(image, alpha, margin=4)
    # box of soft pixels = rows/cols 30..33, plus margin 4 -> 26..37
    outside = np.ones((64, 64), bool)
    outside[26:38, 26:38] = False
    np.testing.assert_array_equal(fg[outside], image[outside])
    assert fg.dtype == np.float32 and fg.shape == (64, 64, 3)


def test_hard_alpha_needs_no_solve() -> None:
    image = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    alpha = np.zeros((8, 8), np.float32)
    alpha[2:5, 2:5] = 1.0
    np.testing.assert_array_equal(estimate_foreground(image, alpha), image)
    cut = make_cutout(image, alpha, foreground=image)
    np.testing.assert_array_equal(cut[:, :, :3], image)
    np.testing.assert_array_equal(cut[:, :, 3], alpha)
