"""The synthesised netlist in simulation: yosys's ``synth_ice40`` and ``synth_ecp5`` output of
the board system (the RTL the bitstream is made from, PLL a pass-through) written as a Verilog
netlist of the family's cells, simulated on Icarus with yosys's own cell models (and sparsa's
MULT18X18D model), driven over its UART by the runtime. This checks what synthesis made of the
memories (SB_RAM40_4K block RAM, TRELLIS_DPR16X4 LUT RAM), the carry chains and the
multipliers, not only the RTL. The iCE40 system is a ``--preload`` build: its block RAMs start
with the pack (their INIT values, through synthesis), and the runtime, finding the pack's
MODEL_ID, loads nothing; the ECP5 system is loaded over the UART. Icarus: its build takes seconds where Verilator's C++ compile of a
73,000-line netlist takes minutes, and the run is short."""

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack

from sparsa.boards.systems import ICEBreaker, ULX3S85F
from sparsa.link import link_backend
from sparsa.runtime import Accelerator
from sparsa.sim.board.runner import SimulatedBoard, TOPLEVEL
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack_dir import write_pack


# Per family: the cells its netlist must be made of, and the configuration its board's link
# build uses (the board's PE; the ECP5 build instantiates MULT18X18D blocks itself).
FAMILIES = {
    "ice40": (("SB_LUT4 ", "SB_CARRY ", "SB_DFF", "SB_RAM40_4K ", "SB_MAC16 "), ICEBreaker.pe_options),
    "ecp5": (("LUT4 ", "CCU2C ", "TRELLIS_FF ", "TRELLIS_DPR16X4 ", "MULT18X18D "),
             {**ULX3S85F.pe_options, "multiplier": "ecp5"}),
}


@pytest.mark.xdist_group("board_netlist")
@pytest.mark.parametrize("family", FAMILIES)
def test_the_synthesised_netlist_loads_and_runs_a_pack_bit_exact(tmp_path, family):
    seed = 1301
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    # Shift 4 and small biases: every product bit above the lowest few reaches the outputs
    # (the default shift of 9 rounds away an error in a product's low bits).
    pack = random_pack([(12, 10)], 1, 0.3, rng, shift=4, bias_scale=50)
    write_pack(pack, tmp_path / "pk")
    x = random_input(10, rng, batch=1)
    cells, options = FAMILIES[family]
    mm = build_memory_map(pack)
    preload = family == "ice40"
    board = SimulatedBoard(EIEConfig.for_pack(mm, **options), divisor=4, engine="icarus",
                           netlist=family, connect_timeout_s=600, memory_map=mm if preload else None)
    with board as transport:
        # What was simulated is a netlist of cells: LUTs, carries, flip-flops, RAMs and DSPs, and
        # no behavioural process of the design's own.
        netlist = (board.bdir / f"{TOPLEVEL}.v").read_text()
        for cell in cells:
            assert cell in netlist, cell
        assert "always @" not in netlist
        backend = link_backend(None, transport=transport, timeout_s=600, link_timeout_s=60)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        assert backend.loaded is not preload
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
        assert acc.cycles[0] > 0
