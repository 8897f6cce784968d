"""LSTM element-wise unit (ESE): gate nonlinearities, cell state and m_t = o * tanh(c_t), per PE.

It sits behind a PE's output stage while the gates layer drains. The gates layer's rows are
laid out so that local rows 4l, 4l+1, 4l+2, 4l+3 are gates i, f, g, o of the PE's cell l
(:mod:`sparsa.sw.lstm.pack`), so the four pre-activations of a cell arrive in that order. The
arithmetic is exactly :func:`sparsa.sw.eie.lstm_cell.cell_update`:

* i, f: sigmoid of the pre-activation plus the peephole term ``w * c_{t-1}``; g: tanh;
* with o: ``c_t = f c_{t-1} + i g`` (written back to the cell-state memory), then
  ``o = sigmoid(z_o + w_oc c_t)`` and ``m = o * tanh(c_t)``, written to the PE's destination
  activation file at address l: the next layer's input h = l * N + k.

Memories: cell state (int24, one word per local cell) and peephole weights (int16 Q3.12, one
word per local gate row: w_ic, w_fc, 0, w_oc), both read in the drain cycle (latency 1).

Pipelined so that each stage holds at most one multiply or one half of a table lookup (the
unit was the slowest logic of the 4-PE ESE build on an ECP5 when it did a gate in one cycle
and o and m in the next: three multiplies and a table lookup in series). Throughput: one
gate a cycle. Latency: ``LATENCY`` = 10 cycles from gate o's pre-activation to ``m_valid``.
Gates i, f and g reach their registers 4 cycles after they arrive, and gate o, which arrives
after them, uses those registers 4 cycles after it arrives; every value a gate needs travels
with it through the stages, so no hazard needs a stall.
"""

from types import SimpleNamespace

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie.lstm_cell import C_BITS, GATE_FRAC, PEEP_FRAC, Q, SIG_TABLE, TANH_TABLE

from sparsa.hw.eie.arith import saturate
from sparsa.hw.eie.layouts import ACT

__all__ = ["LSTMElementwise", "pwl_segment", "pwl_value"]


def _rnd(a, s):
    """Round half up and shift right (arithmetic): (a + 2^(s-1)) >> s."""
    return (a + (1 << (s - 1))) >> s


def _stage(module, name, **values):
    """Registers holding ``values`` one cycle later, as ``.<key>`` (named ``<name>_<key>``)."""
    regs = {}
    for key, value in values.items():
        value = Value.cast(value)
        reg = Signal(value.shape(), name=f"{name}_{key}")
        module.d.sync += reg.eq(value)
        regs[key] = reg
    return SimpleNamespace(**regs)


def pwl_segment(m, table, z, name):
    """First half of a piecewise-linear lookup of ``table`` (a ``PWLTable``) on signed ``z``:
    clamp to the table's range, then segment ``k`` and offset ``r`` (combinational)."""
    zc = Signal(signed(17), name=f"{name}_zc")
    with m.If(z < table.lo):
        m.d.comb += zc.eq(table.lo)
    with m.Elif(z > table.hi):
        m.d.comb += zc.eq(table.hi)
    with m.Else():
        m.d.comb += zc.eq(z)
    u = Signal(16, name=f"{name}_u")
    k = Signal(6, name=f"{name}_k")
    r = Signal(table.shift, name=f"{name}_r")
    m.d.comb += [u.eq(zc - table.lo), k.eq(u >> table.shift), r.eq(u[:table.shift])]
    return k, r


def pwl_value(m, table, k, r, name):
    """Second half: ``base[k] + ((slope[k] * r) >> shift)`` (combinational)."""
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
        The cell's output for the destination file, ``LATENCY`` cycles after its gate o.
    """

    LATENCY = 10

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
        # A cell's state is read for its four gates before its gate o writes it back, and not
        # again in the layer: no transparency needed.
        crd = cmem.read_port()
        m.d.comb += [prd.addr.eq(self.drain_row), crd.addr.eq(self.drain_row >> 2)]
        peep_shift = PEEP_FRAC + Q - GATE_FRAC

        # ---- every gate: the peephole term and the table lookup (stages 1 to 4) -------------
        # 1: the gate as it arrives, with the cell state and peephole weight read for it.
        s1 = _stage(m, "ew1", valid=self.y_valid & self.enable, gate=self.y_row[:2], cell=self.y_row >> 2,
                    y=self.y, c=Mux(self.clear, 0, crd.data), w=prd.data)
        # 2: the peephole product w * c_{t-1} (g's weight is 0; o's product is unused: o needs c_t).
        s2 = _stage(m, "ew2", valid=s1.valid, gate=s1.gate, cell=s1.cell, y=s1.y, c=s1.c, w=s1.w,
                    peep=s1.w * s1.c)
        # 3: the pre-activation with its peephole term, saturated; the tables' segments (the
        # sigmoid's for i and f, the tanh's for g).
        z_peep = saturate(m, s2.y + _rnd(s2.peep, peep_shift), 16, "z_peep")
        k_sig, r_sig = pwl_segment(m, SIG_TABLE, z_peep, "sig_if")
        k_tanh, r_tanh = pwl_segment(m, TANH_TABLE, s2.y, "tanh_g")
        s3 = _stage(m, "ew3", valid=s2.valid, gate=s2.gate, cell=s2.cell, y=s2.y, c=s2.c, w=s2.w,
                    k_sig=k_sig, r_sig=r_sig, k_tanh=k_tanh, r_tanh=r_tanh)
        # 4: the table values into the gate registers; gate o goes on with its cell's c_{t-1},
        # z_o and w_oc.
        sig_if = pwl_value(m, SIG_TABLE, s3.k_sig, s3.r_sig, "sig_if")
        tanh_g = pwl_value(m, TANH_TABLE, s3.k_tanh, s3.r_tanh, "tanh_g")
        i_s, f_s, g_s = Signal(signed(17)), Signal(signed(17)), Signal(signed(17))
        with m.If(s3.valid & (s3.gate == 0)):
            m.d.sync += i_s.eq(sig_if)
        with m.If(s3.valid & (s3.gate == 1)):
            m.d.sync += f_s.eq(sig_if)
        with m.If(s3.valid & (s3.gate == 2)):
            m.d.sync += g_s.eq(tanh_g)
        s4 = _stage(m, "ew4", valid=s3.valid & (s3.gate == 3), cell=s3.cell, y=s3.y, c=s3.c, w=s3.w)

        # ---- gate o: c_t, o and m (stages 5 to 10) --------------------------------------------
        # 5: the products of c_t = f c_{t-1} + i g (i, f, g of this cell: the next cell's i
        # reaches its register one cycle after this).
        s5 = _stage(m, "ew5", valid=s4.valid, cell=s4.cell, y=s4.y, w=s4.w, fc=f_s * s4.c, ig=i_s * g_s)
        # 6: c_t, saturated, written back.
        c_new = saturate(m, _rnd(s5.fc + s5.ig, Q), C_BITS, "c_new")
        m.d.comb += [cw.addr.eq(s5.cell), cw.data.eq(c_new), cw.en.eq(s5.valid)]
        s6 = _stage(m, "ew6", valid=s5.valid, cell=s5.cell, y=s5.y, w=s5.w, c=c_new)
        # 7: o's peephole product w_oc * c_t; tanh(c_t)'s segment.
        c16 = saturate(m, _rnd(s6.c, Q - GATE_FRAC), 16, "c16")
        k_tc, r_tc = pwl_segment(m, TANH_TABLE, c16, "tanh_c")
        s7 = _stage(m, "ew7", valid=s6.valid, cell=s6.cell, y=s6.y, peep=s6.w * s6.c, k_tc=k_tc, r_tc=r_tc)
        # 8: o's pre-activation and segment; tanh(c_t).
        zo = saturate(m, s7.y + _rnd(s7.peep, peep_shift), 16, "zo_sat")
        k_o, r_o = pwl_segment(m, SIG_TABLE, zo, "sig_o")
        tanh_c = pwl_value(m, TANH_TABLE, s7.k_tc, s7.r_tc, "tanh_c")
        s8 = _stage(m, "ew8", valid=s7.valid, cell=s7.cell, k_o=k_o, r_o=r_o, tanh_c=tanh_c)
        # 9: o.
        s9 = _stage(m, "ew9", valid=s8.valid, cell=s8.cell, tanh_c=s8.tanh_c,
                    o=pwl_value(m, SIG_TABLE, s8.k_o, s8.r_o, "sig_o"))
        # 10: m = o * tanh(c_t), registered for the activation file.
        m_out = saturate(m, _rnd(s9.o * s9.tanh_c, Q), 16, "m_sat")
        s10 = _stage(m, "ew10", valid=s9.valid, cell=s9.cell, m=m_out)
        m.d.comb += [self.m_valid.eq(s10.valid), self.m_addr.eq(s10.cell), self.m.eq(s10.m)]
        return m
