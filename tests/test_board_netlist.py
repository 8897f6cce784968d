"""The synthesised netlist in simulation: yosys's ``synth_ice40`` output of the board system
(the RTL the bitstream is made from, PLL a pass-through) written as a Verilog netlist of iCE40
cells, simulated on Icarus with yosys's own cell models, driven over its UART by the runtime.
This checks what synthesis made of the memories (SB_RAM40_4K), the carry chains and the
multipliers, not only the RTL. Icarus: its build takes seconds where Verilator's C++ compile of a
73,000-line netlist takes minutes, and the run is short."""

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack

from sparsa.link import link_backend
from sparsa.runtime import Accelerator
from sparsa.sim.board.runner import SimulatedBoard, TOPLEVEL
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack_dir import write_pack


@pytest.mark.xdist_group("board_netlist")
def test_the_ice40_netlist_loads_and_runs_a_pack_bit_exact(tmp_path):
    seed = 1301
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(12, 10)], 1, 0.3, rng)
    write_pack(pack, tmp_path / "pk")
    x = random_input(10, rng, batch=1)
    board = SimulatedBoard(EIEConfig.for_pack(build_memory_map(pack)), divisor=4, engine="icarus", netlist="ice40",
                           connect_timeout_s=600)
    with board as transport:
        # What was simulated is a netlist of cells: LUTs, carries, flip-flops, block RAMs and DSPs,
        # and no behavioural process of the design's own.
        netlist = (board.bdir / f"{TOPLEVEL}.v").read_text()
        for cell in ("SB_LUT4 ", "SB_CARRY ", "SB_DFF", "SB_RAM40_4K ", "SB_MAC16 "):
            assert cell in netlist, cell
        assert "always @" not in netlist
        backend = link_backend(None, transport=transport, timeout_s=600, link_timeout_s=60)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
        assert acc.cycles[0] > 0
