"""Arithmetic unit: codebook lookup, multiply by x_j, accumulate, and the output stage.

Compute (five stages, up to ``cfg.macs`` entries per cycle): one multiplier and one bank of
accumulators per slot of the issue. With ``cfg.acc_banks == "full"`` (the default) every
bank holds **all** of the PE's rows, so that the two entries of a step can be any two entries
(no row-parity constraint), and the output stage adds the banks' copies of a row together;
the partial sums are exact (``cfg.acc_bits`` covers every product of the row), so splitting a
row's sum over two banks changes nothing in the result. With ``"split"`` bank ``b`` holds
the rows ``r % 2 == b`` at ``r // 2`` (half the memory) and the reader puts each entry in the
slot of its row's bank.

1. ``c``: look up ``codebook[v]`` (a 16-way multiplexer) and register it with ``x_j``;
2. ``m``: register the operands again, so that they can sit next to the multiplier block;
3. ``q``: multiply (the multiplier block between two registers of its own), and read the
   accumulator of ``row``;
4. ``p``: register the product again, next to the accumulator;
5. add and write the accumulator back.

Why stages 2 and 4: on an ECP5 the MULT18X18D blocks sit in a few rows of the die, and
without them the operand and product wires crossed half of it (codebook register -> DSP ->
product register: 11.09 ns, 6.64 ns of it routing; 90.19 MHz for 16 PEs on the ULX3S-85F).
They add two cycles of latency per layer, not per entry.

``cfg.multiplier`` says where the ``m`` operand registers and the ``q`` product register
are. ``"generic"``: fabric flip-flops around a ``*`` (any target; yosys maps the multiply).
That was not enough on its own: nextpnr left those flip-flops 25 to 30 rows from the DSP
(10.69 ns, 93.50 MHz). ``"ecp5"``: a MULT18X18D instance whose own input registers are
``m`` and whose output register is ``q`` (same latency, same arithmetic), so that path stays
inside the block (104.31 MHz with split banks; see the README). Simulation uses sparsa's behavioural model of
the block, ``sim/models/MULT18X18D.v``.

Back-to-back hits on the same row (the last row of column j and the first of column j+1)
are EIE's bypass path. An entry reads its accumulator in stage ``m``, two cycles before its
write in stage ``p``; the read port is transparent for the write of the entry two ahead (in
the read's cycle), and in stage ``q`` the sum of the entry just ahead replaces the read value
when it hits the same row. So the add in ``p`` starts from a flip-flop: the block RAM's
clock-to-out and the bypass multiplexer are off the read-add-write loop, the UP5K build's
critical path. (A carry-select add and a registered write, tried as well, gained the UP5K
2-PE harness about 1.5 MHz, but cost the iCEBreaker link system the 150 logic cells that
kept the digits MLP in the UP5K.)

Output stage (driven by the central control, one row per cycle, :meth:`ArithmeticUnit.out_latency`
= 5 cycles from ``drain`` to ``y_valid`` with one bank, 6 with two: the banks' sum has a stage
of its own, one stage per carry chain or shifter): ``acc + bias``, rounding
shift ``(a + 2^(S-1)) >> S``, saturation to int16 and optional ReLU, each registered -- exactly
:mod:`sparsa.sw.eie.golden` -- and the accumulator is cleared behind it for the next layer.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie.format import BIAS_BITS

from sparsa.hw.eie.layouts import ACT, codebook_layout, issue_layout, row_bits

__all__ = ["ArithmeticUnit", "saturate"]


def saturate(m, value, bits, name):
    """A new ``signed(bits)`` signal holding ``value`` clamped to its range (combinational).

    A signed value fits when its bits from ``bits - 1`` up are all equal (all sign): a
    reduction of those bits, with no carry chain. The two comparisons against the range's ends
    it replaces were two carry chains as wide as the value (the UP5K build's critical path
    after the accumulate's).
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = Signal(signed(bits), name=name)
    value = Value.cast(value)
    if not value.shape().signed or len(value) <= bits:
        with m.If(value > hi):
            m.d.comb += out.eq(hi)
        with m.Elif(value < lo):
            m.d.comb += out.eq(lo)
        with m.Else():
            m.d.comb += out.eq(value)
        return out
    v = Signal(value.shape(), name=f"{name}_in")
    m.d.comb += v.eq(value)
    top = v[bits - 1:]
    with m.If(top.all() | ~top.any()):
        m.d.comb += out.eq(v[:bits])
    with m.Elif(v[-1]):
        m.d.comb += out.eq(lo)
    with m.Else():
        m.d.comb += out.eq(hi)
    return out


def _ecp5_registered_multiplier(a, b, product):
    """ECP5 MULT18X18D computing ``product = a * b`` (signed 16 x 16) two cycles later.

    The block's own input registers hold ``a`` and ``b`` and its output register the
    product, so the multiplier needs no wires to fabric flip-flops, which the placer
    left up to 30 rows away (operand register -> MULT18X18D -> product register, 10.69 ns on
    the 16-PE ULX3S build). Same timing as the generic ``m`` and ``q`` registers. The 16-bit
    operands are sign-extended to the block's 18 bits and SIGNEDA/SIGNEDB are tied high, as
    yosys's own mapping of a signed multiply does; the registers are always enabled (CE0 = 1)
    and never reset (RST0 = 0): their contents only matter under the stages' valid bits,
    which are reset. Yosys ships only a blackbox of the block: simulations
    add ``sim/models/MULT18X18D.v`` (:func:`sparsa.sim.eie.runner.primitive_models`).
    """
    a18, b18, p = Cat(a, a[-1], a[-1]), Cat(b, b[-1], b[-1]), Signal(36)
    ports = {**{f"i_A{i}": a18[i] for i in range(18)}, **{f"i_B{i}": b18[i] for i in range(18)},
             **{f"o_P{i}": p[i] for i in range(36)}}
    inst = Instance("MULT18X18D",
                    p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
                    p_REG_PIPELINE_CLK="NONE", p_GSR="DISABLED",
                    i_CLK0=ClockSignal(), i_CE0=C(1, 1), i_RST0=C(0, 1),
                    i_SIGNEDA=C(1, 1), i_SIGNEDB=C(1, 1), i_SOURCEA=C(0, 1), i_SOURCEB=C(0, 1),
                    **ports)
    m = Module()
    m.submodules.dsp = inst
    m.d.comb += product.eq(p[:32])
    return m


class ArithmeticUnit(wiring.Component):
    """Multiply-accumulate into the PE's accumulators, then the bias/shift/saturate stage.

    Members
    -------
    i : In(stream.Signature(issue_layout))
        Always ready: one entry per bank per cycle.
    codebook : In(codebook_layout)
        The current layer's 16 shared values.
    drain : In(1)
        Output phase: ``drain_row`` is valid this cycle (the compute port is idle then).
    drain_row : In(row bits)
    bias_addr : In
        Bias word for ``drain_row`` (layer table ``bias_base`` + row).
    shift : In(6), relu : In(1)
    y_valid : Out(1), y_row : Out, y : Out(signed(16))
        The finished activation of a row, :meth:`out_latency` cycles after ``drain``.
    ld_bias, ld_addr, ld_data : In
        Load port of the bias memory.
    busy : Out(1)
    """

    @staticmethod
    def out_latency(cfg):
        """Cycles from ``drain`` to ``y_valid``: 5, plus one for the banks' sum with two full banks."""
        return 5 + (cfg.macs > 1 and not cfg.split_banks)

    def __init__(self, cfg, *, init_bias=()):
        self.cfg = cfg
        self._init_bias = list(init_bias)
        self.rb = row_bits(cfg)
        self.bias_addr_bits = max(1, (cfg.bias_words - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(issue_layout(cfg))),
            "codebook": In(codebook_layout),
            "drain": In(1), "drain_row": In(self.rb), "bias_addr": In(self.bias_addr_bits),
            "shift": In(6), "relu": In(1),
            "y_valid": Out(1), "y_row": Out(self.rb), "y": Out(ACT),
            "ld_bias": In(1), "ld_addr": In(32), "ld_data": In(64),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        banks = cfg.macs
        split = cfg.split_banks             # row r in bank r % 2 at r // 2 (else every row in every bank)
        at = (lambda row: row >> 1) if split else (lambda row: row)
        acc_shape = signed(cfg.acc_bits)
        m.submodules.bias = bias = Memory(shape=signed(BIAS_BITS), depth=cfg.bias_words,
                                          init=self._init_bias)
        bias_wr = bias.write_port()
        bias_rd = bias.read_port()
        m.d.comb += [bias_wr.addr.eq(self.ld_addr), bias_wr.data.eq(self.ld_data),
                     bias_wr.en.eq(self.ld_bias)]
        m.d.comb += self.i.ready.eq(1)

        # ---- output stage control (same cycle timing as one compute stage) -----------------
        d_valid = Signal()
        d_row = Signal(self.rb)
        m.d.sync += [d_valid.eq(self.drain), d_row.eq(self.drain_row)]
        m.d.comb += [bias_rd.addr.eq(self.bias_addr), bias_rd.en.eq(1)]

        # ---- one accumulator bank (and its multiplier) per MAC -------------------------------
        acc_out = []
        stage_valids = []
        for b in range(banks):
            slot = self.i.p.slot[b]
            acc = Memory(shape=acc_shape, depth=cfg.acc_bank_depth, init=[])
            m.submodules[f"acc{b}"] = acc
            acc_wr = acc.write_port()
            # Transparent: same-row read in the write cycle sees the new sum (the bypass).
            acc_rd = acc.read_port(transparent_for=(acc_wr,))
            c_valid = Signal(name=f"c_valid{b}")
            c_row = Signal(self.rb, name=f"c_row{b}")
            c_cb = Signal(signed(16), name=f"c_cb{b}")
            c_x = Signal(signed(16), name=f"c_x{b}")
            m.d.sync += [
                c_valid.eq(self.i.valid & slot.valid), c_row.eq(slot.row),
                c_cb.eq(self.codebook[slot.v]), c_x.eq(slot.x),
            ]
            m_valid = Signal(name=f"m_valid{b}")
            m_row = Signal(self.rb, name=f"m_row{b}")
            m.d.sync += [m_valid.eq(c_valid), m_row.eq(c_row)]
            q_valid = Signal(name=f"q_valid{b}")
            q_prod = Signal(signed(32), name=f"q_prod{b}")
            q_addr = Signal(self.rb, name=f"q_addr{b}")      # the row's place in the bank
            m.d.sync += [q_valid.eq(m_valid), q_addr.eq(at(m_row))]
            if cfg.multiplier == "ecp5":
                m.submodules[f"mult{b}"] = _ecp5_registered_multiplier(c_cb, c_x, q_prod)
            else:
                m_cb = Signal(signed(16), name=f"m_cb{b}")
                m_x = Signal(signed(16), name=f"m_x{b}")
                m.d.sync += [m_cb.eq(c_cb), m_x.eq(c_x), q_prod.eq(m_cb * m_x)]
            p_valid = Signal(name=f"p_valid{b}")
            p_addr = Signal(self.rb, name=f"p_addr{b}")
            p_prod = Signal(signed(32), name=f"p_prod{b}")
            m.d.sync += [
                p_valid.eq(q_valid),
                p_addr.eq(q_addr),
                p_prod.eq(q_prod),
            ]
            # Read two cycles before the write of the same entry (stage m). The write of the
            # entry two ahead lands in that cycle: the transparent read port covers it. The
            # write of the entry just ahead lands in the next cycle (stage q), and its sum
            # replaces the read value there when it hits the same row. The drain reads only
            # while the compute stages are empty (the controller drains once every PE is idle).
            with m.If(self.drain):
                m.d.comb += acc_rd.addr.eq(at(self.drain_row))
            with m.Else():
                m.d.comb += acc_rd.addr.eq(at(m_row))
            q_acc = Signal(acc_shape, name=f"q_acc{b}")
            hit = Signal(name=f"hit{b}")
            m.d.comb += hit.eq(acc_wr.en & (acc_wr.addr == q_addr))
            m.d.sync += q_acc.eq(Mux(hit, acc_wr.data, acc_rd.data))
            mine = (d_row[0] == b) if split else C(1)
            with m.If(d_valid & mine):
                # Clear behind the output stage so the next layer starts from zero.
                m.d.comb += [acc_wr.addr.eq(at(d_row)), acc_wr.data.eq(0), acc_wr.en.eq(1)]
            with m.Elif(~d_valid):
                m.d.comb += [acc_wr.addr.eq(p_addr), acc_wr.data.eq(q_acc + p_prod), acc_wr.en.eq(p_valid)]
            acc_out.append(acc_rd.data)
            stage_valids += [c_valid, m_valid, q_valid, p_valid]

        # |total| < 2^acc_bits, so a shift beyond acc_bits rounds everything to 0 exactly.
        # Four registered steps: add bias, add the rounding constant, shift, saturate; with two
        # banks a fifth before them adds the banks' copies of the row (its own carry chain).
        acc_row = Signal(acc_shape)
        bias_row = Signal(signed(BIAS_BITS))
        if banks > 1 and not split:
            # The banks' sum, cut to acc_bits: exact, since the row's whole sum fits there.
            s0_valid, s0_row = Signal(), Signal(self.rb)
            m.d.sync += [s0_valid.eq(d_valid), s0_row.eq(d_row),
                         acc_row.eq(sum(acc_out)), bias_row.eq(bias_rd.data)]
            d_valid, d_row = s0_valid, s0_row
        else:
            m.d.comb += [acc_row.eq(Mux(d_row[0], acc_out[1], acc_out[0]) if split else acc_out[0]),
                         bias_row.eq(bias_rd.data)]
        s1_valid, s2_valid, s3_valid = Signal(), Signal(), Signal()
        s1_row, s2_row, s3_row = Signal(self.rb), Signal(self.rb), Signal(self.rb)
        total = Signal(signed(cfg.acc_bits + 1))
        rounded = Signal(signed(cfg.acc_bits + 2))
        rounding = Signal(cfg.acc_bits + 1)
        shifted = Signal(signed(cfg.acc_bits + 2))
        # The layer's shift, copied here: it holds for the whole layer, and its wire from the
        # layer table in front of the rounding constant's decode and the rounding adder's carry
        # chain was the UP5K build's critical path (37 MHz).
        shift = Signal.like(self.shift)
        m.d.sync += shift.eq(self.shift)
        m.d.comb += rounding.eq((C(1, cfg.acc_bits + 2) << shift) >> 1)
        m.d.sync += [
            s1_valid.eq(d_valid), s1_row.eq(d_row), total.eq(acc_row + bias_row),
            s2_valid.eq(s1_valid), s2_row.eq(s1_row), rounded.eq(total + rounding),
            s3_valid.eq(s2_valid), s3_row.eq(s2_row),
            shifted.eq(Mux(shift > cfg.acc_bits, 0, rounded >> shift)),
        ]
        # Saturate and ReLU into a register of their own: the saturation compare is a carry
        # chain as wide as the accumulator, and the activation files it writes sit elsewhere
        # on the die (unregistered: 11.30 ns, 3.23 ns of it one wire; 88.46 MHz on the ULX3S).
        sat = saturate(m, shifted, ACT.width, "sat")
        s4_valid = Signal()
        s4_row = Signal(self.rb)
        s4_y = Signal(ACT)
        m.d.sync += [s4_valid.eq(s3_valid), s4_row.eq(s3_row), s4_y.eq(Mux(self.relu & sat[-1], 0, sat))]
        m.d.comb += [
            self.y_valid.eq(s4_valid), self.y_row.eq(s4_row), self.y.eq(s4_y),
            self.busy.eq(Cat(*stage_valids).any()),
        ]
        return m
