"""LSTM element-wise unit (ESE): gate nonlinearities, cell state and m_t = o * tanh(c_t), per PE.

It sits behind a PE's output stage while the gates layer drains. The gates layer's rows are
laid out so that local rows 4l, 4l+1, 4l+2, 4l+3 are gates i, f, g, o of the PE's cell l
(:mod:`sparsa.sw.lstm_pack`), so the four pre-activations of a cell arrive on consecutive
cycles. The arithmetic is exactly :func:`sparsa.sw.lstm_fixed.cell_update`:

* i, f: sigmoid of the pre-activation plus the peephole term ``w * c_{t-1}``; g: tanh;
* with o: ``c_t = f c_{t-1} + i g`` (written back to the cell-state memory), then one cycle
  later ``o = sigmoid(z_o + w_oc c_t)`` and ``m = o * tanh(c_t)``, written to the PE's
  destination activation file at address l: the next layer's input h = l * N + k.

Memories: cell state (int24, one word per local cell) and peephole weights (int16 Q3.12, one
word per local gate row: w_ic, w_fc, 0, w_oc), both read in the drain cycle (latency 1).
Throughput: one gate a cycle; latency gate o -> m write 2 cycles.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.lstm_fixed import C_BITS, GATE_FRAC, PEEP_FRAC, Q, SIG_TABLE, TANH_TABLE

from .arith import saturate
from .layouts import ACT

__all__ = ["LSTMElementwise", "pwl"]


def _rnd(a, s):
    """Round half up and shift right (arithmetic): (a + 2^(s-1)) >> s."""
    return (a + (1 << (s - 1))) >> s


def pwl(m, table, z, name):
    """Combinational piecewise-linear lookup of ``table`` (a ``PWLTable``) on signed ``z``."""
    u = Signal(16, name=f"{name}_u")
    zc = Signal(signed(17), name=f"{name}_zc")
    with m.If(z < table.lo):
        m.d.comb += zc.eq(table.lo)
    with m.Elif(z > table.hi):
        m.d.comb += zc.eq(table.hi)
    with m.Else():
        m.d.comb += zc.eq(z)
    m.d.comb += u.eq(zc - table.lo)
    k = Signal(6, name=f"{name}_k")
    r = Signal(table.shift, name=f"{name}_r")
    m.d.comb += [k.eq(u >> table.shift), r.eq(u[:table.shift])]
    base = Array([C(int(b), signed(17)) for b in table.base])
    slope = Array([C(int(s), signed(17)) for s in table.slope])
    y = Signal(signed(17), name=name)
    m.d.comb += y.eq(base[k] + ((slope[k] * r) >> table.shift))
    return y


class LSTMElementwise(wiring.Component):
    """See the module docstring.

    Members
    -------
    drain, drain_row : In
        The output stage's row request (same cycle): the memories are read at its cell.
    y_valid, y, y_row : In
        The output stage's result one cycle later: gate ``y_row % 4`` of cell ``y_row // 4``.
    enable : In(1)
        This layer is an LSTM gates layer (else ``y_valid`` is ignored).
    clear : In(1)
        First step: c_{t-1} = 0.
    ld_peep, ld_addr, ld_data : In
        Load port of the peephole memory (address = local gate row).
    m_valid, m_addr, m : Out
        The cell's output for the destination file.
    """

    def __init__(self, cfg, *, init_peep=()):
        self.cfg = cfg
        self._init_peep = list(init_peep)
        self.rows = cfg.max_rows_pe
        self.cells = max(1, -(-cfg.max_rows_pe // 4))
        self.rb = max(1, (cfg.max_rows_pe + 16 * 8 + 1).bit_length())
        super().__init__({
            "drain": In(1), "drain_row": In(self.rb),
            "y_valid": In(1), "y": In(ACT), "y_row": In(self.rb),
            "enable": In(1), "clear": In(1),
            "ld_peep": In(1), "ld_addr": In(32), "ld_data": In(64),
            "m_valid": Out(1), "m_addr": Out(self.rb), "m": Out(ACT),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.cstate = cmem = Memory(shape=signed(C_BITS), depth=self.cells, init=[])
        m.submodules.peep = pmem = Memory(shape=signed(16), depth=self.rows, init=self._init_peep)
        pw = pmem.write_port()
        m.d.comb += [pw.addr.eq(self.ld_addr), pw.data.eq(self.ld_data[:16]), pw.en.eq(self.ld_peep)]
        prd = pmem.read_port()
        cw = cmem.write_port()
        crd = cmem.read_port(transparent_for=(cw,))
        m.d.comb += [prd.addr.eq(self.drain_row), crd.addr.eq(self.drain_row >> 2)]

        gate = self.y_row[:2]
        cell = self.y_row >> 2
        c_prev = Signal(signed(C_BITS))
        m.d.comb += c_prev.eq(Mux(self.clear, 0, crd.data))
        peep_shift = PEEP_FRAC + Q - GATE_FRAC
        zp = Signal(signed(28))
        m.d.comb += zp.eq(self.y + _rnd(prd.data * c_prev, peep_shift))
        z_peep = saturate(m, zp, 16, "z_peep")
        sig_in = pwl(m, SIG_TABLE, z_peep, "sig_if")
        tanh_g = pwl(m, TANH_TABLE, self.y, "tanh_g")

        i_s = Signal(signed(17))
        f_s = Signal(signed(17))
        g_s = Signal(signed(17))
        active = self.y_valid & self.enable
        with m.If(active & (gate == 0)):
            m.d.sync += i_s.eq(sig_in)
        with m.If(active & (gate == 1)):
            m.d.sync += f_s.eq(sig_in)
        with m.If(active & (gate == 2)):
            m.d.sync += g_s.eq(tanh_g)

        # Gate o: the new cell state now, o and m in the next cycle.
        c_sum = Signal(signed(C_BITS + 18))
        m.d.comb += c_sum.eq(_rnd(f_s * c_prev + i_s * g_s, Q))
        c_new = saturate(m, c_sum, C_BITS, "c_new")
        m.d.comb += [cw.addr.eq(cell), cw.data.eq(c_new), cw.en.eq(active & (gate == 3))]
        s_valid = Signal()
        s_c = Signal(signed(C_BITS))
        s_zo = Signal(ACT)
        s_w = Signal(signed(16))
        s_cell = Signal(self.rb)
        m.d.sync += [s_valid.eq(active & (gate == 3)), s_c.eq(c_new), s_zo.eq(self.y), s_w.eq(prd.data),
                     s_cell.eq(cell)]
        zo = Signal(signed(28))
        m.d.comb += zo.eq(s_zo + _rnd(s_w * s_c, peep_shift))
        zo_sat = saturate(m, zo, 16, "zo_sat")
        o_s = pwl(m, SIG_TABLE, zo_sat, "sig_o")
        cq = Signal(signed(C_BITS))
        m.d.comb += cq.eq(_rnd(s_c, Q - GATE_FRAC))
        c16 = saturate(m, cq, 16, "c16")
        tanh_c = pwl(m, TANH_TABLE, c16, "tanh_c")
        mm = Signal(signed(36))
        m.d.comb += mm.eq(_rnd(o_s * tanh_c, Q))
        m_out = saturate(m, mm, 16, "m_sat")
        m.d.comb += [self.m_valid.eq(s_valid), self.m_addr.eq(s_cell), self.m.eq(m_out)]
        return m
