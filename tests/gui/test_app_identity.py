"""The application introduces itself: icon, name and version in the title and the About box."""

from __future__ import annotations

from dim_studio import __version__
from dim_studio.gui import window_ui
from dim_studio.gui.app import DESKTOP_ID, application_icon, create_application
from dim_studio.gui.main_window import MainWindow
from dim_studio.resources import SAMPLE_IMAGE, SAMPLE_TRIMAP


def test_the_application_has_its_icon_name_and_version(qtbot) -> None:
    app = create_application()
    assert app.applicationDisplayName() == "DIM Studio"
    assert app.applicationVersion() == __version__
    assert app.desktopFileName() == DESKTOP_ID
    icon = application_icon()
    assert not icon.isNull()
    small, large = icon.pixmap(16, 16).toImage(), icon.pixmap(256, 256).toImage()
    assert small.width() == 16 and large.width() == 256
    # Drawn, not blank: the icon has both opaque and transparent pixels.
    alphas = {large.pixelColor(x, y).alpha() for x in range(0, 256, 8) for y in range(0, 256, 8)}
    assert min(alphas) < 32 and max(alphas) > 224
    assert not app.windowIcon().isNull()


def test_title_and_about_box_show_the_version(qtbot, monkeypatch) -> None:
    window = MainWindow(probe=False)
    qtbot.addWidget(window)
    assert window.windowTitle() == f"DIM Studio {__version__}"
    assert window.open_image(str(SAMPLE_IMAGE), str(SAMPLE_TRIMAP))
    assert window.windowTitle().startswith("lemur.png — lemur_trimap.png")
    assert window.windowTitle().endswith(f"DIM Studio {__version__}")
    shown: list[str] = []
    monkeypatch.setattr(window_ui.QMessageBox, "about", lambda parent, title, text: shown.append(text))
    window.ui.show_about()
    assert shown and f"DIM Studio {__version__}" in shown[0] and "PySide6" in shown[0]
