# Two entry points for a fresh clone; each creates .venv when it is absent.
#   make run   - install, then matte the bundled sample (opens the app once it exists)
#   make test  - install with the test extras, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch: a plain `pip install torch` would pull several GB of CUDA
# libraries. Users with an NVIDIA GPU install their CUDA build of torch first.
TORCH_SPEC ?= torch==2.13.0
SAMPLE := resources/samples

.PHONY: run test install install-dev matte-sample clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/dim-studio gui $(SAMPLE)/lemur.png --trimap $(SAMPLE)/lemur_trimap.png

matte-sample: install
	mkdir -p out
	$(VENV)/bin/dim-studio matte $(SAMPLE)/lemur.png --trimap $(SAMPLE)/lemur_trimap.png \
		-o out/lemur_alpha.png --cutout out/lemur_cutout.png
	@echo "Results are in $(CURDIR)/out/"

test: install-dev
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache
