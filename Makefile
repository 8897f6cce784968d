# sparsa: `make demo` and `make test` are all a fresh machine needs.
VENV   ?= .venv
BIN    := $(VENV)/bin
JOBS   ?= auto
export AMARANTH_USE_YOSYS := builtin
export OBJCACHE := ccache
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint bench clean help

help:
	@echo "make demo   - train, compress, pack and run the digits MLP end to end"
	@echo "make test   - the whole test suite (both simulators)"
	@echo "make lint   - import layering (import-linter contracts in pyproject.toml)"
	@echo "make bench  - benchmarks (JSON + tables in build/bench/)"
	@echo "make setup  - only the bootstrap (venv, pinned packages, tools)"

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/sparsa demo -o build/demo

lint: setup
	$(BIN)/python scripts/lint_imports.py

# pytest exits 5 when it collects nothing: that is a failure, not a pass.
test: setup lint
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: no tests collected" >&2; exit 1; fi; exit $$rc

bench: setup
	$(BIN)/sparsa bench all -o build/bench

clean:
	rm -rf build .pytest_cache
