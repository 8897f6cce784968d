"""Check sparsa's import layering with import-linter (the contracts are in pyproject.toml).

sparsa's sub-packages live side by side at the repository root (hw/, sw/, sim/, boards/) and
install as ``sparsa.*`` through setuptools' ``package-dir`` mapping. grimp, the graph builder
behind import-linter, scans only the directory of the root package (``sparsa/``), so this
script lays the mapped packages out as one tree of links under ``build/importlint/`` and runs
the real ``lint-imports`` with that tree first on ``PYTHONPATH``. Exit status is lint-imports'.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mirror(dest):
    """Link every .py file of the mapped packages into ``dest`` as the import tree sees it."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    if dest.exists():
        shutil.rmtree(dest)
    for package, directory in mapping.items():
        src = ROOT / directory
        out = dest.joinpath(*package.split("."))
        for f in src.rglob("*.py"):
            rel = f.relative_to(src)
            # a sub-package mapped elsewhere is linked by its own entry
            if any(f"{package}.{'.'.join(rel.parts[:i])}" in mapping for i in range(1, len(rel.parts))):
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(f)


def main():
    dest = ROOT / "build" / "importlint"
    mirror(dest)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(dest), os.environ.get("PYTHONPATH", "")]))
    exe = Path(sys.executable).parent / "lint-imports"
    return subprocess.call([str(exe), str(ROOT / "pyproject.toml"), *sys.argv[1:]], env=env, cwd=dest)


if __name__ == "__main__":
    raise SystemExit(main())
