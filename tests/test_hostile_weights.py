"""Hostile and broken weights files, as a user meets them on the command line.

Every case builds its own input and checks what the user sees: the exit
status, exactly one clear line on stderr naming the file and the problem
(no traceback, no "internal error"), no partial or temporary file left in
the target folder, and the input unchanged. Covered:

- zip checkpoints that would inflate past the weights-file limit or like a
  zip bomb (refused from the central directory, before anything is inflated,
  with low peak memory), and an oversized pickle;
- metadata of the wrong type, out of range or not finite; control characters
  in metadata; a broken weights file on the search path (the default engine
  falls back to the offline default (ifm) with a note; ``--engine dim`` fails cleanly); a
  network that outputs NaN;
- writes that fail (read-only folder, full disk) in ``weights import`` and
  ``weights download``, a server that drips bytes (overall deadline) or sends
  too much (size cap).
"""

from __future__ import annotations

import errno
import hashlib
import http.server
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dim_studio.engines import create_engine
from dim_studio.errors import DownloadError, EngineError
from dim_studio.images import read_alpha, read_image, read_trimap
from dim_studio.net import download as download_mod
from dim_studio.net import importers
from dim_studio.net.model import random_dim
from dim_studio.net.weights import save_weights
from dim_studio.workflows.engine_choice import OFFLINE_DEFAULT

from conftest import make_scene, save_gray, save_rgb

# The temporaries writers use: atomic's ".<stem>.<pid>-XXXXXXXX.tmp<suffix>" and
# the safetensors writer's own ".tmpXXXXXX".
TEMPORARY = re.compile(r"^\..*\.tmp|^\.tmp")


def one_error_line(err: str, *needles: str) -> str:
    """The single stderr line, which must name every needle; no traceback."""
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("dim-studio: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def error_lines(err: str) -> list[str]:
    """The error lines of a command that also drew a progress bar (tqdm) on stderr."""
    assert "Traceback" not in err and "internal error" not in err, err
    return [line for line in re.split(r"[\r\n]", err) if line.startswith("dim-studio: error: ")]


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TEMPORARY.match(p.name)] if folder.exists() else []


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------


def tiny_weights(path: Path, meta: dict | str | None, tensors: dict | None = None) -> Path:
    """A safetensors file with DIM Studio metadata ``meta`` (a dict, or raw JSON text).

    One tiny tensor: the metadata is checked before any key or shape.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata=None if meta is None else {"dim_studio": blob})
    return path


def good_meta(**changes) -> dict:
    meta = {
        "format": "dim-studio-weights", "format_version": 1,
        "architecture": {"name": "dim", "conv6": "1x1", "refine": True},
        "normalization": {"channel_order": "RGB", "input_range": 255.0, "mean": [123.675, 116.28, 103.53],
                          "std": [58.395, 57.12, 57.375], "trimap_divisor": 255.0},
        "provenance": {"kind": "training"}, "metrics": {}, "created": "2024-01-01T00:00:00Z",
    }
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = meta
        for parent in parents:
            target = target[parent]
        target[key] = value
    return meta


@pytest.fixture
def photo(tmp_path) -> tuple[Path, Path]:
    """A photo and its trimap, in folders of their own (as ``batch`` wants them)."""
    scene = make_scene(32, 24)
    image = save_rgb(tmp_path / "photos" / "photo.png", scene.image)
    trimap = save_gray(tmp_path / "trimaps" / "photo.png", scene.trimap)
    return image, trimap


def offline_default_alpha(image: Path, trimap: Path) -> np.ndarray:
    rgb = read_image(image)
    return create_engine(OFFLINE_DEFAULT).estimate(rgb, read_trimap(trimap, rgb.shape[:2]))


def _deflate_zeros(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zeros, about 1 kB per MiB, made in milliseconds.

    Each MiB is compressed after a full flush (fresh history, byte-aligned),
    so every MiB after the first compresses to the same bytes.
    """
    zero = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    return first + again * (mib - 1) + c.flush()


def write_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip of (name, stored bytes, method, declared uncompressed size).

    A deflated member's CRC is left 0: it is checked only after the member
    is inflated, which for a bomb is what must never happen (and computing it
    would take seconds per GiB).
    """
    local, central = bytearray(), bytearray()
    for name, data, method, size in members:
        raw = name.encode()
        offset = len(local)
        crc = zlib.crc32(data) if method == zipfile.ZIP_STORED else 0
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        local += raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def torch_zip_bomb(path: Path, inflated_mib: int) -> Path:
    """A torch zip checkpoint whose one tensor record inflates to ``inflated_mib`` MiB of zeros.

    Its pickle is torch.save's own, referencing that record, so torch's
    loader would inflate the record whole when the tensor is loaded.
    """
    honest = path.with_name("honest.pth")
    torch.save({"state_dict": OrderedDict(w=torch.zeros(4))}, honest)
    members = []
    with zipfile.ZipFile(honest) as zf:
        for info in zf.infolist():
            if info.filename.endswith("/data/0"):
                members.append((info.filename, _deflate_zeros(inflated_mib), zipfile.ZIP_DEFLATED, inflated_mib << 20))
            else:
                data = zf.read(info)
                members.append((info.filename, data, zipfile.ZIP_STORED, len(data)))
    honest.unlink()
    return write_zip(path, members)


# --------------------------------------------------------------------------
# (3) checkpoints that would inflate past the limit
# --------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from Linux's /proc")
def test_zip_bomb_over_the_limit_is_refused_before_anything_is_inflated(tmp_path):
    # 1 MB on disk, 1 GiB inflated: the reported case (2.3 GB peak before the fix).
    bomb = torch_zip_bomb(tmp_path / "bomb.pth", 1024)
    assert bomb.stat().st_size < 2_000_000
    out = tmp_path / "out"
    out.mkdir()
    # VmHWM is the child's own peak (ru_maxrss would carry the parent's over fork and exec).
    child = (
        "import re, sys\n"
        "import dim_studio.net.importers\n"
        "from dim_studio.cli import main\n"
        "def peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return int(re.search(r'VmHWM:\\s*(\\d+) kB', f.read()).group(1))\n"
        "before = peak()\n"
        "code = main(['weights', 'import', sys.argv[1], '-o', sys.argv[2]])\n"
        "print(code, peak() - before)\n"
    )
    env = {**os.environ, "DIM_STUDIO_MAX_WEIGHTS_MB": "500"}  # so that 1 GiB is over the limit
    run = subprocess.run(
        [sys.executable, "-c", child, str(bomb), str(out / "x.safetensors")],
        capture_output=True, text=True, timeout=300, env=env,
    )
    code, grown_kib = (int(v) for v in run.stdout.split())
    assert code == 1
    one_error_line(run.stderr, "bomb.pth", "1,074 MB", "500 MB limit", "DIM_STUDIO_MAX_WEIGHTS_MB")
    assert grown_kib < 100 * 1024, f"peak memory grew by {grown_kib // 1024} MB"
    assert list(out.iterdir()) == []


def test_zip_declaring_more_than_the_default_limit_is_refused(tmp_path, run_cli):
    bomb = torch_zip_bomb(tmp_path / "huge.pth", 3 * 1024)  # 3 GiB from about 3 MB
    before = digest(bomb)
    result = run_cli("weights", "import", bomb, "-o", tmp_path / "out" / "x.safetensors")
    assert result.code == 1
    one_error_line(result.err, "huge.pth", "would inflate to 3,221 MB", "2,048 MB limit",
                   "DIM_STUDIO_MAX_WEIGHTS_MB")
    assert digest(bomb) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("limit_mb", [None, "100000"])
def test_zip_bomb_under_the_limit_is_refused_by_its_ratio(tmp_path, run_cli, monkeypatch, limit_mb):
    # Raising the limit does not let a bomb through: weights never compress 1000-fold.
    if limit_mb:
        monkeypatch.setenv("DIM_STUDIO_MAX_WEIGHTS_MB", limit_mb)
    bomb = torch_zip_bomb(tmp_path / "small-bomb.pth", 64)
    result = run_cli("weights", "import", bomb, "-o", tmp_path / "x.safetensors")
    assert result.code == 1
    one_error_line(result.err, "small-bomb.pth", "/data/0", "-fold", "zip bomb", "Nothing in it was decompressed")
    assert not (tmp_path / "x.safetensors").exists()


def test_many_small_members_add_up_to_a_bomb(tmp_path, run_cli):
    one = _deflate_zeros(1)  # 1 MiB each: under the size from which one member's ratio counts
    pkl = pickle.dumps(OrderedDict(), protocol=2)
    members = [(f"c/data/{i}", one, zipfile.ZIP_DEFLATED, 1 << 20) for i in range(200)]
    members.append(("c/data.pkl", pkl, zipfile.ZIP_STORED, len(pkl)))
    bomb = write_zip(tmp_path / "spread.pth", members)
    result = run_cli("weights", "import", bomb, "-o", tmp_path / "x.safetensors")
    assert result.code == 1
    one_error_line(result.err, "spread.pth", "its 201 members would inflate", "zip bomb")


def test_npz_bomb_is_refused(tmp_path, run_cli):
    src = tmp_path / "vgg16_weights.npz"
    np.savez_compressed(src, conv1_1_W=np.zeros((64, 1 << 18), np.float32))  # 64 MiB of zeros
    result = run_cli("weights", "import", src, "-o", tmp_path / "x.safetensors")
    assert result.code == 1
    one_error_line(result.err, "vgg16_weights.npz", "conv1_1_W.npy", "zip bomb")


def test_the_limit_can_be_raised(tmp_path, run_cli, monkeypatch):
    src = tmp_path / "plain.pth"
    torch.save({"foo.weight": torch.zeros(600_000)}, src)  # 2.4 MB, stored uncompressed
    legacy = tmp_path / "legacy.pth"
    torch.save({"foo.weight": torch.zeros(600_000)}, legacy, _use_new_zipfile_serialization=False)
    monkeypatch.setenv("DIM_STUDIO_MAX_WEIGHTS_MB", "1")
    for path in (src, legacy):
        result = run_cli("weights", "import", path, "-o", tmp_path / "x.safetensors")
        assert result.code == 1
        one_error_line(result.err, path.name, "2.4 MB", "1.0 MB limit", "DIM_STUDIO_MAX_WEIGHTS_MB")
    monkeypatch.setenv("DIM_STUDIO_MAX_WEIGHTS_MB", "10")
    result = run_cli("weights", "import", src, "-o", tmp_path / "x.safetensors")
    assert result.code == 1
    one_error_line(result.err, "cannot tell what plain.pth is")  # read, and on to the usual checks


def test_an_oversized_pickle_is_not_scanned_whole(tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(importers, "MAX_PICKLE_BYTES", 1 << 20)
    # a zip whose data.pkl (stored, so no ratio to notice) is larger than the cap
    big = pickle.dumps({"meta": b"\0" * (2 << 20)}, protocol=2)
    zipped = write_zip(tmp_path / "fat-pickle.pth", [("a/data.pkl", big, zipfile.ZIP_STORED, len(big))])
    # a plain pickle that declares 1 TB of bytes (BINBYTES8) in 20 bytes
    declared = tmp_path / "liar.pth"
    declared.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"\0" * 8)
    for path in (zipped, declared):
        result = run_cli("weights", "import", path, "-o", tmp_path / "x.safetensors")
        assert result.code == 1
        one_error_line(result.err, path.name, "its pickle would take more than 1.0 MB")


# --------------------------------------------------------------------------
# (4) metadata that is wrong, and what it does to the engines
# --------------------------------------------------------------------------

BAD_METADATA = {
    "architecture-string": ({"architecture": "dim"}, "architecture must be a JSON object"),
    "version-text": ({"format_version": "abc"}, 'format_version must be a whole number from 1, not "abc"'),
    "version-bool": ({"format_version": True}, "format_version must be a whole number"),
    "normalization-list": ({"normalization": [1, 2, 3]}, "normalization must be a JSON object"),
    "metrics-number": ({"metrics": 5}, "metrics must be a JSON object, not 5"),
    "provenance-list": ({"provenance": ["a"]}, "provenance must be a JSON object"),
    "trimap-divisor-zero": ({"normalization__trimap_divisor": 0}, "normalization.trimap_divisor must be a number"),
    "input-range-nan": ({"normalization__input_range": math.nan}, "normalization.input_range must be a number from 1e-06 to 1e+06, not NaN"),
    "input-range-huge": ({"normalization__input_range": 1e300}, "normalization.input_range must be"),
    "input-range-giant-int": ({"normalization__input_range": 10**400}, "normalization.input_range must be"),
    "input-range-text": ({"normalization__input_range": "255"}, 'normalization.input_range must be a number from 1e-06 to 1e+06, not "255"'),
    "mean-two": ({"normalization__mean": [1.0, 2.0]}, "normalization.mean must be a list of 3 numbers"),
    "mean-infinite": ({"normalization__mean": [1.0, math.inf, 2.0]}, "normalization.mean[1] must be a number"),
    "std-negative": ({"normalization__std": [1.0, -1.0, 1.0]}, "normalization.std[1] must be a number from 1e-06"),
    "channel-order": ({"normalization__channel_order": "BGR"}, 'normalization.channel_order must be "RGB"'),
    "conv6": ({"architecture__conv6": "3x3"}, 'architecture.conv6 must be "1x1" or "7x7", not "3x3"'),
    "refine-text": ({"architecture__refine": "no"}, 'architecture.refine must be true or false, not "no"'),
    "name-number": ({"architecture__name": 3}, "architecture.name must be"),
    "created-number": ({"created": 5}, "created must be"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_invalid_metadata_is_one_line_naming_the_file_and_field(tmp_path, run_cli, case):
    changes, expected = BAD_METADATA[case]
    path = tiny_weights(tmp_path / f"{case}.safetensors", good_meta(**changes))
    result = run_cli("weights", "info", path)
    assert result.code == 1 and result.out == ""
    one_error_line(result.err, str(path), "metadata is invalid", expected)


def test_metadata_that_is_not_json_or_too_deep(tmp_path, run_cli):
    for name, blob, expected in [
        ("not-json", "{'single': quotes}", "not valid JSON"),
        ("array", "[1, 2]", "not a JSON object"),
        ("deep", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("long-int", '{"format_version": ' + "9" * 5000 + "}", "not valid JSON"),
    ]:
        path = tiny_weights(tmp_path / f"{name}.safetensors", blob)
        result = run_cli("weights", "info", path)
        assert result.code == 1
        one_error_line(result.err, str(path), expected)


def test_unknown_extra_keys_are_tolerated(tmp_path, run_cli):
    meta = good_meta(future_key={"x": 1}, normalization__gamma=2.2, architecture__note="hi")
    path = tiny_weights(tmp_path / "extra.safetensors", meta)
    result = run_cli("weights", "info", path)
    assert result.code == 0, result.err
    assert "Architecture:   DIM, conv6 1x1 512, refinement on" in result.out


def test_weights_info_escapes_control_characters(tmp_path, run_cli):
    hostile = "\x1b[2J\x1b]0;pwned\x07evil\rfake\u202egnp.exe\ud800\nNext-line: 1"
    meta = good_meta(provenance={"kind": hostile, hostile: "key too"}, metrics={"set": {"SAD": hostile}},
                     created=hostile)
    path = tiny_weights(tmp_path / "ansi.safetensors", meta)
    result = run_cli("weights", "info", path)
    assert result.code == 0, result.err
    for bad in ("\x1b", "\x07", "\r", "\u202e", "\ud800"):
        assert bad not in result.out, repr(bad)
    assert "\\x1b[2J" in result.out and "\\u202e" in result.out and "\\r" in result.out
    # each value stays on its own line: an embedded newline cannot fake a field
    assert not any(line.startswith("Next-line") for line in result.out.splitlines())


def broken_weights(path: Path, kind: str) -> str:
    """Write a weights file broken in the way ``kind`` names; returns what the message must say."""
    if kind == "metadata":
        tiny_weights(path, good_meta(normalization__trimap_divisor=0))
        return "normalization.trimap_divisor must be"
    if kind == "shapes":
        tiny_weights(path, good_meta())
        return "encoder.conv1_1.weight is missing"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 64)
    return "not a format DIM Studio knows"


@pytest.mark.parametrize("where", ["user data folder", "DIM_STUDIO_WEIGHTS"])
@pytest.mark.parametrize("kind", ["metadata", "shapes", "garbage"])
def test_default_matte_with_a_broken_weights_file_uses_the_offline_default_with_a_note(
    tmp_path, run_cli, monkeypatch, photo, where, kind
):
    if where == "DIM_STUDIO_WEIGHTS":
        broken = tmp_path / "elsewhere" / f"{kind}.safetensors"
        monkeypatch.setenv("DIM_STUDIO_WEIGHTS", str(broken))
    else:
        broken = tmp_path / "data" / "dim-stage3.safetensors"
    problem = broken_weights(broken, kind)
    before = digest(broken)
    image, trimap = photo
    out = tmp_path / "out" / "alpha.png"
    result = run_cli("matte", image, "--trimap", trimap, "-o", out, "-q")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dim-studio: note: ") and str(broken) in lines[0] and problem in lines[0]
    assert f"using the {OFFLINE_DEFAULT} engine instead of dim" in lines[0]
    assert OFFLINE_DEFAULT in result.out
    expected = offline_default_alpha(image, trimap)
    assert np.abs(read_alpha(out) - expected).max() <= 0.5 / 255 + 1e-6
    assert digest(broken) == before


def test_default_batch_with_a_broken_weights_file_uses_the_offline_default(tmp_path, run_cli, photo):
    tiny_weights(tmp_path / "data" / "dim-stage3.safetensors", good_meta(metrics=5))
    image, trimap = photo
    result = run_cli("batch", image.parent, "--trimaps", trimap.parent, "-o", tmp_path / "out", "-q")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    notes = [line for line in result.err.splitlines() if line.startswith("dim-studio: note: ")]
    assert len(notes) == 1 and "metrics must be a JSON object" in notes[0] and OFFLINE_DEFAULT in notes[0]
    assert [p.name for p in (tmp_path / "out").glob("*.png")] == ["photo_alpha.png"]


def test_explicit_dim_engine_with_a_broken_file_fails_cleanly(tmp_path, run_cli, photo):
    broken = tiny_weights(tmp_path / "data" / "dim-stage3.safetensors", good_meta(normalization__input_range=math.nan))
    image, trimap = photo
    out = tmp_path / "out"
    for extra in ([], ["--weights", broken]):
        result = run_cli("matte", image, "--trimap", trimap, "-o", out / "alpha.png", "-q", "--engine", "dim", *extra)
        assert result.code == 1
        one_error_line(result.err, str(broken), "normalization.input_range", "not NaN")
    assert not out.exists()


def test_weights_info_without_a_file_names_the_broken_one(tmp_path, run_cli):
    broken = tiny_weights(tmp_path / "data" / "mine.safetensors", good_meta(format_version="abc"))
    result = run_cli("weights", "info")
    assert result.code == 1
    one_error_line(result.err, str(broken), "format_version")


def test_a_broken_file_is_a_status_not_an_exception(tmp_path):
    from dim_studio.workflows.engine_choice import choose_engine
    from dim_studio.workflows.weights import weights_status

    broken = tiny_weights(tmp_path / "data" / "a.safetensors", good_meta(normalization__std=[0, 0, 0]))
    status = weights_status()
    assert status.path is None and status.unusable == broken
    assert "normalization.std[0]" in status.problem and "normalization.std[0]" in status.explain()
    choice = choose_engine(None)
    assert choice.name == OFFLINE_DEFAULT and choice.options == {}
    assert len(choice.notes) == 1 and str(broken) in choice.notes[0]
    # a name given: no search, no notes
    assert choose_engine("knn").notes == ()


# ------------------------------------------------------------- NaN output

@pytest.fixture(scope="module")
def overflowing_weights(tmp_path_factory) -> Path:
    """A full DIM weights file whose numbers are all finite but overflow float32 in the forward."""
    model = random_dim(seed=1)
    with torch.no_grad():
        model.encoder.conv1_1.weight.fill_(3e38)
    return save_weights(tmp_path_factory.mktemp("nan") / "overflow.safetensors", model).path


def test_network_output_with_nan_is_an_error_not_an_empty_alpha(tmp_path, run_cli, photo, overflowing_weights):
    image, trimap = photo
    out = tmp_path / "out"
    result = run_cli("matte", image, "--trimap", trimap, "-o", out / "alpha.png", "-q",
                     "--engine", "dim", "--weights", overflowing_weights, "--device", "cpu")
    assert result.code == 1
    one_error_line(result.err, "NaN or infinite values", str(overflowing_weights), "classical engine")
    assert not out.exists()


def test_nan_in_an_in_memory_network_is_caught_by_the_engine():
    from dim_studio.engines.dim import DIMEngine

    model = random_dim(seed=2)
    with torch.no_grad():
        model.decoder.deconv1.bias.fill_(math.nan)
    scene = make_scene(32, 24)
    with pytest.raises(EngineError, match="NaN or infinite values on the CPU with the network given"):
        DIMEngine(model=model, device="cpu").estimate(scene.image, scene.trimap)


def test_weights_holding_nan_are_refused_on_load_and_never_written(tmp_path, overflowing_weights):
    from dim_studio.errors import WeightsError
    from dim_studio.net.weights import load_weights

    tensors = load_file(str(overflowing_weights))
    tensors["refine.pred.bias"] = torch.full_like(tensors["refine.pred.bias"], math.nan)
    path = tmp_path / "nan.safetensors"
    save_file(tensors, str(path), metadata={"dim_studio": json.dumps(good_meta())})
    with pytest.raises(WeightsError, match=r"nan\.safetensors is broken: refine\.pred\.bias holds NaN"):
        load_weights(path)
    model = random_dim(seed=3)
    with torch.no_grad():
        model.refine.pred.bias.fill_(math.inf)
    with pytest.raises(WeightsError, match="refusing to write .*refine.pred.bias holds NaN or infinite"):
        save_weights(tmp_path / "out.safetensors", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.safetensors"]


# --------------------------------------------------------------------------
# (5) writes that fail
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openmmlab_pth(tmp_path_factory) -> Path:
    from test_importers import openmmlab_state_dict

    path = tmp_path_factory.mktemp("src") / "dim_stage1.pth"
    torch.save({"state_dict": openmmlab_state_dict(1)}, path)
    return path


def _read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` unwritable: chmod, or (as root, whom chmod does not stop) refuse creating files in it."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)  # the fixture gives write access back
        return
    import builtins
    import tempfile

    real_mkstemp, real_open = tempfile.mkstemp, builtins.open

    def mkstemp(*args, **kwargs):
        if Path(kwargs.get("dir", "")) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        return real_mkstemp(*args, **kwargs)

    def guarded_open(file, mode="r", *args, **kwargs):
        if Path(file).parent == folder and any(c in mode for c in "wax+"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(download_mod, "open", guarded_open, raising=False)


@pytest.fixture
def read_only(monkeypatch, tmp_path):
    folders: list[Path] = []

    def make(folder: Path) -> Path:
        _read_only(folder, monkeypatch)
        folders.append(folder)
        return folder

    yield make
    for folder in folders:
        folder.chmod(0o755)


def test_import_into_a_read_only_folder(tmp_path, run_cli, openmmlab_pth, read_only):
    folder = read_only(tmp_path / "locked")
    before = digest(openmmlab_pth)
    result = run_cli("weights", "import", openmmlab_pth, "-o", folder / "dim.safetensors")
    assert result.code == 1
    one_error_line(result.err, str(folder / "dim.safetensors"), "Permission denied")
    assert list(folder.iterdir()) == [] and digest(openmmlab_pth) == before


def _full_disk_save_file(written: list[Path]):
    """A safetensors save_file that writes part of the file, then fails as the Rust writer does on a full disk."""

    def save_file(tensors, filename, metadata=None):
        path = Path(filename)
        path.write_bytes(b"\0" * 4096)
        written.append(path)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    return save_file


@pytest.mark.parametrize("existing", [False, True])
def test_import_onto_a_full_disk(tmp_path, run_cli, openmmlab_pth, monkeypatch, existing):
    import safetensors.torch

    written: list[Path] = []
    monkeypatch.setattr(safetensors.torch, "save_file", _full_disk_save_file(written))
    folder = tmp_path / "disk"
    folder.mkdir()
    target = folder / "dim.safetensors"
    if existing:
        target.write_bytes(b"the weights installed before")
    result = run_cli("weights", "import", openmmlab_pth, "-o", target)
    assert result.code == 1
    one_error_line(result.err, f"cannot write {target}", "No space left on device", "free some space")
    assert written and not written[0].exists()  # the partial temporary is gone
    assert temporaries(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == (["dim.safetensors"] if existing else [])
    if existing:
        assert target.read_bytes() == b"the weights installed before"


def test_installing_a_safetensors_file_onto_a_full_disk(tmp_path, run_cli, monkeypatch, overflowing_weights):
    import shutil

    def copyfile(src, dst, *args, **kwargs):
        Path(dst).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", copyfile)  # atomic_copy imports shutil when it runs
    # a file that loads: metadata and shapes fine (its forward overflows, which install does not run)
    folder = tmp_path / "disk"
    result = run_cli("weights", "import", overflowing_weights, "-o", folder / "mine.safetensors")
    assert result.code == 1
    one_error_line(result.err, str(folder / "mine.safetensors"), "No space left on device")
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX's RLIMIT_FSIZE")
def test_a_real_write_failure_of_the_safetensors_writer(tmp_path, openmmlab_pth):
    """No simulation: the file-size limit makes the real writer fail (EFBIG) half-way."""
    out = tmp_path / "out"
    out.mkdir()
    child = (
        "import resource, signal, sys\n"
        "from dim_studio.cli import main\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (10_000_000, 10_000_000))\n"
        "sys.exit(main(['weights', 'import', sys.argv[1], '-o', sys.argv[2]]))\n"
    )
    run = subprocess.run([sys.executable, "-c", child, str(openmmlab_pth), str(out / "dim.safetensors")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    one_error_line(run.stderr, f"cannot write {out / 'dim.safetensors'}", "File too large", "free some space")
    assert list(out.iterdir()) == []


# --------------------------------------------------------------- downloads


class Server:
    """A local HTTP server whose answers are functions of the request path."""

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.requests: list[tuple[str, str | None]] = []
        routes, requests = self.routes, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                requests.append((self.path, self.headers.get("Range")))
                route = routes.get(self.path)
                try:
                    if route is None:
                        self.send_error(404, "Not Found")
                    elif isinstance(route, bytes):
                        serve_bytes(self, route)
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what the deadline tests want

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_bytes(handler, data: bytes) -> None:
    rng = handler.headers.get("Range")
    start = int(m.group(1)) if rng and (m := re.fullmatch(r"bytes=(\d+)-", rng)) else 0
    if start >= len(data) > 0 and rng:
        handler.send_response(416)
        handler.end_headers()
        return
    handler.send_response(206 if start else 200)
    if start:
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    handler.send_header("Content-Length", str(len(data) - start))
    handler.end_headers()
    handler.wfile.write(data[start:])


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[bytes, str]:
    from test_download import _mm_stage3_bytes

    data = _mm_stage3_bytes(tmp_path_factory)
    name = f"/dl/dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    return data, name


def download(run_cli, url: str, dest: Path, *extra: str):
    return run_cli("weights", "download", "dim-stage3", "--url", url, "--dest", dest, *extra)


def test_download_into_a_read_only_folder(tmp_path, run_cli, server, published, read_only):
    data, name = published
    server.routes[name] = data
    folder = read_only(tmp_path / "locked")
    result = download(run_cli, server.url(name), folder)
    assert result.code == 1
    part = folder / (name.rsplit("/", 1)[1] + ".part")
    one_error_line(result.err, f"cannot write {part}", "Permission denied", "choose a folder you can write to")
    assert list(folder.iterdir()) == []


def test_download_onto_a_full_disk_keeps_the_part_for_a_resume(tmp_path, run_cli, server, published, monkeypatch):
    data, name = published
    server.routes[name] = data
    room = 3 << 20  # the disk fills after 3 MiB

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, block):
            if self.f.tell() + len(block) > room:
                self.f.write(block[: room - self.f.tell()])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(block)

        def __getattr__(self, attr):
            return getattr(self.f, attr)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def full_open(file, mode="r", *args, **kwargs):
        f = open(file, mode, *args, **kwargs)
        return FullDisk(f) if "w" in mode or "a" in mode else f

    monkeypatch.setattr(download_mod, "open", full_open, raising=False)
    dest = tmp_path / "disk"
    result = download(run_cli, server.url(name), dest)
    assert result.code == 1
    part = dest / (name.rsplit("/", 1)[1] + ".part")
    [line] = error_lines(result.err)
    assert f"cannot write {part}: No space left on device" in line and "kept in" in line and "resume" in line
    assert part.stat().st_size == room
    assert sorted(p.name for p in dest.iterdir()) == [part.name]

    monkeypatch.undo()  # space freed: the same command resumes
    server.requests.clear()
    result = download(run_cli, server.url(name), dest)
    assert result.code == 0, result.err
    assert server.requests == [(name, f"bytes={room}-")]
    assert sorted(p.name for p in dest.iterdir()) == ["dim-stage3.safetensors"]


def test_conversion_on_a_full_disk_keeps_the_verified_download(tmp_path, run_cli, server, published, monkeypatch):
    import safetensors.torch

    data, name = published
    server.routes[name] = data
    written: list[Path] = []
    monkeypatch.setattr(safetensors.torch, "save_file", _full_disk_save_file(written))
    dest = tmp_path / "disk"
    result = download(run_cli, server.url(name), dest)
    assert result.code == 1
    part = dest / (name.rsplit("/", 1)[1] + ".part")
    [line] = error_lines(result.err)
    assert "the download verified but could not be installed" in line and "No space left on device" in line
    assert f"kept in {part}" in line and "without downloading it again" in line
    assert part.read_bytes() == data  # the verified download, whole
    assert sorted(p.name for p in dest.iterdir()) == [part.name]

    monkeypatch.undo()
    server.requests.clear()
    result = download(run_cli, server.url(name), dest)
    assert result.code == 0, result.err
    assert server.requests == []  # installed from what was kept
    assert sorted(p.name for p in dest.iterdir()) == ["dim-stage3.safetensors"]


def _drip_body(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000000")
    handler.end_headers()
    for _ in range(100):  # at most 20 s, so a broken deadline fails the test instead of hanging it
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.2)


def _drip_headers(handler) -> None:
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    for _ in range(100):
        handler.wfile.write(b"X-Slow: y\r\n")
        handler.wfile.flush()
        time.sleep(0.2)


@pytest.mark.parametrize("drip", [_drip_body, _drip_headers])
def test_a_dripping_server_meets_the_overall_deadline(tmp_path, server, drip):
    name = "/slow/dim_stage3-647f24b6.pth"
    server.routes[name] = drip
    start = time.monotonic()
    with pytest.raises(DownloadError) as e:
        download_mod.download_checkpoint(url=server.url(name), dest_dir=tmp_path, timeout=5, deadline=1.5)
    assert time.monotonic() - start < 6
    message = str(e.value)
    assert "did not finish within 1.5 s" in message and "resume" in message and "\n" not in message
    assert temporaries(tmp_path) == []


def test_the_deadline_is_an_option_of_the_command(tmp_path, run_cli, server):
    name = "/slow/dim_stage3-647f24b6.pth"
    server.routes[name] = _drip_body
    result = download(run_cli, server.url(name), tmp_path, "--deadline", "0.025")  # 1.5 s
    assert result.code == 1
    [line] = error_lines(result.err)
    assert "did not finish within 1.5 s" in line
    assert download(run_cli, server.url(name), tmp_path, "--deadline", "-1").code == 2


def test_a_download_larger_than_expected_is_refused(tmp_path, server):
    announced = "/big/dim_stage3-647f24b6.pth"
    server.routes[announced] = b"\0" * 300_000
    with pytest.raises(DownloadError, match="announces 0.3 MB .* more than the 0.1 MB"):
        download_mod.download_checkpoint(url=server.url(announced), dest_dir=tmp_path, max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written

    def endless(handler):  # no Content-Length: the body ends when the connection does
        handler.send_response(200)
        handler.end_headers()
        for _ in range(40):
            handler.wfile.write(b"\0" * 10_000)

    unannounced = "/endless/dim_stage3-647f24b6.pth"
    server.routes[unannounced] = endless
    with pytest.raises(DownloadError, match="sent more than 0.1 MB .* stopped and deleted"):
        download_mod.download_checkpoint(url=server.url(unannounced), dest_dir=tmp_path, max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []


def test_the_size_cap_follows_the_published_size():
    spec = download_mod.KNOWN_DOWNLOADS["dim-stage3"]
    assert spec.max_bytes == 200_000_000  # the real file is about 105 MB
