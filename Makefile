# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make run    creates .venv, installs redes, runs the main job on embedded stores
#   make test   creates .venv, installs redes with the dev extra, starts what the tests need, runs pytest
# and, while you work, make test-fast: the unit tests only, on both cores, no server and no ../shared needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

export DO_NOT_TRACK ?= true
export MLFLOW_DISABLE_TELEMETRY ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: run test test-fast test-netns lint-imports services bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/redes run

# The namespaced workers' test needs root (without it, it skips itself and says why): as root, the venv
# its workers run is built first.
NETNS_VENV := $(if $(filter 0,$(shell id -u)),.venv-netns/.installed)
test: $(VENV)/.installed-dev $(NETNS_VENV) services
	$(BIN)/lint-imports  # every import points down (pyproject.toml's [tool.importlinter])
	$(BIN)/python -m pytest --durations=30 $(PYTEST_ARGS)

# Tests that read the real MNIST (marked mnist) are skipped, with the reason, when ../shared is missing.
test-fast: $(VENV)/.installed-dev
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest tests/unit -n 2 --skip-missing-mnist $(PYTEST_ARGS)

# Workers that really are other machines (network namespaces, Unix users; needs root): only that test.
# Its workers and servers run as other users, from a venv of an interpreter every user can run
# (the default venv's may hang off a folder only its owner can enter, e.g. ~/.pyenv).
WORKER_PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) $(PYTHON))
.venv-netns/.installed: pyproject.toml
	$(WORKER_PYTHON) -m venv .venv-netns
	.venv-netns/bin/python -m pip install -q --upgrade pip
	.venv-netns/bin/python -m pip install -q -e .
	chmod -R a+rX .venv-netns
	touch $@

test-netns: $(VENV)/.installed-dev .venv-netns/.installed
	$(BIN)/python -m pytest tests/integration/stack/test_netns_workers.py -s $(PYTEST_ARGS)

lint-imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

services:
	@bash tests/services.sh

bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install -q -e '.[bench]'
	# the machine may pin OpenBLAS to an older kernel for tests; the benchmark measures the real one
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .venv-netns data mlruns mlartifacts mlflow.db .redes
