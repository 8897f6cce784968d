"""Activation scanner: finds the nonzero input activations and broadcasts them, one per cycle.

The input vector of a layer is distributed over the PEs' source activation files: x_j sits in
PE ``j % N`` at local address ``j // N`` (it is the previous layer's output row j, or the
loaded input). The scanner reads local address ``a`` of every PE at once -- a *group* of N
activations, x_{aN} .. x_{aN+N-1} -- and an :class:`~.lnzd.LNZDTree` picks the leading nonzero
of the group each cycle, which goes out as (j, x_j). Groups are read ahead into a 4-deep FIFO so
that the tree never waits on the memories.

Order: ascending j. Cost: one cycle per nonzero activation, plus one per all-zero group, plus
a fixed 5: the first broadcast is valid in the 6th cycle after ``start`` (address, read,
stage, FIFO write, FIFO output register, broadcast register), and ``busy`` falls after
5 + nonzeros + all-zero groups cycles (measured by ``test_scanner_order_and_cycle_cost``).
The broadcast holds (valid stays up, nothing is lost) while any PE's queue is full.

Timing (the 16-PE array on an ECP5 is the case that matters):

- The group read from the PEs' activation files crosses the whole chip, so it lands in a
  register (``stage``) before anything is worked out from it.
- From the staged group the FIFO entry gets its nonzero-and-in-range flags, whether it is
  empty, and the index of its last nonzero counted from the first (a popcount minus one).
  ``empty`` could be worked out from the flags at the head, but stored it keeps an N-input OR
  out of the path to the wide enable below.
- Retiring the head group (``fifo.r_en``, which enables every bit of the FIFO's output register)
  is then only a compare of the ``picked`` counter with that stored index: no carry chain and
  no LNZD tree sit in front of the wide enable. (Retiring on ``rest == 0`` put a 16-bit carry
  chain there: 79.81 MHz on the ULX3S at 110 MHz targeted.)
- The picking loop is the flags, the cleared mask and a carry-chain lowest-set-bit; the LNZD
  tree's index and the value (selected by the one-hot pick) go straight into the output
  register ``o``, which decouples the broadcast wires to the PEs from the picker.
"""

from functools import reduce
from operator import or_

from amaranth import *
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from sparsa.hw.eie.layouts import ACT, activation_layout
from sparsa.hw.eie.lnzd import LNZDTree

__all__ = ["ActivationScanner"]


class ActivationScanner(wiring.Component):
    """Group reader + LNZD picker + broadcast source.

    Members
    -------
    start : In(1)
        Pulse: scan a vector of ``cols`` activations from file ``src_sel``.
    cols : In(col bits), src_sel : In(1)
        Held stable during the scan.
    rd_addr : Out(address bits), rd_sel : Out(1)
        To every PE's activation-file read port.
    rd_data : In(N * 16)
        PE k's read data at bits [16k +: 16], one cycle after ``rd_addr``.
    o : Out(stream.Signature(activation_layout))
        The broadcast; ``ready`` is the AND of every PE queue's ``ready``.
    busy : Out(1)
    """

    FIFO_DEPTH = 4

    def __init__(self, cfg):
        self.cfg = cfg
        self.n = cfg.pes
        self.addr_bits = max(1, (cfg.act_depth - 1).bit_length())
        super().__init__({
            "start": In(1), "cols": In(cfg.col_bits), "src_sel": In(1),
            "rd_addr": Out(self.addr_bits), "rd_sel": Out(1),
            "rd_data": In(self.n * 16),
            "o": Out(stream.Signature(activation_layout(cfg))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n
        cfg = self.cfg
        groups = Signal(self.addr_bits + 1)       # groups left to read
        addr = Signal(self.addr_bits + 1)
        left = Signal(cfg.col_bits + 1)           # columns from this group's first one to the end
        base = Signal(cfg.col_bits + 1)           # column of this group's first activation
        # Read in flight (the memories answer a cycle after rd_addr), then the staged group.
        inflight = Signal()
        inflight_base = Signal.like(base)
        inflight_in = Signal(n)                   # lanes of the group before the end of the vector
        staged = Signal()
        stage_values = Signal(n * 16)
        stage_base = Signal.like(base)
        stage_nz = Signal(n)                      # nonzero and before the end of the vector
        # FIFO entry: values | column of lane 0 | flags | empty | index of the last flag
        last_bits = max(1, (n - 1).bit_length())
        group = data.StructLayout({"values": unsigned(n * 16), "base": unsigned(len(base)),
                                   "nz": unsigned(n), "empty": unsigned(1), "last": unsigned(last_bits)})
        m.submodules.groups = fifo = SyncFIFOBuffered(width=group.size, depth=self.FIFO_DEPTH)

        issue = Signal()
        m.d.comb += [
            issue.eq((groups != 0) & (fifo.level + inflight + staged < self.FIFO_DEPTH)),
            self.rd_addr.eq(addr), self.rd_sel.eq(self.src_sel),
        ]
        with m.If(self.start):
            m.d.sync += [groups.eq((self.cols + n - 1) // n), addr.eq(0), left.eq(self.cols), base.eq(0)]
        with m.Elif(issue):
            m.d.sync += [groups.eq(groups - 1), addr.eq(addr + 1), left.eq(left - n), base.eq(base + n)]
        m.d.sync += [inflight.eq(issue & ~self.start), inflight_base.eq(base),
                     inflight_in.eq(Cat(*[left > k for k in range(n)]))]
        rd_values = [self.rd_data[16 * k:16 * (k + 1)] for k in range(n)]
        m.d.sync += [staged.eq(inflight), stage_values.eq(self.rd_data), stage_base.eq(inflight_base),
                     stage_nz.eq(Cat(*[rd_values[k] != 0 for k in range(n)]) & inflight_in)]
        count = sum(stage_nz[k] for k in range(n))
        entry = Signal(group)
        m.d.comb += [entry.values.eq(stage_values), entry.base.eq(stage_base), entry.nz.eq(stage_nz),
                     entry.empty.eq(stage_nz == 0), entry.last.eq((count - 1)[:last_bits]),
                     fifo.w_en.eq(staged), fifo.w_data.eq(entry)]

        # ---- picker over the head group ------------------------------------------------------
        head = data.View(group, fifo.r_data)
        values = [head.values[16 * k:16 * (k + 1)] for k in range(n)]
        g_base, g_nz, g_empty, g_last = head.base, head.nz, head.empty, head.last
        cleared = Signal(n)
        picked = Signal(last_bits)                         # flags of the head group already sent
        flags = Signal(n)
        m.d.comb += flags.eq(g_nz & ~cleared)
        m.submodules.lnzd = lnzd = LNZDTree(n)
        m.d.comb += lnzd.flags.eq(flags)
        pick = Signal(n)                                   # one-hot lowest flag (carry chain)
        m.d.comb += pick.eq(flags & (~flags + 1))
        x = Signal(ACT)
        m.d.comb += x.eq(reduce(or_, [Mux(pick[k], values[k], 0) for k in range(n)]))
        adv = Signal()                                     # the output register can take a pick
        m.d.comb += adv.eq(~self.o.valid | self.o.ready)
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(fifo.r_rdy & ~g_empty),
                         self.o.p.col.eq(g_base + lnzd.index), self.o.p.x.eq(x)]
        with m.If(fifo.r_rdy & g_empty):
            m.d.comb += fifo.r_en.eq(1)                      # an all-zero group costs a cycle
        with m.Elif(fifo.r_rdy & adv):
            with m.If(picked == g_last):
                m.d.comb += fifo.r_en.eq(1)                  # this pick is the group's last
            with m.Else():
                m.d.sync += [cleared.eq(cleared | pick), picked.eq(picked + 1)]
        with m.If(fifo.r_en | self.start):
            m.d.sync += [cleared.eq(0), picked.eq(0)]
        # fifo.level, not r_rdy: the buffered FIFO holds a group a cycle before showing it
        # (found by the formal proof in tests/test_eie_formal.py).
        m.d.comb += self.busy.eq((groups != 0) | inflight | staged | (fifo.level != 0) | self.o.valid)
        return m
