"""Running the open-flow tools: one tool with its log (:func:`run_tool`), and nextpnr over
several placement seeds, keeping the best (:func:`place_and_route_seeds`), in sequence or as
jobs on a pool or a Dask cluster (:func:`sparsa.sw.jobs.run_jobs`).

YoWASP tools cannot open absolute paths under /tmp (TOOLCHAIN.md), so every tool runs with its
output directory as its working directory and relative file names.
"""

import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from sparsa.sw.errors import UserError, user_error

from sparsa.boards.tools import tool_cmd

__all__ = ["DoesNotFit", "run_tool", "check_seeds", "place_and_route", "place_and_route_seeds", "fmax_of",
           "MAX_SEEDS"]


class DoesNotFit(UserError, RuntimeError):
    """nextpnr found more cells of a kind than the device has (the message says by how much): a
    user error (the pack asks for too much), and a failed tool run (a seed's)."""


def run_tool(cmd, cwd, log):
    """Run ``cmd`` in ``cwd`` with its output in ``cwd/log``; its seconds. A failure raises
    :class:`DoesNotFit` (nextpnr found too many cells of a kind) or a RuntimeError whose first
    line carries the tool's last error."""
    t0 = time.perf_counter()
    env = dict(os.environ)
    with open(Path(cwd) / log, "w") as f:
        res = subprocess.run(tool_cmd(cmd), cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if res.returncode != 0:
        text = (Path(cwd) / log).read_text()
        # nextpnr's utilisation lines say by how much a design does not fit: "ICESTORM_LC: 7358/ 5280 139%"
        over = [f"{m[0]} {m[1]}/{m[2]} ({m[3]}%)" for m in re.findall(r"(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", text)
                if int(m[3]) > 100]
        if over:
            raise DoesNotFit(f"{cmd[0]} failed (exit {res.returncode}): the design does not fit: {', '.join(over)}")
        # A failed build's directory is removed: the first line carries the tool's last error.
        why = [l.strip() for l in text.splitlines() if re.match(r"\s*(ERROR|Error|error)\b", l)][-1:]
        raise RuntimeError(f"{cmd[0]} failed (exit {res.returncode}){': ' + why[0] if why else ''}\n{text[-2000:]}")
    return time.perf_counter() - t0


MAX_SEEDS = 64


def check_seeds(seed, seeds):
    """``seed`` and ``seeds`` as :func:`build` takes them, or a one-line UserError."""
    if not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise user_error(None, "--seed", "an integer from 0 to 2^31 - 1", repr(seed))
    if not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS or seed + seeds > 2 ** 31:
        raise user_error(None, "--seeds", f"an integer from 1 to {MAX_SEEDS} (seeds --seed .. --seed + N - 1 "
                         "below 2^31)", repr(seeds))


def place_and_route(spec):
    """One nextpnr run, a job for :func:`sparsa.sw.jobs.run_jobs`: ``spec["cmd"]`` in the
    directory ``spec["cwd"]``. Returns ``{"seed", "fmax_mhz", "time_s"}``; a failed run raises."""
    t = run_tool(spec["cmd"], spec["cwd"], "nextpnr.log")
    return {"seed": spec["point"]["seed"], "fmax_mhz": fmax_of(Path(spec["cwd"]) / "pnr.json"), "time_s": round(t, 1)}


def fmax_of(pnr_json):
    pnr = json.loads(Path(pnr_json).read_text())
    fmax = [v.get("achieved") for v in pnr.get("fmax", {}).values() if v.get("achieved")]
    return round(min(fmax), 2) if fmax else None


def _in_sequence(fn, specs, on_done=None):
    records = []
    for k, spec in enumerate(specs):
        try:
            rec = {"point": spec["point"], "result": fn(spec)}
        except RuntimeError as e:
            rec = {"point": spec["point"], "error": str(e).strip().splitlines()[0]}
        records.append(rec)
        if on_done:
            on_done(k, rec, k + 1, len(specs))
    return records


def place_and_route_seeds(out, seeds, pnr_cmd, cname, placed, run_jobs, say):
    """Place and route ``out/top.json`` once per seed and keep the best: its ``pnr.json``,
    ``nextpnr.log`` and placed design end up in ``out`` as a one-seed build leaves them; every
    seed's report and log stay in ``out/seeds/seedN/``. Returns ``(kept seed, by_seed)``."""
    if len(seeds) == 1:
        r = place_and_route({"point": {"seed": seeds[0]}, "cmd": pnr_cmd(seeds[0]), "cwd": str(out)})
        return seeds[0], [{"seed": seeds[0], "fmax_mhz": r["fmax_mhz"]}]
    specs = []
    for sd in seeds:
        d = out / "seeds" / f"seed{sd}"
        d.mkdir(parents=True)
        for name in ("top.json", cname):        # YoWASP tools open cwd-relative names only
            _link_or_copy(out / name, d / name)
        specs.append({"point": {"seed": sd}, "cmd": pnr_cmd(sd), "cwd": str(d.resolve())})

    def done(k, rec, n_done, n):
        r = rec.get("result")
        say(f"  seed {rec['point']['seed']}: " + (f"Fmax {r['fmax_mhz']} MHz ({r['time_s']} s)" if r else
                                                  f"failed: {rec['error']}") + f" [{n_done}/{n}]")
    records = (run_jobs or _in_sequence)(place_and_route, specs, done)
    by_seed = [{"seed": sd, "fmax_mhz": rec["result"]["fmax_mhz"]} if "result" in rec else
               {"seed": sd, "fmax_mhz": None, "error": rec["error"]} for sd, rec in zip(seeds, records)]
    ok = [e for e in by_seed if e["fmax_mhz"] is not None]
    if not ok:
        raise RuntimeError(f"place and route failed for every seed ({seeds[0]}..{seeds[-1]}): "
                           f"{by_seed[0].get('error', 'no Fmax reported')}; see {out}/seeds/seed*/nextpnr.log")
    kept = max(ok, key=lambda e: (e["fmax_mhz"], -e["seed"]))["seed"]
    src = out / "seeds" / f"seed{kept}"
    for name in ("pnr.json", "nextpnr.log", placed):
        _link_or_copy(src / name, out / name)
    for sd in seeds:                       # keep each seed's report and log, not its copies and design
        d = out / "seeds" / f"seed{sd}"
        for name in ("top.json", cname, placed):
            (d / name).unlink(missing_ok=True)
    fmaxes = sorted(e["fmax_mhz"] for e in ok)
    say(f"kept seed {kept}: Fmax {fmaxes[-1]} MHz; over {len(ok)} of {len(seeds)} seeds min {fmaxes[0]}, "
        f"median {round(statistics.median(fmaxes), 2)}, max {fmaxes[-1]} MHz")
    return kept, by_seed


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        import shutil
        shutil.copyfile(src, dst)
