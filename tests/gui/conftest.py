"""GUI tests run headless: the offscreen platform must be chosen before Qt loads."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_user_folders(tmp_path, monkeypatch):
    """Never read or write the real user's settings, autosaves or weights, and
    find no weights anywhere, so the engine lists are predictable."""
    monkeypatch.setenv("DIM_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DIM_STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DIM_STUDIO_WEIGHTS", raising=False)
    from dim_studio.net import weights

    monkeypatch.setattr(weights, "model_dir", lambda: tmp_path / "no-model-folder")
