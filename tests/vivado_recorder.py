"""A recording stand-in for the Vivado Tcl commands sparsa's generated trees call.

:class:`Recorder` sources a generated ``.tcl`` file in a real Tcl interpreter (``tkinter.Tcl``)
in which every Vivado command the trees use is a recorder, and any other command that is not
plain Tcl is an error. The block-design commands check their arguments against a model of each
IP's pins and interfaces *as configured* (:data:`IP_TABLE`), written from the product guides
cited next to each entry. This is a structural check of the scripts, not a Vivado run: it
finds misspelt or unconfigured pins, unconnected clocks, unpinned IP versions and unchecked
runs; it knows nothing of timing, DRCs, IP parameter ranges or what Vivado's defaults are
beyond the few stated in the table.

Where the table does not know an IP's default for a property, it takes the strict reading:
a pin the design *uses* must be enabled by a property the design sets, and a port the design
*does not use* counts as enabled (so its clock must be connected) unless the design disables it.
"""

import re
import tkinter
from pathlib import Path

__all__ = ["IP_TABLE", "CATALOG", "Recorder", "RecorderError", "module_pins"]


class RecorderError(Exception):
    """A structural fault in the sourced Tcl (carries the Tcl file and line)."""


def _on(cfg, key, default):
    """A boolean CONFIG value; ``default`` None means the table does not know Vivado's default."""
    if key not in cfg:
        return default
    return str(cfg[key]).strip() in ("1", "true", "TRUE")


#
# The IP models. Each returns (pins {name: "I"/"O"}, interfaces {name: "M"/"S"}, clocks that
# validate_bd_design requires to be driven), for a CONFIG dict.
#

def _zynq_ultra_ps_e(cfg):
    # PG201 (v3.4) ch. "Design Flow Steps", "PS-PL Configuration" and UG1085 table 35-2: the
    # PS-PL AXI ports and the PSU__USE__* switch of each; each port has its own clock input
    # (PG201 "Port Descriptions": maxihpm0_fpd_aclk, ..., saxihp0_fpd_aclk, ...).
    # Vivado's default PS enables HPM0_FPD, HPM1_FPD and HPM0_LPD (issue 24's review; not
    # checked against a Vivado here): by the strict reading an unset master port is enabled.
    pins, intfs, clocks = {}, {}, []
    masters = {"M_AXI_GP0": ("M_AXI_HPM0_FPD", "maxihpm0_fpd_aclk"),
               "M_AXI_GP1": ("M_AXI_HPM1_FPD", "maxihpm1_fpd_aclk"),
               "M_AXI_GP2": ("M_AXI_HPM0_LPD", "maxihpm0_lpd_aclk")}
    # Slave ports: off unless enabled (the default PS has no PL-to-PS slave port).
    slaves = {"S_AXI_GP0": ("S_AXI_HPC0_FPD", "saxihpc0_fpd_aclk"),
              "S_AXI_GP1": ("S_AXI_HPC1_FPD", "saxihpc1_fpd_aclk"),
              "S_AXI_GP2": ("S_AXI_HP0_FPD", "saxihp0_fpd_aclk"),
              "S_AXI_GP3": ("S_AXI_HP1_FPD", "saxihp1_fpd_aclk"),
              "S_AXI_GP4": ("S_AXI_HP2_FPD", "saxihp2_fpd_aclk"),
              "S_AXI_GP5": ("S_AXI_HP3_FPD", "saxihp3_fpd_aclk"),
              "S_AXI_GP6": ("S_AXI_LPD", "saxi_lpd_aclk")}
    for key, (port, clk) in masters.items():
        if _on(cfg, f"PSU__USE__{key}", True):
            intfs[port], pins[clk] = "M", "I"
            clocks.append(clk)
    for key, (port, clk) in slaves.items():
        if _on(cfg, f"PSU__USE__{key}", False):
            intfs[port], pins[clk] = "S", "I"
            clocks.append(clk)
    # PG201 "Programmable Logic Clocks and Interrupts" / "PS-PL Configuration > General":
    # pl_clk0 with PSU__FPGA_PL0_ENABLE (on by default), pl_resetn0 with
    # PSU__NUM_FABRIC_RESETS >= 1 (1 by default), pl_ps_irq0 only with PSU__USE__IRQ0 = 1
    # (default not taken as known: the design must set it).
    if _on(cfg, "PSU__FPGA_PL0_ENABLE", True):
        pins["pl_clk0"] = "O"
    if int(cfg.get("PSU__NUM_FABRIC_RESETS", 1)) >= 1:
        pins["pl_resetn0"] = "O"
    if _on(cfg, "PSU__USE__IRQ0", None):
        pins["pl_ps_irq0"] = "I"
    return pins, intfs, clocks


def _processing_system7(cfg):
    # PG082 (v5.5) ch. "Port Descriptions" and "PS-PL Configuration"; UG585 ch. 5 (AXI ports).
    # M_AXI_GP0 is on by default (PCW_USE_M_AXI_GP0 = 1), the other AXI ports off; each
    # enabled port has an <PORT>_ACLK input that must be driven.
    pins, intfs, clocks = {}, {"DDR": "M", "FIXED_IO": "M"}, []     # PG082: always present
    for port, mode, default in (("M_AXI_GP0", "M", True), ("M_AXI_GP1", "M", False),
                                ("S_AXI_GP0", "S", False), ("S_AXI_GP1", "S", False),
                                ("S_AXI_ACP", "S", False), ("S_AXI_HP0", "S", False),
                                ("S_AXI_HP1", "S", False), ("S_AXI_HP2", "S", False),
                                ("S_AXI_HP3", "S", False)):
        if _on(cfg, f"PCW_USE_{port}", default):
            intfs[port], pins[f"{port}_ACLK"] = mode, "I"
            clocks.append(f"{port}_ACLK")
    # PG082 "Clocks and resets": FCLK_CLK0 / FCLK_RESET0_N are on by default
    # (PCW_EN_CLK0_PORT, PCW_EN_RST0_PORT); IRQ_F2P needs PCW_USE_FABRIC_INTERRUPT = 1 and
    # PCW_IRQ_F2P_INTR = 1 (PG082 "Interrupts").
    if _on(cfg, "PCW_EN_CLK0_PORT", True):
        pins["FCLK_CLK0"] = "O"
    if _on(cfg, "PCW_EN_RST0_PORT", True):
        pins["FCLK_RESET0_N"] = "O"
    if _on(cfg, "PCW_USE_FABRIC_INTERRUPT", None) and _on(cfg, "PCW_IRQ_F2P_INTR", None):
        pins["IRQ_F2P"] = "I"
    return pins, intfs, clocks


def _axi_dma(cfg):
    # PG021 (v7.1) ch. "Port Descriptions": S_AXI_LITE with s_axi_lite_aclk and axi_resetn
    # always; the scatter-gather engine (c_include_sg, on by default) adds M_AXI_SG and
    # m_axi_sg_aclk; each channel (c_include_mm2s / c_include_s2mm, on by default) adds its
    # memory-map master, its stream, its clock, its interrupt and its reset-out.
    pins = {"s_axi_lite_aclk": "I", "axi_resetn": "I"}
    intfs, clocks = {"S_AXI_LITE": "S"}, ["s_axi_lite_aclk"]
    if _on(cfg, "c_include_sg", True):
        intfs["M_AXI_SG"], pins["m_axi_sg_aclk"] = "M", "I"
        clocks.append("m_axi_sg_aclk")
    if _on(cfg, "c_include_mm2s", True):
        intfs.update(M_AXI_MM2S="M", M_AXIS_MM2S="M")
        pins.update(m_axi_mm2s_aclk="I", mm2s_introut="O", mm2s_prmry_reset_out_n="O")
        clocks.append("m_axi_mm2s_aclk")
    if _on(cfg, "c_include_s2mm", True):
        intfs.update(M_AXI_S2MM="M", S_AXIS_S2MM="S")
        pins.update(m_axi_s2mm_aclk="I", s2mm_introut="O", s2mm_prmry_reset_out_n="O")
        clocks.append("m_axi_s2mm_aclk")
    return pins, intfs, clocks


def _need(cfg, key):
    if key not in cfg:
        raise RecorderError(f"CONFIG.{key} is not set and the recorder's table has no default for it")
    return int(cfg[key])


def _smartconnect(cfg):
    # PG247 (v1.0) ch. "Port Descriptions": S00_AXI..S<NUM_SI-1>_AXI, M00_AXI..M<NUM_MI-1>_AXI,
    # aclk (aclk1.. only with NUM_CLKS > 1, not modelled) and aresetn. Defaults of NUM_SI /
    # NUM_MI are not in the table: the design must set both.
    intfs = {f"S{i:02d}_AXI": "S" for i in range(_need(cfg, "NUM_SI"))}
    intfs.update({f"M{i:02d}_AXI": "M" for i in range(_need(cfg, "NUM_MI"))})
    return {"aclk": "I", "aresetn": "I"}, intfs, ["aclk"]


def _proc_sys_reset(cfg):
    # PG164 (v5.0) ch. "Port Descriptions".
    pins = {"slowest_sync_clk": "I", "ext_reset_in": "I", "aux_reset_in": "I", "mb_debug_sys_rst": "I",
            "dcm_locked": "I", "mb_reset": "O", "bus_struct_reset": "O", "peripheral_reset": "O",
            "interconnect_aresetn": "O", "peripheral_aresetn": "O"}
    return pins, {}, ["slowest_sync_clk"]


def _xlconcat(cfg):
    # The Concat IP (xlconcat, Vivado IP catalog; PG201 "Programmable Logic Clocks and
    # Interrupts" recommends it for several PL-to-PS interrupts): In0..In<NUM_PORTS-1>, dout.
    # NUM_PORTS defaults to 2.
    pins = {f"In{i}": "I" for i in range(int(cfg.get("NUM_PORTS", 2)))}
    pins["dout"] = "O"
    return pins, {}, []


# name -> (pinned version, model, CONFIG keys the design may set that do not change the pins)
IP_TABLE = {
    "zynq_ultra_ps_e": ("3.5", _zynq_ultra_ps_e, {"PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"}),
    "processing_system7": ("5.5", _processing_system7, {"PCW_FPGA0_PERIPHERAL_FREQMHZ"}),
    # PG021 "Customizing and Generating the Core": widths, burst sizes, buffer length register.
    "axi_dma": ("7.1", _axi_dma, {"c_sg_length_width", "c_m_axis_mm2s_tdata_width",
                                  "c_s_axis_s2mm_tdata_width", "c_mm2s_burst_size", "c_s2mm_burst_size"}),
    "smartconnect": ("1.0", _smartconnect, set()),
    "proc_sys_reset": ("5.0", _proc_sys_reset, set()),
    "xlconcat": ("2.1", _xlconcat, set()),
}
# Keys the models read (so a misspelt key, e.g. PSU__USE_IRQ0, is refused rather than ignored).
_MODEL_KEYS = {
    "zynq_ultra_ps_e": {f"PSU__USE__{k}" for k in ("M_AXI_GP0", "M_AXI_GP1", "M_AXI_GP2", "IRQ0")}
    | {f"PSU__USE__S_AXI_GP{i}" for i in range(7)} | {"PSU__FPGA_PL0_ENABLE", "PSU__NUM_FABRIC_RESETS"},
    "processing_system7": {f"PCW_USE_{p}" for p in ("M_AXI_GP0", "M_AXI_GP1", "S_AXI_GP0", "S_AXI_GP1",
                                                     "S_AXI_ACP", "S_AXI_HP0", "S_AXI_HP1", "S_AXI_HP2",
                                                     "S_AXI_HP3", "FABRIC_INTERRUPT")}
    | {"PCW_EN_CLK0_PORT", "PCW_EN_RST0_PORT", "PCW_IRQ_F2P_INTR"},
    "axi_dma": {"c_include_sg", "c_include_mm2s", "c_include_s2mm"},
    "smartconnect": {"NUM_SI", "NUM_MI"},
    "proc_sys_reset": set(),
    "xlconcat": {"NUM_PORTS"},
}
CATALOG = {f"xilinx.com:ip:{n}:{v[0]}" for n, v in IP_TABLE.items()}


def module_pins(verilog_text, name):
    """Pins and inferred interfaces of a module reference, as IP integrator infers them from
    port-name prefixes (UG994 "Referencing RTL Modules": AXI signals grouped by prefix)."""
    body = re.search(rf"^module {name}\(.*?^endmodule", verilog_text, re.S | re.M)
    if body is None:
        raise RecorderError(f"module {name} not found in the module reference's source")
    pins = dict((n, "I" if d == "input" else "O")
                for d, n in re.findall(r"^\s*(input|output)\s+(?:\[[^\]]+\]\s*)?(\w+)\s*;", body.group(0), re.M))
    intfs = {}
    for p, d in pins.items():
        m = re.fullmatch(r"(\w+)_(awvalid|arvalid|tvalid)", p)
        if m:
            intfs[m.group(1)] = "S" if d == "I" else "M"
    return pins, intfs, [p for p in ("clk", "aclk") if pins.get(p) == "I"]


#
# The recorder
#

# Vivado commands that only need recording (their effect does not matter to the checks).
_PLAIN = ("save_bd_design", "report_utilization", "report_timing_summary", "write_mem_info")


class Recorder:
    """Source generated Tcl with the Vivado commands recorded and checked (see the module docstring).

    ``catalog`` is the set of IP VLNVs the pretend Vivado has; ``failing_runs`` names runs whose
    ``PROGRESS`` stays below 100%. Raises :class:`RecorderError` on the first structural fault
    and ``tkinter.TclError`` when the script itself stops (``error``).
    """

    def __init__(self, tree, *, catalog=CATALOG, failing_runs=()):
        self.tree = Path(tree)
        self.catalog, self.failing_runs = set(catalog), set(failing_runs)
        self.calls, self.cells, self.nets, self.intf_nets = [], {}, [], {}
        self.intf_ports = {}                 # scalar ports (create_bd_port) are not modelled
        self.project = self.design = None
        self.runs, self.unchecked, self.validated = {}, None, False
        self.tcl = tkinter.Tcl()
        self._fault = None
        self.tcl.createcommand("__rec", self._dispatch)
        self.tcl.eval("proc unknown args { __rec unknown [info frame -1] {*}$args }")
        for name in [m[4:] for m in dir(self) if m.startswith("cmd_")] + list(_PLAIN):
            self.tcl.eval(f"proc {name} args {{ __rec {name} [info frame -1] {{*}}$args }}")
        self.tcl.eval(f"cd {{{self.tree}}}")

    def source(self, name):
        """Source ``name`` (relative to the tree) as ``vivado -source`` would."""
        try:
            self.tcl.eval(f"source {{{name}}}")
        except tkinter.TclError:
            if self._fault:
                raise self._fault from None
            raise
        if self.unchecked:
            self._fail(f"{name} ends without checking run {self.unchecked}'s status after wait_on_run")
        return self

    # -- plumbing

    def _dispatch(self, name, frame, *args):
        where = self._where(frame)
        self.calls.append((name, args, where))
        try:
            fn = getattr(self, f"cmd_{name}", None)
            return "" if fn is None else (fn(*args) or "")
        except RecorderError as e:
            if self._fault is None:
                shown = " ".join(args if name == "unknown" else (name, *args))
                self._fault = RecorderError(f"{where}: {shown}: {e}")
            raise

    def _where(self, frame):
        get = lambda k: self.tcl.call("dict", "get", frame, k) \
            if self.tcl.call("dict", "exists", frame, k) in (1, "1", True) else "?"
        return f"{Path(str(get('file'))).name}:{get('line')}"

    @staticmethod
    def _fail(msg):
        raise RecorderError(msg)

    @staticmethod
    def _opts(args, flags=(), valued=()):
        """Split Tcl-style ``-flag`` / ``-opt value`` arguments from positional ones."""
        opts, pos, it = {}, [], iter(args)
        for a in it:
            if a in flags:
                opts[a] = True
            elif a in valued:
                opts[a] = next(it)
            elif a.startswith("-") and len(a) > 1 and not a[1].isdigit():
                raise RecorderError(f"option {a} is not modelled")
            else:
                pos.append(a)
        return opts, pos

    def _model(self, cell):
        kind, cfg = self.cells[cell]["kind"], self.cells[cell]["cfg"]
        if kind.startswith("module:"):
            src = self.tree / "sparsa_soc.v"
            return module_pins(src.read_text(), kind[7:])
        return IP_TABLE[kind][1](cfg)

    # -- unknown commands

    def cmd_unknown(self, *args):
        self._fail("not a Tcl command nor a Vivado command the recorder models")

    # -- project and files

    def cmd_create_project(self, *args):
        opts, pos = self._opts(args, ("-force",), ("-part",))
        if len(pos) != 2 or "-part" not in opts:
            self._fail("expected create_project [-force] NAME DIR -part PART")
        self.project = pos[0]

    def cmd_open_project(self, path):
        self.project = path

    def _need_project(self):
        if self.project is None:
            self._fail("no project is open (create_project or open_project first)")

    def cmd_add_files(self, *args):
        self._need_project()
        _, files = self._opts(args, (), ("-fileset",))
        for f in files:
            if not (self.tree / f).is_file():
                self._fail(f"{f} is not in the tree")

    cmd_current_fileset = lambda self, *args: "sources_1"                # noqa: E731

    def cmd_get_files(self, pattern):
        if pattern == f"{self.design}.bd":
            return pattern
        self._fail(f"no file {pattern} in the project")

    def cmd_set_property(self, *args):
        opts, pos = self._opts(args, (), ("-dict",))      # the -name/-value/-objects form: not used
        if "-dict" in opts:
            items = self.tcl.splitlist(opts["-dict"])
            props, objs = dict(zip(items[::2], items[1::2])), pos
        else:
            props, objs = {pos[0]: pos[1]}, pos[2:]
        objs = [o for obj in objs for o in self.tcl.splitlist(obj)]
        if not objs:
            self._fail("no object to set the property on")
        for obj in objs:
            if obj in self.cells:
                self._configure(obj, props)
            elif obj in ("sources_1",) and set(props) <= {"top"}:
                pass
            else:
                self._fail(f"setting {', '.join(props)} on {obj!r} is not modelled")

    def _configure(self, cell, props):
        kind = self.cells[cell]["kind"]
        known = _MODEL_KEYS.get(kind, set()) | (IP_TABLE[kind][2] if kind in IP_TABLE else set())
        for key, value in props.items():
            if not key.startswith("CONFIG.") or key[7:] not in known:
                self._fail(f"{key} of {kind} is not in the recorder's table (add it there, with its source)")
            self.cells[cell]["cfg"][key[7:]] = value

    # -- block design

    def cmd_create_bd_design(self, name):
        self._need_project()
        self.design = name

    def cmd_get_ipdefs(self, *args):
        _, pos = self._opts(args, ("-all",))
        pat = pos[0] if pos else "*"
        return " ".join(sorted(v for v in self.catalog if self.tcl.call("string", "match", pat, v) in (1, True)))

    def cmd_create_bd_cell(self, *args):
        if self.design is None:
            self._fail("no block design (create_bd_design first)")
        opts, pos = self._opts(args, (), ("-type", "-vlnv", "-reference"))
        (name,) = pos
        if "/" + name in self.cells:
            self._fail(f"cell {name} exists already")
        if opts.get("-type") == "module":
            self.cells["/" + name] = {"kind": "module:" + opts["-reference"], "cfg": {}}
        else:
            vlnv = opts.get("-vlnv", "")
            parts = vlnv.split(":")
            if len(parts) != 4 or not re.fullmatch(r"\d+\.\d+", parts[3]):
                self._fail(f"IP version not pinned: {vlnv!r} (expected vendor:library:name:version)")
            if vlnv not in self.catalog:
                self._fail(f"{vlnv} is not in this Vivado's IP catalog")
            if parts[2] not in IP_TABLE or IP_TABLE[parts[2]][0] != parts[3]:
                self._fail(f"{vlnv} has no entry in the recorder's IP table")
            self.cells["/" + name] = {"kind": parts[2], "cfg": {}}
        return "/" + name

    def cmd_get_bd_cells(self, name):
        if "/" + name.lstrip("/") not in self.cells:
            self._fail(f"no cell {name}")
        return "/" + name.lstrip("/")

    def _pin(self, path, intf):
        cell, _, pin = ("/" + path.lstrip("/")).rpartition("/")
        if cell not in self.cells:
            self._fail(f"no cell {cell}")
        pins, intfs, _ = self._model(cell)
        table = intfs if intf else pins
        if pin not in table:
            cfg = self.cells[cell]["cfg"]
            self._fail(f"{self.cells[cell]['kind']} {cell} has no {'interface ' if intf else ''}pin {pin} "
                       f"as configured ({', '.join(f'{k}={v}' for k, v in cfg.items()) or 'defaults'})")
        return f"{cell}/{pin}"

    cmd_get_bd_pins = lambda self, path: self._pin(path, False)           # noqa: E731
    cmd_get_bd_intf_pins = lambda self, path: self._pin(path, True)       # noqa: E731

    def cmd_create_bd_intf_port(self, *args):
        opts, pos = self._opts(args, (), ("-mode", "-vlnv"))
        self.intf_ports["/" + pos[0]] = {"Master": "S", "Slave": "M"}[opts["-mode"]]
        return "/" + pos[0]

    def cmd_get_bd_intf_ports(self, name):
        if "/" + name not in self.intf_ports:
            self._fail(f"no interface port {name}")
        return "/" + name

    def _dir(self, obj):
        cell, _, pin = obj.rpartition("/")
        return self._model(cell)[0][pin]

    def cmd_connect_bd_net(self, *args):
        _, pos = self._opts(args, (), ("-net",))
        objs = [o for a in pos for o in self.tcl.splitlist(a)]
        if len(objs) < 2:
            self._fail("a net needs two pins (an empty get_bd_pins?)")
        merged = set(objs)
        for net in [n for n in self.nets if n & merged]:
            merged |= net
            self.nets.remove(net)
        self.nets.append(merged)
        if sum(self._dir(o) == "O" for o in merged) > 1:
            self._fail(f"the net {sorted(merged)} has more than one driver")

    def cmd_connect_bd_intf_net(self, *args):
        _, pos = self._opts(args, (), ("-intf_net",))
        if len(pos) != 2:
            self._fail("expected two interface pins")
        modes = []
        for o in pos:
            if o in self.intf_nets:
                self._fail(f"{o} is connected already")
            modes.append(self.intf_ports.get(o) or self._model(o.rpartition("/")[0])[1][o.rpartition("/")[2]])
        if sorted(modes) != ["M", "S"]:
            self._fail(f"{pos[0]} ({modes[0]}) and {pos[1]} ({modes[1]}): one master and one slave expected")
        self.intf_nets[pos[0]], self.intf_nets[pos[1]] = pos[1], pos[0]

    def cmd_assign_bd_address(self, *args):
        if self.design is None:
            self._fail("no block design")

    def cmd_validate_bd_design(self, *args):
        """What the recorder can see of BD 41-758 (clock pins without a source), undriven nets,
        and the accelerator's interfaces (an unconnected one leaves the engine unreachable)."""
        for net in self.nets:
            if not any(self._dir(o) == "O" for o in net):
                self._fail(f"the net {sorted(net)} has no driver")
        on_nets = set().union(*self.nets) if self.nets else set()
        for cell in self.cells:
            pins, intfs, clocks = self._model(cell)
            for clk in clocks:
                if f"{cell}/{clk}" not in on_nets:
                    self._fail(f"clock pin {cell}/{clk} is not connected to a clock source (BD 41-758)")
            if self.cells[cell]["kind"].startswith("module:"):
                for i in intfs:
                    if f"{cell}/{i}" not in self.intf_nets:
                        self._fail(f"interface {cell}/{i} of the accelerator is not connected")
            if self.cells[cell]["kind"] == "processing_system7":
                for i in ("DDR", "FIXED_IO"):
                    if f"{cell}/{i}" not in self.intf_nets:
                        self._fail(f"{cell}/{i} does not reach the top: the board would have no DDR/MIO")
        self.validated = True

    def cmd_make_wrapper(self, *args):
        if not self.validated:
            self._fail("make_wrapper before validate_bd_design")
        return f"{self.design}_wrapper.v"

    # -- runs

    def cmd_launch_runs(self, *args):
        _, pos = self._opts(args, (), ("-jobs", "-to_step"))
        if self.unchecked:
            self._fail(f"launching {pos[0]} without checking run {self.unchecked}'s status")
        self.runs[pos[0]] = "launched"

    def cmd_wait_on_run(self, name):
        if self.runs.get(name) != "launched":
            self._fail(f"run {name} was not launched")
        self.runs[name] = "failed" if name in self.failing_runs else "done"
        self.unchecked = name

    cmd_get_runs = lambda self, name: name                               # noqa: E731

    def cmd_get_property(self, prop, obj):
        if obj in self.runs:
            if obj == self.unchecked:
                self.unchecked = None
            failed = self.runs[obj] == "failed"
            return {"PROGRESS": "0%" if failed else "100%",
                    "STATUS": "ERROR" if failed else "Complete!"}.get(prop) or self._fail(f"run property {prop}")
        self._fail(f"property {prop} of {obj!r} is not modelled")

    def cmd_open_run(self, name):
        self._need_project()
        if self.runs and self.runs.get(name) != "done":
            self._fail(f"open_run {name}: the run did not complete")
