"""Cycle model of the CNN engine: how many clock cycles a program takes on the RTL.

:func:`program_cycles` walks the decoded instructions in order, as the sequencer
(``hw/cnn/sequencer.py``) runs them: fetch and dispatch, then the instruction's own work,
with a SAVE handed to the store unit and running in the background until an instruction with
flag SYNC, the next SAVE or END waits for it. The costs are the RTL's, measured on its
per-instruction retirement cycles (``sim/cnn/tb.py``) against a zero-wait-state AXI slave:

* every instruction: ``FETCH`` cycles (14 beats of fields, the read latency, dispatch, retire);
* a LOAD with flag BG only its fetch: its rows run beside the next compute, which retires when
  both its own work and the queued LOADs' rows (one LOAD after the other) are done;
* a LOAD row: its AXI beats, one a cycle (the reader keeps two bursts of at most 16 beats in
  flight, so a row's later bursts cost nothing more), plus a fixed cost per row;
* a SAVE row: its beats plus a fixed cost per row and per extra burst (one burst in flight);
* CONV: its MAC cycles (``isa``: ``gh*gw*count*k*k`` direct, ``*16`` Winograd, ``gh*gw*count``
  on the window convolver) plus the pipeline's fill and drain; POOL and ADD one element (one
  window tap, one sum; an upsample's output pixel) a cycle per lane group, plus their pipeline.

It is a model, not the RTL: ``tests/cnn_cases.py::check_cycle_model`` (run by
``test_cnn_rtl.py`` and ``test_cnn_networks.py``) bounds how far it is from the RTL's counters
on random graphs and reduced networks (the window convolver's narrow rows, where the row streams
cannot keep up, and unaligned ADD spans are where it errs). A slower DRAM, or a real
interconnect, adds its latency: ``dram_latency`` extra cycles per SAVE burst and per LOAD row,
and per further LOAD burst what of it two bursts in flight do not hide.
"""

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from sparsa.sw.cnn.isa import Flag, Op, decode_program

__all__ = ["Timing", "program_cycles", "FETCH", "REPORT_MHZ"]

# Clocks at which sparsa quotes latencies from cycles (the seed's Aristotle V2: 200 MHz on a
# Zynq-7020, 400 MHz on a ZU2CG); no build has been measured at either.
REPORT_MHZ = (200, 400)

FETCH = 19            # an instruction that does nothing else: fetch, dispatch, retire
BEAT = 8
MAX_BURST = 16
PAGE = 4096

# Fixed costs beyond FETCH and the work itself (cycles), measured on the RTL.
LOAD_ROW = 3           # a LOAD row's read command and the slave's first-beat latency
SAVE_START = 2         # the store unit, before its first row
SAVE_ROW = 7           # a SAVE row: obuf read, write command, write response
WRITE_BURST = 3        # every further write burst of a row
LB_CHANNEL_2 = 21      # twice the fewest cycles a window-convolver channel takes (10.5)
CONV_PIPE = {"direct": 8, "winograd": 30, "convolver": 18}
BG_NEXT = 0            # between two queued LOADs (the next is taken in the last one's final cycle)
BG_DONE = 1            # after the last queued LOAD's rows: the sequencer's COMPUTE state
HOLD_DRAIN = 3         # of the convolver's pipeline, what a CONV with flag HOLD does not wait for
POOL_PIPE = 6
SWEEP_POOL_PIPE = 8
ADD_PIPE = 5


def _bursts(addr, length):
    """(beats, bursts) of an AXI command of ``length`` bytes at byte ``addr``."""
    if length <= 0:
        return 0, 0
    beat, end = addr // BEAT, (addr + length - 1) // BEAT
    need, bursts = end - beat + 1, 0
    beats = need
    while need > 0:
        n = min(MAX_BURST, need, PAGE // BEAT - beat % (PAGE // BEAT))
        beat, need, bursts = beat + n, need - n, bursts + 1
    return beats, bursts


def _rows(f, per_row, per_burst, latency):
    cyc = 0
    for r in range(f["count"]):
        beats, bursts = _bursts(f["dram"] + r * f["dstride"], f["length"])
        cyc += per_row + beats + (per_burst + latency) * max(bursts - 1, 0) + latency
    return cyc


def _load_rows(f, latency):
    """Cycles of a LOAD's rows. The reader requests a row's next burst while the current one
    streams (two in flight), so a long row costs a beat a cycle plus one first-beat latency;
    it takes the next row's command the cycle after the last beat, which saves a cycle on
    every row but the last (whose end waits on the sequencer's retire), unless the row's last
    beat spills into one more ibuf word (the load unit's flush cycle)."""
    cyc, n = 0, f["count"]
    for r in range(n):
        dram = f["dram"] + r * f["dstride"]
        beats, bursts = _bursts(dram, f["length"])
        flush = 0
        if f["target"] == 0 and f["length"] > 0:        # IBUF: words written vs beats read
            dest = f["buf"] + r * f["bstride"]
            start = dest - dram % BEAT
            words = (start + dram % BEAT + f["length"] - 1) // BEAT - start // BEAT + 1
            flush = int(words > beats)
        cyc += LOAD_ROW + beats + flush + (r == n - 1) + latency + max(latency - MAX_BURST + 1, 0) * max(bursts - 1, 0)
    return cyc


def _sweep_pool_cycles(f):
    """Cycles of the window sweep over a POOL: a window a cycle, plus the stalls of narrow
    rows. A row stream (``linebuf.RowStream``) reads a word a cycle into a 4-word queue, from
    the word of a segment's (channel, output row) first byte to the one after its last; with
    one or two windows a row that can outrun the windows (a global pool's 2x2 stages), and
    how much depends on where each row falls in the words: simulated here as the RTL runs."""
    count, gh, gw, step, W = f["count"], f["gh"], f["gw"], f["step"], f["W"]
    span = (gw - 1) * step
    if (span + BEAT - 1) // BEAT + 2 <= gw:          # a word a cycle always keeps up
        return count * gh * gw
    start = (f["y0"] - f["row0"]) * W + f["buf"] + f["x0"]
    first = (start + np.arange(count)[:, None] * f["bstride"] + np.arange(gh)[None, :] * step * W).reshape(-1)
    px = np.arange(gw)
    streams = []
    for r in range(3):
        o = (first + r * W) % BEAT
        words = ((o + span) // BEAT + 2).tolist()
        pops = ((o[:, None] + (px + 1) * step) // BEAT - (o[:, None] + px * step) // BEAT)
        pops[:, -1] = 2
        streams.append((words, pops.reshape(-1).tolist()))
    n = count * gh * gw
    cnt, inflight, seg, left, done = [0] * 3, [0] * 3, [0] * 3, [s[0][0] for s in streams], 0
    cycle = 0
    while done < n:
        cycle += 1
        valid = all(c >= 2 for c in cnt)
        for r, (words, pops) in enumerate(streams):
            pop = pops[done] if valid else 0
            issue = seg[r] < len(words) and cnt[r] - pop + inflight[r] < 4
            cnt[r] += inflight[r] - pop
            inflight[r] = int(issue)
            if issue:
                left[r] -= 1
                if left[r] == 0:
                    seg[r] += 1
                    left[r] = words[seg[r]] if seg[r] < len(words) else 0
        done += valid
    return cycle - 2       # the first window comes on the third cycle


def compute_cycles(f):
    """Cycles of a CONV, POOL or ADD after dispatch (0 for other instructions)."""
    op, flags = f["op"], f["flags"]
    if op == Op.CONV:
        if flags & Flag.WINO:
            # the last tile's four results leave on four cycles; the pipeline drains after
            # the last one inside the output (the bottom-right tile of an odd map ends sooner)
            y1, x1 = 2 * f["gh"] - 1 < f["out_rows"], 2 * f["gw"] - 1 < f["wo"]
            last = 3 if y1 and x1 else 2 if y1 else 1 if x1 else 0
            return f["gh"] * f["gw"] * f["count"] * 16 + CONV_PIPE["winograd"] - 3 + last
        if flags & Flag.LB:
            # a row of gw windows takes gw cycles, or the words its row streams read if more;
            # a channel takes at least LB_CHANNEL (its 9 weight words are read one a cycle)
            words = ((f["gw"] - 1) * f["step"] + 2) // BEAT + 2
            per_channel = max(LB_CHANNEL_2 / 2, f["gh"] * max(f["gw"], words))
            # with HOLD the sums stay in psum: no output stage to drain
            return ceil(f["count"] * per_channel) + CONV_PIPE["convolver"] - (HOLD_DRAIN if flags & Flag.HOLD else 0)
        return f["gh"] * f["gw"] * f["count"] * f["k"] * f["k"] + CONV_PIPE["direct"]
    if op == Op.POOL:
        if flags & Flag.LB:      # the convolver's sweep: a window a cycle, or its rows' words
            return _sweep_pool_cycles(f) + SWEEP_POOL_PIPE
        return f["count"] * f["gh"] * f["gw"] * f["k"] * f["k"] + POOL_PIPE
    if op == Op.ADD:
        return f["count"] * f["length"] + ADD_PIPE
    return 0


@dataclass
class Timing:
    """:func:`program_cycles`'s answer: ``cycles`` in all, and per instruction the cycle at
    which it retired (``retire``, as the RTL's retirement events)."""
    cycles: int
    retire: list = field(default_factory=list)

    def layer_cycles(self, layers):
        """Cycles per layer (``layers``: a :class:`~sparsa.sw.cnn.compiler.Program`'s, with
        their ``instr_start``/``instr_end``) as ``sim.cnn.runner.run_program`` counts them:
        from the retirement of the instruction before a layer's first to that of its last."""
        at = lambda i: self.retire[i - 1] if i > 0 else 0
        return [at(m["instr_end"]) - at(m["instr_start"]) for m in layers]


def program_cycles(program, dram_latency=0):
    """Model the cycles of ``program`` (bytes, or a list of decoded instruction dicts);
    ``dram_latency``: extra cycles the DRAM takes per burst. The engine's lane count does not
    enter: its lanes work in parallel (checked on 4- to 32-lane builds)."""
    instrs = decode_program(program) if isinstance(program, (bytes, bytearray)) else program
    t = 0                  # cycle at which the previous instruction retired
    store_free = 0         # cycle at which the store unit is idle
    retire = []
    queued = []            # LOADs with flag BG waiting for the next compute
    for f in instrs:
        op = f["op"]
        dispatch = t + FETCH - 1 + dram_latency
        if op == Op.END:
            return Timing(max(dispatch, store_free) + 1, retire)
        if f["flags"] & Flag.SYNC or op == Op.SAVE:
            dispatch = max(dispatch, store_free)
        if op == Op.LOAD and f["flags"] & Flag.BG:
            queued.append(f)
            done = dispatch
        elif op == Op.LOAD:
            done = dispatch + _load_rows(f, dram_latency)
        elif op == Op.SAVE:
            store_free = dispatch + SAVE_START + _rows(f, SAVE_ROW, WRITE_BURST, dram_latency)
            done = store_free if f["flags"] & Flag.SYNC else dispatch
        else:
            done = dispatch + compute_cycles(f)
            if queued:
                loads = sum(_load_rows(q, dram_latency) for q in queued) + BG_NEXT * (len(queued) - 1)
                done, queued = max(done, dispatch + loads + BG_DONE), []
        t = done + 1
        retire.append(t)
    raise ValueError("program without END")
