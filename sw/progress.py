"""Progress display for long steps: a transient rich bar (or spinner) on the terminal.

``run_with_progress(fn, description, total=None, poll=None)`` runs ``fn`` in a worker thread
while the main thread draws a bar on the *original* stderr -- also while ``fn`` redirects file
descriptors 1 and 2 into a log (as the simulator runs do). ``poll()`` returns the work done
so far (read from a file the simulation writes, say); without ``total`` a spinner with the
elapsed time is shown. Nothing is drawn when stderr is not a terminal (CI logs stay clean).
"""

import os
import sys
import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["run_with_progress", "enabled"]


def enabled():
    return sys.stderr.isatty() and os.environ.get("SPARSA_NO_PROGRESS", "") == ""


def run_with_progress(fn, description, *, total=None, poll=None, show=True):
    """Run ``fn()`` and return its result, with a progress display while it runs."""
    if not (show and enabled()):
        return fn()
    err = os.fdopen(os.dup(2), "w", buffering=1)
    console = Console(file=err, force_terminal=True)
    cols = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        cols += [BarColumn(), MofNCompleteColumn()]
    cols.append(TimeElapsedColumn())
    result, error = [], []

    def work():
        try:
            result.append(fn())
        except BaseException as e:      # re-raised in the caller's thread
            error.append(e)

    thread = threading.Thread(target=work, daemon=True)
    try:
        with Progress(*cols, console=console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            thread.start()
            while thread.is_alive():
                thread.join(0.25)
                if poll is not None:
                    done = poll()
                    if done is not None:
                        bar.update(task, completed=done)
    finally:
        err.close()
    if error:
        raise error[0]
    return result[0]
