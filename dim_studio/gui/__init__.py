"""The PySide6 desktop application: window, canvas, tools, workers, dialogs."""
