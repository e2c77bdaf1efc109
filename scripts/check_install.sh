#!/usr/bin/env bash
# Build the wheel and sdist, install the wheel into a fresh virtual environment
# and run it from outside the source tree, as a user who installed it would:
#   dim-studio --version; dim-studio matte on the bundled sample (the default engine); dim-studio --self-test
# Usage: scripts/check_install.sh [PYTHON]   (default: .venv/bin/python, which needs `build`)
# torch: the fresh environment gets $TORCH_SPEC first (the Makefile passes its
# choice), so installing the wheel does not pull a different torch build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX=${TORCH_INDEX:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/*.whl)
ls "$work"/dist/*.tar.gz >/dev/null
echo "built $(basename "$wheel") and $(basename "$work"/dist/*.tar.gz)"
# What a wheel must carry to run: the sample, icons and desktop files.
"$PY" - "$wheel" <<'PYEOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["dim_studio/resources/samples/lemur.png", "dim_studio/resources/samples/lemur_trimap.png",
          "dim_studio/resources/samples/LICENSE.md", "dim_studio/resources/icons/dim-studio.svg",
          "dim_studio/resources/icons/dim-studio-256.png",
          "dim_studio/resources/desktop/io.github.dimstudio.DimStudio.desktop",
          "dim_studio/resources/desktop/io.github.dimstudio.DimStudio.metainfo.xml"]
missing = [n for n in needed if n not in names]
if missing:
    sys.exit(f"the wheel lacks: {', '.join(missing)}")
PYEOF

"$PY" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q)
if [ -n "$TORCH_INDEX" ]; then "${pip[@]}" --index-url "$TORCH_INDEX" "$TORCH_SPEC"; else "${pip[@]}" "$TORCH_SPEC"; fi
"${pip[@]}" "$wheel"

# Outside the source tree, with fresh user folders: nothing may come from the checkout.
cd "$work"
export DIM_STUDIO_DATA_DIR="$work/data" DIM_STUDIO_CONFIG_DIR="$work/config" DIM_STUDIO_CACHE_DIR="$work/cache"
export QT_QPA_PLATFORM=offscreen
app="$work/venv/bin/dim-studio"
"$app" --version
sample=$("$work/venv/bin/python" -c "from dim_studio.resources import SAMPLE_IMAGE as s; print(s)")
case "$sample" in "$work"/venv/*) ;; *) echo "the sample was found outside the installed package: $sample"; exit 1;; esac
"$app" matte "$sample" --trimap "${sample%.png}_trimap.png" -o "$work/alpha.png"
test -s "$work/alpha.png"
"$app" --self-test | tee "$work/self-test.txt"
# An installed package has no repository model/ folder to send users to.
if grep -q "site-packages/model" "$work/self-test.txt"; then echo "the self-test names a model folder inside site-packages"; exit 1; fi
echo "install check passed"
