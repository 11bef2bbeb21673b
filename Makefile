# nasviz — install, test and run.  GNU make.
#
#   make install     system packages (root on Debian/Ubuntu; otherwise prints the command) + .venv + nasviz[dev]
#   make test        ruff + the whole pytest suite (installs first)
#   make lint        ruff only
#   make demo        python -m nasviz demo
#   make lab         JupyterLab on notebooks/
#   make clean       run outputs and build artefacts (keeps .venv)
#   make distclean   clean + .venv

VENV ?= .venv
PY = $(VENV)/bin/python
PYTHON ?= python3
CONSTRAINTS ?= constraints-ci.txt
STAMP = $(VENV)/.installed

# Debian/Ubuntu packages: graphviz (`dot`), Fashion-MNIST offline, a browser for the JupyterLab tests.
SYSTEM_PKGS = graphviz dataset-fashion-mnist chromium chromium-driver
FASHION_MNIST = /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
CHROMIUM = /usr/bin/chromium

# Lint only the folders that exist (git does not keep empty ones).
LINT_PATHS = $(wildcard nasviz tests benchmarks)

# jupyter refuses to run as root without --allow-root.
LAB_ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root)

.DEFAULT_GOAL := help
.PHONY: help install system-deps test lint demo lab clean distclean

help:
	@sed -n '3,10s/^# //p' $(firstword $(MAKEFILE_LIST))

install: system-deps $(STAMP)

system-deps:
	@if command -v dot >/dev/null 2>&1 && [ -f $(FASHION_MNIST) ] && [ -x $(CHROMIUM) ] \
	   && { [ -x $(PY) ] || $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; }; then \
	  exit 0; \
	fi; \
	pkgs="$(SYSTEM_PKGS)"; \
	if [ ! -x $(PY) ] && ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then pkgs="$$pkgs python3-venv"; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "system-deps: apt-get install $$pkgs"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update; \
	  apt-get install -y --no-install-recommends $$pkgs \
	  || { echo "system-deps: retrying without chromium (the browser tests need /usr/bin/chromium)"; \
	       apt-get install -y --no-install-recommends $$(echo $$pkgs | sed 's/chromium-driver//; s/chromium//'); }; \
	else \
	  echo "system-deps: some system packages are missing (graphviz 'dot', Fashion-MNIST files or $(CHROMIUM))."; \
	  echo "system-deps: install them with:"; \
	  echo "    sudo apt-get install -y $$pkgs"; \
	  echo "system-deps: continuing without them."; \
	fi

# The venv is (re)installed only when it is missing or pyproject.toml / the constraints changed.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@

test: install
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check $(LINT_PATHS)

demo: install
	$(PY) -m nasviz demo

lab: install
	$(VENV)/bin/jupyter lab $(LAB_ROOT_FLAG) notebooks/

clean:
	rm -rf runs/ build/ dist/ .pytest_cache/ .ruff_cache/ .hypothesis/
	rm -rf *.egg-info nasviz.egg-info
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print \
	  | xargs rm -rf

distclean: clean
	rm -rf $(VENV)
