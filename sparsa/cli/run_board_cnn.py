"""``sparsa run CNNPACK --engine board --port P``: a CNN pack on a board's CNN system over its USB
UART, or on the simulated board (``--port sim:ulx3s-85f``): the system's Verilog on Verilator,
its UART on a socket, driven by :class:`sparsa.runtime_cnn.CNNLinuxBackend` over
:func:`sparsa.link.cnn_link_backend`, the runtime a Zynq uses with its DRAM buffer replaced by
the board's on-chip DRAM behind the link's memory window.

Every run loads the pack (the program, weights and input go into the on-chip DRAM), then per
input writes the image, starts the engine, waits for DONE and reads the output back. Times are
measured as for an EIE pack (:mod:`sparsa.cli.run_board`)."""

import time

import numpy as np

from sparsa.sw.errors import UserError, user_error

__all__ = ["run_board_cnn", "measure_cnn_on_simulated_board"]


def run_board_cnn(pack_dir, prog, x, port, baud=None, *, clock_mhz=None, say=print):
    """``(y int8, report dict)``: load the CNN pack onto the board at ``port`` and run ``x``
    ((C, H, W) or (B, C, H, W) int8). ``clock_mhz``: on ``sim:<board>``, the system clock to
    simulate (default: the board's)."""
    from sparsa.cli.run_board import _measured, _system
    from sparsa.link import LinkError, cnn_link_backend
    from sparsa.runtime_cnn import CNNAccelerator
    if not port:
        raise user_error(None, "--port", "the board's serial port (e.g. /dev/ttyUSB0) or sim:<board> "
                                         "with --engine board", "none")
    sim = backend = None
    ok = False
    if port.startswith("sim:"):
        from sparsa.boards.systems import cnn_memory_bytes, uart_divisor
        from sparsa.sim.board.runner import SimulatedBoard
        system = _system(port[4:], None)
        mem_bytes = cnn_memory_bytes(prog, system.board, pack_dir)
        mhz = system.default_mhz if clock_mhz is None else clock_mhz
        divisor, _ = uart_divisor(mhz, system.baud)
        sim = SimulatedBoard(prog.cfg, divisor=divisor, name=port, n_leds=system.n_leds, mem_bytes=mem_bytes)
        say(f"simulating {port}: the CNN board system ({prog.cfg.lanes} lanes, {mem_bytes // 1024} KiB on-chip "
            f"DRAM) at {mhz:g} MHz (its PLL a pass-through), UART at {system.baud} baud ({divisor} cycles a bit), "
            f"on Verilator")
        try:
            transport = sim.__enter__()
        except RuntimeError as e:             # the simulator did not start: one line, not a traceback
            raise UserError(str(e).strip().splitlines()[0]) from None
        backend = cnn_link_backend(None, transport=transport, timeout_s=600, link_timeout_s=30)
        clock_hz, baud = mhz * 1e6, system.baud
    else:
        baud = baud or 3_000_000
        backend = cnn_link_backend(port, baud)
        clock_hz = None
    link = backend.regs.link
    try:
        t0 = time.perf_counter()
        acc = CNNAccelerator(pack_dir, backend)
        t_load = time.perf_counter() - t0
        after_load = (link.bytes_sent, link.bytes_received)
        t1 = time.perf_counter()
        y = acc.run(x)
        t_run = time.perf_counter() - t1
        at_end = (link.bytes_sent, link.bytes_received)
        cycles = np.atleast_1d(np.asarray(acc.cycles, dtype=np.int64))
        mac_cycles = np.atleast_1d(np.asarray(acc.mac_cycles, dtype=np.int64))
        ok = True
    except (OSError, TimeoutError, LinkError) as e:
        text = str(e).splitlines()[0]
        raise UserError(text if text.startswith(port) else f"{port}: {text}") from None
    finally:
        try:
            backend.close()
        except (OSError, LinkError):
            pass
        if sim is not None:
            try:
                sim.__exit__(None if ok else RuntimeError, None, None)     # on a failure, sim.log stays
            except RuntimeError as e:
                if ok:
                    raise UserError(str(e).strip().splitlines()[0]) from None
    batch = max(len(cycles), 1)
    loaded, run_bytes = sum(after_load), sum(at_end) - sum(after_load)
    rep = {"port": port, "baud": baud, "cycles": cycles.tolist(), "cycles_per_input": float(cycles.mean()),
           "mac_cycles": mac_cycles.tolist(),
           "link": {"model_loaded": True, "load_bytes": int(loaded), "run_bytes": int(run_bytes),
                    "resends": link.resends, "wall_load_s": round(t_load, 3), "wall_run_s": round(t_run, 3),
                    "wire_s_per_input": run_bytes / batch * 10 / baud}}
    if sim is None:
        rep["time_per_input_s"] = {"link": t_run / batch}
        return np.asarray(y), rep
    measured = _measured(sim.times, (after_load, at_end), clock_hz) if sim.times else None
    rep["link"]["measured"] = measured
    rep["time_per_input_s"] = {"compute": float(cycles.mean()) / clock_hz,
                               "link": measured["run_s"] / batch if measured else None}
    return np.asarray(y), rep


MEASURE_INPUTS, MEASURE_SEED = 2, 0


def measure_cnn_on_simulated_board(pack_dir, board, clock_mhz, x=None, *, source="given", say=print):
    """:func:`sparsa.cli.run_board.measure_on_simulated_board` for a CNN pack: ``x`` (default:
    :data:`MEASURE_INPUTS` seeded random int8 images) through the CNN system of ``board`` at
    ``clock_mhz`` on Verilator, checked bit for bit against the golden model (a RuntimeError if
    they differ); returns the report's ``measured`` entry."""
    from sparsa.sw.cnn.golden import cnn_forward
    from sparsa.sw.cnn.pack import load_cnn_pack
    prog, _, _ = load_cnn_pack(pack_dir)
    if x is None:
        rng = np.random.default_rng(MEASURE_SEED)
        x = rng.integers(-128, 128, (MEASURE_INPUTS,) + tuple(prog.input_shape)).astype(np.int8)
        source = {"random": {"seed": MEASURE_SEED, "range": [-128, 127]}}
    x = np.asarray(x, np.int8)
    if x.ndim == len(prog.input_shape):
        x = x[None]
    y, rep = run_board_cnn(pack_dir, prog, x, f"sim:{board}", clock_mhz=clock_mhz, say=say)
    if prog.graph is not None:
        want = np.asarray(cnn_forward(prog.graph, x)).reshape(np.shape(y))
        if not np.array_equal(y, want):
            bad = int(np.count_nonzero(y != want))
            raise RuntimeError(f"the simulated {board} system's results differ from the golden model in {bad} of "
                               f"{want.size} values (an internal error: please report it)")
    m = rep["link"]["measured"]
    if m is None:
        raise RuntimeError(f"the simulated {board} system wrote no byte times (see its sim.log)")
    return {"inputs": {"count": len(rep["cycles"]), "lstm_steps": False, "source": source},
            "bit_exact": prog.graph is not None, "cycles_per_input": rep["cycles"], "model_loaded": True,
            "load_bytes": rep["link"]["load_bytes"], "run_bytes": rep["link"]["run_bytes"],
            **{k: v for k, v in m.items() if k != "clock_mhz"},
            "time_per_input_s": rep["time_per_input_s"]}
