# Two entry points: `make demo` and `make test`. Both create .venv on first use; after
# them, `. .venv/bin/activate` puts podium, pytest and streamlit on PATH.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench app

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.podium-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.podium-dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.podium-installed $(VENV)/.podium-ui-installed $@

$(VENV)/.podium-ui-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[ui]"
	touch $(VENV)/.podium-installed $@

demo: $(VENV)/.podium-installed  ## install podium and run the offline demo
	$(BIN)/podium demo

test: $(VENV)/.podium-dev-installed  ## install podium[dev], lint, type-check, run the test suite
	$(BIN)/ruff check podium tests bench notebooks app.py
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.podium-dev-installed  ## ruff and mypy
	$(BIN)/ruff check podium tests bench notebooks app.py
	$(BIN)/ruff format --check podium tests bench notebooks app.py
	$(BIN)/mypy

app: $(VENV)/.podium-ui-installed  ## the Streamlit chat app on the embedded database
	$(BIN)/streamlit run app.py


bench: $(VENV)/.podium-dev-installed  ## the full benchmark (minutes)
	$(BIN)/python -m bench
