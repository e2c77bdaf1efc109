"""The one exception family of DIM Studio.

Every error a user can cause (bad file, wrong trimap, missing weights, a
cancelled job) is a ``DimStudioError`` whose message says what to do; the CLI
prints it on one line and the GUI shows it in a dialog.
"""

from __future__ import annotations


class DimStudioError(Exception):
    """Base class: an error whose message is meant for the user."""


class ImageReadError(DimStudioError):
    """An image, trimap, mask or alpha file could not be read."""


class ImageWriteError(DimStudioError):
    """An output file could not be written (full disk, permissions, ...)."""


class TrimapError(DimStudioError):
    """A trimap is invalid for the job (wrong size, no unknown pixels, ...)."""


class EngineError(DimStudioError):
    """An engine could not be created or failed while matting."""


class WeightsError(DimStudioError):
    """A weights file is missing, of the wrong format, or does not fit the model."""


class DownloadError(DimStudioError):
    """A download failed or produced a file that did not verify."""


class Cancelled(DimStudioError):
    """The job was cancelled by the user; no result was produced."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
