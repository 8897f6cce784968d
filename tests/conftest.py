"""Test-suite settings shared by every test module."""

import os
import sys
from pathlib import Path

import pytest

# Each runner picks its Verilator C++ optimisation for the simulations it runs: -O0 for the
# EIE array (short runs, compiling dominates), -O1 for the CNN engine and the board system
# (long runs: the reduced VGG16 simulates in 29 s at -O1 and 183 s at -O0, for 12 s more
# compiling). A developer's SPARSA_VERILATOR_OPT (e.g. -Os) would override all of them.
os.environ.pop("SPARSA_VERILATOR_OPT", None)
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
