"""The architecture rule (issue 22): small modules with one job each, no source file over 500
lines anywhere in the project (the rule slipped once, unnoticed, until this test)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 500
PACKAGES = ("hw", "sw", "sim", "boards", "sparsa", "tests", "scripts")


def test_no_python_file_over_500_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for d in PACKAGES for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts}
    assert len(sizes) > 100                      # the walk found the project, not an empty tree
    over = {f: n for f, n in sizes.items() if n > LIMIT}
    assert not over, f"over {LIMIT} lines: {over}"
