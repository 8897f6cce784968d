"""The benchmarks' ideal (sw/eie/work.py): real work over all multipliers, or the broadcast bound.

Checked against a hand count on a tiny hand-made layer (with EIE padding, which must not count),
and on Verilator: efficiency = ideal / measured <= 1 at one and two multipliers per PE.
"""

import numpy as np
import pytest

from sparsa.sw.eie.pack import Pack, make_layer
from sparsa.sw.eie.work import ideal_cycles, layer_work

# A 40 x 4 layer on 2 PEs. Column 0: rows 0 and 38 (both in PE 0 if rows are interleaved, or
# far apart in any layout: a run of zeros longer than 15 needs padding); column 1: rows 1-3;
# column 2: rows 0-19; column 3: empty.
NZ = [(0, 0), (38, 0), (1, 1), (2, 1), (3, 1), *((r, 2) for r in range(20))]


def _tiny():
    i, j = (np.array(v) for v in zip(*NZ))
    cb = np.arange(16, dtype=np.int16) * 10
    index = np.arange(len(NZ)) % 15 + 1
    return Pack(pes=2, layers=[make_layer("l0", 40, 4, i, j, index, cb, 2)])


def test_ideal_formula():
    assert ideal_cycles(22, 3, 2, 1) == 11.0
    assert ideal_cycles(22, 3, 2, 2) == 5.5
    assert ideal_cycles(10, 7, 2, 2) == 7.0            # broadcast-bound
    for bad in ((1, 1, 2, 3), (1, 1, 0, 1)):
        with pytest.raises(ValueError):
            ideal_cycles(*bad)


@pytest.mark.parametrize("macs", [1, 2])
def test_tiny_layer_by_hand(macs):
    pack = _tiny()
    x = np.array([3, 0, 7, -1], dtype=np.int16)        # active columns 0, 2, 3
    (w,) = layer_work(pack, x, macs)
    # By hand: real weights in the active columns = 2 + 20 + 0 = 22; 3 nonzero activations.
    assert sum(w["real_per_pe"]) == 22 and w["nonzero_activations"] == 3
    assert w["ideal_cycles"] == {1: 11.0, 2: 5.5}[macs]
    # Independently, from the dense matrix.
    dense = np.zeros((40, 4), bool)
    dense[tuple(zip(*NZ))] = True
    real = int(dense[:, x != 0].sum())
    assert w["ideal_cycles"] == max(real / (2 * macs), np.count_nonzero(x))
    # The layer has padding (entries > real), which the ideal leaves out; EIE's model counts it.
    assert sum(w["entries_per_pe"]) > real
    assert w["eie_model_cycles"] == max(sum(w["entries_per_pe"]) / 2, 3)
    # The busiest PE (rows interleaved, row r in PE r % 2): PE 0 holds rows 0 and 38 of column
    # 0 and the 10 even rows of column 2, PE 1 the 10 odd ones.
    per_pe = [int(dense[k::2][:, x != 0].sum()) for k in range(2)]
    assert per_pe == [12, 10] and w["real_per_pe"] == per_pe
    assert w["busiest_pe_cycles"] == max(12 / macs, 3) >= w["ideal_cycles"]
    # Only column 1 active: 3 real weights, 1 activation.
    (w1,) = layer_work(pack, np.array([0, 5, 0, 0], np.int16), macs)
    assert w1["ideal_cycles"] == max(3 / (2 * macs), 1)


@pytest.mark.xdist_group("eie_verilator_ideal")
@pytest.mark.parametrize("macs", [1, 2])
@pytest.mark.parametrize("case", [(90, 64, 0.3, 0.5), (90, 8, 0.1, 1.0), (90, 100, 0.6, 0.9)],
                         ids=["typical", "broadcast-bound", "heavy"])
def test_efficiency_at_most_one_on_verilator(macs, case):
    from eie_cases import hw_config
    from sparsa.bench.eie import _run, ideal_cycles as bench_ideal, make_layer_pack
    from sparsa.sw.eie.golden import layer_forward
    from sparsa.sw.eie.memmap import build_memory_map
    cols, rows, wd, ad = case
    pack, x, _ = make_layer_pack(cols, rows, wd, ad, 4, seed=27 + rows)
    res = _run(hw_config(4).replace(macs=macs), build_memory_map(pack), x)
    assert np.array_equal(res["y"], layer_forward(pack.golden_layers()[0], x))
    ideal, *_, busiest = bench_ideal(pack, x, macs)
    measured = int(res["cycles"][0])
    print(f"macs={macs} {case}: measured {measured}, ideal {ideal:.1f}, efficiency {ideal / measured:.3f}, "
          f"busiest PE {busiest:.1f}")
    assert 0 < ideal / measured <= 1
    assert ideal <= busiest <= measured            # the busiest PE's work is a lower bound too


@pytest.mark.xdist_group("eie_verilator_ideal")
def test_balanced_rows_case_is_bit_exact_and_within_the_bounds_on_verilator():
    """`sparsa bench eie --balance-rows`'s case: the layer's rows renumbered
    (sw/eie/balance.py), its outputs the original ones renumbered, on the same array."""
    from eie_cases import hw_config
    from sparsa.bench.eie import _balanced_case, _run, ideal_cycles as bench_ideal, make_layer_pack
    from sparsa.sw.eie.golden import layer_forward
    from sparsa.sw.eie.memmap import build_memory_map
    plain, x, coo = make_layer_pack(90, 64, 0.3, 0.5, 4, seed=91)
    pack, _, _ = _balanced_case(plain, x, coo)
    assert max(pack.layers[0].real_per_pe) <= max(plain.layers[0].real_per_pe)
    res = _run(hw_config(4).replace(macs=1), build_memory_map(pack), x)
    assert np.array_equal(res["y"], layer_forward(pack.golden_layers()[0], x))
    assert sorted(res["y"].tolist()) == sorted(layer_forward(plain.golden_layers()[0], x).tolist())
    ideal, *_, busiest = bench_ideal(pack, x, 1)
    assert ideal == bench_ideal(plain, x, 1)[0]             # the same work
    assert ideal <= busiest <= int(res["cycles"][0])
