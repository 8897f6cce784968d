"""Compile an integer sparsa-model graph into a CNN engine program and its DRAM layout.

DRAM (byte addresses; the engine sees one flat space)::

    0                 instructions (128 bytes each, END last)
    data = align64    weights: per conv/linear layer (64-aligned), per group of `lanes` output
                      channels: bias (lanes x int32 LE) then the weight words (lanes x int16 LE,
                      or int8 with CNNConfig.weight_bits 8)
    align64           the input activation (C, H, W) int8
    align64 ...       every layer's output (C, H, W) int8, in layer order

Weight word w of a group holds lane l = output channel ``co0 + l`` (0 past Cout): direct
``w = ci*k*k + ky*k + kx``; Winograd (3x3 stride-1 conv only) ``w = ci*16 + e`` with
``U = G2 g G2^T`` flattened row-major. Each layer is cut into tiles of output rows that fit
the buffers (its input rows of every channel in ibuf, its weights in wbuf, one output group in
obuf); per tile: LOAD the input rows, then per output group LOAD BIAS, LOAD WBUF (once per
layer when there is only one group), CONV, SAVE. Pools and upsamples (POOL with flag UP) tile
rows (and channels), ``add`` tiles channels and spans of each channel, a ``concat`` is its
inputs written side by side in place (:func:`concat_aliases`), ``linear`` is a 1x1 conv on the (C*H*W, 1, 1) input, or,
wider than wbuf, a 3x3 conv on the window convolver in channel chunks (:func:`linear_as_conv`).
A layer that cannot fit even as one output row raises a one-line :class:`UserError`.

SAVEs run in the background of the engine. Successive computes write the two halves of obuf
in turn when a group's outputs fit half of it (field ``obase``), so that each SAVE drains one
half while the next compute fills the other; :func:`order_saves` then sets flag SYNC wherever
an instruction would touch what a running SAVE still reads or writes.
"""

from dataclasses import dataclass, field, replace

import numpy as np

from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.isa import FIELDS, Flag, INSTR_BYTES, Op, encode_program
from sparsa.sw.cnn.overlap import background_loads, overlap as _overlap, span as _span
from sparsa.sw.cnn.timing import program_cycles
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.cnn.golden import validate_int_graph
from sparsa.sw.cnn.emit import Emitter, emit_add, emit_conv, emit_pool, emit_upsample
from sparsa.sw.cnn.plan import acc_bound, kernel_pieces, plan_conv, plan_linebuffer, weight_block
from sparsa.sw.model.graph import _sources, flat_output

__all__ = ["Program", "compile_graph", "order_saves", "DATAPATHS", "ALIGN"]

DATAPATHS = ("direct", "winograd")
ALIGN = 64


def align(n, a=ALIGN):
    return -(-n // a) * a


@dataclass
class Program:
    """A compiled graph: the instruction stream and where everything lives in DRAM.

    Attributes
    ----------
    cfg : CNNConfig
    datapath : str
        The requested conv datapath (each layer's own is in ``layers[i]["datapath"]``).
    program : bytes
        The instruction stream (it is also the start of DRAM, at address 0).
    image : bytes
        The initial DRAM contents before the input: instructions and weights.
    dram_size : int
        Bytes of DRAM the program touches (input and every layer output included).
    input_addr, input_shape, output_addr, output_shape
        The input (C, H, W) and the last layer's output (C, H, W) in DRAM.
    output_flat : bool
        The last layer is ``linear``: :meth:`read_output` returns shape (out,) like
        ``cnn_golden.cnn_forward``.
    layers : list of dict
        Per layer: ``index, name, op, inputs, shape, out_addr, instr_start, instr_end`` (the
        half-open range of instruction indices), ``macs`` (true multiply-accumulates),
        ``mac_cycles`` (ideal engine cycles of its CONVs), ``datapath`` (``direct``,
        ``winograd`` or None), ``weight_addr, weight_bytes, row_tiles, groups, dram_read,
        dram_write, acc_bound`` (largest accumulator magnitude possible, int8 inputs).
    """
    cfg: CNNConfig
    datapath: str
    program: bytes
    image: bytes
    dram_size: int
    input_addr: int
    input_shape: tuple
    output_addr: int
    output_shape: tuple
    output_flat: bool = False
    layers: list = field(default_factory=list)
    graph: object = None          # the integer Graph it was compiled from (for the golden model)

    @property
    def n_instructions(self):
        return len(self.program) // INSTR_BYTES

    def dram_image(self, x=None):
        """The whole initial DRAM (``bytearray`` of ``dram_size``) with input ``x`` (C, H, W)
        int8 placed (zeros when None)."""
        dram = bytearray(self.dram_size)
        dram[:len(self.image)] = self.image
        if x is not None:
            x = np.asarray(x)
            if x.shape != tuple(self.input_shape):
                raise ValueError(f"input: expected shape {tuple(self.input_shape)}, found {x.shape}")
            if x.dtype != np.int8:
                if x.size and (x.min() < -128 or x.max() > 127 or x.dtype.kind not in "iu"):
                    raise ValueError("input: expected int8 values")
                x = x.astype(np.int8)
            n = x.size
            dram[self.input_addr:self.input_addr + n] = x.tobytes()
        return dram

    def read(self, dram, addr, shape):
        n = int(np.prod(shape))
        return np.frombuffer(bytes(dram[addr:addr + n]), dtype=np.int8).reshape(shape).copy()

    def read_output(self, dram):
        """The last layer's output from a DRAM image after the run (as ``cnn_forward`` gives it)."""
        y = self.read(dram, self.output_addr, tuple(self.output_shape))
        return y.reshape(-1) if self.output_flat else y

    def read_layer(self, dram, name):
        """Any layer's (C, H, W) output, by name."""
        for m in self.layers:
            if m["name"] == name:
                return self.read(dram, m["out_addr"], tuple(m["shape"]))
        raise KeyError(name)

    def run(self, x):
        """Run on the instruction-level model: ``(output, ExecStats)``."""
        from sparsa.sw.cnn.executor import execute
        dram = self.dram_image(x)
        stats = execute(self.program, dram, self.cfg)
        return self.read_output(dram), stats


def _obuf_writes(f, P):
    """The obuf words (any bank) a CONV, POOL or ADD writes, as one [lo, hi) span."""
    op, ob = f["op"], f.get("obase", 0)
    if op == Op.CONV:
        if f.get("flags", 0) & Flag.HOLD:
            return None
        rows = min(f["out_rows"], 2 * f["gh"]) if f.get("flags", 0) & Flag.WINO else f["gh"]
        cols = min(f["wo"], 2 * f["gw"]) if f.get("flags", 0) & Flag.WINO else f["gw"]
        return _span(ob, rows, f["wo"], cols)
    if op == Op.POOL:
        return _span(ob, -(-f["count"] // P), f["ostride"], (f["gh"] - 1) * f["wo"] + f["gw"])
    if op == Op.ADD:
        return _span(ob, -(-f["count"] // P), f["ostride"], f["length"])
    return None


def order_saves(instrs, P):
    """Set flag SYNC on the instructions that must wait for a SAVE still running (in place).

    A SAVE without SYNC runs in the background (see :mod:`sparsa.sw.cnn.isa`). An instruction
    gets SYNC when it would write obuf words that SAVE reads, or read DRAM bytes it writes,
    and each layer's last SAVE gets SYNC, so that the layer's cycles end with its output in
    DRAM. The next SAVE waits for the previous one anyway (one store unit).
    """
    pending = None                  # (obuf span, DRAM span) of a SAVE that may be running
    for i, f in enumerate(instrs):
        op = f["op"]
        if pending is not None:
            reads = _span(f["dram"], f["count"], f.get("dstride", 0), f["length"]) if op == Op.LOAD else None
            if _overlap(_obuf_writes(f, P), pending[0]) or _overlap(reads, pending[1]):
                f["flags"] = f.get("flags", 0) | Flag.SYNC
                pending = None
        if op == Op.SAVE:
            if i + 1 == len(instrs) or instrs[i + 1]["layer"] != f["layer"]:
                f["flags"] = f.get("flags", 0) | Flag.SYNC
                pending = None
            else:
                pending = (_span(f["buf"], -(-f["count"] // P), f["ostride"], f["length"]),
                           _span(f["dram"], f["count"], f["dstride"], f["length"]))
    return instrs


def linear_as_conv(cfg, w, direct_words=None):
    """How a linear layer (weights ``(out, n)``) runs: ``(w4, in_shape, lb)``.

    When its ``n`` weight words a lane fit wbuf and its input fits ibuf, a 1x1 convolution
    over ``n`` channels on the direct datapath (``lb`` None): 9 cycles per 9 inputs. A wider
    layer (VGG16's fc6 has 25,088 inputs), on an engine with the window convolver, is a 3x3
    convolution without padding over its input seen as ``ceil(n / 9)`` channels of 3 x 3 (the
    flat input as it lies in DRAM; the weights padded with zeros to a multiple of 9), split
    into channel chunks that accumulate in psum (flags ACC/HOLD), so that any width runs.
    There a channel of one window costs about 10.5 cycles (its 9 weight words are read one a
    cycle; see :mod:`sparsa.sw.cnn.timing`), a little more than the direct datapath's 9,
    which is why it is not the first choice. ``lb`` is its :func:`plan_linebuffer` plan.
    ``direct_words``: the most weight words a lane the direct datapath takes (default: wbuf's).
    """
    out, n = w.shape
    in_shape, lb = linear_plan(cfg, out, n, direct_words)
    if lb is not None:
        w9 = np.zeros((out, in_shape[0] * 9), dtype=w.dtype)
        w9[:, :n] = w
        return w9.reshape((out,) + in_shape), in_shape, lb
    return w.reshape(out, n, 1, 1), in_shape, None


def linear_plan(cfg, out, n, direct_words=None):
    """:func:`linear_as_conv`'s choice for ``out`` x ``n`` weights: ``(in_shape, lb)``."""
    if cfg.convolver and not (n <= (direct_words or cfg.wbuf_words) and n <= cfg.ibuf_bytes):
        n9 = -(-n // 9)
        lb = plan_linebuffer(cfg, (n9, 3, 3), (out, 1, 1), 3, 1)
        if lb is not None:
            return (n9, 3, 3), lb
    return (n, 1, 1), None


def concat_aliases(graph, shapes):
    """Where each ``concat`` input lives: ``(alias, copies)``.

    A concat's output is its inputs' bytes one after the other, so an input made by a layer of
    its own is simply written there: ``alias[input] = (concat, byte offset)``, and the concat
    costs nothing. An input that cannot be placed so (the model input, or a tensor that is
    already part of another concat, or given twice) is copied: ``copies[concat]`` lists
    ``(input, byte offset)``, emitted as identity pools (1x1 max pools).
    """
    alias, copies = {}, {}
    for L in graph.layers:
        if L["op"] != "concat":
            continue
        off = 0
        for src in L["inputs"]:
            if src == "input" or src in alias:
                copies.setdefault(L["name"], []).append((src, off))
            else:
                alias[src] = (L["name"], off)
            off += int(np.prod(shapes[src]))
    return alias, copies


def _plan_layer(L, w, cfg, datapath, in_shape, shapes, weights=True, direct_words=None):
    """A conv or linear layer's plan on ``cfg``: ``(w, in_shape, in_bytes, stride, pad, wino, lb)``
    (``w`` as the engine runs it; for a linear layer without ``weights``, None and only the
    plan; ``lb`` the window convolver's plan or None; ``direct_words`` as in
    :func:`linear_as_conv`)."""
    if L["op"] == "linear":
        in_bytes = int(np.prod(in_shape))
        if not weights:                 # the plan only
            shape, lb = linear_plan(cfg, w.shape[0], w[0].size, direct_words)
            return None, shape, in_bytes, 1, 0, False, lb
        w, in_shape, lb = linear_as_conv(cfg, w.reshape(w.shape[0], -1), direct_words)
        return w, in_shape, in_bytes, 1, 0, False, lb
    stride, pad = L.get("stride", 1), L.get("padding", 0)
    wino = datapath == "winograd" and w.shape[2] == 3 and stride == 1
    if wino:
        try:
            plan_conv(cfg, L["name"], in_shape, shapes[L["name"]], 3, stride, True)
        except UserError:
            wino = False            # Winograd needs more wbuf (16 vs 9 words) or ibuf rows
    lb = None if wino else plan_linebuffer(cfg, in_shape, shapes[L["name"]], w.shape[2], stride)
    return w, in_shape, None, stride, pad, wino, lb


def _model_cycles(instrs, P):
    """The cycle model's count for a run of instructions (SAVEs ordered on a copy)."""
    zero = dict.fromkeys(FIELDS, 0)
    instrs = order_saves([{**zero, **f} for f in instrs], P)
    return program_cycles(instrs + [dict(zero, op=Op.END)]).cycles


def compile_graph(graph, cfg=None, datapath="direct", where="graph", background=True):
    """Compile an integer graph (checked by :func:`~sparsa.sw.cnn.golden.validate_int_graph`) for ``cfg``.

    ``datapath`` ``"winograd"`` runs every 3x3 stride-1 conv on the F(2x2,3x3) datapath (other
    layers, and a layer whose Winograd weights would not fit wbuf, use the direct one).
    With ``background`` (the default) a layer whose tiles fit half of ibuf and wbuf may be
    planned so, with the next tile's LOADs beside each compute (:mod:`~sparsa.sw.cnn.overlap`),
    where the cycle model says that is faster; ``background=False`` gives the program of an
    engine that runs every LOAD in turn.
    Returns a :class:`Program`; a layer the buffers cannot hold raises :class:`UserError`.
    """
    cfg = cfg or CNNConfig()
    if datapath not in DATAPATHS:
        raise user_error(where, "datapath", " or ".join(DATAPATHS), repr(datapath))
    if datapath == "winograd" and not cfg.winograd:
        raise user_error(where, "datapath", "direct on an engine built without Winograd "
                         "(CNNConfig.winograd False)", "winograd")
    validate_int_graph(graph, where)
    shapes = dict(graph.shapes(), input=tuple(graph.input_shape))
    P = cfg.lanes

    # Pass 1: weights (relative to the data base), then activations.
    try:
        halved = replace(cfg, ibuf_bytes=cfg.ibuf_bytes // 2 // 8 * 8, wbuf_words=cfg.wbuf_words // 2)
    except (ValueError, UserError):
        halved = None
    wblob = bytearray()
    wdats = {}
    prev = "input"
    for L in graph.layers:
        src, prev = _sources(L, prev)[0], L["name"]
        if L["op"] not in ("conv2d", "linear"):
            continue
        w = graph.arrays[L["weight"]].astype(np.int64)
        b = graph.arrays[L["bias"]].astype(np.int64)
        shift = int(L.get("shift", 0))
        macs = int(w.size) * int(np.prod(shapes[L["name"]][1:]))
        w0 = w
        # A linear layer reads each weight once: when a group's weight words take longer to load
        # (8 bytes a cycle) than to use (one a cycle), loading the next group's beside the
        # compute hides the compute; that needs them in half of wbuf, and a layer of more than
        # one group wider than that runs on the window convolver in channel chunks (fc7 and
        # fc8 of VGG16).
        dw = cfg.wbuf_words // 2 if (background and halved is not None and cfg.weight_word_bytes >= 8
                                     and w0.shape[0] > P) else None
        w, in_shape, in_bytes, stride, pad, wino, lb = _plan_layer(L, w0, cfg, datapath, shapes[src], shapes,
                                                                   direct_words=dw)
        # the same layer planned for half of ibuf and wbuf (so that LOADs can run beside the
        # computes), if that keeps its weight layout: its window-convolver plan, or False
        half = False
        if halved is not None:
            try:
                _, hshape, _, _, _, hwino, hlb = _plan_layer(L, w0, halved, datapath, shapes[src], shapes,
                                                             weights=False)
                if (hlb is None) == (lb is None) and hwino == wino and hshape == in_shape:
                    half = hlb
            except UserError:
                pass
        k = w.shape[2]
        # a k x k kernel (k > 3) on the convolver: its 3x3 pieces as channel blocks
        blob, nwords = weight_block(kernel_pieces(w) if lb and k > 3 else w, b, P, wino, cfg.weight_bits)
        addr = align(len(wblob))
        wblob += bytes(addr - len(wblob)) + blob
        wdats[L["name"]] = dict(k=k, stride=stride, pad=pad, wino=wino, lb=lb, half_lb=half, nwords=nwords, shift=shift,
                                addr=addr, nbytes=len(blob), acc_bound=acc_bound(w, wino), macs=macs,
                                in_shape=in_shape, in_bytes=in_bytes)
    alias, copies = concat_aliases(graph, shapes)
    acts = {"input": align(len(wblob))}
    top = acts["input"] + int(np.prod(graph.input_shape))
    for L in graph.layers:
        if L["name"] not in alias:
            acts[L["name"]] = align(top)
            top = acts[L["name"]] + int(np.prod(shapes[L["name"]]))

    def place(t):
        if t not in acts:
            owner, off = alias[t]
            acts[t] = place(owner) + off
        return acts[t]
    for t in alias:
        place(t)

    # Pass 2: instructions, per layer the better (by the cycle model) of its plan on the
    # whole of ibuf and wbuf and, where it fits, on half of them with LOADs beside computes.
    e = Emitter(cfg)
    e.where = where
    metas = []
    prev = "input"
    for idx, L in enumerate(graph.layers):
        name, op = L["name"], L["op"]
        srcs = _sources(L, prev)
        e.layer, e.name = idx, name
        start = len(e.instrs)
        meta = {"index": idx, "name": name, "op": op, "inputs": srcs,
                "shape": list(shapes[name]), "out_addr": acts[name], "datapath": None, "macs": 0,
                "weight_addr": None, "weight_bytes": 0, "acc_bound": None, "multipliers": 0}
        wd = wdats.get(name)
        if wd is not None:
            meta.update(datapath="winograd" if wd["wino"] else "convolver" if wd["lb"] else "direct",
                        macs=wd["macs"], multipliers=cfg.lanes * (9 if wd["lb"] else 1),
                        weight_addr=wd["addr"], weight_bytes=wd["nbytes"], acc_bound=wd["acc_bound"])

        def emit_layer(sub, c, wd):
            if op in ("conv2d", "linear"):
                return emit_conv(sub, c, L, acts[srcs[0]], wd["in_shape"], wd["addr"], wd, acts[name], shapes[name])
            if op in ("maxpool2d", "avgpool2d"):
                return emit_pool(sub, c, L, acts[srcs[0]], shapes[srcs[0]], acts[name], shapes[name])
            if op == "upsample":
                return emit_upsample(sub, c, L, acts[srcs[0]], shapes[srcs[0]], acts[name], shapes[name])
            if op == "concat":
                # the inputs written in place by their own layers cost nothing; the others are copied
                tiles = groups = 0
                for src, off in copies.get(name, ()):
                    ident = {"name": name, "op": "maxpool2d", "size": 1, "stride": 1}
                    t, g = emit_pool(sub, c, ident, acts[src], shapes[src], acts[name] + off, shapes[src])
                    tiles, groups = tiles + t, groups + g
                return tiles, groups
            return emit_add(sub, c, L, acts[srcs[0]], acts[srcs[1]], shapes[name], acts[name])

        variants = [(cfg, False, wd)]
        if background and halved is not None and (wd is None or wd["half_lb"] is not False):
            variants.append((halved, True, wd and dict(wd, lb=wd["half_lb"])))
        best = None
        for c, halves, w in variants:
            sub = e.fork(halves)
            try:
                tiles, groups = emit_layer(sub, c, w)
            except UserError:
                if not halves:
                    raise
                continue
            if background:
                sub.instrs = background_loads(sub.instrs, cfg)
            cyc = _model_cycles(sub.instrs, P) if len(variants) > 1 else 0
            if best is None or cyc < best[0]:
                best = (cyc, sub, tiles, groups)
        _, sub, tiles, groups = best
        e.join(sub)
        meta.update(instr_start=start, instr_end=len(e.instrs), row_tiles=tiles, groups=groups, **sub.stats)
        metas.append(meta)
        prev = name

    order_saves(e.instrs, P)
    # Place: instructions at 0, the data base after them (END included).
    base = align((len(e.instrs) + 1) * INSTR_BYTES)
    dram_size = base + align(top)
    if dram_size > 1 << 32:
        raise user_error(where, "DRAM", "at most 4 GiB (32-bit addresses)", f"{dram_size} bytes")
    for f in e.instrs:
        if f["op"] in (Op.LOAD, Op.SAVE):
            f["dram"] += base
    for m in metas:
        m["out_addr"] += base
        if m["weight_addr"] is not None:
            m["weight_addr"] += base
    program = encode_program(e.instrs)
    image = program + bytes(base - len(program)) + bytes(wblob)
    last = graph.layers[-1]
    return Program(graph=graph, cfg=cfg, datapath=datapath, program=program, image=image, dram_size=dram_size,
                   input_addr=base + acts["input"], input_shape=tuple(graph.input_shape),
                   output_addr=base + acts[last["name"]], output_shape=tuple(shapes[last["name"]]),
                   output_flat=flat_output(last), layers=metas)
