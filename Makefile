# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUICK ?=

.PHONY: serve test awscli browser fuzz bench cluster lint typecheck format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

serve: $(VENV)/.installed-run
	$(BIN)/stowage serve

# Lint and type checks first: they take seconds, the suite minutes.
test: $(VENV)/.installed-dev awscli browser lint typecheck
	$(BIN)/pytest

# aws-cli pins its own botocore, which the project venv's boto3 cannot share: it gets a venv
# of its own, where tests/s3_clients.py looks for it.
AWSCLI := $(VENV)/awscli/bin/aws
awscli: $(AWSCLI)
$(AWSCLI): | $(BIN)/python
	$(PYTHON) -m venv $(VENV)/awscli
	$(VENV)/awscli/bin/pip install --quiet 'awscli>=1.36'

# The console test drives Debian's chromium with Playwright (no browser download). Install it
# when it is missing; if that cannot be done here, the browser test is skipped with the reason.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -qq -y --no-install-recommends
browser:
	@command -v chromium >/dev/null || $(APT) install chromium >/dev/null \
		|| ($(SUDO) apt-get -qq update && $(APT) install chromium >/dev/null) \
		|| echo "could not install chromium: the browser test will be skipped"

# A longer schemathesis run than make test's; MAX_EXAMPLES and SEED pick its size and cases.
fuzz: $(VENV)/.installed-dev
	$(BIN)/python -m tests.schema_fuzz --max-examples $(or $(MAX_EXAMPLES),300) --seed $(or $(SEED),1)

# wrk (Debian) drives stowage and SeaweedFS alike in the same-client rows.
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null || $(APT) install wrk >/dev/null \
		|| ($(SUDO) apt-get -qq update && $(APT) install wrk >/dev/null)
	$(BIN)/python -m benchmarks.run $(if $(QUICK),--quick,)

cluster: $(VENV)/.installed-dev
	$(BIN)/python -m stowage.cluster

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info
