"""Write the Verilog of an EIE PE array, sized for a pack or from explicit sizes.

With a pack directory the memories and the layer table are initialised from it (the same
images `sparsa run` loads through the load port); `--no-init` leaves them empty.
Without a pack, give `--pes` and the sizes. A CNN pack (``sparsa pack cnn.npz``) gives the CNN
engine sized by the pack's configuration (its weights live in external memory, so there is
nothing to initialise); ``--cnn`` without a pack gives the default CNN engine.

Examples::

    sparsa verilog build/demo/pack -o eie_top.v
    sparsa verilog --pes 16 --max-cols 4096 --max-rows-pe 256 --spm-words 8192 -o eie16.v
    sparsa verilog cnn_pack -o sparsa_cnn.v
"""

from pathlib import Path

from sparsa.cli.limits import MAX_PES, check_pe_option, check_verilog_name
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import atomic_file, check_outputs

# The sizes of a PE array without a pack: (option, default, what). A pack sets all of them.
SIZE_OPTIONS = (
    ("--pes", None, "PEs"),
    ("--max-cols", 1024, "longest input vector"),
    ("--max-rows-pe", 64, "local rows per PE"),
    ("--spm-words", 1024, "sparse-matrix words per PE"),
    ("--ptr-words", "max-cols/2 + 1", "pointer words per bank"),
    ("--bias-words", "max-rows-pe", "bias words per PE"),
    ("--max-layers", 1, "layer-table entries"),
)
# A memory of more words than this per PE exceeds any FPGA's on-chip RAM (2^20 64-bit words
# is 64 Mbit, more than a KU060 holds in all its block RAM), and its Verilog would not fit in
# this machine's memory either.
MAX_WORDS = 1 << 20


def _attr(opt):
    return opt[2:].replace("-", "_")


def check_sizes(args):
    """The explicit sizes: none with a pack (it sets them), positive, and consistent."""
    given = [opt for opt, _, _ in SIZE_OPTIONS if getattr(args, _attr(opt)) is not None]
    if given and (args.pack or args.cnn):
        what = "a pack" if args.pack else "--cnn"
        raise user_error(args.pack, ", ".join(given), f"no sizes with {what} (the "
                         f"{'pack' if args.pack else 'CNN configuration'} sets them)", "given")
    check_pe_option(args.pes)
    for opt, _, _ in SIZE_OPTIONS[1:]:
        v = getattr(args, _attr(opt))
        if v is not None and v < 1:
            raise user_error(None, opt, "a positive size", v)
    for opt in ("--spm-words", "--ptr-words", "--bias-words", "--max-rows-pe"):
        v = getattr(args, _attr(opt))
        if v is not None and v > MAX_WORDS:
            raise user_error(None, opt, f"at most {MAX_WORDS:,} words a PE (2^20: more than any FPGA's "
                             "on-chip RAM)", v)
    if args.max_cols is not None and args.max_cols >= 1 << 24:
        raise user_error(None, "--max-cols", "at most 2^24-1", args.max_cols)
    cols = args.max_cols or 1024
    need = cols // 2 + 1           # pointers 0..cols, split over the even and the odd bank
    if need > MAX_WORDS:
        raise user_error(None, "--max-cols", f"at most {2 * (MAX_WORDS - 1):,} (pointer banks of at most "
                         f"{MAX_WORDS:,} words)", cols)
    if args.ptr_words is not None and args.ptr_words < need:
        raise user_error(None, "--ptr-words", f"at least {need} for --max-cols {cols} (cols + 1 pointers "
                         f"in two banks)", f"{args.ptr_words} (too small by {need - args.ptr_words})")
    rows = args.max_rows_pe or 64
    if args.bias_words is not None and args.bias_words < rows:
        raise user_error(None, "--bias-words", f"at least {rows} for --max-rows-pe {rows} (one bias word a "
                         "local row)", f"{args.bias_words} (too small by {rows - args.bias_words})")
    if args.queue_depth is not None and not 1 <= args.queue_depth <= 256:
        raise user_error(None, "--queue-depth", "1..256", args.queue_depth)


def add_arguments(p):
    p.add_argument("pack", nargs="?", help="pack directory (from `sparsa pack`)")
    p.add_argument("-o", "--output", required=True, help="output Verilog file")
    p.add_argument("--no-init", action="store_true", help="do not initialise memories from the pack")
    p.add_argument("--queue-depth", type=int, default=8, help="activation queue depth (default 8)")
    p.add_argument("--macs", type=int, default=2, choices=(1, 2),
                   help="multiply-accumulates per PE per cycle (default 2; EIE has 1)")
    p.add_argument("--acc-banks", choices=("full", "split"), default="full",
                   help="with --macs 2: full (default: both accumulator banks hold every row, any two entries "
                        "pair) or split (rows by parity: half the accumulator memory, fewer pairs)")
    p.add_argument("--channels", type=int, default=1, metavar="C",
                   help="independent streams (ESE's channels); only 1 is generated, see docs/ese.md")
    p.add_argument("--pes", type=int, help=f"number of PEs, 1..{MAX_PES} (without a pack)")
    for opt, default, what in SIZE_OPTIONS[1:]:
        p.add_argument(opt, type=int, default=None, metavar="N", help=f"without a pack: {what} (default {default})")
    p.add_argument("--name", default=None, help="top module name (default eie_top, or sparsa_cnn)")
    p.add_argument("--cnn", action="store_true", help="the CNN engine with the default CNNConfig (no pack)")


def config_from_args(args):
    from sparsa.sw.eie.config import EIEConfig
    if args.pack:
        from sparsa.sw.eie.memmap import build_memory_map
        from sparsa.sw.eie.pack_dir import load_pack
        mm = build_memory_map(load_pack(args.pack))
        cfg = EIEConfig.for_pack(mm, queue_depth=args.queue_depth, macs=args.macs, where=args.pack,
                                 acc_banks=args.acc_banks)
        return cfg, (None if args.no_init else mm)
    if args.pes is None:
        raise UserError("verilog: give a pack directory, or --pes N and the sizes")
    sizes = {_attr(opt): getattr(args, _attr(opt)) for opt, _, _ in SIZE_OPTIONS[1:]}
    sizes = {k: v for k, v in sizes.items() if v is not None}
    cfg = EIEConfig.from_args(args.pes, queue_depth=args.queue_depth, macs=args.macs, **sizes)
    return cfg.replace(acc_banks=args.acc_banks), None


CHANNELS_WHY = (
    "--channels: expected 1, found {c}: each PE memory has one read port, used by its own PE, so "
    "C channels cannot share weights and would need C full copies of the array; sharing needs a "
    "second read port (a true dual-port block RAM gives two, i.e. one weight copy per 2 channels), "
    "which sparsa does not generate yet. Instantiate the generated top C times for independent streams")


def run_cnn(args):
    from sparsa.hw.cnn.verilog import TOPLEVEL, generate_verilog
    from sparsa.sw.cnn.config import CNNConfig
    if args.pack:
        from sparsa.sw.cnn.pack import load_cnn_pack
        _, cfg, _ = load_cnn_pack(args.pack)
    else:
        cfg = CNNConfig()
    text = generate_verilog(cfg, args.name or TOPLEVEL)
    with atomic_file(args.output) as tmp:
        Path(tmp).write_text(text)
    print(f"wrote {args.output}: CNN engine, {cfg.lanes} lanes, Winograd {'on' if cfg.winograd else 'off'}, "
          f"3x3 convolver {'on (psum ' + str(cfg.psum_depth) + ')' if cfg.convolver else 'off'}"
          f"{', paired multipliers' if cfg.pair_multipliers else ''}, "
          f"ibuf {cfg.ibuf_bytes} B, wbuf {cfg.wbuf_words} words of int{cfg.weight_bits}, obuf {cfg.obuf_depth} B/lane, "
          f"{len(text.splitlines())} lines")
    return 0


def run(args):
    from sparsa.hw.eie.verilog import generate_verilog
    from sparsa.sw.cnn.pack import is_cnn_pack
    check_verilog_name(args.name)
    check_sizes(args)
    check_outputs([("-o", args.output)], [("PACK", args.pack)])
    if args.cnn or (args.pack and is_cnn_pack(args.pack)):
        return run_cnn(args)
    if args.channels != 1:
        raise UserError(CHANNELS_WHY.format(c=args.channels))
    cfg, mm = config_from_args(args)
    text = generate_verilog(cfg, mm, name=args.name or "eie_top")
    with atomic_file(args.output) as tmp:
        Path(tmp).write_text(text)
    print(f"wrote {args.output}: {cfg.pes} PEs, {cfg.macs} MAC(s)/PE, queue depth {cfg.queue_depth}, "
          f"{cfg.spm_words} SPM words/PE, {len(text.splitlines())} lines")
    return 0
