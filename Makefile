# Two commands matter: `make run` (the local service/demo on SQLite) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/securitybot migrate --config config.yaml
	$(BIN)/securitybot serve --config config.yaml

lint: $(STAMP)
	$(BIN)/ruff check securitybot tests bench migrations
	$(BIN)/ruff format --check securitybot tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy securitybot

pytest: $(STAMP)
	$(BIN)/pytest -q -ra

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
