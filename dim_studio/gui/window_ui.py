"""The main window's widgets, actions, menus, toolbars and status bar.

Split from ``main_window.py`` so that file keeps to behaviour (files,
preview, export, autosave) while this one holds the layout and the
settings that describe it. ``WindowUi`` touches the window only through its
public methods.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import (
    QAction, QActionGroup, QColor, QIcon, QKeySequence, QPainter, QPainterPath, QPen, QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QColorDialog, QComboBox, QHBoxLayout, QLabel, QMenu, QMessageBox, QSizePolicy, QSlider, QSpinBox,
    QSplitter, QStyle, QToolBar, QVBoxLayout, QWidget,
)

from dim_studio import __version__
from dim_studio.engines import engine_info, engine_names
from dim_studio.workflows.preview_scale import AUTO, FULL, HALF, PREVIEW_RESOLUTIONS, QUARTER
from dim_studio.workflows.engine_choice import OFFLINE_DEFAULT
from dim_studio.trimap import BACKGROUND, FOREGROUND, UNKNOWN

from . import dialogs
from .canvas import DEFAULT_OVERLAY_COLORS, DEFAULT_OVERLAY_OPACITY, TrimapCanvas
from .preview import (
    COMPARE_KEY, CYCLE_MODE_KEY, PANE_HEADER_HEIGHT, PREVIEW_MODE_KEYS, PREVIEW_MODES, CompareKey, PreviewPane,
)
from .quick_select import create_quick_select_toolbar

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow
    from dim_studio.workflows.environment import Environment
    from dim_studio.workflows.preview import PreviewResult

DEFAULT_SIZE = QSize(1400, 850)
_LABEL_NAMES = {FOREGROUND: "foreground", BACKGROUND: "background", UNKNOWN: "unknown"}
_RESOLUTION_LABELS = {
    AUTO: "Auto (downscaled on slow devices)",
    FULL: "Full resolution",
    HALF: "1/2",
    QUARTER: "1/4",
}
# Swatches for the label buttons: what each label *means*, readable on any theme.
_LABEL_SWATCH = {FOREGROUND: QColor(245, 245, 245), BACKGROUND: QColor(20, 20, 20), UNKNOWN: QColor(128, 128, 128)}

_STYLE = """
#paneHeader { border-bottom: 1px solid palette(mid); }
#hint {
    background: rgba(24, 24, 28, 215); color: #f0f0f0; border-radius: 6px;
    padding: 8px 12px;
}
#toolSummary {
    background: palette(base); color: palette(text); border: 1px solid palette(mid);
    border-radius: 4px; padding: 1px 8px;
}
QToolBar { spacing: 3px; }
"""


def label_name(label: int) -> str:
    return _LABEL_NAMES.get(label, str(label))


def _icon(draw: Callable[[QPainter], None], size: int = 32) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.scale(size / 32.0, size / 32.0)
    draw(p)
    p.end()
    return QIcon(pix)


def _pen(width: float = 2.2, color: QColor | None = None, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color or QColor(90, 160, 230), width, style)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def tool_icon(tool: str) -> QIcon:
    """Small drawn icons, so the app needs no icon files."""

    def brush(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(90, 160, 230))
        p.drawEllipse(QPointF(11, 21), 7, 7)
        p.setPen(_pen(3.0))
        p.drawLine(QPointF(15, 17), QPointF(27, 5))

    def lasso(p: QPainter) -> None:
        path = QPainterPath(QPointF(6, 14))
        path.cubicTo(QPointF(6, 4), QPointF(27, 3), QPointF(27, 13))
        path.cubicTo(QPointF(27, 22), QPointF(10, 22), QPointF(12, 17))
        p.setPen(_pen(2.2, style=Qt.PenStyle.DashLine))
        p.drawPath(path)
        p.setPen(_pen(2.2))
        p.drawLine(QPointF(12, 17), QPointF(14, 28))

    def outline(p: QPainter) -> None:
        p.setPen(_pen(2.2))
        p.setBrush(QColor(255, 196, 0, 150))
        p.drawPolygon(QPolygonF([QPointF(6, 26), QPointF(9, 8), QPointF(20, 4), QPointF(27, 16), QPointF(19, 27)]))

    def box(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 196, 0, 150))
        p.drawEllipse(QPointF(16, 17), 7, 8)
        p.setPen(_pen(2.2, style=Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(5, 5, 22, 23)

    return _icon({"brush": brush, "lasso": lasso, "outline": outline, "box": box}[tool])


def trimap_icon() -> QIcon:
    """A photo-shaped tile in the trimap's three grey levels."""

    def draw(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        for x, grey in ((4, 20), (12, 128), (20, 240)):
            p.setBrush(QColor(grey, grey, grey))
            p.drawRect(x, 6, 8, 20)
        p.setPen(QPen(QColor(90, 90, 90), 1.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(4, 6, 24, 20)

    return _icon(draw)


def export_icon() -> QIcon:
    """A tray with an arrow leaving it."""

    def draw(p: QPainter) -> None:
        p.setPen(_pen(2.4, QColor(110, 110, 110)))
        p.drawPolyline(QPolygonF([QPointF(5, 18), QPointF(5, 27), QPointF(27, 27), QPointF(27, 18)]))
        p.setPen(_pen(2.6))
        p.drawLine(QPointF(16, 22), QPointF(16, 5))
        p.drawPolyline(QPolygonF([QPointF(10, 11), QPointF(16, 5), QPointF(22, 11)]))

    return _icon(draw)


def swatch_icon(color: QColor, border: QColor | None = None) -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(QPen(border or QColor(110, 110, 110), 1.5))
        p.setBrush(color)
        p.drawRoundedRect(5, 5, 22, 22, 4, 4)

    return _icon(draw)


class WindowUi:
    """Builds and owns the window's widgets and actions."""

    def __init__(self, window: "MainWindow") -> None:
        self.w = window
        s = window.style()
        window.setStyleSheet(_STYLE)
        window.setDocumentMode(True)
        self.engine_was_chosen = False
        self._restoring = False

        # --- central: canvas | preview -------------------------------------------------
        self.canvas = TrimapCanvas()
        self.preview = PreviewPane()
        self.canvas.link_view(self.preview.view)
        canvas_pane = QWidget()
        header = QWidget()
        header.setObjectName("paneHeader")
        header.setFixedHeight(PANE_HEADER_HEIGHT)
        row = QHBoxLayout(header)
        row.setContentsMargins(8, 2, 8, 2)
        row.addWidget(QLabel("<b>Trimap</b>"))
        self.tool_summary = QLabel()
        self.tool_summary.setObjectName("toolSummary")  # a box with contrast, see _STYLE
        row.addSpacing(8)
        row.addWidget(self.tool_summary)
        row.addStretch(1)
        self.zoom_label = QLabel()
        row.addWidget(self.zoom_label)
        col = QVBoxLayout(canvas_pane)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(header)
        col.addWidget(self.canvas, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(canvas_pane)
        self.splitter.addWidget(self.preview)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(5)
        window.setCentralWidget(self.splitter)

        self.hint = QLabel(self.canvas.viewport())
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.hint.hide()

        # --- actions ------------------------------------------------------------------------
        def act(text: str, slot: Callable[..., object] | None = None, shortcut: object = None,
                tip: str = "", icon: QIcon | None = None, checkable: bool = False) -> QAction:
            a = QAction(text, window)
            if icon is not None:
                a.setIcon(icon)
            if shortcut is not None:
                keys = shortcut if isinstance(shortcut, list) else [shortcut]
                a.setShortcuts([QKeySequence(k) for k in keys])
            if tip:
                a.setStatusTip(tip)
                a.setToolTip(f"{tip} ({a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                             if a.shortcut().toString() else tip)
            a.setCheckable(checkable)
            if slot is not None:
                (a.toggled if checkable else a.triggered).connect(lambda *_: slot())
            window.addAction(a)  # shortcuts work while any child has focus
            return a

        sp = QStyle.StandardPixmap
        self.open_action = act("&Open photo…", window.open_image_dialog, QKeySequence.StandardKey.Open,
                               "Open a photo", s.standardIcon(sp.SP_DialogOpenButton))
        self.open_action.setIconText("Open")
        self.open_trimap_action = act("Open &trimap…", window.open_trimap_dialog, "Ctrl+Shift+O",
                                      "Load a trimap for the open photo", trimap_icon())
        self.open_trimap_action.setIconText("Trimap")
        self.save_action = act("&Save trimap", window.save_trimap, QKeySequence.StandardKey.Save,
                               "Save the trimap", s.standardIcon(sp.SP_DialogSaveButton))
        self.save_action.setIconText("Save")
        self.save_as_action = act("Save trimap &as…", window.save_trimap_as, "Ctrl+Shift+S",
                                  "Save the trimap under a new name")
        self.export_action = act("&Export…", window.export_dialog, "Ctrl+E",
                                 "Export the alpha, a cutout or a composite at full resolution",
                                 export_icon())
        self.export_action.setIconText("Export")
        self.quit_action = act("&Quit", window.close, QKeySequence.StandardKey.Quit, "Quit DIM Studio")

        self.undo_action = act("&Undo", self.canvas.undo, QKeySequence.StandardKey.Undo, "Undo the last edit")
        self.redo_action = act("&Redo", self.canvas.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "Redo")
        self.from_mask_action = act("Trimap from &mask…", window.trimap_from_mask_dialog, None,
                                    "Make the trimap from a mask file: an unknown band along its edge")
        self.clear_action = act("&Clear trimap", window.clear_trimap, None,
                                "Set the whole trimap to background (undoable)")
        # Connected by the quick-selection controller (quick_select.py), which also enables it.
        self.tighten_action = act("&Tighten from the matte", None, "Ctrl+T",
                                  "Make the unknown pixels whose alpha is confidently 0 or 1 known")
        self.tighten_action.setIconText("Tighten")

        self.tool_actions: dict[str, QAction] = {}
        tool_group = QActionGroup(window)
        for tool, text, key, tip in (
            ("brush", "&Brush", "B", "Paint the current label"),
            ("lasso", "&Lasso", "L", "Fill a drawn outline with the current label"),
            ("outline", "&Outline", "O", "Draw around the subject: GrabCut finds it inside the outline"),
            ("box", "Bo&x select", "Q", "Drag a box round the subject: GrabCut finds it and makes the trimap"),
        ):
            a = act(text, None, key, tip, tool_icon(tool), checkable=True)
            a.setIconText(text.replace("&", ""))
            a.triggered.connect(lambda _=False, t=tool: self.canvas.set_tool(t))
            tool_group.addAction(a)
            self.tool_actions[tool] = a
        self.label_actions: dict[int, QAction] = {}
        label_group = QActionGroup(window)
        for label, text, key in ((FOREGROUND, "&Foreground", "1"), (BACKGROUND, "&Background", "2"),
                                 (UNKNOWN, "&Unknown", "3")):
            a = act(text, None, key, f"Paint {label_name(label)}", swatch_icon(_LABEL_SWATCH[label]), checkable=True)
            a.setIconText(text.replace("&", ""))
            a.triggered.connect(lambda _=False, v=label: self.canvas.set_label(v))
            label_group.addAction(a)
            self.label_actions[label] = a
        self.bigger_action = act("Bigger brush", self.canvas.grow_brush, "]", "Make the brush bigger")
        self.smaller_action = act("Smaller brush", self.canvas.shrink_brush, "[", "Make the brush smaller")

        self.fit_action = act("&Fit to window", self.canvas.zoom_fit, "Ctrl+0", "Show the whole photo")
        self.zoom100_action = act("&100%", self.canvas.zoom_100, "Ctrl+1", "One photo pixel per screen pixel")
        self.zoom_in_action = act("Zoom &in", self.canvas.zoom_in, ["Ctrl++", "Ctrl+="], "Zoom in")
        self.zoom_out_action = act("Zoom &out", self.canvas.zoom_out, "Ctrl+-", "Zoom out")
        self.trimap_only_action = act("&Trimap only", None, "T", "Show the trimap alone, without the photo",
                                      checkable=True)
        self.trimap_only_action.toggled.connect(self.canvas.set_show_trimap_only)

        self.resolution_actions: dict[str, QAction] = {}
        res_group = QActionGroup(window)
        for key in PREVIEW_RESOLUTIONS:
            a = act(_RESOLUTION_LABELS[key], None, None, "Resolution the live preview is computed at; "
                    "export is always full resolution", checkable=True)
            a.triggered.connect(lambda _=False: self._on_setting_changed())
            res_group.addAction(a)
            self.resolution_actions[key] = a
        self.resolution_actions[AUTO].setChecked(True)
        self.mode_actions: dict[str, QAction] = {}
        mode_group = QActionGroup(window)
        for key, text in PREVIEW_MODES:
            a = act(text, None, PREVIEW_MODE_KEYS.get(key), f"Preview: {text.lower()}", checkable=True)
            a.triggered.connect(lambda _=False, k=key: self.preview.set_mode(k))
            mode_group.addAction(a)
            self.mode_actions[key] = a
        self.preview.modeChanged.connect(lambda m: self.mode_actions[m].setChecked(True))
        self.cycle_mode_action = act("Next preview mode", lambda: self.preview.cycle_mode(1), CYCLE_MODE_KEY,
                                     "Cycle through what the preview shows")
        self.cycle_back_action = act("Previous preview mode", lambda: self.preview.cycle_mode(-1),
                                     f"Shift+{CYCLE_MODE_KEY}", "Cycle back through what the preview shows")
        self.compare = CompareKey(self.preview, parent=window)
        self.preview.photo_provider = self.canvas.photo_image  # the canvas's QImage: no conversion
        self.compare_action = act("Compare with the original (hold)", self.compare.press, COMPARE_KEY,
                                  "Hold to see the original photo in the preview pane; release to return")
        self.compare_action.setAutoRepeat(False)
        self.preview_overlay_action = act("Mask overlay colour and opacity…", self.choose_preview_overlay, None,
                                          "The tint the Mask overlay preview lays where the matte is transparent")
        self.preview.overlayColorRequested.connect(self.choose_preview_overlay)
        self.preview.decontaminationChanged.connect(self._on_decontamination)
        self.preview.busyTextChanged.connect(self._on_preview_busy)
        self._preview_status = "Preview: —"
        # Whether the status bar shows the pane's busy text, which the end of the work takes back.
        self._status_busy = False
        self.shortcuts_action = act("&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents,
                                    "Every keyboard shortcut and mouse gesture")
        self.preview.colorRequested.connect(self.choose_preview_color)
        self.preview.backgroundRequested.connect(self.choose_preview_background)

        # --- menus ----------------------------------------------------------------------
        mb = window.menuBar()
        self.file_menu = mb.addMenu("&File")
        self.file_menu.addAction(self.open_action)
        self.recent_menu = self.file_menu.addMenu("Open &recent")
        self.file_menu.addAction(self.open_trimap_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.save_action)
        self.file_menu.addAction(self.save_as_action)
        self.file_menu.addAction(self.export_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.edit_menu = mb.addMenu("&Edit")
        for a in (self.undo_action, self.redo_action):
            self.edit_menu.addAction(a)
        self.edit_menu.addSeparator()
        self.edit_menu.addAction(self.from_mask_action)
        self.edit_menu.addAction(self.clear_action)
        self.edit_menu.addAction(self.tighten_action)
        self.tools_menu = mb.addMenu("&Tools")
        for a in self.tool_actions.values():
            self.tools_menu.addAction(a)
        self.tools_menu.addSeparator()
        for a in self.label_actions.values():
            self.tools_menu.addAction(a)
        self.tools_menu.addSeparator()
        self.tools_menu.addAction(self.bigger_action)
        self.tools_menu.addAction(self.smaller_action)
        self.view_menu = mb.addMenu("&View")
        for a in (self.fit_action, self.zoom100_action, self.zoom_in_action, self.zoom_out_action):
            self.view_menu.addAction(a)
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.trimap_only_action)
        colors_menu = self.view_menu.addMenu("Overlay &colours")
        for label in (BACKGROUND, UNKNOWN, FOREGROUND):
            colors_menu.addAction(f"{label_name(label).capitalize()}…",
                                  lambda v=label: self.choose_overlay_color(v))
        colors_menu.addSeparator()
        colors_menu.addAction("Reset colours", self.reset_overlay_colors)
        self.view_menu.addSeparator()
        mode_menu = self.view_menu.addMenu("Preview &shows")
        for a in self.mode_actions.values():
            mode_menu.addAction(a)
        mode_menu.addSeparator()
        for a in (self.cycle_mode_action, self.cycle_back_action, self.compare_action, self.preview_overlay_action):
            mode_menu.addAction(a)
        res_menu = self.view_menu.addMenu("Preview &resolution")
        for a in self.resolution_actions.values():
            res_menu.addAction(a)
        self.view_menu.addSeparator()
        self.toolbars_menu = self.view_menu.addMenu("Tool&bars")
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addAction("&Quick start", self.show_quick_start)
        self.help_menu.addAction(self.shortcuts_action)
        self.help_menu.addAction("&About DIM Studio", self.show_about)

        # --- toolbars ---------------------------------------------------------------------
        def bar(title: str, name: str) -> QToolBar:
            tb = QToolBar(title, window)
            tb.setObjectName(name)
            tb.setIconSize(QSize(20, 20))
            tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            window.addToolBar(tb)
            self.toolbars_menu.addAction(tb.toggleViewAction())
            return tb

        fb = bar("Main", "mainToolbar")
        for a in (self.open_action, self.open_trimap_action, self.save_action, self.export_action):
            fb.addAction(a)
        fb.addSeparator()
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 4000)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush diameter in photo pixels ([ and ] change it)")
        self.brush_spin.setValue(self.canvas.brush_size)
        self.brush_spin.valueChanged.connect(self.canvas.set_brush_size)
        fb.addWidget(QLabel(" Brush "))
        fb.addWidget(self.brush_spin)
        fb.addSeparator()
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        fb.addWidget(QLabel(" Overlay "))
        fb.addWidget(self.opacity_slider)
        fb.addAction(self.trimap_only_action)
        # The painting tools and labels form a palette on the left, as in image editors.
        tb = QToolBar("Tools", window)
        tb.setObjectName("toolsToolbar")
        tb.setIconSize(QSize(24, 24))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        window.addToolBar(Qt.ToolBarArea.LeftToolBarArea, tb)
        self.toolbars_menu.addAction(tb.toggleViewAction())
        for a in self.tool_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        for a in self.label_actions.values():
            tb.addAction(a)
        self.quick_bar = create_quick_select_toolbar(window, self.tighten_action)
        self.toolbars_menu.addAction(self.quick_bar.toggleViewAction())
        eb = fb
        self.engine_combo = QComboBox()
        self.engine_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for name in engine_names():
            self.engine_combo.addItem(name, name)
            self.engine_combo.setItemData(self.engine_combo.count() - 1, engine_info(name).description,
                                          Qt.ItemDataRole.ToolTipRole)
        self._set_engine_enabled("dim", False, "The dim engine needs weights; looking for them…")
        self.engine_combo.currentIndexChanged.connect(self._on_engine_combo)
        self.device_combo = QComboBox()
        # "CUDA 0: NVIDIA H100 80GB HBM3" would push the toolbar off the screen.
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setMinimumContentsLength(12)
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.setToolTip("Where the dim engine runs; classical engines always use the CPU")
        self.device_combo.currentIndexChanged.connect(lambda _: self._on_setting_changed())
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        eb.addWidget(spacer)
        eb.addWidget(QLabel("Engine "))
        eb.addWidget(self.engine_combo)
        eb.addWidget(QLabel("  Device "))
        eb.addWidget(self.device_combo)
        # Why "dim" is greyed out: in the status bar, beside the engine, hover for how to fix it.
        self.weights_note = QLabel()
        self.weights_note.setStyleSheet("color: palette(mid);")

        # --- status bar ---------------------------------------------------------------------
        sb = window.statusBar()
        self.pixel_label = QLabel()
        self.engine_label = QLabel()
        self.device_label = QLabel()
        self.preview_label = QLabel("Preview: —")
        for lbl in (self.pixel_label, self.weights_note, self.engine_label, self.device_label,
                    self.preview_label):
            lbl.setContentsMargins(8, 0, 8, 0)
            sb.addPermanentWidget(lbl)

        # --- canvas signals -------------------------------------------------------------------
        c = self.canvas
        c.toolChanged.connect(self._sync_tool)
        c.labelChanged.connect(self._sync_label)
        c.brushSizeChanged.connect(self._on_brush_size)
        c.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        c.pixelHovered.connect(self._on_pixel)
        self._sync_tool(c.tool)
        self._sync_label(c.label)
        self.update_history_actions()
        self.update_recent_menu()
        self.recent_menu.aboutToShow.connect(self.update_recent_menu)

    # -- settings ------------------------------------------------------------------------

    def restore_settings(self, engine: str | None, device: str | None) -> None:
        st = self.w.settings
        self._restoring = True
        try:
            geometry = st.get_bytes("window/geometry")
            if geometry is None or not self.w.restoreGeometry(geometry):
                self.w.resize(DEFAULT_SIZE)
            state = st.get_bytes("window/state")
            if state is not None:
                self.w.restoreState(state)
            splitter = st.get_bytes("window/splitter")
            if splitter is None or not self.splitter.restoreState(splitter):
                self.splitter.setSizes([10_000, 10_000])
            self.canvas.set_brush_size(st.get_int("canvas/brush_size", 40, 1, 4000))
            self.brush_spin.setValue(self.canvas.brush_size)
            opacity = st.get_float("canvas/overlay_opacity", DEFAULT_OVERLAY_OPACITY, 0.0, 1.0)
            self.opacity_slider.setValue(int(round(opacity * 100)))
            self.canvas.set_overlay_opacity(opacity)
            colors = {}
            for label in (BACKGROUND, UNKNOWN, FOREGROUND):
                text = st.get_str(f"canvas/color_{label_name(label)}")
                if text and QColor(text).isValid():
                    colors[label] = QColor(text)
            if colors:
                self.canvas.set_overlay_colors(colors)
            self.preview.set_mode(st.get_str("preview/mode", "alpha"))
            self.mode_actions[self.preview.mode].setChecked(True)
            color = QColor(st.get_str("preview/color", "#ffffff"))
            self.preview.set_color(color if color.isValid() else QColor("white"))
            overlay = QColor(st.get_str("preview/overlay_color"))
            self.preview.set_overlay(overlay if overlay.isValid() else self.preview.overlay_color,
                                     st.get_float("preview/overlay_opacity", self.preview.overlay_opacity, 0.0, 1.0))
            self.preview.set_decontamination(
                st.get_float("preview/decontaminate", self.preview.decontamination, 0.0, 1.0))
            background = st.get_str("preview/background")
            if background and Path(background).is_file():
                self.load_preview_background(background, quiet=True)
            resolution = st.get_str("preview/resolution", AUTO)
            self.resolution_actions.get(resolution, self.resolution_actions[AUTO]).setChecked(True)
            saved_engine = st.get_str("engine/name")
            chosen = engine or saved_engine
            self.engine_was_chosen = bool(chosen)
            self.select_engine(chosen if chosen in engine_names() else OFFLINE_DEFAULT)
            self._select_device(device or st.get_str("engine/device", "auto"))
        finally:
            self._restoring = False
        self.show_engine_status()
        self.preview.set_mode(self.preview.mode)

    def save_settings(self) -> None:
        st = self.w.settings
        st.set("window/geometry", self.w.saveGeometry())
        st.set("window/state", self.w.saveState())
        st.set("window/splitter", self.splitter.saveState())

    def _on_setting_changed(self) -> None:
        if self._restoring:
            return
        self.w.settings.set("preview/resolution", self.preview_resolution())
        self.w.on_engine_changed()

    # -- engine and device --------------------------------------------------------------

    def engine_name(self) -> str:
        return str(self.engine_combo.currentData())

    def device_value(self) -> str:
        return str(self.device_combo.currentData() or "auto")

    def preview_resolution(self) -> str:
        return next((k for k, a in self.resolution_actions.items() if a.isChecked()), AUTO)

    def select_engine(self, name: str) -> None:
        index = self.engine_combo.findData(name)
        if index >= 0:
            self.engine_combo.setCurrentIndex(index)

    def _on_engine_combo(self, _index: int) -> None:
        if not self._restoring:
            self.engine_was_chosen = True
        self.device_combo.setEnabled(self.engine_name() == "dim")
        self._on_setting_changed()

    def _select_device(self, value: str) -> None:
        index = self.device_combo.findData(value)
        if index < 0:
            self.device_combo.addItem(value, value)
            index = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(index)
        self.device_combo.setEnabled(self.engine_name() == "dim")

    def _set_engine_enabled(self, name: str, enabled: bool, tip: str) -> None:
        index = self.engine_combo.findData(name)
        if index < 0:
            return
        item = self.engine_combo.model().item(index)  # type: ignore[attr-defined]
        item.setEnabled(enabled)
        item.setToolTip(tip)
        item.setStatusTip(tip)

    def apply_environment(self, env: "Environment") -> None:
        current = self.device_value()
        self._restoring = True
        try:
            self.device_combo.clear()
            for value, label in env.devices:
                self.device_combo.addItem(label, value)
            self._select_device(current)
        finally:
            self._restoring = False
        if env.weights.path is not None:
            self._set_engine_enabled("dim", True, f"Deep Image Matting with {env.weights.path.name}")
            self.weights_note.setText("")
            self.weights_note.setToolTip("")
        else:
            tip = env.weights.explain()
            self._set_engine_enabled("dim", False, tip)
            self.weights_note.setText("dim engine: no weights (see the Weights menu)")
            self.weights_note.setToolTip(tip)
            self.weights_note.setStatusTip("The dim engine needs a weights file: hover for how to get one")
        self.show_engine_status()

    def show_engine_status(self) -> None:
        name = self.engine_name()
        self.engine_label.setText(f"Engine: {name}")
        if name != "dim":
            self.device_label.setText("Device: CPU")
        else:
            self.device_label.setText(f"Device: {self.device_combo.currentText()}")

    def _on_preview_busy(self, text: str) -> None:
        """The status bar says what the pane says: computing, or refining a stand-in's matte
        (with the percentage after a second)."""
        if not text:
            if self._status_busy:
                self.preview_label.setText(self._preview_status)
            self._status_busy = False
            return
        self._status_busy = True
        if self.preview.refining:
            self.preview_label.setText(
                f"{self._preview_status} — refining with {self.preview.refining}…{self.preview.progress_text()}")
        else:
            self.preview_label.setText("Preview: computing…" + self.preview.progress_text())

    def show_preview_waiting(self) -> None:
        """The preview has no trimap to work on: the status bar says so until the next result."""
        self._status_busy = False
        self.preview_label.setText("Preview: waiting for the trimap")

    def show_preview_status(self, result: "PreviewResult") -> None:
        """Which engine made the matte on screen, how long it took and at what size."""
        h, w = result.work_size
        scale = "" if result.scale >= 1.0 else f" (×{result.scale:.2f})"
        timing = f"{result.seconds:.2f} s at {w}×{h}{scale}"
        self._preview_status = f"Preview: {result.engine_label}, {timing}"
        if result.refining:
            self.preview_label.setText(f"{self._preview_status} — refining with {result.refining}…")
        elif not self.preview.is_busy:  # the alpha-only stage of a cut-out: still computing
            self.preview_label.setText(self._preview_status)
        self.preview_label.setToolTip(
            f"The preview shows {result.refining}'s matte once it is computed; {result.engine_label}'s "
            "comes first because it is faster while you paint. Export uses the toolbar's engine."
            if result.refining else "The engine, time and working size of the matte on screen")
        self.preview.set_timing(f"{result.engine_label} · {result.seconds:.2f} s · {w}×{h}{scale}")
        self.device_label.setText(f"Device: {result.device_label}")

    # -- small slots ---------------------------------------------------------------------

    def _sync_tool(self, tool: str) -> None:
        self.tool_actions[tool].setChecked(True)
        self._update_summary()

    def _sync_label(self, label: int) -> None:
        if label in self.label_actions:
            self.label_actions[label].setChecked(True)
        self._update_summary()

    def _update_summary(self) -> None:
        tool = self.canvas.tool
        what = {"outline": "draw round the subject", "box": "drag a box round the subject"}.get(
            tool, label_name(self.canvas.label))
        self.tool_summary.setText(f"{tool.capitalize()} · {what}")

    def _on_brush_size(self, size: int) -> None:
        if self.brush_spin.value() != size:
            self.brush_spin.setValue(size)
        self.w.settings.set("canvas/brush_size", int(size))

    def _on_opacity(self, value: int) -> None:
        self.canvas.set_overlay_opacity(value / 100.0)
        if not self._restoring:
            self.w.settings.set("canvas/overlay_opacity", value / 100.0)

    def _on_pixel(self, x: int, y: int) -> None:
        if x < 0:
            self.pixel_label.setText("")
            return
        label = label_name(int(self.canvas.document.trimap[y, x]))
        alpha = self.preview.alpha
        a = f" · α {alpha[y, x]:.2f}" if alpha is not None and alpha.shape == self.canvas.document.shape else ""
        self.pixel_label.setText(f"x {x}, y {y} · {label}{a}")

    def update_history_actions(self) -> None:
        doc = self.canvas.document
        self.undo_action.setEnabled(doc.can_undo())
        self.redo_action.setEnabled(doc.can_redo())
        self.undo_action.setText(f"&Undo {doc.undo_text()}".rstrip())
        self.redo_action.setText(f"&Redo {doc.redo_text()}".rstrip())

    def update_recent_menu(self) -> None:
        menu: QMenu = self.recent_menu
        menu.clear()
        files = self.w.settings.recent_files()
        for i, path in enumerate(files):
            a = menu.addAction(f"&{(i + 1) % 10} {Path(path).name}")
            a.setStatusTip(path)
            a.triggered.connect(lambda _=False, p=path: self._open_recent(p))
        if files:
            menu.addSeparator()
            menu.addAction("Clear list", lambda: (self.w.settings.clear_recent_files(), self.update_recent_menu()))
        menu.setEnabled(bool(files))

    def _open_recent(self, path: str) -> None:
        if not Path(path).is_file():
            self.w.settings.remove_recent_file(path)
            dialogs.show_error(self.w, "Open recent", f"{path} no longer exists; it was removed from the list.")
            return
        self.w.open_image(path)

    def set_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))
        if text:
            self.w.statusBar().showMessage(text)
        else:
            self.w.statusBar().clearMessage()
        self.place_hint()

    def place_hint(self) -> None:
        vp = self.canvas.viewport()
        width = min(560, max(200, vp.width() - 40))
        self.hint.setFixedWidth(width)
        self.hint.adjustSize()
        self.hint.move((vp.width() - width) // 2, max(8, vp.height() - self.hint.height() - 24))
        self.hint.raise_()

    # -- colours -------------------------------------------------------------------------

    def choose_overlay_color(self, label: int) -> None:
        current = self.canvas.overlay_colors()[label]
        color = QColorDialog.getColor(current, self.w, f"{label_name(label).capitalize()} overlay colour",
                                      QColorDialog.ColorDialogOption.ShowAlphaChannel)
        if color.isValid():
            self.set_overlay_color(label, color)

    def set_overlay_color(self, label: int, color: QColor) -> None:
        self.canvas.set_overlay_colors({label: color})
        self.w.settings.set(f"canvas/color_{label_name(label)}", color.name(QColor.NameFormat.HexArgb))

    def reset_overlay_colors(self) -> None:
        for label, color in DEFAULT_OVERLAY_COLORS.items():
            self.set_overlay_color(label, color)

    def choose_preview_color(self) -> None:
        color = dialogs.choose_color(self.w, self.preview.color, "Preview background colour")
        if color is not None:
            self.preview.set_color(color)
            self.w.settings.set("preview/color", color.name())

    def choose_preview_overlay(self) -> None:
        """The mask overlay's tint and opacity, in one colour dialog (its alpha is the opacity)."""
        initial = self.preview.overlay_color
        initial.setAlphaF(self.preview.overlay_opacity)
        color = QColorDialog.getColor(initial, self.w, "Mask overlay colour and opacity",
                                      QColorDialog.ColorDialogOption.ShowAlphaChannel)
        if color.isValid():
            self.set_preview_overlay(color, color.alphaF())

    def set_preview_overlay(self, color: QColor, opacity: float) -> None:
        self.preview.set_overlay(color, opacity)
        self.w.settings.set("preview/overlay_color", self.preview.overlay_color.name())
        self.w.settings.set("preview/overlay_opacity", f"{self.preview.overlay_opacity:.3f}")

    def _on_decontamination(self, strength: float) -> None:
        if not self._restoring:
            self.w.settings.set("preview/decontaminate", f"{strength:.2f}")

    def choose_preview_background(self) -> None:
        path = dialogs.get_open_path(self.w, "Background photo for the preview",
                                     self.w.settings.last_folder("background"))
        if path:
            self.load_preview_background(path, remember=True)

    def load_preview_background(self, path: str, *, remember: bool = False, quiet: bool = False) -> None:
        """Decode the background photo in the task runner (a large photo takes a while), then show it."""
        from dim_studio.images import read_image

        def loaded(image: object) -> None:
            self.preview.set_background(image, path)  # type: ignore[arg-type]
            if remember:
                self.w.settings.set("preview/background", path)
                self.w.settings.set_last_folder("background", path)

        def failed(error: object) -> None:
            if not quiet:
                dialogs.show_error(self.w, "Cannot open background", getattr(error, "message", str(error)))

        self.w.tasks.submit(lambda: read_image(path), loaded, failed)

    # -- help ----------------------------------------------------------------------------

    def show_quick_start(self) -> None:
        dialogs.show_info(self.w, "Quick start", "\n\n".join([
            "1. Open a photo (Ctrl+O, or drop it on the window).",
            "2. Press Q and drag a box round the subject (or O and draw its outline): GrabCut finds it "
            "and makes the trimap. The Band slider widens or narrows the unknown band.",
            "3. Where the selection is wrong, paint with 1 (foreground) or 2 (background): it is found again "
            "with your strokes. 3 paints unknown; [ and ] change the brush size. Once a preview is shown, "
            "Edit > Tighten from the matte (Ctrl+T) narrows the band to where the alpha is fractional.",
            "4. The preview on the right updates after each stroke. Fix the trimap where the matte is wrong.",
            "5. Export (Ctrl+E): alpha, cutout or composite, computed at full resolution.",
        ]))

    def show_shortcuts(self) -> None:
        from .shortcuts import show_shortcuts

        self.shortcuts_dialog = show_shortcuts(self.w)

    def show_about(self) -> None:
        from dim_studio.workflows.selftest import check_versions

        # QMessageBox.about shows the application's icon beside the text.
        QMessageBox.about(self.w, "About DIM Studio", (
            f"<h3>DIM Studio {__version__}</h3>"
            "<p>Soft alpha mattes with Deep Image Matting (Xu et al., CVPR 2017) "
            "and classical solvers (PyMatting). MIT licence.</p>"
            f"<p><small>{html.escape(check_versions().detail)}</small></p>"))


__all__ = ["DEFAULT_SIZE", "WindowUi", "label_name", "swatch_icon", "tool_icon"]
