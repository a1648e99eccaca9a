# Needs only Python 3.11+ and make. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lock run test lint typecheck bench bench-peers soak clean

install: $(VENV)/.installed

# Exact versions from the lock (runtime + s3, test and lint extras), then beatra itself.
$(VENV)/.installed: pyproject.toml requirements-test.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-test.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Re-resolve both locks from pyproject.toml (after editing its dependencies, or to upgrade:
# `make lock LOCK_ARGS=--upgrade`). requirements.lock (deploys) is constrained by the test lock,
# so both pin the same versions.
COMPILE = $(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock:
	test -x $(BIN)/pip-compile || $(BIN)/pip install -q pip-tools
	$(COMPILE) --extra s3 --extra test --extra lint -o requirements-test.lock pyproject.toml
	$(COMPILE) --extra s3 -c requirements-test.lock -o requirements.lock pyproject.toml

# Migrate, create a demo account + key (printed), start the sandbox upstream and the gateway.
run: install
	$(BIN)/python -m beatra.devserver

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.run

# The peers `make bench` compares beatra with, when installed (it never installs them itself):
# Portkey from bench/peers/portkey/package-lock.json (npm ci, Node 20+; install scripts not run)
# and LiteLLM into its own venv from bench/peers/litellm-requirements.txt (every version pinned).
PEERS := bench/peers
bench-peers: $(PEERS)/portkey/node_modules/.installed $(PEERS)/litellm-venv/.installed

$(PEERS)/portkey/node_modules/.installed: $(PEERS)/portkey/package-lock.json
	cd $(PEERS)/portkey && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(PEERS)/litellm-venv/.installed: $(PEERS)/litellm-requirements.txt
	$(PYTHON) -m venv $(PEERS)/litellm-venv
	$(PEERS)/litellm-venv/bin/pip install -q --upgrade pip
	$(PEERS)/litellm-venv/bin/pip install -q -r $<
	touch $@

# Mixed load + faults against throwaway Postgres/Redis, then reconciliation (bench/soak.py).
SOAK_MINUTES ?= 10
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) var
