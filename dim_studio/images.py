"""Reading and writing images, trimaps, masks and alphas.

In memory: images are float32 (H, W, 3) RGB in [0, 1]; alphas and masks are
float32 (H, W) in [0, 1]; trimaps are uint8 (H, W) with values 0/128/255.

Files are decoded from bytes (never by handing the path to ``cv2.imread``) so
that paths with non-ASCII characters work on every platform. Pillow handles
palette PNGs and EXIF orientation; OpenCV handles 16-bit files. Every write
goes to a temporary file in the target folder and is moved into place with
``os.replace``, so a failed write never leaves a half-written output.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_output
from .errors import ImageReadError, ImageWriteError
from .trimap import check_same_size, quantize_trimap

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".ppm", ".pgm"}
)

def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name has one of the image suffixes we read."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _decode_with_pillow(data: bytes, path: Path) -> np.ndarray:
    """Decode 8-bit and palette images with EXIF orientation applied.

    Returns uint8 (H, W) or (H, W, 3|4) in RGB(A) order.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # forces a full decode, so truncated files fail here
            img = ImageOps.exif_transpose(img)
            if img.mode == "P":
                has_alpha = "transparency" in img.info
                img = img.convert("RGBA" if has_alpha else "RGB")
            elif img.mode in ("1", "L", "LA", "RGB", "RGBA"):
                pass
            elif img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise _NeedsOpenCV()
            else:
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            if img.mode == "1":
                img = img.convert("L")
            return np.asarray(img).copy()
    except _NeedsOpenCV:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(_unreadable_message(path, data, exc)) from None


class _NeedsOpenCV(Exception):
    """Pillow cannot give us full precision for this file; use OpenCV."""


def _unreadable_message(path: Path, data: bytes, exc: Exception | None = None) -> str:
    if not data:
        return f"{path}: the file is empty"
    reason = str(exc) if exc else ""
    if "truncated" in reason.lower() or "broken data stream" in reason.lower():
        return f"{path}: the image file is truncated or damaged"
    if exc is None or isinstance(exc, UnidentifiedImageError):
        # Pillow's own text names an in-memory buffer, which means nothing to a user.
        kind = "a text file" if _looks_like_text(data) else "an unknown format"
        return f"{path}: not a readable image ({kind})"
    return f"{path}: not a readable image ({reason})"


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _decode_high_depth(data: bytes, path: Path) -> np.ndarray | None:
    """Decode with OpenCV keeping 16-bit precision; None if it is 8-bit.

    Returns RGB(A) order.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(_unreadable_message(path, data))
    if arr.dtype == np.uint8:
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


def _to_unit_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr.astype(np.float32), 0.0, 1.0)
    info = np.iinfo(arr.dtype)
    return np.clip(arr.astype(np.float32) / float(info.max), 0.0, 1.0)


def read_raw(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a file to an array in its own depth: (H, W) or (H, W, 3|4), RGB(A)."""
    path = Path(path)
    data = _read_bytes(path)
    if not data:
        raise ImageReadError(_unreadable_message(path, data))
    # 16-bit files (PNG/TIFF) need OpenCV; a cheap header check avoids
    # decoding every 8-bit photo twice.
    if _maybe_high_depth(data):
        arr = _decode_high_depth(data, path)
        if arr is not None:
            return arr
    try:
        return _decode_with_pillow(data, path)
    except _NeedsOpenCV:
        arr = _decode_high_depth(data, path)
        if arr is None:
            raise ImageReadError(_unreadable_message(path, data)) from None
        return arr


def _maybe_high_depth(data: bytes) -> bool:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24:
        return data[24] == 16  # IHDR bit depth
    return data[:4] in (b"II*\x00", b"MM\x00*")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photo as float32 RGB (H, W, 3) in [0, 1].

    Greyscale is replicated to three channels; an alpha channel is dropped.
    """
    arr = _to_unit_float(read_raw(path))
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 2:  # LA
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a mask or alpha as float32 (H, W) in [0, 1].

    An RGBA or LA file's alpha channel is the mask (a cutout's transparency);
    otherwise the grey level (the first channel of a grey-as-RGB file).
    """
    arr = _to_unit_float(read_raw(path))
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):
            return np.ascontiguousarray(arr[:, :, -1])
        if np.allclose(arr[:, :, 0], arr[:, :, 1]) and np.allclose(arr[:, :, 0], arr[:, :, 2]):
            return np.ascontiguousarray(arr[:, :, 0])
        # A colour image used as a mask: use its luminance.
        return np.ascontiguousarray(arr @ np.array([0.299, 0.587, 0.114], np.float32))
    return arr


read_alpha = read_mask


def read_trimap(
    path: str | os.PathLike[str], shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Read a trimap as uint8 (H, W) with values exactly 0/128/255.

    ``shape`` is the (height, width) of the image it belongs to; a trimap of a
    different size is an error naming both sizes.
    """
    path = Path(path)
    arr = read_raw(path)
    if arr.ndim == 3:
        arr = arr[:, :, 0] if arr.shape[2] in (3, 4) else arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = np.round(_to_unit_float(arr) * 255.0).astype(np.uint8)
    if shape is not None:
        check_same_size(tuple(shape[:2]), arr.shape[:2], "image", f"trimap {path.name}")
    return quantize_trimap(arr)


# --- writing ---------------------------------------------------------------


def _encode(arr: np.ndarray, suffix: str, path: Path) -> bytes:
    ok, buf = cv2.imencode(suffix if suffix else ".png", arr)
    if not ok:
        raise ImageWriteError(f"{path}: cannot encode an image as {suffix or '.png'}")
    return buf.tobytes()


def _write_encoded(path: str | os.PathLike[str], arr: np.ndarray) -> Path:
    target = Path(path)
    suffix = target.suffix.lower() or ".png"
    if suffix not in IMAGE_SUFFIXES:
        raise ImageWriteError(
            f"{target}: unknown image type '{target.suffix}' (use .png, .tif or .jpg)"
        )
    data = _encode(arr, suffix, target)
    try:
        with atomic_output(target) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    except ImageWriteError:
        raise
    except OSError as exc:
        raise ImageWriteError(f"{target}: cannot write ({exc.strerror or exc})") from None
    return target


def _quantize(values: np.ndarray, depth: int) -> np.ndarray:
    if depth == 8:
        return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    if depth == 16:
        return np.round(np.clip(values, 0.0, 1.0) * 65535.0).astype(np.uint16)
    raise ValueError(f"bit depth must be 8 or 16, not {depth}")


def write_alpha(path: str | os.PathLike[str], alpha: np.ndarray, depth: int = 8) -> Path:
    """Write an alpha as a greyscale PNG (8-bit by default, 16-bit on request)."""
    return _write_encoded(path, _quantize(np.asarray(alpha, np.float32), depth))


def write_rgb(path: str | os.PathLike[str], rgb: np.ndarray, depth: int = 8) -> Path:
    """Write a float RGB image (H, W, 3) in [0, 1]."""
    arr = _quantize(np.asarray(rgb, np.float32), depth)
    return _write_encoded(path, cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))


def write_rgba(path: str | os.PathLike[str], rgba: np.ndarray, depth: int = 8) -> Path:
    """Write a float RGBA image (H, W, 4) in [0, 1] (straight, not premultiplied)."""
    target = Path(path)
    if target.suffix.lower() in (".jpg", ".jpeg"):
        raise ImageWriteError(f"{target}: JPEG has no transparency; save the cutout as .png")
    arr = _quantize(np.asarray(rgba, np.float32), depth)
    return _write_encoded(target, cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA))


def write_trimap(path: str | os.PathLike[str], trimap: np.ndarray) -> Path:
    """Write a 0/128/255 trimap as an 8-bit greyscale PNG."""
    return _write_encoded(path, np.ascontiguousarray(trimap, dtype=np.uint8))
