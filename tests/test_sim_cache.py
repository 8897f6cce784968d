"""The simulation build cache refuses to key a build on sources that changed after the process
that generates its Verilog started (it would cache the old code's hardware under the new files'
digest for every later run)."""

import os
import sys

import pytest

from sparsa.sim import cocotb_job


def test_a_source_changed_after_the_process_started_is_refused(tmp_path, monkeypatch):
    pkg = tmp_path / "digest_probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mtime = (pkg / "a.py").stat().st_mtime
    # Started after the file was written: fine, and the digest follows the contents.
    monkeypatch.setattr(cocotb_job, "_STARTED", mtime + 1)
    first = cocotb_job.source_digest("digest_probe_pkg:*.py")
    (pkg / "a.py").write_text("X = 2\n")
    os.utime(pkg / "a.py", (mtime, mtime))
    assert cocotb_job.source_digest("digest_probe_pkg:*.py") != first
    # Written 10 s after the process started: refused, naming the file.
    os.utime(pkg / "a.py", (mtime + 11, mtime + 11))
    with pytest.raises(RuntimeError, match=r"a\.py changed after this process started"):
        cocotb_job.source_digest("digest_probe_pkg:*.py")
    sys.modules.pop("digest_probe_pkg", None)


def test_this_process_has_a_start_time_before_now():
    import time
    assert cocotb_job._STARTED is not None and cocotb_job._STARTED <= time.time()
