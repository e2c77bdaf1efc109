"""Render the application icon's PNG sizes from its SVG.

The canonical icon is package data (``dim_studio/resources/icons``) so the
wheel, the frozen build and the Linux desktop entry all use the same files.
Run after editing the SVG, and commit the PNGs it writes::

    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py

Only PySide6 (QtSvg ships in PySide6-Essentials) is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRectF, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ICONS = Path(__file__).resolve().parent.parent / "dim_studio" / "resources" / "icons"
SVG = ICONS / "dim-studio.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ICONS
    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (fonts, pixmaps)
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"{SVG}: not a valid SVG for QtSvg", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        path = out / f"dim-studio-{size}.png"
        if not render(renderer, size).save(str(path), "PNG"):
            print(f"{path}: could not be written", file=sys.stderr)
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
