# Two entry points: `make demo` (main job on the embedded default) and `make test`.
# Both create and use .venv in the repository root.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint clean viewer-install viewer-test

# PyTorch: the CPU build. Where plain PyPI serves CUDA wheels (Linux x86_64), pass the
# CPU index: make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_SOURCE := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

$(STAMP): pyproject.toml
	@echo "setting up $(VENV): PyTorch $(if $(TORCH_INDEX),from $(TORCH_INDEX),from PyPI) and halohand's dependencies (about 2 minutes, once)"
	$(PYTHON) -m venv $(VENV)
	@# Mesa's EGL for the headless OpenGL renderer of `halohand data render` (as root on
	@# Debian/Ubuntu; elsewhere, or if it fails, the command uses its numpy renderer)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! ldconfig -p | grep -q libEGL_mesa; then \
		apt-get install -y -q libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null \
		|| echo "warning: Mesa EGL not installed; halohand data render will use its numpy renderer"; fi
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0 $(TORCH_SOURCE)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)
	@echo "$(VENV) ready"

demo: $(STAMP)
	$(VENV)/bin/halohand demo --out-dir output

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest

# The suite without the end-to-end runs marked slow.
test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/lint-imports --no-cache

# Headless-browser check of `halohand view` (not part of `make test`: it needs the npm
# registry once and about 80 MB in .viewer-test/; no root). @sparticuz/chromium ships a
# headless Chromium inside its npm package; HALOHAND_CHROMIUM=/path uses another one.
# Both ask for node 22 (npm warns EBADENGINE) but run on node 20 here.
VIEWER_DEPS := .viewer-test
VIEWER_NPM := puppeteer-core@25.16.0 @sparticuz/chromium@153.0.0

viewer-install:
	mkdir -p $(VIEWER_DEPS)
	test -f $(VIEWER_DEPS)/package.json || echo '{"private": true}' > $(VIEWER_DEPS)/package.json
	npm install --prefix $(VIEWER_DEPS) --no-audit --no-fund --save-exact $(VIEWER_NPM)

viewer-test: $(STAMP) viewer-install
	$(VENV)/bin/python scripts/test_viewer_headless.py

clean:
	rm -rf $(VENV) output $(VIEWER_DEPS)
