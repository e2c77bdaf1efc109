"""Downloading published weights, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
from collections import OrderedDict

import pytest
import torch

from dim_studio.errors import Cancelled, DownloadError
from dim_studio.net import download_checkpoint, load_weights
from dim_studio.net.download import KNOWN_DOWNLOADS, expected_sha256_prefix

BLOCKS = ((2, [(4, 64), (64, 64)]), (2, [(64, 128), (128, 128)]),
          (3, [(128, 256), (256, 256), (256, 256)]), (3, [(256, 512), (512, 512), (512, 512)]),
          (3, [(512, 512), (512, 512), (512, 512)]))
DECODER = {"deconv6_1": (512, 512, 1, 1), "deconv5_1": (512, 512, 5, 5), "deconv4_1": (256, 512, 5, 5),
           "deconv3_1": (128, 256, 5, 5), "deconv2_1": (64, 128, 5, 5), "deconv1_1": (64, 64, 5, 5),
           "deconv1": (1, 64, 5, 5)}
REFINER = {"refine_conv1": (64, 4, 3, 3), "refine_conv2": (64, 64, 3, 3),
           "refine_conv3": (64, 64, 3, 3), "refine_pred": (1, 64, 3, 3)}


def _mm_stage3_bytes(tmp_path_factory) -> bytes:
    """An OpenMMLab stage-3 checkpoint with the published keys and shapes.

    Stored as float16 to halve what the tests move around; the importer
    converts to float32.
    """
    gen = torch.Generator().manual_seed(0)
    sd = OrderedDict()

    def put(key, shape):
        sd[key + ".weight"] = (torch.randn(shape, generator=gen) * 0.02).half()
        sd[key + ".bias"] = torch.zeros(shape[0]).half()

    for b, (n, chans) in enumerate(BLOCKS, start=1):
        for i, (cin, cout) in enumerate(chans):
            put(f"backbone.encoder.layer{b}.{2 * i}", (cout, cin, 3, 3))
    put("backbone.encoder.conv6", (512, 512, 1, 1))
    for name, shape in DECODER.items():
        put(f"backbone.decoder.{name}", shape)
    for name, shape in REFINER.items():
        put(f"refiner.{name}", shape)
    path = tmp_path_factory.mktemp("ckpt") / "stage3.pth"
    torch.save({"state_dict": sd, "meta": {"iter": 1000000}}, path, _use_new_zipfile_serialization=False)
    return path.read_bytes()


class _Server:
    """Serves byte strings by path, honours Range, records request headers."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.sent: list[int] = []
        files, requests, sent = self.files, self.requests, self.sent

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                requests.append((self.path, rng))
                data = files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and (m := re.fullmatch(r"bytes=(\d+)-", rng)):
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (ConnectionResetError, BrokenPipeError):
                    return  # the client hung up (a cancel, a refused size): nothing to report
                sent.append(len(body))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[bytes, str]:
    data = _mm_stage3_bytes(tmp_path_factory)
    name = f"/dl/dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    return data, name


@pytest.fixture(scope="module")
def server(checkpoint):
    srv = _Server()
    data, name = checkpoint
    srv.files[name] = data
    yield srv
    srv.close()


def test_download_verifies_converts_and_installs(server, checkpoint, tmp_path):
    data, name = checkpoint
    seen: list[float] = []
    path = download_checkpoint("dim-stage3", url=server.url(name), dest_dir=tmp_path, progress=seen.append)
    assert path == tmp_path / "dim-stage3.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dim-stage3.safetensors"]  # no .part left
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    model, info = load_weights(path)
    assert info.config.refine and info.provenance["source"] == "openmmlab"
    assert info.provenance["url"] == server.url(name)
    assert info.provenance["source_file"] == name.rsplit("/", 1)[1]
    assert info.provenance["source_sha256"] == hashlib.sha256(data).hexdigest()


def test_corrupted_download_is_rejected(server, checkpoint, tmp_path):
    data, name = checkpoint
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    bad_name = name.replace("/dl/", "/bad/")  # same published name, altered bytes
    server.files[bad_name] = bytes(bad)
    with pytest.raises(DownloadError, match="corrupt"):
        download_checkpoint(url=server.url(bad_name), dest_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing installed, no partial file


def test_resume_from_partial_file(server, checkpoint, tmp_path):
    data, name = checkpoint
    part = tmp_path / (name.rsplit("/", 1)[1] + ".part")
    have = len(data) // 3
    part.write_bytes(data[:have])
    server.requests.clear()
    server.sent.clear()
    path = download_checkpoint(url=server.url(name), dest_dir=tmp_path)
    assert server.requests == [(name, f"bytes={have}-")]
    assert server.sent == [len(data) - have]  # only the rest was transferred
    assert path.exists() and not part.exists()
    load_weights(path)


def test_cancel_keeps_the_partial_file_for_a_resume(server, checkpoint, tmp_path):
    data, name = checkpoint
    polls = iter([False, False, True])
    with pytest.raises(Cancelled):
        download_checkpoint(url=server.url(name), dest_dir=tmp_path, cancel=lambda: next(polls))
    part = tmp_path / (name.rsplit("/", 1)[1] + ".part")
    assert 0 < part.stat().st_size < len(data)
    assert not (tmp_path / "dim-stage3.safetensors").exists()
    download_checkpoint(url=server.url(name), dest_dir=tmp_path)
    assert (tmp_path / "dim-stage3.safetensors").exists() and not part.exists()


def test_offline_gives_a_clear_message(tmp_path):
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x/dim_stage3-647f24b6.pth"
    with pytest.raises(DownloadError) as e:
        download_checkpoint(url=url, dest_dir=tmp_path, timeout=5)
    msg = str(e.value)
    assert f"could not reach 127.0.0.1:{port}" in msg and "offline" in msg
    assert "dim-studio weights import" in msg
    assert list(tmp_path.iterdir()) == []


def test_http_error_and_unverifiable_names(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_checkpoint(url=server.url("/missing-647f24b6.pth"), dest_dir=tmp_path)
    with pytest.raises(DownloadError, match="cannot verify"):
        download_checkpoint(url=server.url("/no-hash.pth"), dest_dir=tmp_path)
    with pytest.raises(DownloadError, match="unknown download"):
        download_checkpoint("dim-stage9", dest_dir=tmp_path)


def test_published_address_carries_the_expected_hash():
    spec = KNOWN_DOWNLOADS["dim-stage3"]
    assert spec.url == (
        "https://download.openmmlab.com/mmediting/mattors/dim/"
        "dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-647f24b6.pth"
    )
    assert expected_sha256_prefix(spec.url.rsplit("/", 1)[1]) == "647f24b6"
    assert spec.install_as == "dim-stage3.safetensors"


def test_download_defaults_to_the_user_data_folder(server, checkpoint, tmp_path, monkeypatch):
    _, name = checkpoint
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(tmp_path / "data"))
    path = download_checkpoint(url=server.url(name))
    assert path == tmp_path / "data" / "dim-stage3.safetensors"


def test_weights_download_command(server, checkpoint, tmp_path, capsys):
    import argparse

    from dim_studio.commands.weights import register

    _, name = checkpoint
    parser = argparse.ArgumentParser(prog="dim-studio")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights", "download", "dim-stage3", "--url", server.url(name), "--dest", str(tmp_path)])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert f"Installed {tmp_path / 'dim-stage3.safetensors'}" in captured.out
    assert "source: openmmlab" in captured.out
    assert "B/s" in captured.err or "%" in captured.err  # the tqdm progress bar
