"""The crash-recovery store of trimaps being edited (dim_studio.autosave)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dim_studio.autosave import AutosaveStore
from dim_studio.errors import DimStudioError
from dim_studio.paths import autosave_dir, user_config_dir, user_data_dir


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "fötö.png"  # non-ASCII on purpose
    Image.fromarray(np.full((9, 12, 3), 90, np.uint8)).save(path)
    return path


def _trimap():
    t = np.zeros((9, 12), np.uint8)
    t[2:7, 3:9] = 128
    t[4:5, 5:7] = 255
    return t


def test_save_find_load_roundtrip(tmp_path, photo):
    store = AutosaveStore(tmp_path / "auto")
    assert store.find(photo) is None
    store.save(photo, _trimap())
    entry = store.find(photo)
    assert entry is not None and entry.shape == (9, 12)
    np.testing.assert_array_equal(store.load(entry, (9, 12)), _trimap())
    assert "ago" in entry.describe_age()
    # no temporary files left behind by the atomic writes
    assert sorted(p.suffix for p in (tmp_path / "auto").iterdir()) == [".json", ".png"]


def test_changed_photo_is_not_offered(tmp_path, photo):
    store = AutosaveStore(tmp_path / "auto")
    store.save(photo, _trimap())
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert store.find(photo) is None


def test_discard_removes_entry(tmp_path, photo):
    store = AutosaveStore(tmp_path / "auto")
    store.save(photo, _trimap())
    store.discard(photo)
    assert store.find(photo) is None
    assert list((tmp_path / "auto").iterdir()) == []
    store.discard(photo)  # a second discard is harmless
    store.discard(tmp_path / "missing.png")


def test_damaged_entry_is_dropped(tmp_path, photo):
    store = AutosaveStore(tmp_path / "auto")
    png = store.save(photo, _trimap())
    png.write_bytes(b"not a png")
    assert store.load_for(photo, (9, 12)) is None
    assert store.find(photo) is None


def test_missing_sidecar_means_no_entry(tmp_path, photo):
    store = AutosaveStore(tmp_path / "auto")
    store.save(photo, _trimap())
    for p in (tmp_path / "auto").glob("*.json"):
        p.unlink()
    assert store.find(photo) is None


def test_env_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIM_STUDIO_CONFIG_DIR", str(tmp_path / "conf"))
    assert user_data_dir() == tmp_path / "data"
    assert autosave_dir() == tmp_path / "data" / "autosave"
    assert user_config_dir() == tmp_path / "conf"
    assert AutosaveStore().folder == tmp_path / "data" / "autosave"


# --- a crafted or damaged autosave folder ---------------------------------
#
# Each case is a sidecar record (or trimap PNG) that save() never writes. It
# must be discarded (both files removed, one log line), never raised, so it
# cannot stop the photo from opening, and it must not come back next time.


def _saved(tmp_path, photo):
    store = AutosaveStore(tmp_path / "auto")
    png = store.save(photo, _trimap())
    return store, png, png.with_suffix(".json")


def _record(meta):
    import json

    return json.loads(meta.read_text(encoding="utf-8"))


def _rewrite(meta, change):
    import json

    record = _record(meta)
    change(record)
    meta.write_text(json.dumps(record), encoding="utf-8")


def _set(key, value):
    return lambda record: record.__setitem__(key, value)


def _drop_key(key):
    return lambda record: record.pop(key)


CRAFTED_TEXT = {
    "a JSON list": "[1, 2, 3]",
    "a JSON string": '"hello"',
    "JSON null": "null",
    "not JSON": "{oops",
    "deeply nested JSON": "[" * 100_000 + "]" * 100_000,
    "bad UTF-8": b"\xff\xfe{}",
}

CRAFTED_FIELDS = {
    "saved_at 1e300": _set("saved_at", 1e300),
    "saved_at NaN": _set("saved_at", float("nan")),
    "saved_at Infinity": _set("saved_at", float("inf")),
    "saved_at negative": _set("saved_at", -1.0),
    "saved_at text": _set("saved_at", "yesterday"),
    "saved_at true": _set("saved_at", True),
    "size Infinity": _set("size", float("inf")),
    "size as text": _set("size", "123"),
    "height zero": _set("height", 0),
    "height huge": _set("height", 10**12),
    "width a list": _set("width", [12]),
    "photo a number": _set("photo", 7),
    "another photo": _set("photo", "/somewhere/else.png"),
    "no saved_at": _drop_key("saved_at"),
    "no format": _drop_key("format"),
    "format 0": _set("format", 0),
    "format as text": _set("format", "1"),
}


def _assert_discarded(store, photo, meta, png, caplog):
    caplog.clear()
    with caplog.at_level("WARNING", logger="dim_studio.autosave"):
        assert store.find(photo) is None
    assert not meta.exists() and not png.exists()
    lines = [r.getMessage() for r in caplog.records if r.name == "dim_studio.autosave"]
    assert len(lines) == 1 and "discarded the autosave" in lines[0], lines
    # Gone for good: the next open neither finds nor logs anything.
    caplog.clear()
    assert store.find(photo) is None and caplog.records == []


@pytest.mark.parametrize("case", list(CRAFTED_TEXT))
def test_a_record_that_is_not_a_record_is_discarded(tmp_path, photo, caplog, case):
    store, png, meta = _saved(tmp_path, photo)
    text = CRAFTED_TEXT[case]
    if isinstance(text, bytes):
        meta.write_bytes(text)
    else:
        meta.write_text(text, encoding="utf-8")
    _assert_discarded(store, photo, meta, png, caplog)


@pytest.mark.parametrize("case", list(CRAFTED_FIELDS))
def test_a_record_with_wrong_types_or_ranges_is_discarded(tmp_path, photo, caplog, case):
    store, png, meta = _saved(tmp_path, photo)
    _rewrite(meta, CRAFTED_FIELDS[case])
    _assert_discarded(store, photo, meta, png, caplog)


def test_an_oversized_record_is_discarded_unread(tmp_path, photo, caplog):
    store, png, meta = _saved(tmp_path, photo)
    _rewrite(meta, _set("padding", "x" * 200_000))
    _assert_discarded(store, photo, meta, png, caplog)


@pytest.mark.parametrize("damage", ["unreadable", "wrong size", "missing", "a folder"])
def test_a_trimap_png_that_cannot_be_used_is_discarded(tmp_path, photo, caplog, damage):
    store, png, meta = _saved(tmp_path, photo)
    if damage == "unreadable":
        png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    elif damage == "wrong size":
        Image.fromarray(np.zeros((5, 7), np.uint8)).save(png)
    elif damage == "missing":
        png.unlink()
    else:
        png.unlink()
        png.mkdir()
    _assert_discarded(store, photo, meta, png if damage != "a folder" else meta, caplog)


def test_a_trimap_that_does_not_fit_the_photo_is_discarded_by_load(tmp_path, photo, caplog):
    store, png, meta = _saved(tmp_path, photo)
    entry = store.find(photo)
    assert entry is not None
    with caplog.at_level("WARNING", logger="dim_studio.autosave"):
        with pytest.raises(DimStudioError):  # what the window catches
            store.load(entry, (10, 12))
    assert not meta.exists() and not png.exists()
    assert any("discarded the autosave" in r.getMessage() for r in caplog.records)


def test_a_newer_format_is_left_alone(tmp_path, photo):
    store, png, meta = _saved(tmp_path, photo)
    _rewrite(meta, _set("format", 99))
    assert store.find(photo) is None
    assert meta.exists() and png.exists()  # a newer DIM Studio's recovery is not ours to delete


@pytest.mark.parametrize("saved_at", [1e300, -1e300, float("nan"), float("inf")])
def test_describe_age_never_raises(saved_at):
    from dim_studio.autosave import AutosaveEntry, PhotoKey

    entry = AutosaveEntry(Path("x.png"), PhotoKey("x", 1, 1), (1, 1), saved_at)
    assert entry.describe_age().startswith("saved ")


def test_a_photo_that_is_a_link_loop_has_no_autosave(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    store = AutosaveStore(tmp_path / "auto")
    assert store.find(tmp_path / "a.png") is None
    store.discard(tmp_path / "a.png")  # never raises


def test_opening_a_photo_with_a_crafted_autosave(qtbot, tmp_path, photo, monkeypatch):
    """What the user saw: the photo opens, nothing is offered or shown, the files are gone."""
    from dim_studio.gui import dialogs
    from dim_studio.gui.main_window import MainWindow

    shown: list[object] = []
    monkeypatch.setattr(dialogs, "show_error", lambda *a: shown.append(a))
    monkeypatch.setattr(dialogs, "ask_restore_autosave", lambda *a: shown.append(a) or True)
    window = MainWindow(probe=False)
    qtbot.addWidget(window)
    store = window.autosave
    for change in ("[1, 2]", _set("saved_at", 1e300), _set("saved_at", float("nan"))):
        png = store.save(photo, _trimap())
        meta = png.with_suffix(".json")
        if isinstance(change, str):
            meta.write_text(change, encoding="utf-8")
        else:
            _rewrite(meta, change)
        assert window.open_image(str(photo))
        assert window.image is not None and window.image_path == str(photo.resolve())
        assert shown == []
        assert not meta.exists() and not png.exists()
    window.tasks.flush()
