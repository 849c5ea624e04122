# Socket Lifecycle Lab: `make lab` to learn, `make test` to check everything.
# Optional: `make flake` (notebooks 5 times in a row), `make bench` (timings of the helpers).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
CHROMIUM := /usr/bin/chromium
IS_ROOT := $(filter 0,$(shell id -u))
START := $(if $(wildcard notebooks/00-start-here.ipynb),/lab/tree/00-start-here.ipynb,/lab)
LAB_ARGS ?=
FLAKE_RUNS ?= 5

PYTEST_NB := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 60 \
	--ignore=notebooks/solutions -p no:cacheprovider
LINTED := $(wildcard helpers tests bench)

.PHONY: help lab reset test flake bench browser venv

help:
	@echo "make lab     start JupyterLab on your own copies of the lessons, my-notebooks/ (http://127.0.0.1 only)"
	@echo "make reset LESSON=03   your copy of lesson 03 anew (the old one saved beside it)"
	@echo "make test    unit tests, notebooks (nbval), browser tests, ruff"
	@echo "make flake   optional: the notebooks $(FLAKE_RUNS) times in a row, counting failures"
	@echo "make bench   optional: helper round trips (bench/run.py), series vs floor and browser (bench/series.py)"

# -- set-up ------------------------------------------------------------------------------------
# The venv is made once; pip runs again only when requirements.txt or pyproject.toml changed.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: Python >= 3.11 is needed; $(PYTHON): $$($(PYTHON) --version 2>/dev/null || echo not found)" >&2; \
	  echo "       Install it, or name one: make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: $(VENV) uses $$($(PY) --version); Python >= 3.11 is needed. Remove $(VENV) and retry." >&2; exit 1; }
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	@touch $@

# No news toast, no update check in the student's JupyterLab.
$(OVERRIDES): etc/jupyterlab-overrides.json $(STAMP)
	@mkdir -p $(dir $@)
	cp etc/jupyterlab-overrides.json $@

venv: $(STAMP) $(OVERRIDES)

# -- the two commands --------------------------------------------------------------------------
# The lab serves the student's edition (helpers/edition.py): their own copies of notebooks/.
lab: venv
	$(PY) -m helpers.edition sync
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=my-notebooks --LabApp.default_url=$(START) \
	  $(if $(IS_ROOT),--allow-root) $(LAB_ARGS)

reset: venv
	@[ -n "$(LESSON)" ] || { echo "usage: make reset LESSON=03 (your copy of lesson 03 is saved beside it first)" >&2; exit 2; }
	$(PY) -m helpers.edition reset $(LESSON)

# Debian's chromium for the browser tests; as root we install it, otherwise those tests skip
# (under CI=true they fail instead).
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ -n "$(IS_ROOT)" ]; then \
	  echo "Installing chromium for the browser tests (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update && apt-get install -y --no-install-recommends chromium \
	    || echo "warning: could not install chromium: browser tests will skip (fail under CI=true)" >&2; \
	else \
	  echo "note: $(CHROMIUM) is missing and we are not root: browser tests will skip (under CI=true: fail)" >&2; \
	  echo "      (as root: apt-get install chromium)" >&2; \
	fi

test: venv browser
	@rc=0; \
	echo "$(PY) -m pytest tests notebooks $(PYTEST_NB)"; \
	$(PY) -m pytest tests notebooks $(PYTEST_NB) || rc=$$?; \
	echo "ruff check $(LINTED)"; \
	$(VENV)/bin/ruff check --no-cache $(LINTED) || { [ $$rc != 0 ] || rc=1; }; \
	exit $$rc

# -- optional ----------------------------------------------------------------------------------
flake: venv
	@mkdir -p artifacts/flake; failures=0; \
	for i in $$(seq $(FLAKE_RUNS)); do \
	  $(PY) -m pytest notebooks $(PYTEST_NB) -q --junitxml=artifacts/flake/run-$$i.xml; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "no notebooks to run"; exit 0; fi; \
	  n=$$($(PY) -c 'import sys, xml.etree.ElementTree as ET; s = ET.parse(sys.argv[1]).getroot().iter("testsuite"); print(sum(int(t.get("failures", 0)) + int(t.get("errors", 0)) for t in s))' artifacts/flake/run-$$i.xml 2>/dev/null || echo 1); \
	  if [ $$rc != 0 ] && [ "$$n" = 0 ]; then n=1; fi; \
	  echo "run $$i: $$n failures"; failures=$$((failures + n)); \
	done; \
	echo "$$failures failures in $(FLAKE_RUNS) runs"; [ $$failures = 0 ]

bench: venv
	$(PY) bench/run.py
	$(PY) bench/series.py
