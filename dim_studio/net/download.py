"""Download, verify, convert and install published DIM weights.

Only the standard library's urllib is used. The download goes to
``<dest>/<file name>.part`` and resumes from there with an HTTP Range request
after an interruption or a cancel; the file is checked against the sha256
prefix in its published name, converted to DIM Studio's format and installed
atomically as ``<dest>/dim-stage3.safetensors``. Nothing is downloaded unless
one of these functions is called.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from dim_studio import __version__
from dim_studio.errors import Cancelled, DownloadError, WeightsError

__all__ = ["KNOWN_DOWNLOADS", "DownloadSpec", "download_checkpoint", "expected_sha256_prefix"]

CHUNK = 1 << 20


@dataclass(frozen=True)
class DownloadSpec:
    name: str
    url: str
    install_as: str
    source: str
    approx_mb: int


KNOWN_DOWNLOADS: dict[str, DownloadSpec] = {
    "dim-stage3": DownloadSpec(
        name="dim-stage3",
        url=(
            "https://download.openmmlab.com/mmediting/mattors/dim/"
            "dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-647f24b6.pth"
        ),
        install_as="dim-stage3.safetensors",
        source="openmmlab",
        approx_mb=100,
    ),
}


def expected_sha256_prefix(file_name: str) -> str | None:
    """The hex digits OpenMMLab puts before ``.pth`` (the start of the file's sha256)."""
    m = re.search(r"-([0-9a-f]{8,64})\.pth$", file_name)
    return m.group(1) if m else None


def _offline_error(url: str, reason: object) -> DownloadError:
    host = urlparse(url).netloc or url
    return DownloadError(
        f"could not reach {host} ({reason}). You seem to be offline, or a firewall or proxy "
        f"blocks the connection. Try again when online, or fetch {url} another way and run "
        "`dim-studio weights import FILE.pth -o dim-stage3.safetensors`. "
        "The classical engines work without weights meanwhile."
    )


def _fetch(
    url: str,
    part: Path,
    progress: Callable[[float], None] | None,
    cancel: Callable[[], bool] | None,
    progress_bar: bool,
    timeout: float,
) -> None:
    """Download ``url`` into ``part``, resuming from its current size."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"dim-studio/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # Nothing left to send: the partial file is complete (verified next).
            return
        raise DownloadError(f"the server answered HTTP {e.code} ({e.reason}) for {url}") from e
    except urllib.error.URLError as e:
        raise _offline_error(url, e.reason) from e
    except (socket.timeout, TimeoutError, ConnectionError, OSError) as e:
        raise _offline_error(url, e) from e

    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if have and status == 206:
            content_range = response.headers.get("Content-Range", "")
            m = re.match(r"bytes (\d+)-", content_range)
            if not m or int(m.group(1)) != have:
                raise DownloadError(f"the server resumed at the wrong place ({content_range!r}); delete {part} and retry")
            mode = "ab"
        else:
            # The server ignored the Range header: start over.
            have, mode = 0, "wb"
        total = have + remaining if remaining is not None else None
        done = have

        bar = None
        if progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5])
        try:
            with open(part, mode) as out:
                while True:
                    if cancel is not None and cancel():
                        raise Cancelled("download cancelled; run it again to resume where it stopped")
                    try:
                        block = response.read(CHUNK)
                    except (socket.timeout, TimeoutError, ConnectionError, OSError) as e:
                        raise DownloadError(
                            f"the download was interrupted ({e}); run the same command again to resume"
                        ) from e
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if bar is not None:
                        bar.update(len(block))
                    if progress is not None and total:
                        progress(min(done / total, 1.0))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and done < total:
        raise DownloadError(
            f"the download stopped after {done} of {total} bytes; run the same command again to resume"
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def download_checkpoint(
    name: str = "dim-stage3",
    url: str | None = None,
    dest_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    progress_bar: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Fetch, verify, convert and install a published checkpoint; return its path.

    progress(fraction) is called as bytes arrive; cancel() is polled between
    chunks and a cancel raises Cancelled, keeping the partial file for a resume.
    ``url`` overrides the published address; its file name must still end with
    ``-<sha256 prefix>.pth`` so the download can be verified. ``dest_dir``
    defaults to the user data folder. ``progress_bar`` shows a tqdm bar (CLI).
    """
    from .importers import import_weights
    from .weights import user_data_dir

    if name not in KNOWN_DOWNLOADS:
        raise DownloadError(f"unknown download {name!r}; available: {', '.join(KNOWN_DOWNLOADS)}")
    spec = KNOWN_DOWNLOADS[name]
    url = url or spec.url
    file_name = Path(unquote(urlparse(url).path)).name
    prefix = expected_sha256_prefix(file_name)
    if prefix is None:
        raise DownloadError(
            f"cannot verify {file_name or url}: the file name must end with '-<first hex digits "
            "of its sha256>.pth', as OpenMMLab's published names do"
        )
    dest = Path(dest_dir) if dest_dir is not None else user_data_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the folder {dest}: {e.strerror or e}") from e
    part = dest / (file_name + ".part")
    final = dest / spec.install_as

    _fetch(url, part, progress, cancel, progress_bar, timeout)

    digest = _sha256(part)
    if not digest.startswith(prefix):
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"the downloaded file is corrupt: its sha256 starts with {digest[:len(prefix)]}, "
            f"the published file's with {prefix}. It was deleted; try again (if this repeats, "
            "a proxy may be altering downloads)"
        )
    try:
        import_weights(
            part,
            final,
            source=spec.source,
            source_name=file_name,
            extra_provenance={"url": url},
        )
    except WeightsError as e:
        raise DownloadError(f"the download verified but could not be converted: {e}") from e
    finally:
        part.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0)
    return final
