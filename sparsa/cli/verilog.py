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

from sparsa.sw.errors import UserError
from sparsa.sw.fileio import atomic_file


def add_arguments(p):
    p.add_argument("pack", nargs="?", help="pack directory (from `sparsa pack`)")
    p.add_argument("-o", "--output", required=True, help="output Verilog file")
    p.add_argument("--no-init", action="store_true", help="do not initialise memories from the pack")
    p.add_argument("--queue-depth", type=int, default=8, help="activation queue depth (default 8)")
    p.add_argument("--macs", type=int, default=2, choices=(1, 2),
                   help="multiply-accumulates per PE per cycle (default 2; EIE has 1)")
    p.add_argument("--channels", type=int, default=1, metavar="C",
                   help="independent streams (ESE's channels); only 1 is generated, see docs/ese.md")
    p.add_argument("--pes", type=int, help="number of PEs (without a pack)")
    p.add_argument("--max-cols", type=int, default=1024)
    p.add_argument("--max-rows-pe", type=int, default=64)
    p.add_argument("--spm-words", type=int, default=1024)
    p.add_argument("--ptr-words", type=int, default=None, help="default: max-cols/2 + 1")
    p.add_argument("--bias-words", type=int, default=None, help="default: max-rows-pe")
    p.add_argument("--max-layers", type=int, default=1)
    p.add_argument("--name", default=None, help="top module name (default eie_top, or sparsa_cnn)")
    p.add_argument("--cnn", action="store_true", help="the CNN engine with the default CNNConfig (no pack)")


def config_from_args(args):
    from sparsa.sw.eie.config import EIEConfig
    if args.pack:
        from sparsa.sw.eie.memmap import build_memory_map
        from sparsa.sw.eie.pack_dir import load_pack
        mm = build_memory_map(load_pack(args.pack))
        cfg = EIEConfig.for_pack(mm, queue_depth=args.queue_depth, macs=args.macs, where=args.pack)
        return cfg, (None if args.no_init else mm)
    if args.pes is None:
        raise UserError("verilog: give a pack directory, or --pes N and the sizes")
    cfg = EIEConfig.from_args(args.pes, queue_depth=args.queue_depth, macs=args.macs, max_cols=args.max_cols,
                              max_rows_pe=args.max_rows_pe, spm_words=args.spm_words, ptr_words=args.ptr_words,
                              bias_words=args.bias_words, max_layers=args.max_layers)
    return cfg, None


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
          f"3x3 convolver {'on (psum ' + str(cfg.psum_depth) + ')' if cfg.convolver else 'off'}, "
          f"ibuf {cfg.ibuf_bytes} B, wbuf {cfg.wbuf_words} words, obuf {cfg.obuf_depth} B/lane, "
          f"{len(text.splitlines())} lines")
    return 0


def run(args):
    from sparsa.hw.eie.verilog import generate_verilog
    from sparsa.sw.cnn.pack import is_cnn_pack
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
