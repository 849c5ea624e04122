# Socket Lifecycle Lab: `make lab` to learn, `make test` to check everything (CI runs it).
# `make check`: the quick tier for the edit loop (no whole-lesson runs).
# Optional: `make flake` (notebooks 5 times in a row), `make bench` (timings of the helpers).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
IS_ROOT := $(filter 0,$(shell id -u))
START := $(if $(wildcard notebooks/00-start-here.ipynb),/lab/tree/00-start-here.ipynb,/lab)
LAB_ARGS ?=
FLAKE_RUNS ?= 5
# BROWSER=skip: `make test` without the browser tests (and without chromium and libatomic1).
BROWSER ?=
SYSTEM_NEEDS := $(if $(filter test,$(MAKECMDGOALS)),$(if $(filter skip,$(BROWSER)),lab,test),lab)

PYTEST_NB := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 60 \
	--ignore=notebooks/solutions -p no:cacheprovider
PYTEST_BROWSER := $(if $(filter skip,$(BROWSER)),-m 'not browser')
# pytest-xdist workers: more than cores, since tests also wait (on kernels, timeouts, the kernel's
# timers). tests/conftest.py defines the units a worker takes whole (a notebook: one) and gives at
# most 5 workers whole-lesson runs at a time; the others take the light tests, which mostly wait.
JOBS ?= 7
PARALLEL := -n $(JOBS) --dist loadscope --no-loadscope-reorder
LINTED := $(wildcard helpers tests bench)

.PHONY: help lab reset test check flake bench system venv bytecode

help:
	@echo "make lab     start JupyterLab on your own copies of the lessons, my-notebooks/ (http://127.0.0.1 only)"
	@echo "make reset LESSON=03   your copy of lesson 03 anew (the old one saved beside it)"
	@echo "make test    everything: unit, exercises, notebooks (nbval), faults, other settings, browser, ruff"
	@echo "make check   the quick tier: unit tests, exercises, structure, ruff (no whole-lesson runs)"
	@echo "make flake   optional: the notebooks $(FLAKE_RUNS) times in a row, counting failures"
	@echo "make bench   optional: helper round trips (bench/run.py), series vs floor and browser (bench/series.py)"

# -- set-up ------------------------------------------------------------------------------------
# The system packages first (tools/system-check): as root it installs what is missing, otherwise
# it stops with the `sudo apt-get install ...` line.
system:
	@tools/system-check $(SYSTEM_NEEDS)

# The venv is made once; pip runs again only when requirements.txt or pyproject.toml changed.
$(PY): | system
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: Python >= 3.11 is needed; $(PYTHON): $$($(PYTHON) --version 2>/dev/null || echo not found)" >&2; \
	  echo "       Install it, or name one: make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: $(VENV) uses $$($(PY) --version); Python >= 3.11 is needed. Remove $(VENV) and retry." >&2; exit 1; }
	@# uv installs the same pins in seconds where pip takes a minute (it resolves and unpacks in parallel);
	@# where uv cannot be had or cannot reach the index (a mirror set up for pip only), pip does it all.
	@# --compile-bytecode, as pip does: with PYTHONDONTWRITEBYTECODE set, every kernel would compile anew.
	$(PY) -m pip install -q --disable-pip-version-check uv && $(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -r requirements.txt \
	  || $(PY) -m pip install --disable-pip-version-check -r requirements.txt
	@# jsonschema's optional IRI format check (rfc3987-syntax, an extra that jupyter-events pulls in) builds
	@# a parser when imported: 2 s of CPU in every process that imports nbformat or jupyter_server (each
	@# pytest worker, each JupyterLab). Nothing here validates IRIs; without it jsonschema skips that format.
	$(PY) -m pip uninstall --disable-pip-version-check -y -q rfc3987-syntax
	@touch $@

# No news toast, no update check in the student's JupyterLab.
$(OVERRIDES): etc/jupyterlab-overrides.json $(STAMP)
	@mkdir -p $(dir $@)
	cp etc/jupyterlab-overrides.json $@

venv: $(STAMP) $(OVERRIDES)

# Compiled helpers/ for every process the lessons and tests start (kernels, puppets, checkers' sandboxes):
# with PYTHONDONTWRITEBYTECODE set, as on many CI machines, Python would compile them anew in each one.
# Quick: only what changed since the last run is compiled again.
bytecode: venv
	@$(PY) -m compileall -q helpers

# -- the two commands --------------------------------------------------------------------------
# The lab serves the student's edition (helpers/edition.py): their own copies of notebooks/.
lab: system venv bytecode
	$(PY) -m helpers.edition sync
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=my-notebooks --LabApp.default_url=$(START) \
	  $(if $(IS_ROOT),--allow-root) $(LAB_ARGS)

reset: venv
	@[ -n "$(LESSON)" ] || { echo "usage: make reset LESSON=03 (your copy of lesson 03 is saved beside it first)" >&2; exit 2; }
	$(PY) -m helpers.edition reset $(LESSON)

# pytest with the given arguments, then ruff; ruff runs even when pytest failed, and either fails the target.
define pytest_then_ruff
	@rc=0; \
	echo "$(PY) -m pytest $(1)"; \
	$(PY) -m pytest $(1) || rc=$$?; \
	echo "ruff check $(LINTED)"; \
	$(VENV)/bin/ruff check --no-cache $(LINTED) || { [ $$rc != 0 ] || rc=1; }; \
	exit $$rc
endef

test: system venv bytecode
	$(call pytest_then_ruff,tests notebooks $(PYTEST_NB) $(PARALLEL) $(PYTEST_BROWSER))

# Tests marked `lessons` run whole notebooks in kernels (faults, other settings, browser,
# every cell twice): make test only.
check: system venv bytecode
	$(call pytest_then_ruff,tests -m 'not lessons' $(PARALLEL))

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
