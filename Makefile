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

# System tools the tests use, installed when missing and running as root (the tests that need them skip
# otherwise): ip and nft for the testbed, Chromium to render /docs, fence-agents and ipmitool for fencing
# (fence_ipmilan, fence_redfish), Prometheus, Alertmanager and node_exporter for the Alertmanager ingest's
# end-to-end test (the test starts the programs itself; Debian's services stay stopped). unshare (util-linux)
# is always there.
sysdeps:
	@if [ "$$(id -u)" = 0 ]; then \
		missing=""; \
		command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
		command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
		command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
		lean=""; \
		[ -x /usr/sbin/fence_ipmilan ] || lean="$$lean fence-agents"; \
		command -v ipmitool >/dev/null 2>&1 || lean="$$lean ipmitool"; \
		command -v prometheus >/dev/null 2>&1 || lean="$$lean prometheus"; \
		command -v prometheus-alertmanager >/dev/null 2>&1 || lean="$$lean prometheus-alertmanager"; \
		command -v prometheus-node-exporter >/dev/null 2>&1 || lean="$$lean prometheus-node-exporter"; \
		if [ -n "$$missing$$lean" ]; then apt-get update; fi; \
		if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi; \
		if [ -n "$$lean" ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$lean; \
		fi; \
	fi

test: lint sysdeps
	$(BIN)/pytest

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
