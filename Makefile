# sparsa: `make demo` and `make test` are all a fresh machine needs.
VENV   ?= .venv
BIN    := $(VENV)/bin
JOBS   ?= auto
export AMARANTH_USE_YOSYS := builtin
export OBJCACHE := ccache
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint bench fuzz clean help

help:
	@echo "make demo   - train, compress, pack and run the digits MLP end to end"
	@echo "make test   - the whole test suite (both simulators)"
	@echo "make lint   - import layering (import-linter contracts in pyproject.toml)"
	@echo "make bench  - benchmarks (JSON + tables in build/bench/)"
	@echo "make fuzz   - long property-based run of the CLI, manifest and CNN graph fuzzers (fresh seeds)"
	@echo "make setup  - only the bootstrap (venv, pinned packages, tools)"

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/sparsa demo -o build/demo

lint: setup
	$(BIN)/python scripts/lint_imports.py

# pytest exits 5 when it collects nothing: that is a failure, not a pass. The 25 slowest tests
# are listed at the end: CI on 2 cores must stay under 30 minutes.
test: setup lint
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -q --durations=25; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: no tests collected" >&2; exit 1; fi; exit $$rc

# `make test` runs the fuzzers briefly and derandomized; this runs them long, with fresh seeds
# (FUZZ_EXAMPLES per test; a failure prints the reproducing example and its @reproduce_failure blob).
FUZZ_EXAMPLES ?= 3000
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz SPARSA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -q tests/test_fuzz_cli.py tests/test_fuzz_manifest.py tests/test_fuzz_graph.py

bench: setup
	$(BIN)/sparsa bench all -o build/bench

clean:
	rm -rf build .pytest_cache
