"""The layering rules of docs/ARCHITECTURE.md, checked by import-linter on every test run."""

from __future__ import annotations

import os
import pkgutil
import re
import shutil
import subprocess
import sys

from pathlib import Path

import pytest

import dim_studio

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _config() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; lint-imports itself runs everywhere
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["importlinter"]


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(LINT, cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def test_the_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_every_module_of_the_package_is_in_a_layer():
    layers = next(c for c in _config()["contracts"] if c["type"] == "layers")["layers"]
    listed = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    modules = {m.name for m in pkgutil.iter_modules(dim_studio.__path__)}
    assert modules - listed == set(), "add new modules to a layer in pyproject.toml"


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("engines/base.py", "from PySide6 import QtCore", "No Qt outside dim_studio.gui"),
        ("net/model.py", "from dim_studio import workflows", "Layers point one way"),
        ("trimap.py", "import dim_studio.engines", "Layers point one way"),
    ],
)
def test_a_broken_rule_fails_the_check(tmp_path, module, line, broken):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "dim_studio", tree / "dim_studio", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / "dim_studio" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert broken in result.stdout and "BROKEN" in result.stdout
