"""LOADs in the background: a compiler pass that lets the next compute's LOADs run beside
the current one (flag BG, see :mod:`sparsa.sw.cnn.isa`).

The emitters put successive tiles' inputs and weights in alternate halves of ibuf and wbuf
(:class:`~sparsa.sw.cnn.emit.Emitter`), so that the LOADs of tile t+1 write what the compute
of tile t does not read. This pass then moves up to :data:`~sparsa.sw.cnn.isa.LOAD_QUEUE` of
the LOADs that follow a compute (within its layer, before the next compute) above it, with
flag BG, wherever that changes no result:

* the LOAD writes no ibuf byte or wbuf word the compute reads;
* nor one that a LOAD it moves above writes (which would then land last), nor one that
  another LOAD queued for the same compute writes;
* and it reads no DRAM byte that a SAVE it moves above writes.

BIAS LOADs stay where they are (the compute's output stage reads the bias registers). Whether
the pass got it right is not taken on trust: the instruction-level model refuses a compute
that reads what a queued LOAD writes.
"""

from sparsa.sw.cnn.isa import LOAD_QUEUE, Flag, Op, Target

__all__ = ["background_loads", "span", "overlap"]

COMPUTE = (Op.CONV, Op.POOL, Op.ADD)


def span(lo, count, stride, length):
    """[lo, hi) of ``lo + r*stride + j``, r < count, j < length (empty: None)."""
    return (lo, lo + (count - 1) * stride + length) if count > 0 and length > 0 else None


def overlap(a, b):
    return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]


def _writes(f, cfg):
    """(target, [lo, hi)) of the buffer entries a LOAD writes (ibuf bytes or wbuf words)."""
    if f["target"] not in (Target.IBUF, Target.WBUF):
        return f["target"], None
    length = f["length"] // cfg.weight_word_bytes if f["target"] == Target.WBUF else f["length"]
    return f["target"], span(f["buf"], f["count"], f.get("bstride", 0), length)


def _reads(f):
    """{target: [lo, hi)}: what a compute reads of ibuf and wbuf, or more (never less)."""
    if f["op"] == Op.ADD:
        a = span(f["buf"], f["count"], f["bstride"], f["length"])
        b = span(f["b"], f["count"], f["bstride"], f["length"])
        both = [s for s in (a, b) if s is not None]
        return {Target.IBUF: (min(s[0] for s in both), max(s[1] for s in both)) if both else None}
    # rows row0 .. the window's last row (inside the image), of each of `count` channels; a
    # POOL with flag UP moves its window every second output row
    gh = -(-f["gh"] // 2) if f["op"] == Op.POOL and f.get("flags", 0) & Flag.UP else f["gh"]
    last = min(f["H"] - 1, f["y0"] + (gh - 1) * f["step"] + f["k"] - 1)
    rows = span(f["buf"], f["count"], f["bstride"], max(0, last - f["row0"] + 1) * f["W"])
    reads = {Target.IBUF: rows}
    if f["op"] == Op.CONV:
        per = 16 if f.get("flags", 0) & Flag.WINO else f["k"] * f["k"]
        reads[Target.WBUF] = span(f.get("wbase", 0), f["count"], per, per)
    return reads


def _movable(ld, compute, passed, moved, cfg):
    """Whether LOAD ``ld`` may run beside ``compute``, moved above the instructions ``passed``
    and queued behind the LOADs ``moved``."""
    if ld["target"] not in (Target.IBUF, Target.WBUF):
        return False
    target, dest = _writes(ld, cfg)
    if overlap(dest, _reads(compute).get(target)):
        return False
    src = span(ld["dram"], ld["count"], ld.get("dstride", 0), ld["length"])
    for f in passed + moved:
        # a LOAD it jumps would land last; one queued before it, the engine refuses (the
        # instruction-level model does not know which of two queued writes lands last)
        if f["op"] == Op.LOAD and _writes(f, cfg)[0] == target and overlap(dest, _writes(f, cfg)[1]):
            return False
        if f["op"] == Op.SAVE and overlap(src, span(f["dram"], f["count"], f["dstride"], f["length"])):
            return False
    return True


def background_loads(instrs, cfg):
    """Reorder ``instrs`` (one layer's or more, field dicts) as above; returns the new list
    (the dicts of moved LOADs get flag BG)."""
    out = list(instrs)
    i = 0
    while i < len(out):
        c = out[i]
        if c["op"] not in COMPUTE:
            i += 1
            continue
        moved, passed = [], []
        j = i + 1
        while j < len(out) and len(moved) < LOAD_QUEUE and out[j]["op"] in (Op.LOAD, Op.SAVE) \
                and out[j]["layer"] == c["layer"]:
            f = out[j]
            if f["op"] == Op.LOAD and _movable(f, c, passed, [out[k] for k in moved], cfg):
                moved.append(j)
            else:
                passed.append(f)
            j += 1
        if moved:
            loads = [out[k] for k in moved]
            for f in loads:
                f["flags"] = f.get("flags", 0) | Flag.BG
            rest = [f for k, f in enumerate(out[i + 1:j], i + 1) if k not in moved]
            out[i:j] = loads + [c] + rest
            i += len(loads)
        i += 1
    return out
