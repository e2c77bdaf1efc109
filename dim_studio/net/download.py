"""Download, verify, convert and install published DIM weights.

Only the standard library's urllib is used. The download goes to
``<dest>/<file name>.part`` and resumes from there with an HTTP Range request
after an interruption, a cancel, a full disk or a missed deadline; the file is
checked against the sha256 prefix in its published name, converted to DIM
Studio's format and installed atomically as ``<dest>/dim-stage3.safetensors``.
Nothing is downloaded unless one of these functions is called.

Bounds, so that a broken or hostile server cannot hang or flood the machine:

- ``timeout`` (30 s): the longest wait for any one network operation;
- ``deadline`` (``DEFAULT_DEADLINE_S``, an hour): the whole transfer,
  headers included. A server that drips a byte a second never trips the
  timeout; at the deadline a watchdog shuts the connection down wherever the
  download is blocked. The partial file is kept, so running again resumes;
- ``max_bytes`` (twice the expected size): a larger Content-Length is refused
  before anything is written, and a body that runs past it (no
  Content-Length) is stopped and deleted.

A verified download whose conversion cannot be written (a full disk, a
read-only folder) is kept as ``.part`` and reused, without downloading it
again, by the next run.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from dim_studio import __version__
from dim_studio.errors import Cancelled, DownloadError, WeightsError

__all__ = [
    "DEFAULT_DEADLINE_S", "KNOWN_DOWNLOADS", "DownloadSpec", "download_checkpoint", "expected_sha256_prefix",
    "gui_message",
]

CHUNK = 1 << 20

#: The whole download may take at most this long (seconds). The published
#: file is about 100 MB: an hour is 28 kB/s, slower than any connection that
#: is really transferring. Hitting it loses nothing (the next run resumes).
DEFAULT_DEADLINE_S = 3600.0

#: A download may be at most this many times its expected size.
SIZE_MARGIN = 2


@dataclass(frozen=True)
class DownloadSpec:
    name: str
    url: str
    install_as: str
    source: str
    approx_mb: int

    @property
    def max_bytes(self) -> int:
        """The most a download of this file may be: its expected size with a margin."""
        return SIZE_MARGIN * self.approx_mb * 1_000_000


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


@dataclass(frozen=True)
class _Words:
    """How a front end tells the user to act: the command line's commands or the window's menu entries."""

    again: str  # do the same download again (it resumes)
    import_file: str  # install a checkpoint fetched another way
    writable: str  # what to do about a folder that cannot be written
    more_time: str  # how to allow a slow download more time ("" where there is no way)


CLI_WORDS = _Words(
    again="run the same command again",
    import_file="run `dim-studio weights import FILE.pth` (it installs the weights in the user data folder)",
    writable="choose a folder you can write to (`dim-studio weights download --dest FOLDER`)",
    more_time=", or allow more time (`dim-studio weights download --deadline MINUTES`)",
)
GUI_WORDS = _Words(
    again="choose Weights > Download published DIM weights… again",
    import_file="choose Weights > Import weights file…",
    writable="make that folder writable, or start DIM Studio with DIM_STUDIO_DATA_DIR set to a folder you can write to",
    more_time="",
)


def _error(message: Callable[[_Words], str]) -> DownloadError:
    """A DownloadError whose advice names shell commands; ``gui_message`` names menu entries instead."""
    error = DownloadError(message(CLI_WORDS))
    error.gui_message = message(GUI_WORDS)  # type: ignore[attr-defined]
    return error


def gui_message(error: BaseException) -> str:
    """``error``'s message as the window shows it: menu entries, not shell commands."""
    return str(getattr(error, "gui_message", None) or error)


def _offline_error(url: str, reason: object) -> DownloadError:
    host = urlparse(url).netloc or url
    return _error(lambda say: (
        f"could not reach {host} ({reason}). You seem to be offline, or a firewall or proxy "
        f"blocks the connection. Try again when online, or fetch {url} another way and "
        f"{say.import_file}. The classical engines work without weights meanwhile."
    ))


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _write_error(part: Path, exc: OSError, done: int, total: int | None) -> DownloadError:
    """One line for a partial file that cannot be written: why, where it is, what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        left = f"about {_mb(total - done)} more" if total is not None else "more"
        kept = f"the {_mb(done)} downloaded so far are kept in {part}" if done else f"nothing was kept ({part})"
        return _error(lambda say: (
            f"cannot write {part}: {reason}; {kept}. Free {left} (and as much again for the "
            f"converted weights), then {say.again} to resume"
        ))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return _error(lambda say: f"cannot write {part}: {reason}; {say.writable}")
    return _error(lambda say: f"cannot write {part}: {reason}; {say.again} to resume")


class _Deadline:
    """Shuts the download's connections down when the overall deadline passes.

    A socket timeout bounds each wait, not the whole: a server sending a
    byte every few seconds would never trip it. The timer fires in its own
    thread and shuts the sockets down, so whatever the download is blocked
    in (connecting, TLS, headers, body) returns at once.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if seconds is not None and seconds > 0:
            self._timer = threading.Timer(seconds, self._expire)
            self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
        if self.expired.is_set():
            self._shutdown(sock)

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            # the plain socket's shutdown, also for a TLS socket: it wakes a
            # blocked reader without touching the TLS state another thread is in
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def opener(self) -> urllib.request.OpenerDirector:
        """A urllib opener whose connections this deadline can shut down."""
        deadline = self

        def tracked(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
            class Tracked(base):  # type: ignore[valid-type, misc]
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    super().__init__(*args, **kwargs)
                    create = self._create_connection  # type: ignore[has-type]

                    def create_tracked(*a: Any, **kw: Any) -> socket.socket:
                        sock = create(*a, **kw)
                        deadline.track(sock)  # the plain socket, while TLS is set up over it
                        return sock

                    self._create_connection = create_tracked

                def connect(self) -> None:
                    super().connect()
                    deadline.track(self.sock)  # the TLS socket (wrapping detaches the plain one)

            return Tracked

        http_class, https_class = tracked(http.client.HTTPConnection), tracked(http.client.HTTPSConnection)

        class HTTPHandler(urllib.request.HTTPHandler):
            def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
                return self.do_open(http_class, req)

        class HTTPSHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
                kwargs: dict[str, Any] = {"context": self._context}  # type: ignore[attr-defined]
                if hasattr(self, "_check_hostname"):  # Python < 3.12
                    kwargs["check_hostname"] = self._check_hostname
                return self.do_open(https_class, req, **kwargs)

        return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _deadline_error(deadline: _Deadline, part: Path, done: int, total: int | None) -> DownloadError:
    got = f"{_mb(done)} of {_mb(total)}" if total is not None else _mb(done)
    seconds = deadline.seconds or 0.0
    limit = f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"
    return _error(lambda say: (
        f"the download did not finish within {limit} (got {got}); the server is too "
        f"slow or stalled. What arrived is kept in {part}: {say.again} to resume{say.more_time}"
    ))


def _fetch(
    url: str,
    part: Path,
    progress: Callable[[float], None] | None,
    cancel: Callable[[], bool] | None,
    progress_bar: bool,
    timeout: float,
    deadline_s: float | None,
    max_bytes: int,
) -> None:
    """Download ``url`` into ``part``, resuming from its current size."""
    try:
        have = part.stat().st_size if part.exists() else 0
    except OSError as e:
        raise _write_error(part, e, 0, None) from e
    headers = {"User-Agent": f"dim-studio/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    done, total = have, None
    with _Deadline(deadline_s) as deadline:
        try:
            response = deadline.opener().open(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:
                # Nothing left to send: the partial file is complete (verified next).
                return
            raise DownloadError(f"the server answered HTTP {e.code} ({e.reason}) for {url}") from e
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as e:
            if deadline.expired.is_set():
                raise _deadline_error(deadline, part, done, total) from None
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            raise _offline_error(url, reason) from e

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
            if total is not None and total > max_bytes:
                raise DownloadError(
                    f"the server announces {_mb(total)} for {url}, more than the {_mb(max_bytes)} "
                    "this download can be; nothing was downloaded (a wrong address, or a proxy's page?)"
                )

            if deadline.expired.is_set():  # the headers took it all
                raise _deadline_error(deadline, part, done, total)
            try:
                out: BinaryIO = open(part, mode)
            except OSError as e:
                raise _write_error(part, e, 0, total) from e
            bar = None
            try:
                if progress_bar:
                    from tqdm import tqdm

                    bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5])
                ended = cancelled = False
                while not (ended or cancelled):
                    # Up to CHUNK bytes per write and progress report, gathered with read1
                    # (whatever has arrived), so that cancel and the deadline are checked
                    # between arrivals even while a server drips.
                    block = bytearray()
                    while len(block) < CHUNK:
                        if cancel is not None and cancel():
                            cancelled = True  # after writing what has arrived: a resume starts there
                            break
                        try:
                            piece = response.read1(CHUNK - len(block))
                        except (socket.timeout, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as e:
                            if deadline.expired.is_set():
                                raise _deadline_error(deadline, part, done, total) from None
                            raise _error(
                                lambda say, e=e: f"the download was interrupted ({e}); {say.again} to resume"
                            ) from e
                        if deadline.expired.is_set():
                            raise _deadline_error(deadline, part, done, total)
                        if not piece:
                            ended = True
                            break
                        block += piece
                    if not block and not cancelled:
                        break
                    if done + len(block) > max_bytes:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise DownloadError(
                            f"the server sent more than {_mb(max_bytes)} for {url}, which is not the "
                            "published file; the download was stopped and deleted"
                        )
                    try:
                        out.write(block)
                    except OSError as e:
                        raise _write_error(part, e, done, total) from e
                    done += len(block)
                    if bar is not None:
                        bar.update(len(block))
                    if progress is not None and total:
                        progress(min(done / total, 1.0))
                if cancelled:
                    raise Cancelled("download cancelled; run it again to resume where it stopped")
            finally:
                if bar is not None:
                    bar.close()
                if not out.closed:
                    try:
                        out.close()  # flushes: a full disk can show here first
                    except OSError as e:
                        raise _write_error(part, e, done, total) from e
    if total is not None and done < total:
        raise _error(
            lambda say: f"the download stopped after {done} of {total} bytes; {say.again} to resume"
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
    deadline: float | None = DEFAULT_DEADLINE_S,
    max_bytes: int | None = None,
) -> Path:
    """Fetch, verify, convert and install a published checkpoint; return its path.

    progress(fraction) is called as bytes arrive; cancel() is polled between
    chunks and a cancel raises Cancelled, keeping the partial file for a resume.
    ``url`` overrides the published address; its file name must still end with
    ``-<sha256 prefix>.pth`` so the download can be verified. ``dest_dir``
    defaults to the user data folder. ``progress_bar`` shows a tqdm bar (CLI).
    ``timeout`` bounds each network wait, ``deadline`` (seconds; None: none)
    the whole transfer, ``max_bytes`` the file's size (default: twice the
    published file's).
    """
    from .importers import import_weights
    from .weights import WeightsWriteError, user_data_dir

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

    # A verified download kept after a failed install is used as it is.
    if not (part.is_file() and _sha256(part).startswith(prefix)):
        _fetch(url, part, progress, cancel, progress_bar, timeout, deadline,
               spec.max_bytes if max_bytes is None else max_bytes)

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
    except WeightsWriteError as e:
        # The download itself is good: keep it, so fixing the disk is all it takes.
        raise _error(lambda say, e=e: (
            f"the download verified but could not be installed: {e}. The verified download is kept "
            f"in {part}: {say.again} to install it without downloading it again"
        )) from e
    except WeightsError as e:
        # the file itself cannot be converted: trying again would not help
        part.unlink(missing_ok=True)
        raise DownloadError(f"the download verified but could not be converted: {e}") from e
    # (anything else, a MemoryError or a Ctrl-C, also leaves the verified download for the next run)
    part.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0)
    return final
