# Vigil: `make demo` and `make test` work on a machine that has only Python, pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo cloud test lint bench serve clean sysdeps

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/vigil demo fault --instances 10

cloud: $(VENV)/.installed
	$(BIN)/vigil cloud show --topology examples/cloud.yaml --instances

serve: $(VENV)/.installed
	$(BIN)/vigil serve --config examples/vigil.yaml

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check vigil tests bench
	$(BIN)/ruff format --check vigil tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

# The testbed's tools (ip, nft), installed when missing and running as root; quiet otherwise
# (the tests that need them skip without root).
sysdeps:
	@if [ "$$(id -u)" = 0 ] && ! { command -v nft && command -v ip; } >/dev/null 2>&1; then \
		apt-get update && apt-get install -y nftables iproute2; \
	fi

test: lint sysdeps
	$(BIN)/pytest

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
