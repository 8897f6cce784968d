"""``sparsa bench cnn-resources``: what each CNN engine of the whole-network table costs on the
Zynq-7020 and the ZU2CG, from yosys ``synth_xilinx`` (LUTs, flip-flops, DSPs, BRAM36; no timing).

Each engine of :data:`sparsa.bench.networks.ENGINES` is elaborated as the SoC wrapper that
``sparsa build --board zynq7020|zu2cg`` puts in its Vivado tree (``hw/cnn/soc.py``) and
synthesised once per device family (``-family xc7`` for the Zynq-7020's DSP48E1, ``xcup`` for
the ZU2CG's DSP48E2), the same estimate ``sparsa build`` prints. Writes ``cnn-resources.json``
and ``.md``. About 1 to 3 minutes a synthesis on this 2-core machine.
"""

import tempfile
import time
from pathlib import Path

__all__ = ["engine_resources", "resources_markdown", "run_bench"]

BOARDS = ("zynq7020", "zu2cg")


def engine_resources(fields, boards=BOARDS, log=print):
    """yosys estimates of the engine ``CNNConfig(**fields)`` on each board: a list of dicts."""
    from amaranth.back import verilog

    from sparsa.boards.vivado import XILINX_BOARDS, _estimate
    from sparsa.hw.cnn.soc import CNNSoC
    from sparsa.hw.eie.verilog import fast_memory_init
    from sparsa.sw.cnn.config import CNNConfig
    cfg = CNNConfig(**fields)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsa-cnn-res-") as tmp:
        out = Path(tmp)
        with fast_memory_init():
            (out / "sparsa_soc.v").write_text(verilog.convert(CNNSoC(cfg), name="sparsa_soc", emit_src=False))
        for board in boards:
            b = XILINX_BOARDS[board]
            t = time.perf_counter()
            est = _estimate(out, b["family"])
            cap = b["capacity"]
            est.update(board=board, part=b["part"], capacity=cap, seconds=round(time.perf_counter() - t, 1),
                       fits=all(est[k] <= cap[k] for k in ("luts", "ffs", "dsps", "brams")))
            log(f"[bench cnn-resources] {cfg.lanes} lanes on {board}: {est['luts']:,} LUTs, {est['ffs']:,} FFs, "
                f"{est['dsps']} DSPs, {est['brams']:g} BRAM36 ({'fits' if est['fits'] else 'does NOT fit'}), "
                f"{est['seconds']} s")
            rows.append(est)
    return rows


def resources_markdown(rows):
    lines = ["## CNN engines on the Zynq-7020 and the ZU2CG (yosys synth_xilinx, no timing)", "",
             "| engine | multipliers | Zynq-7020 (220 DSP48E1, 140 BRAM36) | ZU2CG (240 DSP48E2, 150 BRAM36) |",
             "|---|---|---|---|"]
    for r in rows:
        cells = [f"{e['luts']:,} LUTs, {e['ffs']:,} FFs, {e['dsps']} DSPs, {e['brams']:g} BRAM36: "
                 f"{'fits' if e['fits'] else 'does NOT fit'}" for e in r["boards"]]
        lines.append(f"| {r['engine']} | {r['multipliers']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_bench(out_dir, args):
    from sparsa.bench.networks import ENGINES
    from sparsa.sw.cnn.config import CNNConfig
    from sparsa.sw.fileio import write_json
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    engines = ENGINES[-2:] if getattr(args, "quick", False) else ENGINES
    rows = [{"engine": label, "config": fields, "multipliers": CNNConfig(**fields).peak_multipliers,
             "boards": engine_resources(fields)} for label, fields in engines]
    md = "# sparsa CNN engine: resources\n\n" + resources_markdown(rows)
    write_json(out / "cnn-resources.json", {"engines": rows})
    (out / "cnn-resources.md").write_text(md)
    print(md)
    return rows
