"""sparsa explore: sweeps through concurrent.futures executors -- a local process pool and a real
Dask cluster (distributed.LocalCluster on 127.0.0.1) -- with workers that die mid-sweep.

The points use the golden engine (ideal cycles, bit-exact model; well under a second each), so the
tests exercise the distribution, not the simulator."""

import json

import pytest

from sparsa.bench import explore as ex
from sparsa.cli import main


def _specs(points, fault_at=None):
    wl = ex.make_workload(layer=(96, 64), weight_density=0.15, activation_density=0.4)
    specs = [{"point": p, "workload": wl, "engine": "golden", "estimate": "none", "board": None,
              "clock_mhz": 100.0, "work_dir": "unused"} for p in points]
    if fault_at is not None:
        specs[fault_at] = dict(specs[fault_at], _fault="exit")
    return specs


POINTS = ex.grid_points(pes=[2, 4, 8], macs=[1, 2], seed=[0, 1])

KEYS = ("cycles", "ideal_cycles", "multipliers", "time_us", "y_checksum", "bit_exact")


def _direct(specs):
    return [{k: ex.run_point(s)[k] for k in KEYS} for s in specs]


def _check(records, specs, lost=()):
    """Every requested point is there, in order; results equal the direct computation."""
    assert len(records) == len(specs)
    want = _direct([s for k, s in enumerate(specs) if k not in lost])
    got = [r for k, r in enumerate(records) if k not in lost]
    for rec, spec in zip(records, specs):
        assert rec["point"] == spec["point"]
        assert ("result" in rec) != ("error" in rec)
    assert all("result" in r for r in got), [r.get("error") for r in records]
    assert [{k: r["result"][k] for k in KEYS} for r in got] == want
    for k in lost:
        assert "error" in records[k] and "worker" in records[k]["error"].lower(), records[k]


def test_grid_and_json_points(tmp_path):
    assert len(POINTS) == 12 and POINTS[0] == {"pes": 2, "macs": 1, "queue_depth": 8, "seed": 0, "memories": "auto",
                                               "align_columns": 0}
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"pes": 4}, {"pes": 8, "macs": 1, "queue_depth": 2}]))
    assert [p["pes"] for p in ex.points_from_json(f)] == [4, 8]
    f.write_text(json.dumps([{"pes": 4, "lanes": 3}]))
    assert main(["explore", "--configs", str(f), "--engine", "golden", "-o", str(tmp_path / "o")]) == 2
    assert main(["explore", "--macs", "3", "--engine", "golden", "-o", str(tmp_path / "o")]) == 2


def test_cli_align_columns_sweeps_the_layout_and_plots_its_memory(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["explore", "--engine", "golden", "--layer", "200x256", "--weight-density", "0.04",
               "--pes", "4", "--align-columns", "0,7", "--workers", "1", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "align=7" in text and "2/2 points done, 0 failed" in text
    plain, aligned = (p["result"] for p in json.loads((out / "explore.json").read_text())["points"])
    # The same work and outputs; the aligned layout needs more sparse-matrix words.
    assert aligned["y_checksum"] == plain["y_checksum"] and aligned["bit_exact"] and plain["bit_exact"]
    assert aligned["spm_words"] > plain["spm_words"]
    assert "align_columns" in (out / "explore.md").read_text().splitlines()[0]
    assert (out / "explore-spm_words.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["explore", "--engine", "golden", "--align-columns", "8", "-o", str(tmp_path / "bad")]) == 2
    assert "align_columns: expected 0..7, found 8" in capsys.readouterr().err


def test_local_pool(tmp_path):
    specs = _specs(POINTS)
    seen = []
    with ex.local_executor_factory(2)() as pool:
        records = ex.run_sweep(specs, pool, on_done=lambda k, r, d, n: seen.append((k, d, n)))
    _check(records, specs)
    assert sorted(k for k, _, _ in seen) == list(range(len(specs))) and seen[-1][1:] == (12, 12)
    front = ex.pareto(records, "multipliers")
    assert front and all("result" in records[k] for k in front)
    data, pngs = ex.write_results(records, {"engine": "golden"}, tmp_path)
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((tmp_path / "explore.json").read_text())["points"]) == 12


def test_local_pool_worker_dies(tmp_path):
    """A point that kills its worker breaks the pool: the pool is rebuilt, the other points finish,
    the killer is run alone and reported as lost."""
    specs = _specs(POINTS[:6], fault_at=2)
    factory = ex.local_executor_factory(2)
    with factory() as pool:
        records = ex.run_sweep(specs, pool, new_executor=factory)
    _check(records, specs, lost=(2,))


def test_cli_local(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["explore", "--engine", "golden", "--layer", "64x48", "--pes", "2,4", "--macs", "1,2",
               "--workers", "2", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "[explore] 4/4" in text and "4/4 points done, 0 failed" in text
    data = json.loads((out / "explore.json").read_text())
    assert data["cost"] == "multipliers" and len(data["points"]) == 4
    assert (out / "explore.png").exists() and (out / "explore.md").exists()


@pytest.fixture(scope="module")
def cluster():
    import dask
    import distributed
    # A task whose worker dies is re-run on another worker; after one such death it is
    # reported as KilledWorker (the default, 3, costs a few more worker restarts).
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None, worker_dashboard_address=None) as c:
            yield c


@pytest.mark.xdist_group("dask")
def test_dask_cluster(cluster):
    from distributed import Client
    specs = _specs(POINTS)
    with Client(cluster) as client:
        records = ex.run_sweep(specs, client.get_executor(pure=False))
    _check(records, specs)
    pids = {r["result"]["pid"] for r in records}
    assert len(pids) >= 1


@pytest.mark.xdist_group("dask")
def test_dask_worker_killed(cluster):
    """A point kills its Dask worker (the nanny restarts it): the others finish, the point is
    reported as lost (KilledWorker), nothing is missing."""
    from distributed import Client
    specs = _specs(POINTS[:6], fault_at=1)
    with Client(cluster) as client:
        records = ex.run_sweep(specs, client.get_executor(pure=False))
        _check(records, specs, lost=(1,))
        client.wait_for_workers(2, timeout=60)


@pytest.mark.xdist_group("dask")
def test_cli_dask(cluster, tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["explore", "--engine", "golden", "--layer", "64x48", "--pes", "2,4", "--queue-depth", "4,8",
               "--scheduler", cluster.scheduler_address, "-o", str(out)])
    assert rc == 0
    assert "on Dask tcp://127.0.0.1" in capsys.readouterr().out
    assert len(json.loads((out / "explore.json").read_text())["points"]) == 4


@pytest.mark.xdist_group("dask")
def test_build_seeds_on_dask(cluster, tmp_path, monkeypatch, capsys):
    """`sparsa build --seeds 2 --scheduler`: the two place-and-route runs go to the cluster's
    workers (they share this file system) and the better one is kept."""
    import numpy as np
    rng = np.random.default_rng(78)
    print("seed=78")
    w = ((rng.random((12, 10)) < 0.3) * rng.choice([-9, 2, 5], (12, 10))).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    monkeypatch.chdir(tmp_path)             # YoWASP tools open cwd-relative paths only
    assert main(["pack", "w.npy", "--pes", "1", "-o", "pk"]) == 0
    assert main(["build", "pk", "--board", "icebreaker", "-o", "b", "--top", "harness", "--seeds", "2",
                 "--scheduler", cluster.scheduler_address]) == 0
    assert "on a Dask tcp://127.0.0.1" in capsys.readouterr().err
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    by = rep["fmax_mhz_by_seed"]
    assert [e["seed"] for e in by] == [1, 2] and all(e["fmax_mhz"] > 0 for e in by)
    assert rep["fmax_mhz"] == max(e["fmax_mhz"] for e in by)
    assert (tmp_path / "b" / "top.bin").stat().st_size == 104090
