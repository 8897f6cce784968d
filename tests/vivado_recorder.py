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

from vivado_ip_models import (MODEL_KEYS, CATALOG, IP_TABLE, RecorderError, address_segments, module_clock_busif,
                              module_pins)

__all__ = ["IP_TABLE", "CATALOG", "Recorder", "RecorderError", "module_pins"]


#
# The recorder
#

# Vivado commands that only need recording (their effect does not matter to the checks).
_PLAIN = ("save_bd_design", "report_utilization", "report_timing_summary")


def _intf_kind(path):
    """The protocol an interface's name says (UG994 infers them from the names): AXI-Stream,
    AXI memory-mapped (AXI4 or AXI4-Lite), or the name itself (DDR, FIXED_IO, pcie_mgt...)."""
    name = path.rpartition("/")[2]
    if re.search(r"axis", name, re.I):
        return "AXI-Stream"
    if re.search(r"axi", name, re.I):
        return "AXI memory-mapped"
    return name


# Reset inputs a product guide says may be left open: PG164 (proc_sys_reset) "Port
# Descriptions": aux_reset_in and mb_debug_sys_rst have inactive defaults.
_OPTIONAL_RESETS = {"aux_reset_in", "mb_debug_sys_rst"}


def _is_reset(pin):
    return bool(re.search(r"reset|resetn|(^|_)rst(_|n|$)|perst", pin, re.I))


def _is_clock(pin):
    return bool(re.search(r"clk|aclk|IBUF_OUT|IBUF_DS_ODIV2", pin, re.I)) and not _is_reset(pin) \
        and not re.search(r"locked|aclken", pin, re.I)


class Recorder:
    """Source generated Tcl with the Vivado commands recorded and checked (see the module docstring).

    ``catalog`` is the set of IP VLNVs the pretend Vivado has; ``failing_runs`` names runs whose
    ``PROGRESS`` stays below 100%. Raises :class:`RecorderError` on the first structural fault
    and ``tkinter.TclError`` when the script itself stops (``error``).
    """

    def __init__(self, tree, *, catalog=CATALOG, failing_runs=(), wns="0.123"):
        self.tree = Path(tree)
        self.wns = wns                       # the worst setup slack get_timing_paths reports
        self.catalog, self.failing_runs = set(catalog), set(failing_runs)
        self.calls, self.cells, self.nets, self.intf_nets = [], {}, [], {}
        self.intf_ports, self.ports = {}, {}
        self.port_props = {}          # port -> {property: value}
        self.project = self.design = None
        self.runs, self.unchecked, self.validated = {}, None, False
        self.addresses = {}                  # cell -> (base, range) from assign_bd_address
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
        self.project, self.project_dir = pos[0], pos[1]

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
            elif obj in self.ports or obj in self.intf_ports:
                # Board-level port properties IP integrator propagates (UG994 "Creating Ports"):
                # a reset port's POLARITY, a clock interface port's FREQ_HZ.
                if not set(props) <= {"CONFIG.POLARITY", "CONFIG.FREQ_HZ"}:
                    self._fail(f"setting {', '.join(props)} on port {obj!r} is not modelled")
                self.port_props.setdefault(obj, {}).update(props)
            else:
                self._fail(f"setting {', '.join(props)} on {obj!r} is not modelled")

    def _configure(self, cell, props):
        kind = self.cells[cell]["kind"]
        known = MODEL_KEYS.get(kind, set()) | (IP_TABLE[kind][2] if kind in IP_TABLE else set())
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

    def cmd_create_bd_port(self, *args):
        opts, pos = self._opts(args, (), ("-dir", "-type", "-from", "-to"))
        if opts.get("-dir") not in ("I", "O") or len(pos) != 1:
            self._fail("expected create_bd_port -dir I|O [-type T] NAME")
        # An input port drives the design's net; an output port is driven by it.
        self.ports["/" + pos[0]] = "O" if opts["-dir"] == "I" else "I"
        return "/" + pos[0]

    def cmd_get_bd_ports(self, name):
        if "/" + name not in self.ports:
            self._fail(f"no port {name}")
        return "/" + name

    def cmd_get_bd_intf_ports(self, name):
        if "/" + name not in self.intf_ports:
            self._fail(f"no interface port {name}")
        return "/" + name

    def _dir(self, obj):
        if obj in self.ports:
            return self.ports[obj]
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
        kinds = [_intf_kind(o) for o in pos]
        if kinds[0] != kinds[1] and any(k.startswith("AXI") for k in kinds):
            self._fail(f"{pos[0]} ({kinds[0]}) and {pos[1]} ({kinds[1]}): different interface types")
        self.intf_nets[pos[0]], self.intf_nets[pos[1]] = pos[1], pos[0]

    def cmd_get_bd_addr_segs(self, path):
        cell, _, seg = path.lstrip("/").partition("/")
        cell = "/" + cell
        if cell not in self.cells:
            self._fail(f"no cell {cell!r}")
        _, intfs, _ = self._model(cell)
        have = address_segments(self.cells[cell]["kind"], intfs)
        if seg not in have:
            self._fail(f"{cell} has no address segment {seg!r} (it has {sorted(have) or 'none'})")
        return path

    def cmd_assign_bd_address(self, *args):
        if self.design is None:
            self._fail("no block design")
        opts, pos = self._opts(args, (), ("-offset", "-range"))
        if pos:
            if set(opts) != {"-offset", "-range"} or len(pos) != 1:
                self._fail("expected assign_bd_address -offset ADDR -range SIZE SEGMENT")
            base, size = int(opts["-offset"], 16), {"64K": 1 << 16, "4K": 1 << 12}[opts["-range"]]
            if base % size:
                self._fail(f"{opts['-offset']} is not aligned to its range {opts['-range']}")
            self.addresses["/" + pos[0].lstrip("/").partition("/")[0]] = (base, size)

    def cmd_validate_bd_design(self, *args):
        """What the recorder can see of BD 41-758 (clock pins without a source), undriven nets,
        and the accelerator's interfaces (an unconnected one leaves the engine unreachable)."""
        for net in self.nets:
            if not any(self._dir(o) == "O" for o in net):
                self._fail(f"the net {sorted(net)} has no driver")
        on_nets = set().union(*self.nets) if self.nets else set()
        for net in self.nets:
            driver = next(o for o in net if self._dir(o) == "O")
            for o in net:
                if o in self.ports or o == driver:
                    continue
                if _is_clock(o.rpartition("/")[2]) and not _is_clock(driver.rpartition("/")[2]):
                    self._fail(f"clock pin {o} is driven by {driver}, which is not a clock")
                if _is_reset(o.rpartition("/")[2]) and not _is_reset(driver.rpartition("/")[2]):
                    self._fail(f"reset pin {o} is driven by {driver}, which is not a reset")
        for cell in self.cells:
            pins, intfs, clocks = self._model(cell)
            for clk in clocks:
                if f"{cell}/{clk}" not in on_nets:
                    self._fail(f"clock pin {cell}/{clk} is not connected to a clock source (BD 41-758)")
            # Every reset input held (an unconnected one floats or holds the IP in reset), and every
            # interface of every IP as configured connected (an enabled PS port left open is a
            # port the design asked for and does not use).
            for pin, d in pins.items():
                if d == "I" and _is_reset(pin) and pin not in _OPTIONAL_RESETS and f"{cell}/{pin}" not in on_nets:
                    self._fail(f"reset input {cell}/{pin} is not connected")
            for i in intfs:
                if f"{cell}/{i}" not in self.intf_nets:
                    self._fail(f"interface {cell}/{i} is enabled but not connected")
            if self.cells[cell]["kind"].startswith("module:"):
                busif = module_clock_busif((self.tree / "sparsa_soc.v").read_text(), self.cells[cell]["kind"][7:])
                for i in intfs:
                    if f"{cell}/{i}" not in self.intf_nets:
                        self._fail(f"interface {cell}/{i} of the accelerator is not connected")
                    if i not in busif:
                        self._fail(f"interface {cell}/{i} is not associated with a clock (ASSOCIATED_BUSIF on "
                                   f"the clock port's X_INTERFACE_PARAMETER)")
            if self.cells[cell]["kind"] == "processing_system7":
                for i in ("DDR", "FIXED_IO"):
                    if f"{cell}/{i}" not in self.intf_nets:
                        self._fail(f"{cell}/{i} does not reach the top: the board would have no DDR/MIO")
        self.validated = True

    def cmd_make_wrapper(self, *args):
        if not self.validated:
            self._fail("make_wrapper before validate_bd_design")
        # The hardware handoff Vivado (2020.2 on) writes when it generates the design's
        # targets: an empty stand-in, so that the script's copy of it can be checked.
        hwh = (self.tree / self.project_dir / f"{self.project}.gen" / "sources_1" / "bd" / self.design /
               "hw_handoff" / f"{self.design}.hwh")
        hwh.parent.mkdir(parents=True, exist_ok=True)
        hwh.write_text("")
        return f"{self.design}_wrapper.v"

    def cmd_write_bitstream(self, *args):
        self._need_implemented("write_bitstream")

    def cmd_write_hw_platform(self, *args):
        self._need_implemented("write_hw_platform")

    def _need_implemented(self, what):
        if self.runs.get("impl_1") != "done" or not any(c[0] == "open_run" for c in self.calls):
            self._fail(f"{what} before the implemented design is open")

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

    def cmd_get_timing_paths(self, *args):
        opts, _ = self._opts(args, (), ("-delay_type", "-max_paths"))
        self._need_implemented("get_timing_paths")
        return "timing_path_0"

    def cmd_get_property(self, prop, obj):
        if obj == "timing_path_0" and prop == "SLACK":
            return self.wns
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
