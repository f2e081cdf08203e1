# The router's everyday commands. `make install` once, then `make run` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast test-fault lint typecheck check bench sandbox api worker clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install  ## the whole router on embedded defaults (Ctrl-C stops it)
	$(BIN)/lead-router run

api: install
	$(BIN)/lead-router api

worker: install
	$(BIN)/lead-router worker

sandbox: install
	$(BIN)/lead-router sandbox

test: install  ## unit, integration and fault tests on real processes
	$(BIN)/python -m pytest

test-fast: install  ## everything but the fault tests
	$(BIN)/python -m pytest -m 'not fault'

test-fault: install
	$(BIN)/python -m pytest -m fault

bench: install  ## every benchmark: prints its figures and writes its section of BENCHMARKS.md
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get install -y -qq wrk >/dev/null 2>&1; } || \
		echo "bench: wrk is not installed; the intake benchmark uses its Python load generator"
	$(BIN)/python -m pytest tests/bench -m bench -s -o python_files='bench_*.py' -p no:cacheprovider
	@echo "figures written to BENCHMARKS.md"

lint: install
	$(BIN)/ruff check router workers config tests

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
