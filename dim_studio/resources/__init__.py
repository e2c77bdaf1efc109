"""Files shipped inside the package: the bundled sample, icons, desktop entry.

They are package data, so an installed wheel and the frozen build find
them the same way as a source checkout: beside this file.
"""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
SAMPLES = RESOURCES / "samples"
ICONS = RESOURCES / "icons"

#: The bundled sample photo and its trimap (CC0 photo, MIT trimap; see samples/LICENSE.md).
SAMPLE_IMAGE = SAMPLES / "lemur.png"
SAMPLE_TRIMAP = SAMPLES / "lemur_trimap.png"


def app_icon(size: int | None = None) -> Path:
    """The application icon: the SVG, or the PNG of ``size`` pixels."""
    return ICONS / ("dim-studio.svg" if size is None else f"dim-studio-{size}.png")
