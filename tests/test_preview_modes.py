"""compose_preview's view modes and colour decontamination (Qt-free)."""

from __future__ import annotations

import numpy as np
import pytest

from dim_studio.compose import DEFAULT_DECONTAMINATION, decontaminate
from dim_studio.export import Background, composite
from dim_studio.workflows.preview import Display, PreviewMode, compose_preview


def _scene():
    h, w = 4, 5
    image = np.zeros((h, w, 3), np.float32)
    image[...] = (0.2, 0.6, 0.4)  # a green cast everywhere
    foreground = np.zeros((h, w, 3), np.float32)
    foreground[...] = (0.9, 0.5, 0.1)  # the estimated foreground colour
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 2] = 0.5  # a soft column
    alpha[:, 3:] = 1.0
    return image, alpha, foreground


def u8(x):
    return np.round(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def test_every_mode_has_a_label_and_only_cutouts_need_the_foreground():
    for mode in PreviewMode:
        assert mode.label
    assert not PreviewMode.ALPHA.needs_foreground and not PreviewMode.OVERLAY.needs_foreground
    for mode in (PreviewMode.CHECKERBOARD, PreviewMode.BLACK, PreviewMode.WHITE, PreviewMode.COLOR,
                 PreviewMode.IMAGE):
        assert mode.needs_foreground and mode.is_cutout
    assert Display().decontaminate == DEFAULT_DECONTAMINATION


@pytest.mark.parametrize(("mode", "value"), [(PreviewMode.BLACK, 0), (PreviewMode.WHITE, 255)])
def test_cutout_on_black_and_white(mode, value):
    image, alpha, fg = _scene()
    px = compose_preview(image, alpha, fg, Display(mode, color=(0.3, 0.3, 0.3)))  # the colour is ignored
    assert px.shape == (4, 5, 3) and px.dtype == np.uint8
    assert np.all(px[:, :2] == value)  # alpha 0: the background alone
    assert np.abs(px[:, 3:].astype(int) - u8(fg[0, 0]).astype(int)).max() <= 1  # alpha 1: the foreground
    bg = Background(color=(value / 255,) * 3)
    np.testing.assert_array_equal(px, u8(composite(fg, alpha, bg)))


def test_overlay_tints_where_alpha_is_low():
    image, alpha, fg = _scene()
    display = Display(PreviewMode.OVERLAY, overlay_color=(0.0, 0.0, 1.0), overlay_opacity=0.8)
    px = compose_preview(image, alpha, None, display)
    assert px.shape == (4, 5, 3)
    # alpha 0: 80 % of the way to blue; alpha 1: the photo untouched; alpha 0.5: 40 %.
    np.testing.assert_array_equal(px[0, 0], u8(image[0, 0] + 0.8 * (np.array([0, 0, 1]) - image[0, 0])))
    np.testing.assert_array_equal(px[0, 4], u8(image[0, 0]))
    np.testing.assert_array_equal(px[0, 2], u8(image[0, 0] + 0.4 * (np.array([0, 0, 1]) - image[0, 0])))
    # The foreground estimate plays no part.
    np.testing.assert_array_equal(compose_preview(image, alpha, fg, display), px)
    # Opacity 0 shows the photo.
    plain = compose_preview(image, alpha, None, Display(PreviewMode.OVERLAY, overlay_opacity=0.0))
    np.testing.assert_array_equal(plain, u8(image))


@pytest.mark.parametrize("mode", [PreviewMode.CHECKERBOARD, PreviewMode.BLACK, PreviewMode.WHITE,
                                  PreviewMode.COLOR, PreviewMode.IMAGE])
def test_decontamination_moves_edge_colours_from_the_photo_to_the_estimate(mode):
    image, alpha, fg = _scene()
    background = np.full_like(image, 0.5)

    def show(strength):
        return compose_preview(image, alpha, fg, Display(mode, background=background, decontaminate=strength))

    def expected(colours):
        if mode is PreviewMode.CHECKERBOARD:
            return u8(np.dstack([colours, alpha]))
        bg = {PreviewMode.BLACK: Background(color=(0, 0, 0)), PreviewMode.WHITE: Background(color=(1, 1, 1)),
              PreviewMode.COLOR: Background(color=(1, 1, 1)), PreviewMode.IMAGE: Background(image=background)}[mode]
        return u8(composite(colours, alpha, bg))

    np.testing.assert_array_equal(show(0.0), expected(image))
    np.testing.assert_array_equal(show(1.0), expected(fg))
    np.testing.assert_array_equal(show(0.5), expected(decontaminate(image, fg, 0.5)))
    assert not np.array_equal(show(0.0)[:, 2], show(1.0)[:, 2])  # the soft edge changes


def test_without_a_foreground_the_photo_stands_in():
    image, alpha, _ = _scene()
    for strength in (0.0, 1.0):
        px = compose_preview(image, alpha, None, Display(PreviewMode.BLACK, decontaminate=strength))
        np.testing.assert_array_equal(px, u8(composite(image, alpha, Background(color=(0, 0, 0)))))
