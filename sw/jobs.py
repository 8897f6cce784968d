"""Independent jobs on a standard ``concurrent.futures.Executor``: a local process pool or Dask.

``sparsa explore`` (design points) and ``sparsa build --seeds`` (place-and-route seeds) hand
their jobs to :func:`run_jobs`: one record per job, in order, each with a result or an error,
never a silently missing one. A worker that dies (a crashed simulator, the OOM killer) costs
that job only: a broken local pool is rebuilt and its unfinished jobs re-run, a job that breaks
the pool twice is re-run alone, and if it kills its worker alone it is reported as lost; on Dask
the scheduler re-runs the task and reports ``KilledWorker`` after its ``allowed-failures``, and
a job lost with its worker is submitted once more.

:func:`open_executor` makes the executor: a local pool sized to the cores and the free memory
(:func:`local_workers`), or ``distributed.Client(address).get_executor(pure=False)`` for a Dask
scheduler address (every submission its own task; the workers need sparsa installed and, for
jobs that write files, the same file system).
"""

import concurrent.futures as cf
import os
from contextlib import contextmanager
from pathlib import Path

from sparsa.sw.errors import UserError, user_error

__all__ = ["local_workers", "local_executor_factory", "run_jobs", "open_executor"]


def _available_gib():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return None


def local_workers(mem_per_point_gib, requested=None):
    """Workers for the local pool: the cores, no more than free memory allows for a point each."""
    n = requested or os.cpu_count() or 1
    free = _available_gib()
    if free is not None:
        n = min(n, max(1, int(free // mem_per_point_gib)))
    return max(1, n)


def local_executor_factory(workers):
    """A factory of local process pools of ``workers`` processes (``max_workers=1`` when asked)."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")     # no fork of a process that may hold threads
    return lambda max_workers=None: cf.ProcessPoolExecutor(max_workers=max_workers or workers, mp_context=ctx)


def _error(e):
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}".rstrip(": ")


def _lost(e):
    """True for an error that says the point's worker was lost, not that the point failed: Dask's
    ``KilledWorker`` (also raised for a task that only shared a dying worker), or the result of a
    finished task lost with its worker before the client fetched it (distributed's
    ``cfexecutor`` then fails to unpack the missing exception)."""
    if type(e).__name__ == "KilledWorker":
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.endswith("cfexecutor.py") and isinstance(e, ValueError)


def run_jobs(fn, specs, executor, *, new_executor=None, on_done=None, lost_retries=1):
    """Run ``fn(spec)`` for every spec through ``executor``; returns one record per spec, in order.

    ``fn`` is a top-level function (it is pickled to the workers) and each spec a picklable dict.
    A record is ``{"point": spec["point"], "result": fn(spec)}`` or ``{"point": ..., "error": "..."}``.
    ``new_executor(max_workers=None)`` makes a fresh executor when ``executor`` breaks
    (``concurrent.futures.BrokenExecutor``: a local worker process died); without it the points
    of a broken executor are reported as errors. A point lost with a Dask worker (:func:`_lost`) is
    submitted again ``lost_retries`` times before its error is reported. ``on_done(k, record,
    n_done, n_total)`` is called as each point finishes (progress)."""
    n = len(specs)
    records = [None] * n
    lost_tries = [0] * n
    retry = []
    breaks = [0] * n
    done = 0

    def finish(k, rec):
        nonlocal done
        records[k] = rec
        done += 1
        if on_done:
            on_done(k, rec, done, n)

    def run_round(ex, todo):
        """Submit ``todo`` to ``ex``; returns the indices whose executor broke under them."""
        futs = {}
        broken = []
        for k in todo:
            try:
                futs[ex.submit(fn, specs[k])] = k
            except (cf.BrokenExecutor, RuntimeError):
                broken.append(k)     # the pool broke while submitting
        for f in cf.as_completed(futs):
            k = futs[f]
            try:
                finish(k, {"point": specs[k].get("point"), "result": f.result()})
            except cf.BrokenExecutor:
                broken.append(k)
            except Exception as e:      # the point's own error, or Dask's KilledWorker / CancelledError
                if _lost(e) and lost_tries[k] < lost_retries:
                    lost_tries[k] += 1
                    retry.append(k)
                else:
                    finish(k, {"point": specs[k].get("point"), "error": _error(e)})
        return broken

    todo = list(range(n))
    ex = executor
    while todo:
        suspects = [k for k in todo if breaks[k] >= 2]
        rest = [k for k in todo if breaks[k] < 2]
        again = []
        for k in suspects:              # alone in a fresh one-worker pool: does it kill its worker?
            with new_executor(max_workers=1) as solo:
                if run_round(solo, [k]):
                    finish(k, {"point": specs[k].get("point"),
                               "error": "worker lost: the point's worker process died (run alone, twice)"})
        if rest:
            again = run_round(ex, rest)
        while retry:                    # Dask: jobs lost with a worker, run once more
            redo, retry[:] = list(retry), []
            # One at a time: a job that only shared a worker with one that kills it must not
            # share one with it again (on a loaded machine the scheduler would co-locate them).
            for k in redo:
                again += run_round(ex, [k])
        if again:
            for k in again:
                breaks[k] += 1
            if new_executor is None:
                for k in again:
                    finish(k, {"point": specs[k].get("point"), "error": "worker lost: the executor broke"})
                again = []
            else:
                if ex is not executor:
                    ex.shutdown(wait=False, cancel_futures=True)
                ex = new_executor()
        todo = again
    if ex is not executor:
        ex.shutdown(wait=True)
    assert all(r is not None for r in records)
    return records


@contextmanager
def open_executor(scheduler=None, *, mem_per_job_gib=1.0, workers=None):
    """``(executor, new_executor, where)`` for :func:`run_jobs`: a Dask client's executor for a
    ``scheduler`` address (``tcp://HOST:PORT``), else a local process pool of ``workers``
    processes (default: the cores, as many as the free memory allows at ``mem_per_job_gib``
    each). ``where`` describes it for progress lines. Closed on exit."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError as e:
            raise UserError(f"--scheduler: needs the 'distributed' package ({e})") from None
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise user_error(None, "--scheduler", "a reachable Dask scheduler", f"{scheduler} ({e})") from None
        try:
            n = len(client.scheduler_info().get("workers", {}))
            yield client.get_executor(pure=False), None, f"Dask {scheduler} ({n} workers)"
        finally:
            client.close()
        return
    if workers is not None and workers < 1:
        raise user_error(None, "--workers", ">= 1", workers)
    n = local_workers(mem_per_job_gib, workers)
    factory = local_executor_factory(n)
    executor = factory()
    try:
        yield executor, factory, f"local pool of {n} processes ({mem_per_job_gib:g} GiB a job)"
    finally:
        executor.shutdown(wait=True)
