"""Start-up cost: what the command line imports, and where Numba caches PyMatting's kernels.

Each check runs the command line in a fresh Python process (the test process
has long since imported everything) and reads the names in ``sys.modules``
once the command has finished. No timings: see ``bench/startup.py`` for those.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dim_studio import numba_cache
from dim_studio.paths import user_cache_dir
from dim_studio.resources import SAMPLE_IMAGE, SAMPLE_TRIMAP

ROOT = Path(__file__).resolve().parents[1]

#: What ``--help`` and ``--version`` must not load: each costs from a tenth of a second (tqdm,
#: NumPy) to seconds (torch, Numba) on every launch.
HEAVY = ("torch", "pymatting", "numba", "PySide6", "cv2", "numpy", "tqdm")

# Runs ``dim_studio.cli.main(argv)`` and writes the exit code and the loaded top-level modules.
_CHILD = textwrap.dedent("""
    import json, sys
    report, argv = sys.argv[1], sys.argv[2:]
    from dim_studio.cli import main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    extra = {}
    if "numba" in sys.modules:
        extra["numba_cache_dir"] = sys.modules["numba"].config.CACHE_DIR
    with open(report, "w", encoding="utf-8") as f:
        json.dump({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules}), **extra}, f)
""")


def _child_env(**env: str | os.PathLike[str] | None) -> dict[str, str]:
    child = dict(os.environ)
    child["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child.get("PYTHONPATH")]))
    for name, value in env.items():
        if value is None:
            child.pop(name, None)
        else:
            child[name] = str(value)
    return child


def _run_cli(tmp_path: Path, *argv: str | os.PathLike[str], **env: str | os.PathLike[str] | None) -> dict:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(report), *map(str, argv)],
        env=_child_env(**env), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text(encoding="utf-8"))
    result["stdout"], result["stderr"] = proc.stdout, proc.stderr
    return result


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_load_no_heavy_library(tmp_path, argv):
    result = _run_cli(tmp_path, *argv)
    assert result["code"] == 0
    assert "dim-studio" in result["stdout"]
    assert sorted(set(HEAVY) & set(result["modules"])) == []


def test_matte_with_a_classical_engine_never_imports_torch(tmp_path):
    # The session's Numba cache (compiled once for the whole run), given as the user's
    # own NUMBA_CACHE_DIR: the child uses it instead of DIM Studio's folder.
    users_cache = numba_cache.configure()
    alpha = tmp_path / "alpha.png"
    result = _run_cli(
        tmp_path, "matte", SAMPLE_IMAGE, "--trimap", SAMPLE_TRIMAP, "-o", alpha,
        "--engine", "closed-form", "-q",
        NUMBA_CACHE_DIR=users_cache, DIM_STUDIO_CACHE_DIR=tmp_path / "not-this-one",
    )
    assert result["code"] == 0, result["stderr"]
    assert alpha.is_file() and alpha.stat().st_size > 0
    assert "pymatting" in result["modules"]
    assert "torch" not in result["modules"] and "PySide6" not in result["modules"]
    assert Path(result["numba_cache_dir"]) == users_cache
    assert not (tmp_path / "not-this-one").exists()
    assert list(users_cache.glob("laplacian_*/*.nbi")), "PyMatting's kernels are not cached there"


def test_numba_caches_compiled_kernels_in_the_dim_studio_cache_folder(tmp_path):
    # A small kernel of our own (PyMatting's take a minute to compile from nothing),
    # cached exactly as PyMatting's are: @njit(cache=True) in a module on disk.
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    (kernels / "tiny_kernel.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n", encoding="utf-8",
    )
    code = textwrap.dedent("""
        import sys
        from dim_studio import numba_cache
        folder = numba_cache.configure()
        import numba
        assert numba.config.CACHE_DIR == str(folder), (numba.config.CACHE_DIR, folder)
        sys.path.insert(0, sys.argv[1])
        import tiny_kernel
        assert tiny_kernel.twice(21) == 42
        print(folder)
    """)
    cache = tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(kernels)],
        env=_child_env(NUMBA_CACHE_DIR=None, DIM_STUDIO_CACHE_DIR=cache),
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == cache / "numba"
    names = [p.name for p in (cache / "numba").rglob("*") if p.is_file()]
    assert any(n.endswith(".nbi") for n in names) and any(n.endswith(".nbc") for n in names), names
    assert not (kernels / "__pycache__").exists() or not any((kernels / "__pycache__").glob("*.nb*"))


def test_configure_keeps_a_numba_cache_dir_the_user_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert numba_cache.configure() == tmp_path / "mine"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_configure_sets_the_dim_studio_folder_when_none_is_chosen(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("DIM_STUDIO_CACHE_DIR", str(tmp_path / "c"))
    assert numba_cache.configure() == tmp_path / "c" / "numba"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "c" / "numba")


@pytest.mark.parametrize(("platform", "env", "expected"), [
    ("linux", {}, "home/.cache/dim-studio"),
    ("linux", {"XDG_CACHE_HOME": "{tmp}/xdg"}, "xdg/dim-studio"),
    ("linux", {"XDG_CACHE_HOME": "relative/is/ignored"}, "home/.cache/dim-studio"),
    ("darwin", {}, "home/Library/Caches/DIM Studio"),
    ("win32", {"LOCALAPPDATA": "{tmp}/local"}, "local/DIM Studio/Cache"),
    ("linux", {"DIM_STUDIO_CACHE_DIR": "{tmp}/override"}, "override"),
])
def test_user_cache_dir_per_platform(tmp_path, monkeypatch, platform, env, expected):
    monkeypatch.delenv("DIM_STUDIO_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    monkeypatch.setattr(sys, "platform", platform)
    assert user_cache_dir() == tmp_path / expected
