"""The board system end to end without a board: the board SoC (EIE SoC + UART link bridge) on
Verilator, its UART pins on a socket, driven by the same runtime (LinuxBackend) that drives a
Zynq, through the link's registers and streams. Results equal the golden model bit for bit,
also through injected link faults."""

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack

from sparsa.link import link_backend
from sparsa.runtime import Accelerator
from sparsa.sim.board.runner import SimulatedBoard
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack_dir import write_pack


def _case(tmp_path, seed, batch=2):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(20, 17), (9, 20)], 2, 0.3, rng)
    write_pack(pack, tmp_path / "pk")
    return pack, random_input(17, rng, batch=batch), EIEConfig.reusable_for(build_memory_map(pack))


@pytest.mark.xdist_group("board_verilator")
def test_a_pack_loads_and_runs_over_the_uart_link_bit_exact(tmp_path):
    pack, x, cfg = _case(tmp_path, 1201)
    with SimulatedBoard(cfg, divisor=8) as transport:
        backend = link_backend(None, transport=transport, timeout_s=60, link_timeout_s=5)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
        assert np.all(acc.cycles > 0)
        assert backend.regs.link.resends == 0
