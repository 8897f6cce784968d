"""The test suite's own configuration: every marker it uses is registered.

``--strict-markers`` rejects an unregistered marker at collection. pytest-xdist registers
``xdist_group`` only when it is loaded, so a serial run (``pytest -p no:xdist``) used to
error on every grouped module and collect a quarter fewer tests.
"""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def _registered_markers():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return cfg, {re.match(r"[A-Za-z_]+", m).group(0) for m in cfg["markers"]}


def test_strict_markers_is_on():
    cfg, _ = _registered_markers()
    assert "--strict-markers" in cfg["addopts"].split()


def test_every_marker_used_by_the_tests_is_registered_without_xdist():
    _, registered = _registered_markers()
    used = set()
    for path in (ROOT / "tests").glob("*.py"):
        used |= set(re.findall(r"pytest\.mark\.([A-Za-z_]+)", path.read_text()))
    assert "xdist_group" in used
    assert used - BUILTIN <= registered, sorted(used - BUILTIN - registered)
