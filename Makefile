# Two commands on a fresh machine: `make run` and `make test` (Python 3.10+ and make are all they need).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATE ?= $(shell date +%F)
RATINGS ?= 2000000
WORKERS ?= 2

.PHONY: install run test lint db-start db-stop clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: install
	$(BIN)/python -m workflow demo-data --if-empty --ratings $(RATINGS)
	$(BIN)/luigi --module workflow RecommendationsTask --date $(DATE) --local-scheduler --workers $(WORKERS)
	$(BIN)/python -m workflow summary

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check --config config/ruff.toml workflow tests
	$(BIN)/ruff format --check --config config/ruff.toml workflow tests

db-start: install
	$(BIN)/python -m workflow db start

db-stop: install
	$(BIN)/python -m workflow db stop

clean: db-stop
	rm -rf output/20*
