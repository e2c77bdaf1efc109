"""The crash-recovery store of trimaps being edited (dim_studio.autosave)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from dim_studio.autosave import AutosaveStore
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
