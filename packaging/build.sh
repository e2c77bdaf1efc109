#!/usr/bin/env bash
# Build the one-folder frozen DIM Studio (PyInstaller) and check that it starts.
#
#   packaging/build.sh            # uses ./.venv/bin/python if present, else python3
#   PYTHON=/path/to/python packaging/build.sh
#
# Output: packaging/dist/dim-studio/ (run packaging/dist/dim-studio/dim-studio).
# Needs the package extra in that Python: pip install -e '.[package]' (make frozen does it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

"$PYTHON" -m PyInstaller --noconfirm --clean \
    --distpath packaging/dist --workpath packaging/build \
    packaging/dim-studio.spec

APP="$ROOT/packaging/dist/dim-studio/dim-studio"
[[ -x "$APP.exe" ]] && APP="$APP.exe"

# Run from a neutral folder so the frozen app cannot pick up the source tree.
cd "${TMPDIR:-/tmp}"
echo "== $APP --version"
if ! "$APP" --version; then
    echo "build.sh: the frozen app failed to report its version" >&2
    exit 1
fi
echo "== QT_QPA_PLATFORM=offscreen $APP --self-test"
if ! QT_QPA_PLATFORM=offscreen "$APP" --self-test; then
    echo "build.sh: the frozen app failed its self-test" >&2
    exit 1
fi
echo "build.sh: packaging/dist/dim-studio is ready ($(du -sh "$ROOT/packaging/dist/dim-studio" | cut -f1))"
