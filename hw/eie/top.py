"""EIEArray: the whole EIE engine -- central control, scanner, N PEs -- with its host ports.

A run, as the host sees it::

    load port   (idle)  write sparse-matrix, pointer, bias words (N PEs at once),
                        the layer table and codebooks (only when they change)
    x_in        (idle)  stream the cols_0 input activations, j = 0, 1, ...
    start               pulse, with n_layers
    ...                 CLEAR (zero accumulators; only after a reset), then per layer
                        [CODEBOOK (with a codebook memory: the layer's entries to the PEs)]
                        COMPUTE (scan, broadcast, multiply-accumulate) -> DRAIN (output stage)
    done                pulse when the last layer's activations are written
    y_out               streams the last layer's rows, i = 0, 1, ...

Latency per layer: (nonzero activations + all-zero groups) broadcast cycles, or the slowest
PE's (real entries + padding-only words), whichever is larger, plus ~6 cycles of pipeline
and ``rows_pe`` output-stage cycles.

Counters: ``cycles`` counts from ``start`` to ``done``; ``stat`` holds every PE's counters
(:data:`~.pe.COUNTERS`, 32 bits each, PE k counter c at bits ``[(5k + c) * 32 +: 32]``).
``layer_done`` pulses at the end of each layer so a testbench can snapshot them.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from sparsa.sw.eie.memmap import LAYER_FIELDS
from sparsa.sw.eie.protocol import COUNTERS, LAYER_STRIDE, LoadKind

from sparsa.hw.eie.arith import ArithmeticUnit
from sparsa.hw.eie.codebooks import codebook_store
from sparsa.hw.eie.layouts import ACT, drain_signature, layer_signature, row_bits
from sparsa.hw.eie.lstm_ew import LSTMElementwise
from sparsa.hw.eie.pe import ProcessingElement
from sparsa.hw.eie.scanner import ActivationScanner

__all__ = ["EIEArray"]


class EIEArray(wiring.Component):
    """The EIE PE array (see module docstring).

    Parameters
    ----------
    cfg : EIEConfig
    memory_map : sparsa.sw.eie.memmap.MemoryMap, optional
        Initial contents of every memory and of the layer table (e.g. from a pack).

    Members
    -------
    x_in : In(stream.Signature(signed(16)))
    y_out : Out(stream.Signature(signed(16)))
    start : In(1), n_layers : In(7), y_skip : In(1), lstm_clear : In(1)
        ``y_skip``: leave the result in the activation file instead of streaming it on y_out.
    rb_addr : In, rb_data : Out(16 N)
        While idle, group ``rb_addr`` of the last result (row ``rb_addr * N + k`` at bits
        ``[16k +: 16]``), one cycle after the address. With ``ld_kind`` ACT (6) the load port
        writes input activations N at a time: testbenches use these two to move whole vectors.
    busy : Out(1), done : Out(1), layer_done : Out(1)
    ld_valid : In(1), ld_kind : In(LoadKind), ld_addr : In(32), ld_mask : In(N), ld_data : In(64 N)
    cycles : Out(32), stat : Out(160 N)
    abort : In(1), only with ``soft_reset=True``
        A soft reset: the control logic and every PE are in their reset state from the next
        cycle on (the PEs a cycle later, through their registered reset copies). The memories
        and the layer table are not reset (they are ``reset_less``), so the model stays loaded
        and the next run is clean, exactly as after ``rst``.
    """

    PE_MODULE = "sparsa_eie_pe"

    def __init__(self, cfg, memory_map=None, *, shared_pe=False, soft_reset=False):
        self.cfg = cfg
        self.mm = memory_map
        self.soft_reset = soft_reset
        # shared_pe: instantiate the PEs as N copies of one Verilog module (PE_MODULE, generated
        # separately by sparsa.hw.eie.verilog) instead of elaborating N inlined copies. Same
        # hardware; Verilog generation and Verilator compilation get ~N times cheaper. Needs
        # identical PEs, so only without memory initial contents; not for Amaranth simulation.
        self.shared_pe = shared_pe
        if shared_pe and memory_map is not None:
            raise ValueError("shared_pe needs identical PEs: give no memory_map")
        if memory_map is not None:
            cfg.check_fits(memory_map)
        n = cfg.pes
        super().__init__({
            "x_in": In(stream.Signature(ACT)),
            "y_out": Out(stream.Signature(ACT)),
            "start": In(1), "n_layers": In(7), "y_skip": In(1), "lstm_clear": In(1),
            "rb_addr": In(max(1, (cfg.act_depth - 1).bit_length())), "rb_data": Out(16 * n),
            "busy": Out(1), "done": Out(1), "layer_done": Out(1),
            "ld_valid": In(1), "ld_kind": In(LoadKind), "ld_addr": In(32),
            "ld_mask": In(n), "ld_data": In(64 * n),
            "cycles": Out(32),
            "stat": Out(32 * len(COUNTERS) * n),
            **({"abort": In(1)} if soft_reset else {}),
        })

    def _pe_init(self, k):
        mm = self.mm
        if mm is None:
            return {}
        to_list = lambda a: [int(v) for v in a]
        init = {"spm": to_list(mm.spm[k]), "ptr_even": to_list(mm.ptr_even[k]),
                "ptr_odd": to_list(mm.ptr_odd[k]), "bias": to_list(mm.bias[k])}
        if mm.peep is not None:
            init["peep"] = to_list(mm.peep[k])
        return init

    def _pe_instance(self, m, k):
        """An interface object shaped like a ProcessingElement, wired to an Instance of it."""
        proto = getattr(self, "_pe_proto", None)
        if proto is None:
            # Only its signature is used: it is never elaborated here.
            proto = self._pe_proto = ProcessingElement(self.cfg)
            proto._MustUse__silence = True
        pe = proto.signature.create(path=(f"pe{k}",))
        pe.act_addr_bits = proto.act_addr_bits
        ports = {}
        for path, member, value in proto.signature.flatten(pe):
            name = "__".join(str(p) for p in path)
            ports[("i_" if member.flow == wiring.In else "o_") + name] = value
        m.submodules[f"pe{k}"] = Instance(self.PE_MODULE, i_clk=ClockSignal(), i_rst=self._pe_reset(m, k), **ports)
        return pe

    def _pe_reset(self, m, k):
        """PE k's own copy of the reset, registered once.

        One reset net to every flip-flop of every PE spans the die: on the 16-PE ULX3S build
        nextpnr's router2 gave it 12.95 ns of wire (the critical path, 65.61 MHz). A copy per
        PE is a 16-sink net, then one net inside each PE's region. It lags the array's reset
        by a cycle; the control logic is idle for much longer than that after a reset.
        """
        rst = Signal(name=f"pe{k}_rst", init=1, reset_less=True)
        m.d.sync += rst.eq(ResetSignal() | self.abort if self.soft_reset else ResetSignal())
        return rst

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.pes
        rb = row_bits(cfg)

        # ---- layer table (registers, loadable; reset_less like the memories, so a reset in
        # the middle of a run keeps the loaded model) -----------------------------------------
        L = cfg.max_layers
        widths = {"cols": cfg.col_bits, "rows": cfg.col_bits, "rows_pe": rb,
                  "ptr_base": max(1, (cfg.ptr_words - 1).bit_length()),
                  "bias_base": max(1, (cfg.bias_words - 1).bit_length()),
                  "shift": 6, "relu": 1, "ew": 1}
        table = {f: [] for f in LAYER_FIELDS}
        for li in range(L):
            entry = self.mm.layers[li] if self.mm is not None and li < len(self.mm.layers) else None
            for f in LAYER_FIELDS:
                init = getattr(entry, f) if entry is not None else 0
                table[f].append(Signal(widths[f], init=int(init), reset_less=True, name=f"layer{li}_{f}"))
        ld_data0 = self.ld_data[0:64]
        with m.If(self.ld_valid & (self.ld_kind == LoadKind.LAYER)):
            for li in range(L):
                for fi, f in enumerate(LAYER_FIELDS):
                    with m.If(self.ld_addr == li * LAYER_STRIDE + fi):
                        m.d.sync += table[f][li].eq(ld_data0)
        m.submodules.codebooks = books = codebook_store(cfg, self.mm)
        m.d.comb += [books.ld_en.eq(self.ld_valid & (self.ld_kind == LoadKind.CODEBOOK)),
                     books.ld_addr.eq(self.ld_addr), books.ld_data.eq(ld_data0)]

        layer = Signal(range(max(2, L + 1)))
        cur = {f: Signal(widths[f], name=f"cur_{f}") for f in LAYER_FIELDS}
        for f in LAYER_FIELDS:
            m.d.comb += cur[f].eq(Array(table[f])[layer])
        m.d.comb += books.layer.eq(layer)
        parity = Signal()          # layer L reads file (L % 2), writes the other
        m.d.comb += parity.eq(layer[0])

        # ---- PEs and scanner --------------------------------------------------------------
        pes = []
        for k in range(n):
            if self.shared_pe:
                pe = self._pe_instance(m, k)
            else:
                pe = ProcessingElement(cfg, init=self._pe_init(k))
                # The PE's logic runs in a domain of its own: the same clock, its own reset.
                m.domains += ClockDomain(f"pe{k}", local=True)
                m.d.comb += [ClockSignal(f"pe{k}").eq(ClockSignal()),
                             ResetSignal(f"pe{k}").eq(self._pe_reset(m, k))]
                m.submodules[f"pe{k}"] = DomainRenamer(f"pe{k}")(pe)
            pes.append(pe)
        m.submodules.scanner = scan = ActivationScanner(cfg)
        # The broadcast goes when every queue had room a cycle ago (registered: see
        # ActivationQueue); the scanner's output register holds it otherwise.
        all_ready = Signal()
        m.d.sync += all_ready.eq(Cat(*[pe.bcast_room for pe in pes]).all())
        m.d.comb += scan.o.ready.eq(all_ready)
        m.d.comb += scan.rd_data.eq(Cat(*[pe.act_rd_data for pe in pes]))
        m.d.comb += self.rb_data.eq(scan.rd_data)
        # Registered (as each PE's `idle` is): it reads "idle two cycles ago", which is idle
        # now too once the scan is over and its last broadcast has reached the queues.
        all_idle = Signal()
        m.d.sync += all_idle.eq(Cat(*[pe.idle for pe in pes]).all())

        # Control signals shared by every PE.
        c_clear = Signal()         # LSTM: this run starts from c = 0 (latched at start)
        drain = Signal()
        drain_row = Signal(rb)
        drain_write = Signal()
        counting = Signal()
        count_clear = Signal()
        act_rd_addr = Signal(pes[0].act_addr_bits)
        act_rd_sel = Signal()
        xin_pe = Signal(range(max(2, n)))
        xin_addr = Signal(pes[0].act_addr_bits)
        xin_en = Signal()
        # Wide input load (N activations a cycle through the load port): for testbenches.
        ld_act = Signal()
        m.d.comb += ld_act.eq(self.ld_valid & (self.ld_kind == LoadKind.ACT))
        # The layer entry and the output-stage control, the same for every PE: one driver each,
        # connected to all PEs.
        layer_bus = layer_signature(cfg).create(path=("layer",))
        drain_bus = drain_signature(cfg).create(path=("drain",))
        m.d.comb += [
            layer_bus.ptr_base.eq(cur["ptr_base"]), layer_bus.shift.eq(cur["shift"]),
            layer_bus.relu.eq(cur["relu"]), layer_bus.dest_sel.eq(~parity),
            layer_bus.ew.eq(cur["ew"]), layer_bus.c_clear.eq(c_clear),
            drain_bus.drain.eq(drain), drain_bus.row.eq(drain_row), drain_bus.write.eq(drain_write),
            drain_bus.bias_addr.eq(cur["bias_base"] + drain_row),
        ]
        m.d.comb += layer_bus.codebook.eq(books.current)
        connect(m, layer_bus, *[pe.layer for pe in pes])
        connect(m, drain_bus, *[pe.drain for pe in pes])
        for k, pe in enumerate(pes):
            m.d.comb += [
                pe.bcast.valid.eq(scan.o.valid & all_ready),
                pe.bcast.p.eq(scan.o.p),
                pe.act_rd_addr.eq(act_rd_addr), pe.act_rd_sel.eq(act_rd_sel),
                pe.act_ld_en.eq((xin_en & (xin_pe == k)) | (ld_act & self.ld_mask[k])),
                pe.act_ld_addr.eq(Mux(ld_act, self.ld_addr, xin_addr)),
                pe.act_ld_data.eq(Mux(ld_act, self.ld_data[64 * k:64 * k + 16], self.x_in.payload)),
                # PE k's lane of the wide load port.
                pe.ld.en.eq(self.ld_valid & self.ld_mask[k]), pe.ld.kind.eq(self.ld_kind),
                pe.ld.addr.eq(self.ld_addr), pe.ld.data.eq(self.ld_data[64 * k:64 * (k + 1)]),
                pe.counting.eq(counting), pe.stall.eq(scan.o.valid), pe.count_clear.eq(count_clear),
            ]
            for c, name in enumerate(COUNTERS):
                base = (len(COUNTERS) * k + c) * 32
                m.d.comb += self.stat[base:base + 32].eq(getattr(pe, f"cnt_{name}"))

        # ---- central control FSM -------------------------------------------------------------
        n_layers = Signal.like(self.n_layers)
        y_skip = Signal()
        row = Signal(rb + 1)
        wait = Signal(2)
        out_i = Signal(cfg.col_bits + 1)
        out_pe = Signal(range(max(2, n)))
        out_addr = Signal(pes[0].act_addr_bits)
        pe_data = Array([pe.act_rd_data for pe in pes])
        cycles = self.cycles
        m.d.comb += [scan.cols.eq(cur["cols"]), scan.src_sel.eq(parity)]

        # Accumulators are zero after every layer (the output stage clears behind itself); only
        # a reset in the middle of a run can leave garbage, so only then is a CLEAR pass needed.
        dirty = Signal(init=1)
        last_rows = Signal(cfg.col_bits)
        m.d.comb += last_rows.eq(Array(table["rows"])[n_layers - 1])

        with m.FSM(name="ccu") as fsm:
            with m.State("IDLE"):
                m.d.comb += [self.x_in.ready.eq(1), xin_en.eq(self.x_in.valid),
                             # Wide read-back of the last result: group rb_addr, latency 1.
                             act_rd_addr.eq(self.rb_addr), act_rd_sel.eq(parity)]
                with m.If(self.x_in.valid):
                    with m.If(xin_pe == n - 1):
                        m.d.sync += [xin_pe.eq(0), xin_addr.eq(xin_addr + 1)]
                    with m.Else():
                        m.d.sync += xin_pe.eq(xin_pe + 1)
                with m.If(self.start):
                    m.d.comb += count_clear.eq(1)
                    m.d.sync += [n_layers.eq(self.n_layers), y_skip.eq(self.y_skip), layer.eq(0), row.eq(0),
                                 c_clear.eq(self.lstm_clear),
                                 cycles.eq(0), xin_pe.eq(0), xin_addr.eq(0),
                                 out_pe.eq(0), out_addr.eq(0)]
                    with m.If(dirty):
                        m.next = "CLEAR"
                    with m.Else():
                        m.next = "LAYER"
            with m.State("CLEAR"):
                # Accumulators may hold garbage after a reset in the middle of a run.
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += [drain.eq(1), drain_row.eq(row)]
                m.d.sync += row.eq(row + 1)
                with m.If(row == cfg.max_rows_pe - 1):
                    m.d.sync += [row.eq(0), dirty.eq(0)]
                    m.next = "LAYER"
            with m.State("LAYER"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(layer == n_layers):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += out_i.eq(0)
                    with m.If(y_skip):
                        m.next = "IDLE"       # results stay in the file for rb_addr/rb_data
                    with m.Else():
                        m.next = "OUT_ADDR"
                with m.Else():
                    if books.FETCH_CYCLES:
                        m.d.comb += books.fetch.eq(1)
                        m.next = "CODEBOOK"
                    else:
                        m.d.comb += scan.start.eq(1)
                        m.d.sync += wait.eq(3)
                        m.next = "COMPUTE"
            if books.FETCH_CYCLES:
                with m.State("CODEBOOK"):
                    # A codebook memory (EIEConfig.codebooks): the layer's entries come to the PEs.
                    m.d.sync += cycles.eq(cycles + 1)
                    with m.If(books.ready):
                        m.d.comb += scan.start.eq(1)
                        m.d.sync += wait.eq(3)
                        m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += [counting.eq(1), act_rd_addr.eq(scan.rd_addr), act_rd_sel.eq(scan.rd_sel)]
                # Wait a few cycles after the scan ends so the last broadcast reaches the queues.
                with m.If(scan.busy):
                    m.d.sync += wait.eq(3)
                with m.Elif(wait != 0):
                    m.d.sync += wait.eq(wait - 1)
                with m.Elif(all_idle):
                    m.d.sync += row.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += [drain.eq(row < cur["rows_pe"]), drain_row.eq(row), drain_write.eq(1)]
                m.d.sync += row.eq(row + 1)
                # The output stage's latency for the last row's write into the destination
                # file (more through the LSTM element-wise unit's pipeline, in LSTM builds).
                ew_wait = cur["ew"] * LSTMElementwise.LATENCY if cfg.lstm else 0
                with m.If(row == cur["rows_pe"] + ew_wait
                          + ProcessingElement.CONTROL_LATENCY + (ArithmeticUnit.out_latency(cfg) - 1)):
                    m.d.comb += self.layer_done.eq(1)
                    m.d.sync += [layer.eq(layer + 1), row.eq(0)]
                    m.next = "LAYER"
            with m.State("OUT_ADDR"):
                # Result of the last layer sits in file (n_layers % 2).
                m.d.comb += [act_rd_addr.eq(out_addr), act_rd_sel.eq(parity)]
                with m.If(out_i == last_rows):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "OUT_DATA"
            with m.State("OUT_DATA"):
                m.d.comb += [self.y_out.valid.eq(1), self.y_out.payload.eq(pe_data[out_pe]),
                             act_rd_addr.eq(out_addr), act_rd_sel.eq(parity)]
                with m.If(self.y_out.ready):
                    m.d.sync += out_i.eq(out_i + 1)
                    with m.If(out_pe == n - 1):
                        m.d.sync += [out_pe.eq(0), out_addr.eq(out_addr + 1)]
                    with m.Else():
                        m.d.sync += out_pe.eq(out_pe + 1)
                    m.next = "OUT_ADDR"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        # The soft reset reaches this module's own flip-flops here, the PEs through _pe_reset.
        return ResetInserter(self.abort)(m) if self.soft_reset else m

