"""Test-suite settings shared by every test module."""

import os
import sys
from pathlib import Path

# Verilator models built by the tests run short simulations: compile them at -O0 (the
# runner's default too; pinned here so a developer's -Os setting doesn't slow the suite).
os.environ.setdefault("SPARSA_VERILATOR_OPT", "-O0")
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

# Helpers shared between test modules (eie_cases.py, ...) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
