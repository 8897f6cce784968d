"""Sparse-matrix read unit: column jobs in, up to ``cfg.macs`` real (v, row) entries per cycle out.

The sparse-matrix memory is 64 bits wide: eight (v, z) entries per word
(layout from :mod:`sparsa.sw.eie.format`). The unit is a pipeline whose only loop is a
three-bit step counter, aimed at 100 MHz on an ECP5: the whole 16-PE array measured
104.31 MHz on the ULX3S-85F (memory in block RAM, DSP multipliers, nextpnr seed 5), with split
accumulator banks, before the cross-word pairs (not routed since: see the README). Decoder
stage D0 below was added for that: without it, D1's prefix sums and ranks started at the
FIFO output and were the critical path (10.63 ns, 94.06 MHz):

* the **word fetcher** walks the words of each column job [start, end), reads one word per
  cycle (a registered memory read, then one more register) and tags it with the lanes that
  belong to the job. Words wait in a 5-entry FIFO; the
  fetcher reads a word only when a FIFO entry is free for it (a registered credit count), so
  its handshake with the job FIFO starts from flip-flops;
* the **word decoder** (three registered stages after the FIFO) turns a word into its issue
  schedule: each lane's row offset inside the word (a prefix sum of ``z + 1`` over the job's
  lanes, three adder levels), the real entries (v != 0) compacted to the front in lane order,
  and for every step whether two entries go out together. With ``cfg.macs == 2`` and full
  accumulator banks (``cfg.acc_banks``; each slot's bank holds all rows,
  :mod:`sparsa.hw.eie.arith`) any two entries pair: every step of a word takes two but its
  odd last one, and that one pairs with the first real entry of the next word, of the same
  column or the next (each slot carries its own x_j), when that word is already in D1 (it
  is, whenever the reader has work queued), which then starts at its second entry. With
  split banks (row parity) an entry pairs with the next
  real entry of its word when their rows differ in parity, greedily from the lowest lane;
* the **issue stage** steps through the schedule of the decoded word, one step (one or two
  entries) a cycle, and adds the row offsets to the word's base row (the running row position
  of the column) in a registered stage of its own. The decoder stages move up when it takes
  the next word.

Padding entries (v = 0, z = 15) cost no cycle: they only move the row offsets of the lanes
after them. A word of nothing but padding (a PE's rows far apart: a sparse layer with many
rows a PE) takes a cycle, in which the next word's first step issues when that word, of the
same column or the next, has real entries, so it costs no cycle of its own. EIE spends a
cycle on every padding entry; this is the main reason sparsa beats its cycle counts.

Why two entries a cycle: a PE whose rows average about one entry per column (NT-We: 600 rows
over 64 PEs) is as fast as the broadcast at one entry a cycle, so its queue fills at every
column heavier than average and the whole array stalls. Retiring up to two entries a cycle
gives it slack.

Throughput: one word a cycle; one step (one real entry, or two) a cycle out. A word's
``left`` is its real entries less those a step of the word before took along; a word takes
``ceil(left / macs)`` cycles (with ``macs=2`` and full banks its odd last entry takes the
first of the next word along, of its column or the next). A word with nothing left (all padding, or its
entries taken along) takes one cycle, in which the next word in D1, of its column or the
next, issues its first step (one entry; two with ``macs=2`` and full banks) when it has real
entries (before, such a word took a cycle of its own). ``sparsa.bench.ese_overlap.pe_issue_cycles``
is this model; split banks keep the older rule.
Latency: a job taken in cycle 0 shows its first entry on ``o`` in cycle 10 (measured by
``test_spm_reader_latency_job_to_first_entry``). ``o`` honours ``ready`` (the arithmetic unit
holds it high).
"""

from functools import reduce
from operator import or_

from amaranth import *
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie.format import ENTRIES_PER_WORD, ENTRY_BITS, V_BITS, WORD_BITS

from sparsa.hw.eie.layouts import column_job_layout, issue_layout, row_bits

__all__ = ["SparseMatrixReader", "reader_members", "sparse_matrix_memory"]

_LANES = ENTRIES_PER_WORD
# A fetched word in the word FIFO: the word, its first and last real lane, first word of its
# column, and x_j (raw bits).
_FETCHED = data.StructLayout({"word": unsigned(WORD_BITS), "lo": unsigned(3), "hi": unsigned(3),
                              "first": unsigned(1), "x": unsigned(16)})
_OFF_BITS = (_LANES * 16).bit_length()       # a row offset inside one word: 1 .. 8 * 16


def reader_members(cfg):
    """The ports every sparse-matrix reader has (this one and
    :class:`~sparsa.hw.eie.spm_reader_serial.SerialSparseMatrixReader`)."""
    return {
        "i": In(stream.Signature(column_job_layout(cfg))),
        "o": Out(stream.Signature(issue_layout(cfg))),
        "ld_en": In(1), "ld_addr": In(32), "ld_data": In(64),
        "busy": Out(1), "emit": Out(2), "pads": Out(4),
    }


def sparse_matrix_memory(m, reader, init):
    """A reader's 64-bit sparse-matrix memory (submodule ``spm``: the name the block-RAM tools
    look for) with its load port wired; returns the read port. Loads happen only while the
    reader is idle, so the read port needs no transparency."""
    m.submodules.spm = spm = Memory(shape=WORD_BITS, depth=reader.cfg.spm_words, init=init)
    wp = spm.write_port()
    m.d.comb += [wp.addr.eq(reader.ld_addr), wp.data.eq(reader.ld_data), wp.en.eq(reader.ld_en)]
    rd = spm.read_port()       # named here: the port's signals are rd__addr, rd__data, rd__en
    return rd


def _prefix_sums(values):
    """Inclusive prefix sums by a log-depth (Kogge-Stone) network: 3 adder levels for 8 lanes."""
    sums, d = list(values), 1
    while d < len(sums):
        sums = [sums[l] + sums[l - d] if l >= d else sums[l] for l in range(len(sums))]
        d *= 2
    return sums


class SparseMatrixReader(wiring.Component):
    """Word fetcher + word decoder + issue stage over one PE's sparse-matrix memory.

    Members
    -------
    i : In(stream.Signature(column_job_layout))
    o : Out(stream.Signature(issue_layout))
        Up to ``cfg.macs`` real entries a cycle, local rows resolved: entry k of the step in
        slot k, or with split banks in slot ``row % 2``.
    ld_en, ld_addr, ld_data : In
        Load port of the 64-bit sparse-matrix memory.
    busy : Out(1)
    emit : Out(2)
        Real entries issued this cycle (0..macs), for the ``busy`` and ``macs`` counters.
    pads : Out(4)
        Padding entries retired this cycle (0..8; a word's padding counts when it retires).
    """

    FIFO_DEPTH = 5     # raw words fetched ahead: covers the credit loop (issue, F1, F2, FIFO, pop)

    def __init__(self, cfg, *, init=()):
        self.cfg = cfg
        self._init = list(init)
        self.addr_bits = max(1, (cfg.spm_words - 1).bit_length())
        super().__init__(reader_members(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rb = row_bits(cfg)
        rd = sparse_matrix_memory(m, self, self._init)

        # Decoded word: per step s (compacted order) v and row offset; pair[s], last1[s] (done
        # after a single), last2[s] (done after a pair), has[s] (s < real count); pads, total.
        fields = [("v", V_BITS * _LANES), ("off", _OFF_BITS * _LANES), ("pair", _LANES),
                  ("last1", _LANES), ("last2", _LANES), ("has", _LANES), ("pads", 4),
                  ("total", _OFF_BITS), ("first", 1), ("x", 16)]
        # Raw-word FIFO entry: word | lo lane | hi lane | first word of column | x
        m.submodules.words = words = SyncFIFOBuffered(width=_FETCHED.size, depth=self.FIFO_DEPTH)

        # ---- word fetcher -----------------------------------------------------------------
        job_valid = Signal()
        job = Signal.like(self.i.p)
        word = Signal(cfg.pointer_bits - 3 + 1)
        last_word = Signal.like(word)
        first = Signal()
        f1_valid = Signal()         # a word read from the memory, on its way into the FIFO
        # Credits: FIFO entries neither filled nor promised to a word in flight (a register,
        # so that the fetcher's handshake with the job FIFO starts from flip-flops).
        credits = Signal(range(self.FIFO_DEPTH + 1), init=self.FIFO_DEPTH)
        room = Signal()
        m.d.comb += room.eq(credits != 0)
        issue = Signal()
        is_last = Signal()          # `word` is the job's last word (registered)
        m.d.comb += [
            issue.eq(job_valid & room),
            rd.addr.eq(word), rd.en.eq(1),
            # Take a new job when none is held or the held one issues its last word now.
            self.i.ready.eq(~job_valid | (issue & is_last)),
        ]
        m.d.sync += credits.eq(credits - issue + words.r_en)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                job_valid.eq(1), job.eq(self.i.p),
                word.eq(self.i.p.start >> 3),
                last_word.eq((self.i.p.end - 1) >> 3),
                is_last.eq((self.i.p.start >> 3) == ((self.i.p.end - 1) >> 3)),
                first.eq(1),
            ]
        with m.Elif(issue):
            m.d.sync += [word.eq(word + 1), first.eq(0), is_last.eq(word + 1 == last_word)]
            with m.If(is_last):
                m.d.sync += job_valid.eq(0)
        f1_lo, f1_hi, f1_first, f1_x = Signal(3), Signal(3), Signal(), Signal(16)
        m.d.sync += [
            f1_valid.eq(issue),
            f1_lo.eq(Mux(first, job.start[0:3], 0)),
            f1_hi.eq(Mux(is_last, (job.end - 1)[0:3], 7)),
            f1_first.eq(first),
            f1_x.eq(job.x),
        ]

        # F2: the word read registered once more before the FIFO. When the memory is small
        # enough for LUT RAM, yosys moves the read port's register to the address side; without
        # this stage the address increment, the LUT-RAM read mux and the FIFO write all fell in
        # one cycle (the 10.5 ns critical path of the 16-PE ULX3S build).
        f2_valid = Signal()
        f2_data = Signal(_FETCHED)
        m.d.sync += [f2_valid.eq(f1_valid), f2_data.word.eq(rd.data), f2_data.lo.eq(f1_lo), f2_data.hi.eq(f1_hi),
                     f2_data.first.eq(f1_first), f2_data.x.eq(f1_x)]
        m.d.comb += [words.w_en.eq(f2_valid), words.w_data.eq(f2_data)]

        # ---- word decoder (three stages after the FIFO; they move when the issue stage takes) -
        d0_valid, d1_valid, d2_valid = Signal(), Signal(), Signal()
        d0_adv, d1_adv, d2_load, pop = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            d2_load.eq(~d2_valid | pop),
            d1_adv.eq(~d1_valid | d2_load),
            d0_adv.eq(~d0_valid | d1_adv),
            words.r_en.eq(words.r_rdy & d0_adv),
        ]
        head = data.View(_FETCHED, words.r_data)
        f2_word, f2_lo, f2_hi, f2_first, f2_x = head.word, head.lo, head.hi, head.first, head.x
        v = [f2_word[ENTRY_BITS * l:ENTRY_BITS * l + V_BITS] for l in range(_LANES)]
        z = [f2_word[ENTRY_BITS * l + V_BITS:ENTRY_BITS * (l + 1)] for l in range(_LANES)]
        in_range = Signal(_LANES)
        m.d.comb += in_range.eq(((C(0xFF, 8) << f2_lo)[0:8]) & (C(0xFF, 8) >> ~f2_hi))
        # Stage D0: each lane's row step (z + 1 in range, else 0) and the real lanes, registered,
        # so that D1's prefix sums and ranks (three carry chains deep) start from flip-flops
        # (from the FIFO output they were the 10.63 ns critical path of the 16-PE ULX3S build).
        d0_step = [Signal(5, name=f"d0_step{l}") for l in range(_LANES)]
        d0_v = [Signal(V_BITS, name=f"d0_v{l}") for l in range(_LANES)]
        d0 = {"real": Signal(_LANES), "in": Signal(_LANES), "first": Signal(), "x": Signal(16)}
        with m.If(d0_adv):
            m.d.sync += [
                d0_valid.eq(words.r_rdy), d0["in"].eq(in_range), d0["first"].eq(f2_first), d0["x"].eq(f2_x),
                d0["real"].eq(Cat(*[in_range[l] & (v[l] != 0) for l in range(_LANES)])),
            ]
            for l in range(_LANES):
                m.d.sync += [d0_step[l].eq(Mux(in_range[l], z[l] + 1, 0)), d0_v[l].eq(v[l])]
        # Lane l's row is (row position before the word) + off[l] - 1.
        off = _prefix_sums(d0_step)
        real = d0["real"]
        d1 = {"real": Signal(_LANES), "n_in": Signal(4), "n_real": Signal(4), "first": Signal(),
              "x": Signal(16)}
        d1_v = [Signal(V_BITS, name=f"d1_v{l}") for l in range(_LANES)]
        d1_off = [Signal(_OFF_BITS, name=f"d1_off{l}") for l in range(_LANES)]
        d1_rank = [Signal(3, name=f"d1_rank{l}") for l in range(_LANES)]
        with m.If(d1_adv):
            m.d.sync += [
                d1_valid.eq(d0_valid), d1["real"].eq(real), d1["first"].eq(d0["first"]), d1["x"].eq(d0["x"]),
                d1["n_in"].eq(sum(d0["in"][l] for l in range(_LANES))),
                d1["n_real"].eq(sum(real[l] for l in range(_LANES))),
            ]
            for l in range(_LANES):
                m.d.sync += [d1_v[l].eq(d0_v[l]), d1_off[l].eq(off[l]),
                             # rank = real lanes below l: where l goes in the compacted list
                             d1_rank[l].eq(sum(real[i] for i in range(l)) if l else 0)]

        # ---- word decoder, stage 2: compact the real lanes and plan the steps ----------------
        n_real = d1["n_real"]
        c_v = [Signal(V_BITS, name=f"c_v{s}") for s in range(_LANES)]
        c_off = [Signal(_OFF_BITS, name=f"c_off{s}") for s in range(_LANES)]
        for s in range(_LANES):
            # Lane l lands in slot rank[l] (<= l): an AND-OR over the lanes that can.
            sel = [d1["real"][l] & (d1_rank[l] == s) for l in range(s, _LANES)]
            m.d.comb += [
                c_v[s].eq(reduce(or_, [Mux(sel[i], d1_v[l], 0) for i, l in enumerate(range(s, _LANES))])),
                c_off[s].eq(reduce(or_, [Mux(sel[i], d1_off[l], 0) for i, l in enumerate(range(s, _LANES))])),
            ]
        pair = Signal(_LANES)
        split = cfg.split_banks
        if cfg.macs == 2:
            m.d.comb += pair.eq(Cat(*[(s + 1 < n_real) & ((c_off[s][0] != c_off[s + 1][0]) if split else C(1, 1))
                                      if s + 1 < _LANES else C(0, 1) for s in range(_LANES)]))
        total = d1_off[-1]          # out-of-range lanes add nothing: the last prefix is the total
        entry = {
            "v": Cat(*c_v), "off": Cat(*c_off), "pair": pair,
            "last1": Cat(*[n_real <= s + 1 for s in range(_LANES)]),
            "last2": Cat(*[n_real <= s + 2 for s in range(_LANES)]),
            "has": Cat(*[n_real > s for s in range(_LANES)]),
            "pads": d1["n_in"] - n_real, "total": total, "first": d1["first"], "x": d1["x"],
        }
        h = {n: Signal(w, name=f"d2_{n}") for n, w in fields}
        with m.If(d2_load):
            m.d.sync += d2_valid.eq(d1_valid)
            m.d.sync += [h[n].eq(entry[n][:w]) for n, w in fields]

        # ---- issue stage ------------------------------------------------------------------
        h_v = [h["v"][V_BITS * s:V_BITS * (s + 1)] for s in range(_LANES)]
        h_off = [h["off"][_OFF_BITS * s:_OFF_BITS * (s + 1)] for s in range(_LANES)]
        s_at = Signal(3)            # the step of the head word
        base = Signal(rb)           # row position before the head word, unless it starts a column
        h_base = Signal(rb)
        m.d.comb += h_base.eq(Mux(h["first"], 0, base))
        adv = Signal()              # the output pipeline moves
        go = Signal()
        p_pair, p_done, p_has = Signal(), Signal(), Signal()
        m.d.comb += [
            adv.eq(self.o.ready | ~self.o.valid),
            go.eq(d2_valid & adv),
            p_has.eq(h["has"].bit_select(s_at, 1)),
            p_pair.eq(h["pair"].bit_select(s_at, 1)),
            p_done.eq(Mux(p_pair, h["last2"].bit_select(s_at, 1), h["last1"].bit_select(s_at, 1))),
            pop.eq(go & p_done),
        ]
        # Across words (macs == 2): a word's odd last entry goes out with the first real entry
        # of the next word, of its column or the next one (each slot carries its own x_j),
        # which is in D1 then (its compacted entry 0 is c_v[0] and c_off[0], from D1's
        # registers); that word then starts at step 1.
        carry = Signal()
        if cfg.macs == 2 and not split:
            m.d.comb += carry.eq(go & p_has & ~p_pair & p_done & d1_valid & (n_real != 0))
        # A head word with nothing left to issue (all padding, or its entries taken along)
        # retires in the cycle that issues the first entry of the word in D1 (two, when any two
        # pair), of its column or of the next one: that word then starts at the step after. So
        # a word of padding costs no cycle of its own when real entries follow it. (Not with
        # split banks, whose pairs are planned from a word's first entry.)
        skip, skip2 = Signal(), Signal()
        if not split:
            m.d.comb += skip.eq(go & ~p_has & d1_valid & (n_real != 0))
        if cfg.macs == 2 and not split:
            m.d.comb += skip2.eq(skip & (n_real > 1))
        d1_base = Signal(rb)        # the row position before the word in D1
        m.d.comb += d1_base.eq(Mux(d1["first"], 0, h_base + h["total"]))
        with m.If(go):
            m.d.sync += s_at.eq(Mux(p_done, Mux(skip, 1 + skip2, carry), s_at + 1 + p_pair))
            with m.If(p_done):
                m.d.sync += base.eq(h_base + h["total"])

        # Stage I: the entries of this step; stage O (= self.o): their rows, entry k in slot k
        # (split banks: each in the slot of its row's bank).
        i_valid, i_pair = Signal(), Signal()
        i_base, i_base1 = Signal(rb), Signal(rb)     # the row position of entry 0 and of entry 1
        i_x = [Signal(16, name=f"i_x{k}") for k in range(2)]
        i_v = [Signal(V_BITS, name=f"i_v{k}") for k in range(2)]
        i_off = [Signal(_OFF_BITS, name=f"i_off{k}") for k in range(2)]
        with m.If(adv):
            m.d.sync += [
                i_valid.eq(go & p_has | skip), i_pair.eq(p_pair | carry | skip2),
                i_base.eq(Mux(skip, d1_base, h_base)), i_x[0].eq(Mux(skip, d1["x"], h["x"])),
                i_x[1].eq(Mux(carry | skip, d1["x"], h["x"])),
                i_v[0].eq(Mux(skip, c_v[0], Array(h_v)[s_at])),
                i_off[0].eq(Mux(skip, c_off[0], Array(h_off)[s_at])),
                i_v[1].eq(Mux(carry, c_v[0], Mux(skip, c_v[1], Array(h_v[1:] + [C(0, V_BITS)])[s_at]))),
                i_off[1].eq(Mux(carry, c_off[0], Mux(skip, c_off[1], Array(h_off[1:] + [C(0, _OFF_BITS)])[s_at]))),
                i_base1.eq(Mux(carry | skip, d1_base, h_base)),
            ]
        row_a, row_b = Signal(rb), Signal(rb)
        m.d.comb += [row_a.eq(i_base + i_off[0] - 1), row_b.eq(i_base1 + i_off[1] - 1)]
        with m.If(adv):
            m.d.sync += self.o.valid.eq(i_valid)
            if split:
                for b in range(2):
                    slot = self.o.p.slot[b]
                    a_here = row_a[0] == b
                    m.d.sync += [slot.valid.eq(i_valid & (a_here | i_pair)), slot.row.eq(Mux(a_here, row_a, row_b)),
                                 slot.v.eq(Mux(a_here, i_v[0], i_v[1])), slot.x.eq(i_x[0])]
            else:
                for b, (row, v, x, here) in enumerate([(row_a, i_v[0], i_x[0], C(1)),
                                                       (row_b, i_v[1], i_x[1], i_pair)][:cfg.macs]):
                    slot = self.o.p.slot[b]
                    m.d.sync += [slot.valid.eq(i_valid & here), slot.row.eq(row), slot.v.eq(v), slot.x.eq(x)]
        issued = Signal(2)
        m.d.comb += [
            issued.eq(Mux(go & p_has, 1 + p_pair + carry, Mux(skip, 1 + skip2, 0))),
            self.emit.eq(issued),
            self.pads.eq(Mux(go & p_done, h["pads"], 0)),
            # words.level, not r_rdy: the buffered FIFO holds a word a cycle before showing it.
            self.busy.eq(job_valid | f1_valid | f2_valid | (words.level != 0) | d0_valid | d1_valid | d2_valid | i_valid | self.o.valid),
        ]
        return m
