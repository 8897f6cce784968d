"""``sparsa run CNNPACK --engine board --port P``: a CNN pack on a board's CNN system over its USB
UART, or on the simulated board (``--port sim:ulx3s-85f``): the system's Verilog on Verilator,
its UART on a socket, driven by :class:`sparsa.runtime_cnn.CNNLinuxBackend` over
:func:`sparsa.link.cnn_link_backend`, the runtime a Zynq uses with its DRAM buffer replaced by
the board's on-chip DRAM behind the link's memory window.

Every run loads the pack (the program, weights and input go into the on-chip DRAM), then per
input writes the image, starts the engine, waits for DONE and reads the output back. Times are
measured as for an EIE pack (:mod:`sparsa.cli.run_board`)."""

import numpy as np

from sparsa.sw.errors import user_error

__all__ = ["run_board_cnn", "measure_cnn_on_simulated_board"]


def run_board_cnn(pack_dir, prog, x, port, baud=None, *, clock_mhz=None, say=print):
    """``(y int8, report dict)``: load the CNN pack onto the board at ``port`` and run ``x``
    ((C, H, W) or (B, C, H, W) int8). ``clock_mhz``: on ``sim:<board>``, the system clock to
    simulate (default: the board's)."""
    from sparsa.cli.run_board import drive, link_report, simulated_clock
    from sparsa.link import cnn_link_backend
    from sparsa.runtime_cnn import CNNAccelerator
    if not port:
        raise user_error(None, "--port", "the board's serial port (e.g. /dev/ttyUSB0) or sim:<board> "
                                         "with --engine board", "none")
    sim = clock_hz = None
    if port.startswith("sim:"):
        from sparsa.boards.systems import cnn_memory_bytes
        from sparsa.sim.board.runner import SimulatedBoard
        system, mhz, divisor = simulated_clock(port, clock_mhz)
        mem_bytes = cnn_memory_bytes(prog, system.board, pack_dir)
        sim = SimulatedBoard(prog.cfg, divisor=divisor, name=port, n_leds=system.n_leds, mem_bytes=mem_bytes)
        say(f"simulating {port}: the CNN board system ({prog.cfg.lanes} lanes, {mem_bytes // 1024} KiB on-chip "
            f"DRAM) at {mhz:g} MHz (its PLL a pass-through), UART at {system.baud} baud ({divisor} cycles a bit), "
            f"on Verilator")
        clock_hz, baud = mhz * 1e6, system.baud
    else:
        baud = baud or 3_000_000
    make = ((lambda t: cnn_link_backend(None, transport=t, timeout_s=600, link_timeout_s=30)) if sim is not None
            else (lambda t: cnn_link_backend(port, baud)))
    acc, y, session = drive(port, sim, make, lambda b: CNNAccelerator(pack_dir, b), lambda a: a.run(x))
    cycles = np.atleast_1d(np.asarray(acc.cycles, dtype=np.int64))
    link, per_input = link_report(session, cycles, baud, sim, clock_hz)
    return np.asarray(y), {"port": port, "baud": baud, "cycles": cycles.tolist(),
                           "cycles_per_input": float(cycles.mean()),
                           "mac_cycles": np.atleast_1d(np.asarray(acc.mac_cycles, dtype=np.int64)).tolist(),
                           "link": link, "time_per_input_s": per_input}


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
