# Two commands matter: `make run` (the demo) and `make test` (everything); `make serve` runs the
# service with ./config.yaml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OIDC_PROVIDER := tests/oidc/node_modules/.package-lock.json

.PHONY: run serve test lint typecheck pytest bench clean ship ship-wheel ship-image ship-manifests

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo: the real bot against local fakes of Slack and Duo, with a web console.
run: $(STAMP)
	$(BIN)/securitybot demo

serve: $(STAMP)
	$(BIN)/securitybot migrate --config config.yaml
	$(BIN)/securitybot serve --config config.yaml

lint: $(STAMP)
	$(BIN)/ruff check securitybot tests bench integrations/custom-securitybot
	$(BIN)/ruff format --check securitybot tests bench integrations/custom-securitybot

typecheck: $(STAMP)
	$(BIN)/mypy securitybot

# Most tests wait on fakes, subprocesses and deadlines rather than compute, so four workers
# share two cores well; PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= 4
pytest: $(STAMP) $(OIDC_PROVIDER)
	$(BIN)/pytest -q -ra --durations=25 -n $(PYTEST_WORKERS)

# The dashboard's OIDC tests sign in at a real OpenID provider (oidc-provider, pinned in
# tests/oidc/package-lock.json) run by Node.js; npm ci writes OIDC_PROVIDER.
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund

test: lint typecheck pytest

# The three ways to run it (docs/deploy.md), each tried end to end: the wheel in a new virtualenv,
# the container image under podman, the Kubernetes manifests rendered and validated offline.
ship: ship-wheel ship-manifests ship-image

ship-wheel: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) .ci/ship-wheel

ship-image: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) .ci/ship-image

ship-manifests: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) .ci/ship-manifests

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/oidc/node_modules
