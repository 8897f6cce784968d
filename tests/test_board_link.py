"""The board system end to end without a board: the board SoC (EIE SoC + UART link bridge) on
Verilator, its UART pins on a socket, driven by the same runtime (LinuxBackend) that drives a
Zynq, through the link's registers and streams. Results equal the golden model bit for bit,
also through injected link faults; a board reset in the middle is reported, never answered
with numbers."""

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack

from sparsa.link import LinkError, link_backend
from sparsa.runtime import Accelerator
from sparsa.sim.board.runner import SimulatedBoard
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack_dir import write_pack
from sparsa.sw.eie.protocol import load_sequence, register_writes

DIV = 8


def _case(tmp_path, seed, batch=2):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(20, 17), (9, 20)], 2, 0.3, rng)
    write_pack(pack, tmp_path / "pk")
    return pack, random_input(17, rng, batch=batch), EIEConfig.reusable_for(build_memory_map(pack))


def _backend(transport):
    # A lost frame costs one link timeout. 5 s, not less: on a loaded 2-core machine the
    # simulator can fall that far behind the host without anything being wrong.
    return link_backend(None, transport=transport, timeout_s=60, link_timeout_s=5)


@pytest.mark.xdist_group("board_verilator")
def test_a_pack_loads_and_runs_over_the_uart_link_bit_exact(tmp_path):
    pack, x, _ = _case(tmp_path, 1201)
    rng = np.random.default_rng(1211)
    other = random_pack([(20, 17), (9, 20)], 2, 0.3, rng)
    write_pack(other, tmp_path / "other")
    cfg = EIEConfig.reusable_for(build_memory_map(pack), build_memory_map(other))
    with SimulatedBoard(cfg, divisor=DIV) as transport:
        backend = _backend(transport)
        link = backend.regs.link
        acc = Accelerator(tmp_path / "pk", backend=backend)
        loaded = link.bytes_sent
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
        assert np.all(acc.cycles > 0) and backend.loaded
        assert link.resends == 0 and 1000 < loaded < link.bytes_sent
        print(f"load {loaded} bytes, run {link.bytes_sent - loaded} bytes sent, {link.bytes_received} received")
        # The same pack again: the board's MODEL_ID names it, so nothing is loaded (a few
        # register writes: ID, CONFIG, abort, N_LAYERS), and the answer is the same.
        before = link.bytes_sent
        again = Accelerator(tmp_path / "pk", backend=backend)
        assert backend.loaded is False and link.bytes_sent - before < 200
        np.testing.assert_array_equal(again.run(x), independent_golden(pack, x))
        # Another model: loaded, and its answer, not the first one's.
        before = link.bytes_sent
        acc2 = Accelerator(tmp_path / "other", backend=backend)
        assert backend.loaded and link.bytes_sent - before > 1000
        np.testing.assert_array_equal(acc2.run(x), independent_golden(other, x))
        # Asked to reload although the board holds it: loaded.
        Accelerator(tmp_path / "other", backend=backend, reload=True)
        assert backend.loaded
        # A host that loads one word and knows nothing of MODEL_ID: the board no longer claims
        # the model (the SoC clears MODEL_ID on the load), so the runtime loads it again.
        for name, value in register_writes(next(load_sequence(build_memory_map(pack)))):
            backend.regs[name] = value
        assert backend.regs["MODEL_ID"] == 0
        Accelerator(tmp_path / "other", backend=backend)
        assert backend.loaded


@pytest.mark.xdist_group("board_verilator")
@pytest.mark.parametrize("fault", [["flip", 3], ["drop", 700]])
def test_a_damaged_or_lost_byte_is_retried_and_the_answer_is_still_exact(tmp_path, fault):
    # Byte 3 is the first frame's length, 700 inside the load's register writes; the board drops
    # the frame (CRC, byte gap) and the host sends it again.
    pack, x, cfg = _case(tmp_path, 1202)
    with SimulatedBoard(cfg, divisor=DIV, faults=[fault]) as transport:
        backend = _backend(transport)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
        assert backend.regs.link.resends >= 1


@pytest.mark.xdist_group("board_verilator")
def test_a_board_reset_in_the_middle_is_reported_not_answered(tmp_path):
    pack, x, cfg = _case(tmp_path, 1203)
    with SimulatedBoard(cfg, divisor=DIV, faults=[["reset", 900]]) as transport:
        backend = _backend(transport)
        with pytest.raises(LinkError, match=r"sim:board: .*: the board was reset since the previous command .*"
                                            r"load the pack again"):
            Accelerator(tmp_path / "pk", backend=backend).run(x)
        # The reset came in the middle of the load: the board does not claim the model (MODEL_ID
        # is written 0 first), so loading the pack again loads it, and the answer is exact.
        backend = _backend(transport)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        assert backend.loaded
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))


@pytest.mark.xdist_group("board_verilator")
def test_a_preloaded_system_answers_without_a_load(tmp_path):
    """A ``--preload`` system: the memories and MODEL_ID start with the pack, so the runtime
    checks ID, CONFIG and MODEL_ID and runs; nothing of the model crosses the link."""
    pack, x, cfg = _case(tmp_path, 1204)
    with SimulatedBoard(cfg, divisor=DIV, memory_map=build_memory_map(pack)) as transport:
        backend = _backend(transport)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        assert backend.loaded is False and backend.regs.link.bytes_sent < 200
        np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))


def test_model_id_names_the_weights_not_the_pack():
    from sparsa.sw.eie.protocol import model_id
    rng = np.random.default_rng(1205)
    print("seed=1205")
    pack = random_pack([(20, 17), (9, 20)], 2, 0.3, rng)
    same = build_memory_map(pack)
    assert model_id(same) == model_id(build_memory_map(pack)) != 0
    # One codebook entry, one bias, one layer's shift: each is a different model.
    for change in ("codebook", "bias", "shift"):
        mm = build_memory_map(pack)
        if change == "codebook":
            mm.layers[1].codebook[3] += 1
        elif change == "bias":
            mm.bias[1][0] += 1
        else:
            mm.layers[0].shift += 1
        assert model_id(mm) != model_id(same), change
