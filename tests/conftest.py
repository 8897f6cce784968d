"""Test-suite settings shared by every test module."""

import os
import sys
from pathlib import Path

import pytest

# Verilator models built by the tests run short simulations: compile them at -O0 (the
# runner's default too; pinned here so a developer's -Os setting doesn't slow the suite).
os.environ.setdefault("SPARSA_VERILATOR_OPT", "-O0")
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

# Helpers shared between test modules (eie_cases.py, ...) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Make ``--dist loadgroup`` keep each ``xdist_group`` on one worker again.

    pytest-xdist 3.8 tags a grouped test by assigning ``item._nodeid``, which pytest 9 no longer
    reads (the id lives in ``item._id``), so every group was split over the workers and the
    module-scoped fixtures behind them (the demo, the retrain run, the Verilator and board
    builds) ran once per worker. This puts the ``@group`` suffix where pytest 9 looks; it does
    nothing when xdist already did (or on the controller, which has no ``loadgroup`` option).
    """
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")
