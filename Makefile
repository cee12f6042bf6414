# The two commands a newcomer needs: `make run` and `make test`.
# Each one sets up everything it needs first (virtual environment, install,
# datasets), so they work on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test setup data lint clean help

help:
	@echo "make run   - set up, then run the default scenario (scenarios/city.yaml)"
	@echo "make test  - set up, then run the whole test suite and the linter"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned in pyproject.toml to the CPU wheel that lies on these machines.
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP) data

data: $(STAMP)
	bash scripts/provision-data.sh

run: setup
	$(BIN)/fogsim run scenarios/city.yaml -o runs/city --overwrite

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
