# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.podium-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.podium-dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.podium-installed $@

demo: $(VENV)/.podium-installed  ## install podium and run the offline demo
	$(BIN)/podium demo

test: $(VENV)/.podium-dev-installed  ## install podium[dev] and run the test suite
	$(BIN)/ruff check podium tests bench
	$(BIN)/pytest

lint: $(VENV)/.podium-dev-installed  ## ruff and mypy
	$(BIN)/ruff check podium tests bench
	$(BIN)/ruff format --check podium tests bench
	$(BIN)/mypy podium --ignore-missing-imports


bench: $(VENV)/.podium-dev-installed  ## the full benchmark (minutes)
	$(BIN)/python -m bench
