# DIM Studio: everything from a fresh clone. Each target creates .venv when it is absent.
#   make run            - install, then open the app on the bundled sample (needs a display)
#   make test           - install with the test extras, then run the test suite (Qt offscreen)
#   make matte-sample   - install, then matte the bundled sample into out/ (no display needed)
#   make check-install  - build the wheel and sdist, install the wheel into a fresh venv and run it
#                         outside the source tree (--version, matte, --self-test); part of CI
#   make dist           - the wheel and sdist in dist/
#   make frozen         - the one-folder standalone build in packaging/dist/ (PyInstaller)
# torch is installed before the package, only when .venv has none, as chosen by TORCH:
#   TORCH=pinned (default)  torch==2.13.0 from pip's configured index. On the public PyPI
#                           that is the CUDA build on Linux (several GB of NVIDIA libraries)
#                           and the CPU build on Windows and macOS.
#   TORCH=cpu               the CPU-only build from PyTorch's own index (about 200 MB)
#   TORCH=cuda              the CUDA build from PyTorch's index for $(CUDA) (default cu128)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH      ?= pinned
CUDA       ?= cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_pinned :=
TORCH_INDEX_cpu    := https://download.pytorch.org/whl/cpu
TORCH_INDEX_cuda   := https://download.pytorch.org/whl/$(CUDA)
TORCH_INDEX := $(TORCH_INDEX_$(TORCH))
TORCH_PIP   := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) )"$(TORCH_SPEC)"
SAMPLE := dim_studio/resources/samples

.PHONY: run test install install-dev matte-sample check-install dist frozen clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@case "$(TORCH)" in pinned|cpu|cuda) ;; *) echo "TORCH must be pinned, cpu or cuda"; exit 2;; esac
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/dim-studio $(SAMPLE)/lemur.png --trimap $(SAMPLE)/lemur_trimap.png

matte-sample: install
	mkdir -p out
	$(VENV)/bin/dim-studio matte $(SAMPLE)/lemur.png --trimap $(SAMPLE)/lemur_trimap.png \
		-o out/lemur_alpha.png --cutout out/lemur_cutout.png
	@echo "Results are in $(CURDIR)/out/"

test: install-dev
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

check-install: install-dev
	TORCH_SPEC="$(TORCH_SPEC)" TORCH_INDEX="$(TORCH_INDEX)" scripts/check_install.sh $(PY)

dist: install-dev
	$(PY) -m build --outdir dist .

frozen: install
	$(PY) -m pip install -q -e ".[package]"
	PYTHON=$(PY) packaging/build.sh

clean:
	rm -rf $(VENV) out .pytest_cache dist packaging/dist packaging/build
