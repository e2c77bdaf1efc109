"""Reading and writing images, trimaps, masks and alphas.

In memory: images are float32 (H, W, 3) RGB in [0, 1]; alphas and masks are
float32 (H, W) in [0, 1]; trimaps are uint8 (H, W) with values 0/128/255.

Reading happens in two steps. First the header: Pillow's ``Image.open`` is
lazy and reads only the header, which gives the size and the EXIF
orientation; that size is checked against ``limits.max_pixels()`` (and, for
trimaps, masks and alphas, against the photo's size) before a single pixel is
decoded, so a few kilobytes that declare 60000x60000 pixels are refused at
once. Then the pixels: Pillow for 8-bit and palette files, OpenCV for 16-bit
and float files, and the header's EXIF orientation applied to both in the
same way, so the decoded array always has the size ``image_size`` reported.
Only EXIF that comes before the pixel data counts (Pillow would decode a
whole PNG to look for an eXIf chunk after it).

Files are opened by Python and decoded from bytes or a file object (never by
handing the path to ``cv2.imread``) so that paths with non-ASCII characters
work on every platform. Every write goes to a temporary file in the target
folder and is moved into place with ``os.replace``, so a failed write never
leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TypeVar

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from . import limits
from .atomic import atomic_output
from .errors import ImageReadError, ImageWriteError, TrimapError
from .trimap import (
    AMBIGUOUS_WARNING_FRACTION, NOT_A_TRIMAP_FRACTION, ambiguous_fraction, check_same_size, quantize_trimap,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".ppm", ".pgm"}
)

#: Formats whose Pillow opener reads the header and allocates nothing, so they
#: are opened with Pillow's own bomb check off and ours applied to the exact
#: width x height. Others (GIF, WebP, ICO, ...) may allocate a canvas while
#: opening, so they are opened with Pillow's check set to our limit: above
#: twice the limit it raises (reported as ours, in MP), between once and
#: twice it only warns and ours refuses the file.
_HEADER_ONLY_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "PPM", "JPEG2000")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ORIENTATION_TAG = 0x0112

_T = TypeVar("_T")


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name has one of the image suffixes we read."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


# --- headers ---------------------------------------------------------------


@dataclass
class _Header:
    """What a file's header says, before any pixel is decoded."""

    width: int  # as stored, before the EXIF orientation
    height: int
    orientation: int  # EXIF orientation, 1..8
    format: str  # Pillow's name for it: "PNG", "JPEG", "TIFF", ...
    opencv: bool  # decode with OpenCV (16-bit or float pixels, or a TIFF Pillow cannot decode)
    pillow: Image.Image | None  # Pillow's lazily opened image, when Pillow decodes it

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) after the EXIF orientation: the size of the decoded array."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width

    def size_text(self) -> str:
        h, w = self.shape
        return f"{w}x{h}"


_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_bomb_limit(pixels: int | None) -> Iterator[None]:
    """Pillow's own decompression-bomb check at ``pixels`` (None: off) for one call.

    ``Image.MAX_IMAGE_PIXELS`` (about 89 MP warns, 179 MP raises) would fire
    before our limit, which the user may have raised, and its message gives
    no size and no way out. It is a module global, so it is changed only for
    the one open or load and restored under a lock, so that concurrent reads
    cannot restore each other's value; other code in the process sees Pillow's
    own setting outside these windows.
    """
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open_file(path: Path) -> BinaryIO:
    try:
        # Opening a named pipe or a device would wait for a writer forever.
        if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
            raise ImageReadError(f"{path}: not a regular file (a pipe, socket or device)")
        return open(path, "rb")
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_header(fh: BinaryIO, path: Path) -> _Header:
    try:
        head = fh.read(512)
        fh.seek(0)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise ImageReadError(_unreadable_message(path, head))
    img = _pillow_open(fh, path, head)
    if img is None:
        # Pillow cannot decode some TIFF layouts (float RGB) that OpenCV can;
        # Pillow's tag reader still gives their size, so they are checked too.
        # Any other file without a header we can read is refused: decoding it
        # just to learn its size is what a bomb needs.
        found = _tiff_header(fh) if head[:4] in _TIFF_SIGNATURES else None
        if found is None:
            raise ImageReadError(_unreadable_message(path, head))
        width, height, orientation = found
        return _Header(width, height, orientation, "TIFF", opencv=True, pillow=None)
    width, height = img.size
    if img.format == "TIFF":
        # Pillow reports a TIFF's size already turned by its orientation tag.
        width, height = int(img.tag_v2.get(256, width)), int(img.tag_v2.get(257, height))
    return _Header(width, height, _orientation(img), str(img.format),
                   opencv=_needs_opencv(img, head), pillow=img)


def _pillow_open(fh: BinaryIO, path: Path, head: bytes) -> Image.Image | None:
    """Pillow's lazily opened image (header read, nothing decoded), or None."""
    attempts: tuple[tuple[tuple[str, ...] | None, int | None], ...] = (
        (_HEADER_ONLY_FORMATS, None),
        (None, limits.max_pixels()),
    )
    for formats, bomb_limit in attempts:
        fh.seek(0)
        try:
            with _pillow_bomb_limit(bomb_limit):
                return Image.open(fh, formats=formats)
        except UnidentifiedImageError:
            continue
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageReadError(_pillow_bomb_message(path, exc)) from None
        except MemoryError:
            raise ImageReadError(f"{path}: not enough memory to read its header") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            raise ImageReadError(_unreadable_message(path, head, exc)) from None
    return None


def _tiff_header(fh: BinaryIO) -> tuple[int, int, int] | None:
    """(width, height, orientation) of a TIFF's first page from its tags, or None."""
    try:
        fh.seek(0)
        ifh = fh.read(16)
        bigtiff = ifh[2] == 43
        ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh[:16] if bigtiff else ifh[:8])
        fh.seek(ifd.next)
        ifd.load(fh)
        width, height = int(ifd.get(256)), int(ifd.get(257))
        orientation = int(ifd.get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - any damage in the tags: not a TIFF we can size
        return None
    if width < 1 or height < 1:
        return None
    return width, height, orientation if 1 <= orientation <= 8 else 1


def _orientation(img: Image.Image) -> int:
    try:
        # PngImageFile.getexif decodes the whole image to look for an eXIf
        # chunk after the pixels; the base method reads only what the header gave.
        exif = Image.Image.getexif(img) if img.format == "PNG" else img.getexif()
        value = int(exif.get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block: show the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _needs_opencv(img: Image.Image, head: bytes) -> bool:
    """True when Pillow would lose precision (16-bit, 32-bit, float): OpenCV keeps it."""
    if img.mode.startswith("I") or img.mode == "F":
        return True
    if head[:8] == _PNG_SIGNATURE and len(head) > 24:
        return head[24] == 16  # IHDR bit depth (Pillow reads 16-bit RGB as 8-bit RGB)
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, 8)  # BitsPerSample
        return max(bits) > 8 if isinstance(bits, tuple) else int(bits) > 8
    return False


def _pillow_bomb_message(path: Path, exc: Exception) -> str:
    # Raised only by formats that allocate while opening, before the size is
    # known to us: Pillow's message gives the pixel count.
    found = re.search(r"\((\d+) pixels\)", str(exc))
    what = f"{limits.megapixels_text(int(found.group(1)))} MP" if found else "the image"
    return f"{path}: {limits.over_limit_message(what)}"


def _check_limit(header: _Header, path: Path) -> None:
    h, w = header.shape
    problem = limits.image_size_problem(w, h)
    if problem is not None:
        raise ImageReadError(f"{path}: {problem}")


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[BinaryIO, _Header]]:
    """The open file and its header, size checked against the limit."""
    with _open_file(path) as fh:
        header = _read_header(fh, path)
        try:
            _check_limit(header, path)
            yield fh, header
        finally:
            if header.pillow is not None:
                header.pillow.close()


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) of an image from its header, EXIF orientation applied.

    Nothing is decoded, so this is cheap even for a huge file. It is the shape
    ``read_raw`` returns. Raises ``ImageReadError`` for an unreadable file or
    one over the image-size limit (``limits.max_pixels()``), with the same
    message ``read_raw`` gives, so a caller that compares sizes first refuses
    a decompression bomb for what it is.
    """
    with _opened(Path(path)) as (_, header):
        return header.shape


def check_size(
    path: str | os.PathLike[str], shape: tuple[int, ...], what: str = "trimap"
) -> None:
    """Raise ``TrimapError`` unless the file's header size is ``shape`` (height, width).

    Nothing is decoded: call it with ``image_size(photo)`` to refuse a trimap,
    mask or alpha of the wrong size before decoding either file. ``what``
    names the file's role in the message ("trimap", "ground-truth alpha").
    """
    path = Path(path)
    check_same_size(tuple(shape[:2]), image_size(path), "image", f"{what} {path.name}")


# --- pixels ----------------------------------------------------------------


def _unreadable_message(path: Path, head: bytes, exc: Exception | None = None) -> str:
    if not head:
        return f"{path}: the file is empty"
    if exc is None or isinstance(exc, UnidentifiedImageError):
        # Pillow's own text names an in-memory buffer, which means nothing to a user.
        kind = "a text file" if _looks_like_text(head) else "an unknown format"
        return f"{path}: not a readable image ({kind})"
    return _damaged_message(path, exc)


def _damaged_message(path: Path, exc: Exception) -> str:
    reason = str(exc) or type(exc).__name__
    if "truncated" in reason.lower() or "broken data stream" in reason.lower():
        return f"{path}: the image file is truncated or damaged"
    return f"{path}: not a readable image ({reason})"


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _decode_with_pillow(img: Image.Image, header: _Header, path: Path) -> np.ndarray:
    """8-bit and palette pixels as stored: uint8 (H, W) or (H, W, 2|3|4), RGB(A) order."""
    with _PILLOW_LIMIT_LOCK:  # no window is open while it is held: Pillow's own setting
        pillow_limit = Image.MAX_IMAGE_PIXELS
    # TIFF and GIF loads run Pillow's check again; the size is already within
    # our limit, which the user may have set above Pillow's.
    big = pillow_limit is not None and header.width * header.height > pillow_limit
    try:
        with _pillow_bomb_limit(limits.max_pixels()) if big else contextlib.nullcontext():
            img.load()  # forces a full decode, so truncated files fail here
        if img.mode == "P":
            has_alpha = "transparency" in img.info
            img = img.convert("RGBA" if has_alpha else "RGB")
        elif img.mode == "1":
            img = img.convert("L")
        elif img.mode not in ("L", "LA", "RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        return np.asarray(img).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(_pillow_bomb_message(path, exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ImageReadError(_damaged_message(path, exc)) from None


def _decode_with_opencv(data: bytes, path: Path) -> np.ndarray:
    """Pixels at their own depth (uint8, uint16, float32): (H, W) or (H, W, 3|4), RGB(A)."""
    try:
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ImageReadError(_unreadable_message(path, data[:512]))
        if arr.ndim == 3 and arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return arr
    except cv2.error as exc:
        if "Insufficient memory" in str(exc) or "Failed to allocate" in str(exc):
            raise MemoryError from None  # reported with the image's size by the caller
        raise ImageReadError(f"{path}: {_opencv_reason(exc)}") from None


def _opencv_reason(exc: cv2.error) -> str:
    """cv2.error's text is several lines of C++ location; one line for the user."""
    text = str(exc)
    if "CV_IO_MAX_IMAGE" in text:
        return ("OpenCV's own image-size limit refuses it (raise it with the "
                "OPENCV_IO_MAX_IMAGE_PIXELS environment variable)")
    detail = text.split("error:", 1)[-1].strip().splitlines()[0] if text.strip() else ""
    return f"not a readable image ({detail or 'OpenCV cannot decode it'})"


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) the way ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = np.rot90(arr, 2).swapaxes(0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    else:
        return arr
    return np.ascontiguousarray(arr)


def _decode(fh: BinaryIO, header: _Header, path: Path) -> np.ndarray:
    """The pixels, oriented; exactly ``header.shape`` or an error."""
    if header.opencv:
        fh.seek(0)
        arr = _decode_with_opencv(fh.read(), path)
        # OpenCV's TIFF decoder applies the Orientation tag itself (opencv#14609,
        # OpenCV 4.1.1); IMREAD_UNCHANGED skips EXIF orientation for the rest.
        if header.format != "TIFF":
            arr = _orient(arr, header.orientation)
    else:
        assert header.pillow is not None
        arr = _decode_with_pillow(header.pillow, header, path)
        if not _pillow_oriented(header.pillow):
            arr = _orient(arr, header.orientation)
    if arr.shape[:2] != header.shape:
        # Sizes are compared (trimap to photo) from headers, so they must hold.
        h, w = arr.shape[:2]
        raise ImageReadError(f"{path}: damaged image (its header says "
                             f"{header.size_text()} but it decodes to {w}x{h})")
    return arr


def _pillow_oriented(img: Image.Image) -> bool:
    """Whether Pillow's load turned the pixels itself (Pillow 13 does for TIFF and drops the tag)."""
    return img.format == "TIFF" and _ORIENTATION_TAG not in img.tag_v2


def _read(
    path: str | os.PathLike[str],
    convert: Callable[[np.ndarray], _T],
    shape: tuple[int, ...] | None = None,
    what: str = "",
) -> _T:
    """Check the header (limit; ``shape`` if given), decode, then ``convert``."""
    path = Path(path)
    with _opened(path) as (fh, header):
        if shape is not None:
            check_same_size(tuple(shape[:2]), header.shape, "image", f"{what} {path.name}")
        try:
            return convert(_decode(fh, header, path))
        except MemoryError:
            raise ImageReadError(
                f"{path}: not enough memory to decode a {header.size_text()} image"
            ) from None


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
    """Decode a file to an array in its own depth: (H, W) or (H, W, 2|3|4), RGB(A).

    The header's size is checked against ``limits.max_pixels()`` before
    anything is decoded; every failure (unreadable, over the limit, out of
    memory) is an ``ImageReadError`` naming the file.
    """
    return _read(path, lambda arr: arr)


def _image_from_raw(raw: np.ndarray) -> np.ndarray:
    arr = _to_unit_float(raw)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 2:  # LA
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a photo as float32 RGB (H, W, 3) in [0, 1].

    Greyscale is replicated to three channels; an alpha channel is dropped.
    """
    return _read(path, _image_from_raw)


def _mask_from_raw(raw: np.ndarray) -> np.ndarray:
    arr = _to_unit_float(raw)
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):
            return np.ascontiguousarray(arr[:, :, -1])
        if np.allclose(arr[:, :, 0], arr[:, :, 1]) and np.allclose(arr[:, :, 0], arr[:, :, 2]):
            return np.ascontiguousarray(arr[:, :, 0])
        # A colour image used as a mask: use its luminance.
        return np.ascontiguousarray(arr @ np.array([0.299, 0.587, 0.114], np.float32))
    return arr


def read_mask(
    path: str | os.PathLike[str], shape: tuple[int, ...] | None = None, *, what: str = "mask"
) -> np.ndarray:
    """Read a mask or alpha as float32 (H, W) in [0, 1].

    An RGBA or LA file's alpha channel is the mask (a cutout's transparency);
    otherwise the grey level (the first channel of a grey-as-RGB file).
    ``shape`` is the (height, width) of the photo it belongs to: a file of
    another size is refused from its header, before decoding, with an error
    naming both sizes (``what`` names the file's role in it).
    """
    return _read(path, _mask_from_raw, shape, what)


read_alpha = read_mask


def _trimap_from_raw(raw: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Quantise a decoded trimap file to 0/128/255; refuse a file that is plainly not a trimap.

    More than ``NOT_A_TRIMAP_FRACTION`` of pixels far from black, grey 128 and
    white (``trimap.ambiguous_fraction``) is a TrimapError naming the file;
    more than ``AMBIGUOUS_WARNING_FRACTION`` is a logged warning.
    """
    arr = raw
    if arr.dtype != np.uint8:
        arr = np.round(_to_unit_float(arr) * 255.0).astype(np.uint8)
    if path is not None:
        _check_trimap_levels(arr, path)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return quantize_trimap(arr)


def _check_trimap_levels(arr: np.ndarray, path: Path) -> None:
    fraction = ambiguous_fraction(arr)
    if fraction > NOT_A_TRIMAP_FRACTION:
        raise TrimapError(
            f"{path} does not look like a trimap: {fraction:.0%} of its pixels are far from black, "
            "grey 128 and white. A trimap has only black (background), grey 128 (unknown) and "
            "white (foreground); was the photo, a mask or an alpha given instead?"
        )
    if fraction > AMBIGUOUS_WARNING_FRACTION:
        log.warning(
            "dim-studio: warning: %s: %.0f%% of the trimap's pixels are far from black, grey 128 and "
            "white; they were read as the nearest of background (< 64), unknown or foreground (> 191)",
            path, 100 * fraction,
        )


def read_trimap(
    path: str | os.PathLike[str],
    shape: tuple[int, ...] | None = None,
    *,
    image_path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Read a trimap as uint8 (H, W) with values exactly 0/128/255.

    ``shape`` is the (height, width) of the image it belongs to, or give
    ``image_path`` and that photo's size is read from its header. A trimap of
    a different size is refused from the headers, before either file is
    decoded, with an error naming both sizes.
    """
    if image_path is not None:
        if shape is not None:
            raise ValueError("give shape or image_path, not both")
        shape = image_size(image_path)
    return _read(path, lambda raw: _trimap_from_raw(raw, Path(path)), shape, "trimap")


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
