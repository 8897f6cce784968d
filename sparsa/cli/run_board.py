"""``sparsa run --engine board --port P``: an EIE pack on a board over its USB UART, or on the
simulated board (``--port sim:ulx3s-85f``, ``sim:icebreaker``): the board SoC's Verilog on
Verilator, its UART on a socket, driven by the same runtime code.

On the simulated board the link's time is measured in the simulation's clock cycles at the
board's clock and baud rate (:mod:`sparsa.sim.board.timing`): what the bytes and the board take,
without the host's own turnaround. :func:`measure_on_simulated_board` is that run as
``sparsa build`` makes it for its report."""

import time

import numpy as np

from sparsa.sw.errors import UserError, user_error

__all__ = ["run_board", "measure_on_simulated_board", "drive", "link_report", "simulated_clock"]


def _system(board, where):
    from sparsa.boards.systems import SYSTEMS
    if board not in SYSTEMS:
        raise user_error(where, "--port", f"sim:<board> with board one of {', '.join(SYSTEMS)}", repr(board))
    return SYSTEMS[board]


def _measured(times, phases, clock_hz):
    """The link's seconds and bytes per second of the load and of the run, from the bench's byte
    times (``phases``: the host's sent and received byte counts after the load and at the end)."""
    from sparsa.sim.board.timing import link_cycles, split_phases
    (sent0, recv0), (sent1, recv1) = phases
    load, run = split_phases(times, sent0, recv0)
    out = {"clock_mhz": clock_hz / 1e6}
    for name, (rx, tx), nbytes in (("load", load, sent0 + recv0), ("run", run, sent1 + recv1 - sent0 - recv0)):
        cycles, host = link_cycles(rx, tx, times["divisor"])
        out[f"{name}_s"] = cycles / clock_hz
        out[f"{name}_bytes_per_s"] = round(nbytes * clock_hz / cycles) if cycles else None
        out[f"{name}_host_turnaround_left_out_s"] = host / clock_hz
    return out


def simulated_clock(port, clock_mhz):
    """``(system, MHz, UART divisor)`` of ``--port sim:<board>`` at ``clock_mhz`` (default: the
    board's clock), as the build divides it."""
    from sparsa.boards.systems import uart_divisor
    system = _system(port[4:], None)
    mhz = system.default_mhz if clock_mhz is None else clock_mhz
    divisor, _ = uart_divisor(mhz, system.baud)
    return system, mhz, divisor


def drive(port, sim, make_backend, load, run, errors=()):
    """The session every board run shares: start ``sim`` (a
    :class:`~sparsa.sim.board.runner.SimulatedBoard`, or ``None`` for a real port), make the
    backend (``make_backend(transport)``; ``None`` for a real port), ``acc = load(backend)`` and
    ``y = run(acc)``, timed and counted on the link. Link, OS, timeout and ``errors`` are one
    line naming the port; the backend is closed (posted writes, an abort, reach the board) and
    the simulation ended (on a failure its sim.log stays). Returns ``(acc, y, session)``."""
    from sparsa.link import LinkError
    transport = None
    if sim is not None:
        try:
            transport = sim.__enter__()
        except RuntimeError as e:             # the simulator did not start: one line, not a traceback
            raise UserError(str(e).strip().splitlines()[0]) from None
    backend = make_backend(transport)
    ok = False
    try:
        link = backend.regs.link
        t0 = time.perf_counter()
        acc = load(backend)
        t_load = time.perf_counter() - t0
        after_load = (link.bytes_sent, link.bytes_received)
        t1 = time.perf_counter()
        y = run(acc)
        session = {"t_load": t_load, "t_run": time.perf_counter() - t1, "after_load": after_load,
                   "at_end": (link.bytes_sent, link.bytes_received), "resends": link.resends,
                   "model_loaded": getattr(backend, "loaded", True)}
        ok = True
    except (OSError, TimeoutError, LinkError, *errors) as e:
        text = str(e).splitlines()[0]
        raise UserError(text if text.startswith(port) else f"{port}: {text}") from None
    finally:
        try:
            backend.close()
        except (OSError, LinkError):
            pass
        if sim is not None:
            try:
                sim.__exit__(None if ok else RuntimeError, None, None)
            except RuntimeError as e:
                if ok:                         # else the run's own error is the one to report
                    raise UserError(str(e).strip().splitlines()[0]) from None
    return acc, y, session


def link_report(session, cycles, baud, sim, clock_hz):
    """``(link, time_per_input_s)`` of a :func:`drive` session: bytes, resends and wall times; on
    the simulated board the link measured in its clock cycles (:func:`_measured`)."""
    batch = max(len(cycles), 1)
    loaded = sum(session["after_load"])
    run_bytes = sum(session["at_end"]) - loaded
    link = {"model_loaded": session["model_loaded"], "load_bytes": int(loaded), "run_bytes": int(run_bytes),
            "resends": session["resends"],
            "wall_load_s": round(session["t_load"], 3), "wall_run_s": round(session["t_run"], 3),
            # 8N1: ten bit times a byte; the bytes alone, back to back, take this long.
            "wire_s_per_input": run_bytes / batch * 10 / baud}
    if sim is None:
        # A real board: the host's clock, round trips and the USB bridge's latency included.
        return link, {"link": session["t_run"] / batch}
    measured = _measured(sim.times, (session["after_load"], session["at_end"]), clock_hz) if sim.times else None
    link["measured"] = measured
    return link, {"compute": float(np.mean(cycles)) / clock_hz,
                  "link": measured["run_s"] / batch if measured else None}


def run_board(pack_dir, pack, x, port, baud=None, *, clock_mhz=None, reload=False, preload=False, say=print):
    """``(y int16, report dict)``: load the pack onto the board at ``port`` (unless the board
    holds it already and not ``reload``) and run ``x``. ``clock_mhz``: on ``sim:<board>``, the
    system clock to simulate (default: the board's); the UART divisor follows from it as in
    the build. ``preload``: the simulated system holds the pack from power-up, as a
    ``sparsa build --preload`` bitstream does."""
    from sparsa.dma import DMAError
    from sparsa.link import link_backend
    from sparsa.runtime import Accelerator
    from sparsa.sim.eie.runner import cli_config
    from sparsa.sw.eie.memmap import build_memory_map
    if not port:
        raise user_error(None, "--port", "the board's serial port (e.g. /dev/ttyUSB0) or sim:<board> "
                                         "with --engine board", "none")
    sim = clock_hz = None
    if port.startswith("sim:"):
        from sparsa.sim.board.runner import SimulatedBoard
        system, mhz, divisor = simulated_clock(port, clock_mhz)
        # What `sparsa build --top link` synthesises for the pack on this board.
        cfg = cli_config(build_memory_map(pack)).replace(**system.pe_options)
        sim = SimulatedBoard(cfg, divisor=divisor, name=port, n_leds=system.n_leds,
                             memory_map=build_memory_map(pack) if preload else None)
        say(f"simulating {port}: the board system at {mhz:g} MHz (its PLL a pass-through), UART at "
            f"{system.baud} baud ({divisor} cycles a bit), on Verilator")
        clock_hz, baud = mhz * 1e6, system.baud
    else:
        baud = baud or 3_000_000
    # The simulation runs slower than the board: generous timeouts.
    make = ((lambda t: link_backend(None, transport=t, timeout_s=600, link_timeout_s=30)) if sim is not None
            else (lambda t: link_backend(port, baud)))
    acc, y, session = drive(port, sim, make, lambda b: Accelerator(pack_dir, backend=b, reload=reload),
                            lambda a: a.run(x), errors=(DMAError,))
    cycles = np.asarray(acc.cycles, dtype=np.int64)
    link, per_input = link_report(session, cycles, baud, sim, clock_hz)
    return np.asarray(y), {"port": port, "baud": baud, "cycles": int(cycles.sum()),
                           "cycles_per_input": cycles.tolist(), "link": link, "time_per_input_s": per_input}


MEASURE_INPUTS, MEASURE_SEED, MEASURE_DENSITY = 4, 0, 0.5


def measure_on_simulated_board(pack_dir, board, clock_mhz, x=None, *, source="given", preload=False, say=print):
    """The link system of ``board`` at ``clock_mhz`` on the simulated board: loads the pack and
    runs ``x`` (``source`` names it; default: :data:`MEASURE_INPUTS` seeded random int8-range
    inputs, half of them zero, or an LSTM sequence that long) over the link, and checks the results bit for bit
    against the golden model (a RuntimeError if they differ). Returns the report's
    ``measured`` entry: inputs, bytes, seconds and bytes per second of the load and of the run
    at the board's clock and baud rate, and the time per input split into compute and link.
    ``preload``: the system holds the pack from power-up (the host then only checks it)."""
    from sparsa.sw.eie.pack_dir import load_pack
    pack = load_pack(pack_dir)
    if x is None:
        rng = np.random.default_rng(MEASURE_SEED)
        shape = (MEASURE_INPUTS, pack.input_cols)
        x = (rng.integers(-128, 128, shape) * (rng.random(shape) < MEASURE_DENSITY)).astype(np.int16)
        source = {"random": {"seed": MEASURE_SEED, "zero_probability": 1 - MEASURE_DENSITY, "range": [-128, 127]}}
    y, rep = run_board(pack_dir, pack, x, f"sim:{board}", clock_mhz=clock_mhz, preload=preload, say=say)
    want = np.asarray(pack.run_golden(x)).reshape(np.shape(y))
    if not np.array_equal(y, want):
        bad = int(np.count_nonzero(y != want))
        raise RuntimeError(f"the simulated {board} system's results differ from the golden model in {bad} of "
                           f"{want.size} values (an internal error: please report it)")
    m = rep["link"]["measured"]
    if m is None:
        raise RuntimeError(f"the simulated {board} system wrote no byte times (see its sim.log)")
    return {"inputs": {"count": len(rep["cycles_per_input"]), "lstm_steps": bool(pack.lstm), "source": source},
            "bit_exact": True, "cycles_per_input": rep["cycles_per_input"], "model_loaded": rep["link"]["model_loaded"],
            "load_bytes": rep["link"]["load_bytes"], "run_bytes": rep["link"]["run_bytes"],
            **{k: v for k, v in m.items() if k != "clock_mhz"},
            "time_per_input_s": rep["time_per_input_s"]}
