"""Finding the YoWASP tools: on PATH, or next to the running interpreter (a venv not on PATH)."""

import os
import shutil
import sys
from pathlib import Path

from sparsa.sw.errors import UserError

__all__ = ["tool", "tool_cmd"]


def tool(name):
    """The path of executable ``name``: PATH first, then the directory of ``sys.executable``
    (``.venv/bin`` when sparsa runs as ``.venv/bin/sparsa`` without the venv activated)."""
    found = shutil.which(name)
    if found:
        return found
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    raise UserError(f"{name}: expected the YoWASP tool on PATH or next to {sys.executable}, found neither "
                    f"(install the pinned packages: make setup, or pip install -r requirements.txt)")


def tool_cmd(cmd):
    """``cmd`` (a list) with its first element resolved by :func:`tool`."""
    return [tool(cmd[0]), *cmd[1:]]
