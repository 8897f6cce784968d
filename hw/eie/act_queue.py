"""Activation queue: the per-PE FIFO of broadcast (j, x_j) pairs (EIE chose depth 8).

The queue lets each PE fall behind the broadcast by up to ``depth`` columns, which evens out
the per-column load imbalance between PEs; the broadcast stalls only when some PE's queue is
full. Latency 1 cycle (write to readable), throughput one activation per cycle each way.

``room`` (fewer than ``depth - 1`` entries) is what the central control ANDs over all PEs and
*registers* before it lets the next broadcast go, so that no combinational path runs from 16
queues through the AND into the scanner. The broadcast it allows arrives one cycle later,
when the queue may have taken one more: a PE builds its queue one entry deeper than
``cfg.queue_depth`` to hold it.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from sparsa.hw.eie.layouts import activation_layout

__all__ = ["ActivationQueue"]


class ActivationQueue(wiring.Component):
    """A ``depth``-entry FIFO of activations with stream ports.

    Members
    -------
    i : In(stream.Signature(activation_layout))
    o : Out(stream.Signature(activation_layout))
    level : Out(range(depth + 1))
    room : Out(1)
        Fewer than ``depth - 1`` entries (see the module docstring).
    """

    def __init__(self, cfg, *, depth=None):
        self.cfg = cfg
        self.depth = cfg.queue_depth if depth is None else depth
        layout = activation_layout(cfg)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "level": Out(range(self.depth + 1)), "room": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=len(self.i.p.as_value()), depth=self.depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.p.as_value()), fifo.w_en.eq(self.i.valid), self.i.ready.eq(fifo.w_rdy),
            self.o.p.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready),
            self.level.eq(fifo.level), self.room.eq(fifo.level < self.depth - 1),
        ]
        return m
