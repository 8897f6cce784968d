"""``sparsa run --engine board --port P``: an EIE pack on a board over its USB UART, or on the
simulated board (``--port sim:ulx3s-85f``, ``sim:icebreaker``): the board SoC's Verilog on
Verilator, its UART on a socket, driven by the same runtime code."""

import time

import numpy as np

from sparsa.sw.errors import UserError, user_error

__all__ = ["run_board"]


def _system(board, where):
    from sparsa.boards.systems import SYSTEMS
    if board not in SYSTEMS:
        raise user_error(where, "--port", f"sim:<board> with board one of {', '.join(SYSTEMS)}", repr(board))
    return SYSTEMS[board]


def run_board(pack_dir, pack, x, port, baud=None):
    """``(y int16, report dict)``: load the pack onto the board at ``port`` and run ``x``."""
    from sparsa.dma import DMAError
    from sparsa.link import LinkError, link_backend
    from sparsa.runtime import Accelerator
    from sparsa.sim.eie.runner import cli_config
    from sparsa.sw.eie.memmap import build_memory_map
    if not port:
        raise user_error(None, "--port", "the board's serial port (e.g. /dev/ttyUSB0) or sim:<board> "
                                         "with --engine board", "none")
    sim = backend = None
    ok = False
    if port.startswith("sim:"):
        from sparsa.sim.board.runner import SimulatedBoard
        from sparsa.boards.systems import uart_divisor
        system = _system(port[4:], None)
        mhz = system.default_mhz
        divisor, _ = uart_divisor(mhz, system.baud)
        # What `sparsa build --top link` synthesises for the pack on this board.
        cfg = cli_config(build_memory_map(pack)).replace(**system.pe_options)
        sim = SimulatedBoard(cfg, divisor=divisor, name=port, n_leds=system.n_leds)
        print(f"simulating {port}: the board system at {mhz} MHz (its PLL a pass-through), UART at "
              f"{system.baud} baud ({divisor} cycles a bit), on Verilator")
        transport = sim.__enter__()
        # The simulation runs slower than the board: generous timeouts.
        backend = link_backend(None, transport=transport, timeout_s=600, link_timeout_s=30)
        clock_hz, baud = mhz * 1e6, system.baud
    else:
        baud = baud or 3_000_000
        backend = link_backend(port, baud)
        clock_hz = None
    try:
        t0 = time.perf_counter()
        acc = Accelerator(pack_dir, backend=backend)
        t_load = time.perf_counter() - t0
        link = backend.regs.link
        loaded = link.bytes_sent + link.bytes_received
        t1 = time.perf_counter()
        y = acc.run(x)
        t_run = time.perf_counter() - t1
        run_bytes = link.bytes_sent + link.bytes_received - loaded
        cycles = np.asarray(acc.cycles, dtype=np.int64)
        batch = len(cycles)
        rep = {"port": port, "baud": baud, "cycles": int(cycles.sum()), "cycles_per_input": cycles.tolist(),
               "link": {"load_bytes": int(loaded), "run_bytes": int(run_bytes), "resends": link.resends,
                        "load_s": round(t_load, 3), "run_s": round(t_run, 3)}}
        if baud:
            # On the wire: 10 bit times a byte, both directions sharing the exchange (one command at
            # a time), so the link time of an input is its bytes over baud / 10.
            per_input = run_bytes / max(batch, 1) * 10 / baud
            rep["time_per_input_s"] = {"link": per_input}
            if clock_hz:
                rep["time_per_input_s"]["compute"] = float(cycles.mean()) / clock_hz
        ok = True
        return np.asarray(y), rep
    except (OSError, TimeoutError, LinkError, DMAError) as e:
        text = str(e).splitlines()[0]
        raise UserError(text if text.startswith(port) else f"{port}: {text}") from None
    finally:
        if backend is not None:
            try:
                backend.close()                # posted writes (an abort) reach the board
            except (OSError, LinkError):
                pass
        if sim is not None:
            sim.__exit__(None if ok else RuntimeError, None, None)     # on a failure, sim.log stays
