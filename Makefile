# Two commands do all the set-up on a fresh clone:
#   make run   -> virtualenv + install + the whole pipeline on the `small` preset
#   make test  -> virtualenv + install with test extras + lint + the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PRESET ?= small
NAME ?= default

.PHONY: run test install install-test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

run: install
	$(BIN)/worldmodels pipeline --preset $(PRESET) --name $(NAME)

lint: install-test
	$(BIN)/ruff check worldmodels commands bench tests

test: install-test lint
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --durations=25 tests

clean:
	rm -rf $(VENV) build *.egg-info
