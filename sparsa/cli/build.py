"""Build a bitstream for a board through the open flow (YoWASP yosys + nextpnr).

``sparsa build PACKDIR --board ulx3s-85f -o OUT`` builds the board system a host drives
(``--top link``, :mod:`sparsa.boards.systems`): a PLL clock (``--clock-mhz``; by default the
fastest that nextpnr confirms, :mod:`sparsa.boards.clock_plan`), the reset
button, the EIE SoC sized for the pack behind the UART host link, and LEDs; the weights are
loaded over the link (``sparsa run --engine board``), or held from power-up with ``--preload``;
on the iCEBreaker its PE is EIE's (one multiplier, the serial sparse-matrix reader, the
codebooks in a block RAM), which fits the UP5K next to the link. The build then runs the pack
on the simulation of the system it built and writes the link it measured into the report
(``--no-measure`` skips it).
``report.json`` gives the requested, PLL and achieved clock and ``timing_met``. ``--top harness``
(the default with ``--swappable``, ``--pnr-mhz`` or ``--memories``) builds the size-and-speed
harness instead: the array with the pack's weights as memory
contents, its pins XOR-folded; ``OUT/report.json`` holds ``fmax_mhz``, ``luts``, ``ffs``,
``dsps``, ``brams`` and the target clock. ``--seeds N`` places and routes with N seeds in
parallel (a local pool or ``--scheduler`` Dask) and keeps the highest Fmax
(``fmax_mhz_by_seed``). ``--no-build`` writes the sources, constraints and
``build.sh`` only. ``--swappable`` (iCE40, ECP5) keeps the whole model in block RAM and writes
``bram_map.json`` for ``sparsa swap-weights``. ``--board zynq7020|zu2cg|ku060`` writes a Vivado project tree (TCL, XDC,
Verilog; a block design with the processing system for the Zynq parts) and a yosys
``synth_xilinx`` utilisation estimate (skipped with ``--no-build``).
"""

import sys
from contextlib import ExitStack
from pathlib import Path

from sparsa.sw import jobs
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.jobs import open_executor
from sparsa.sw.fileio import atomic_dir, check_outputs, owned_by_manifest, sha256_file, write_json

from sparsa.boards.openflow import BOARDS, DoesNotFit, build, check_seeds
from sparsa.boards.vivado import XILINX_BOARDS, write_tree

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("pack", metavar="PACKDIR", help="pack directory (from sparsa pack)")
    p.add_argument("--board", required=True, choices=sorted(BOARDS) + sorted(XILINX_BOARDS),
                   help="target board (open flow: icebreaker, ulx3s-85f; Vivado tree: zynq7020, zu2cg, ku060)")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="build directory")
    p.add_argument("--no-build", action="store_true", help="write sources and build.sh only")
    p.add_argument("--top", choices=("link", "harness", "auto"), default="auto",
                   help="open flow: link (the system a host drives: PLL clock, reset button, the SoC behind the "
                        "UART host link, LEDs; run it with sparsa run --engine board), harness (the size-and-speed "
                        "probe: weights in the bitstream, pins XOR-folded; --swappable, --pnr-mhz, --memories); "
                        "auto (default): harness with those options, link otherwise")
    p.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                   help="open flow, --top link: the system clock the PLL makes; it must divide the UART's 3 Mbaud "
                        "to within 1.5%%. Default: the fastest that nextpnr confirms: a build at 60 MHz (ULX3S) or "
                        "24 MHz (iCEBreaker), then one at the fastest clock 10%% below its Fmax, kept if it meets "
                        "timing (report.json clock.search)")
    p.add_argument("--preload", action="store_true",
                   help="open flow, --top link: the pack's weights in the bitstream's memories (and its MODEL_ID): "
                        "the board holds the model from power-up and sparsa run --engine board skips the load")
    p.add_argument("--no-measure", action="store_true",
                   help="open flow, --top link: skip the run on the simulated system (the same top on Verilator "
                        "at the built clock) that measures the link for report.json")
    p.add_argument("--measure-input", metavar="X.npy", default=None,
                   help="open flow, --top link: the inputs of that run, as sparsa run -i takes them (default: "
                        "4 seeded random int8-range vectors, half zeros)")
    p.add_argument("--pcie-block", metavar="XnYn", default=None,
                   help="ku060: the PCIe block the card's lanes use (XDMA's pcie_blk_locn; default: XDMA's)")
    p.add_argument("--gt-quad", metavar="QUAD", default=None,
                   help="ku060: the GT quad of the card's lanes, e.g. GTH_Quad_225 (XDMA's select_quad)")
    p.add_argument("--xdc", metavar="FILE", default=None,
                   help="Vivado boards: your board's constraints, copied in as board.xdc (the KU060 card's "
                        "PCIe reference clock and PERST# pins: template in docs/boards.md)")
    p.add_argument("--swappable", action="store_true",
                   help="open flow (iCE40, ECP5): keep every model-dependent bit in block RAM (layer "
                        "table and codebooks in a boot ROM) and write bram_map.json, so that "
                        "`sparsa swap-weights` can put another pack into the bitstream without re-synthesis")
    p.add_argument("--spm-words", type=int, default=None, metavar="N",
                   help="with --swappable: sparse-matrix memory depth per PE (64-bit words), as headroom "
                        "for packs with more nonzeros (default: what PACKDIR needs)")
    p.add_argument("--memories", choices=("auto", "block", "fit"), default="auto",
                   help="open flow: where the PE memories go: auto (yosys picks LUT RAM or block RAM by "
                        "size), block (the weight memories in block RAM however small; a shorter read "
                        "path) or fit (weights and accumulators in block RAM; blocks counted as yosys maps each "
                        "memory, and the fewest bits of the other memories moved out that make the array "
                        "fit: to LUT RAM, or to logic for memories the design only reads; the largest models)")
    p.add_argument("--pnr-mhz", type=float, default=None, metavar="MHZ",
                   help="open flow: the clock nextpnr places and routes for (default: the board oscillator, "
                        "25 MHz on ULX3S, 12 MHz on iCEBreaker); a higher target makes placement "
                        "timing-driven; Fmax is reported either way and a missed target is not an error")
    p.add_argument("--router", choices=("router1", "router2"), default="router1",
                   help="open flow: nextpnr's router (default router1; router2 finishes the 16-PE ULX3S "
                        "build at --pnr-mhz 110 where router1 can fail to converge)")
    p.add_argument("--multiplier", choices=("auto", "generic", "ecp5"), default="auto",
                   help="open flow: the PE multipliers: ecp5 (MULT18X18D blocks with their own input and "
                        "output registers, the faster ECP5 build), generic (a * that yosys maps), or auto "
                        "(default: ecp5 on ECP5 boards, generic on iCE40)")
    p.add_argument("--acc-banks", choices=("full", "split"), default="full",
                   help="EIE/ESE packs: the two-multiplier PE's accumulator banks: full (both hold every row, "
                        "any two entries pair), split (rows by parity: half the accumulator memory and less "
                        "logic, fewer pairs; for arrays short of block RAM, e.g. the 4-PE ESE on the ULX3S). "
                        "Default full. The iCEBreaker builds EIE's one-multiplier PE, where this does not apply")
    p.add_argument("--seed", type=int, default=1, metavar="N",
                   help="open flow: nextpnr's placement seed (default 1); Fmax varies by several percent with it")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="open flow: place and route with N seeds (--seed .. --seed + N - 1) in parallel after one "
                        "synthesis and keep the highest Fmax; report.json lists fmax_mhz_by_seed (default 1)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="with --seeds: run the seeds on this Dask scheduler's workers (they need sparsa "
                        "and this file system) instead of a local process pool")
    p.add_argument("--workers", type=int, metavar="N",
                   help="with --seeds: local pool size (default: the cores, as the free memory allows)")


BUILD_FORMAT = "sparsa-build"
PNR_GIB = 3.0       # a rough peak of one nextpnr run of the larger ECP5 builds, for the pool's memory guard


def _owned_build_dir(path):
    """An earlier ``sparsa build`` output: its report.json names the build format and lists
    every file in the directory (see :func:`_seal`)."""
    return owned_by_manifest(path, (BUILD_FORMAT,), marker="report.json")


def _seal(tmp, final, rep):
    """Finish a build written in the temporary directory ``tmp``: paths in the report name
    ``final`` (where it will be), and report.json lists every file, which proves the directory
    ours to replace on a later build."""
    tmp, final = Path(tmp), Path(final)
    for key, value in list(rep.items()):
        if isinstance(value, str) and value.startswith(str(tmp)):
            rep[key] = str(final) + value[len(str(tmp)):]
    files = {f.relative_to(tmp).as_posix(): sha256_file(f) for f in sorted(tmp.rglob("*"))
             if f.is_file() and f.name != "report.json"}
    write_json(tmp / "report.json", {"format": BUILD_FORMAT, "version": 1, **rep, "files": files})
    return rep


def _measure_input(args):
    """``--measure-input`` read and checked against the pack before any build (or ``None``)."""
    if args.measure_input is None:
        return None
    harness = args.top == "harness" or (args.top == "auto" and (args.swappable or args.pnr_mhz is not None
                                                                 or args.memories != "auto"))
    if args.board in XILINX_BOARDS or args.no_build or args.no_measure or harness:
        raise user_error(None, "--measure-input", "an open-flow link build that measures (not --no-build, "
                         "--no-measure or --top harness)", args.board if args.board in XILINX_BOARDS else "none of those")
    from sparsa.cli.limits import check_input_file
    from sparsa.cli.run import prepare_input
    from sparsa.sw.eie.pack_dir import load_pack
    from sparsa.sw.fileio import load_npy
    from sparsa.sw.cnn.pack import is_cnn_pack
    check_input_file(args.measure_input, "--measure-input", "input", kinds=".npy")
    if is_cnn_pack(args.pack):
        from sparsa.cli.run_cnn import prepare_cnn_input
        from sparsa.sw.cnn.pack import load_cnn_pack
        x = prepare_cnn_input(load_npy(args.measure_input, what="input"), load_cnn_pack(args.pack)[0],
                              args.measure_input)
        if x.ndim == 4 and x.shape[0] == 0:
            raise user_error(args.measure_input, "inputs", "at least one input to measure with", "shape " + str(x.shape))
        return x
    x = prepare_input(load_npy(args.measure_input, what="input"), load_pack(args.pack), args.measure_input)
    if x.ndim == 2 and x.shape[0] == 0:
        raise user_error(args.measure_input, "input rows", "at least one input to measure with", "shape " + str(x.shape))
    return x


def _measure(args, rep, x, say):
    """The built link system run on its simulation (:func:`sparsa.cli.run_board.measure_on_simulated_board`):
    ``rep["link"]["measured"]`` and ``rep["time_per_inference_s"]``."""
    from sparsa.cli.run_board import measure_on_simulated_board
    from sparsa.cli.run_board_cnn import measure_cnn_on_simulated_board
    say(f"measuring the link: the pack run on this system's simulation at {rep['clock']['pll_mhz']:g} MHz "
        f"(Verilator; --no-measure skips it)")
    try:
        if rep.get("engine") == "cnn":
            m = measure_cnn_on_simulated_board(args.pack, args.board, rep["clock"]["pll_mhz"], x, say=say,
                                               source=args.measure_input)
        else:
            m = measure_on_simulated_board(args.pack, args.board, rep["clock"]["pll_mhz"], x, say=say,
                                           source=args.measure_input, preload=args.preload)
    except (RuntimeError, UserError) as e:
        raise RuntimeError(f"measuring the link on the simulated system: {str(e).strip().splitlines()[0]} "
                           f"(--no-measure builds without it)") from None
    rep["link"]["measured"] = m
    rep["time_per_inference_s"] = m["time_per_input_s"]


def run(args):
    say = lambda msg: print(f"[build] {msg}", file=sys.stderr, flush=True)
    if args.swappable and args.board in XILINX_BOARDS:
        raise user_error(None, "--swappable", "an open-flow board (on a Vivado build the runtime loads new weights through the LD_* registers)",
                         args.board)
    if args.preload and args.board in XILINX_BOARDS:
        raise user_error(None, "--preload", "an open-flow board (a Vivado tree always holds the pack's weights "
                         "from power-up, and MODEL_ID names them)", args.board)
    if args.xdc is not None and args.board not in XILINX_BOARDS:
        raise user_error(None, "--xdc", f"a Vivado board ({', '.join(XILINX_BOARDS)})", args.board)
    location = None
    if args.pcie_block is not None or args.gt_quad is not None:
        if args.board != "ku060":
            raise user_error(None, "--pcie-block" if args.pcie_block else "--gt-quad", "--board ku060", args.board)
        from sparsa.boards.vivado_pcie import check_location
        location = check_location(args.pcie_block, args.gt_quad)
    if args.spm_words is not None and not args.swappable:
        raise user_error(None, "--spm-words", "--swappable as well", "--spm-words alone")
    if args.board not in XILINX_BOARDS:
        check_seeds(args.seed, args.seeds)
    if (args.scheduler or args.workers is not None) and args.seeds < 2:
        raise user_error(None, "--scheduler" if args.scheduler else "--workers", "--seeds N with N >= 2 as well",
                         f"--seeds {args.seeds}")
    if args.seeds > 1 and (args.board in XILINX_BOARDS or args.no_build):
        raise user_error(None, "--seeds", "an open-flow board and a build (not --no-build)",
                         f"{args.seeds} with {'--no-build' if args.no_build else args.board}")
    measure_x = _measure_input(args)
    inputs = [("PACK", args.pack)] + ([("--xdc", args.xdc)] if args.xdc else [])
    inputs += [("--measure-input", args.measure_input)] if args.measure_input else []
    check_outputs([("-o", args.out)], inputs, dirs=("-o",))
    # The whole tree is built next to OUT and swapped in when complete: a failed or
    # interrupted build leaves OUT as it was, and OUT is replaced only if it is empty or an
    # earlier build (never a directory of the user's).
    with atomic_dir(args.out, owned=_owned_build_dir, inputs=inputs) as tmp:
        if args.board in XILINX_BOARDS:
            say("writing the Vivado tree" + ("" if args.no_build else " and a yosys synth_xilinx estimate"))
            rep = _seal(tmp, args.out, write_tree(args.pack, args.board, tmp, estimate=not args.no_build,
                                                  xdc=args.xdc, pcie_location=location))
            if args.board == "ku060" and rep.get("engine") == "cnn":
                say("note: a CNN pack on the KU060 card: this tree gives the utilisation estimate only; its "
                    "build.tcl stops (the card's DDR4 needs a memory controller sparsa does not generate)")
            elif args.board == "ku060" and args.xdc is None:
                say("note: no --xdc: build.tcl will stop until the tree has your card's board.xdc "
                    "(docs/boards.md)")
            if args.board == "ku060" and location is None and rep.get("engine") != "cnn":
                say("note: no --pcie-block/--gt-quad: XDMA keeps its default PCIe block and GT quad for the part, "
                    "which may not be where your card's lanes are (docs/boards.md)")
        else:
            with ExitStack() as stack:
                run_jobs = None
                if args.seeds > 1:
                    executor, factory, where = stack.enter_context(open_executor(
                        args.scheduler, mem_per_job_gib=PNR_GIB, workers=args.workers))
                    say(f"place and route will run {args.seeds} seeds on a {where}")
                    run_jobs = lambda fn, specs, on_done: jobs.run_jobs(fn, specs, executor, new_executor=factory,
                                                                        on_done=on_done)
                top = args.top
                if top == "auto":
                    top = ("harness" if args.swappable or args.pnr_mhz is not None or args.memories != "auto"
                           else "link")
                options = dict(do_build=not args.no_build, swappable=args.swappable, spm_words=args.spm_words,
                               **({"preload": True} if args.preload else {}),
                               pnr_mhz=args.pnr_mhz, memories=args.memories, router=args.router, seed=args.seed,
                               multiplier=args.multiplier, seeds=args.seeds, run_jobs=run_jobs,
                               acc_banks=args.acc_banks)
                try:
                    if top == "link" and args.clock_mhz is None and not args.no_build:
                        from sparsa.boards.clock_plan import build_at_fastest_clock
                        rep = build_at_fastest_clock(build, args.pack, args.board, tmp, say=say, **options)
                    else:
                        rep = build(args.pack, args.board, tmp, progress=say, top=top, clock_mhz=args.clock_mhz,
                                    **options)
                    if top == "link" and rep["built"] and not args.no_measure:
                        _measure(args, rep, measure_x, say)
                    rep = _seal(tmp, args.out, rep)
                except DoesNotFit as e:
                    raise UserError(f"{args.pack}: {e} on the {args.board} (--top {top})") from None
                except RuntimeError as e:      # a tool failed: its own error line, OUT left as it was
                    raise UserError(f"{args.pack} on {args.board} (--top {top}): "
                                    f"{str(e).strip().splitlines()[0]}") from None
    if args.board in XILINX_BOARDS:
        est = rep["estimate"]
        extra = (f"; estimate {est['luts']} LUTs, {est['ffs']} FFs, {est['dsps']} DSPs, {est['brams']} BRAM36"
                 f" ({'fits' if est['fits'] else 'does NOT fit'} {rep['part']})") if est else ""
        print(f"wrote the Vivado tree for {args.board} ({XILINX_BOARDS[args.board]['board']}) to {args.out} "
              f"(vivado -mode batch -source build.tcl){extra}")
    elif rep["built"] and rep["top"] == "link":
        c, ln = rep["clock"], rep["link"]
        print(f"{args.board}: system clock {c['pll_mhz']:g} MHz from the PLL (asked {c['requested_mhz']:g}), "
              f"nextpnr achieved {c['achieved_mhz']} MHz: timing {'met' if c['timing_met'] else 'NOT met'}; "
              f"UART {ln['baud']} baud ({ln['divisor']} cycles a bit); {rep['luts']} LUTs, {rep['ffs']} FFs, "
              f"{rep['dsps']} DSPs, {rep['brams']} BRAMs -> {rep['bitstream']}")
        m = ln.get("measured")
        if m:
            t = m["time_per_input_s"]
            print(f"  link measured on the simulated system at {c['pll_mhz']:g} MHz ({m['inputs']['count']} "
                  f"{'steps' if m['inputs']['lstm_steps'] else 'inputs'}"
                  f"{', bit-exact' if m['bit_exact'] else ', not compared: the pack has no model.npz'}): "
                  f"{'load' if m['model_loaded'] else 'model held from power-up, checked in'} {m['load_bytes']:,} bytes "
                  f"in {m['load_s'] * 1e3:.2f} ms; run {m['run_bytes'] // m['inputs']['count']:,} bytes an input at "
                  f"{m['run_bytes_per_s']:,} bytes/s; per input {t['compute'] * 1e6:.1f} us compute + "
                  f"{t['link'] * 1e3:.3f} ms link")
        if "search" not in c and c["fastest_with_margin_mhz"] and c["fastest_with_margin_mhz"] != c["pll_mhz"]:
            print(f"  --clock-mhz {c['fastest_with_margin_mhz']:g} is the fastest clock with 10% margin below the "
                  f"achieved {c['achieved_mhz']} MHz that the PLL makes and that divides the UART exactly")
    elif rep["built"]:
        best = f", best of {rep['seeds_tried']} seeds" if rep["seeds_tried"] > 1 else ""
        print(f"{args.board}: Fmax {rep['fmax_mhz']} MHz (board clock {rep['target_clock_mhz']} MHz, "
              f"P&R target {rep['pnr_target_mhz']:g} MHz, {rep['router']}, seed {rep['seed']}{best}), "
              f"{rep['luts']} LUTs, {rep['ffs']} FFs, {rep['dsps']} DSPs, {rep['brams']} BRAMs "
              f"-> {rep['bitstream']}")
    else:
        print(f"wrote the {args.board} build tree to {args.out} (run build.sh there)")
    return 0
