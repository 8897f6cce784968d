"""The progress helper: returns the work's result, re-raises its error, polls while it runs."""

import os
import time

import pytest

from sparsa.sw import progress


@pytest.fixture
def tty(monkeypatch):
    monkeypatch.setattr(progress, "enabled", lambda: True)


def test_result_and_polling_with_fds_redirected(tty, tmp_path):
    polls = []

    def work():
        # Like the simulator runs: stdout/stderr go to a log while the bar draws on the terminal.
        saved = os.dup(2)
        with open(tmp_path / "log", "wb") as f:
            os.dup2(f.fileno(), 2)
            try:
                time.sleep(0.6)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        return 42

    assert progress.run_with_progress(work, "working", total=3, poll=lambda: polls.append(1) or len(polls)) == 42
    assert len(polls) >= 2


def test_errors_reach_the_caller(tty):
    def work():
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        progress.run_with_progress(work, "failing")


def test_no_terminal_runs_inline():
    # Under pytest stderr is captured (not a TTY): fn runs directly, nothing is drawn.
    assert not progress.enabled()
    assert progress.run_with_progress(lambda: "x", "inline") == "x"
