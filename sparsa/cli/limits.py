"""Option checks shared by the sub-commands (not a sub-command itself: not in ``COMMANDS``).

Each check raises a one-line :class:`~sparsa.sw.errors.UserError` naming the option, the
limit and what was found; :func:`warn` prints the one-line warning of a degenerate request.
"""

import re
import sys
from pathlib import Path

from sparsa.sw.errors import user_error

__all__ = ["MAX_PES", "check_pe_option", "warn", "warn_pes_above_rows", "check_input_file",
           "check_seed", "VERILOG_KEYWORDS", "check_verilog_name"]

# The PE array's limit (EIEConfig.pes: 1..1024); the CLI refuses more before any work.
MAX_PES = 1024


def check_pe_option(value, option="--pes"):
    """``value`` (an int from argparse, or None) within 1..MAX_PES."""
    if value is not None and not 1 <= value <= MAX_PES:
        raise user_error(None, option, f"a PE count in 1..{MAX_PES} (the PE array's limit)", value)
    return value


def warn(command, message):
    """One ``warning:`` line on stderr (the request is valid, but probably not what was meant)."""
    print(f"sparsa {command}: warning: {message}", file=sys.stderr, flush=True)


def warn_pes_above_rows(command, option, pes, rows, where=None):
    """More PEs than rows leaves PEs without any row: allowed (the pack is still exact), but said."""
    if pes is not None and rows is not None and pes > rows:
        head = f"{where}: " if where else ""
        warn(command, f"{head}{option} {pes} is more than the {rows} rows of the widest layer: "
                      f"{pes - rows} PE(s) get no rows and sit idle")


def check_input_file(path, option, what, kinds=".npy/.npz"):
    """An input file that exists and is not JSON posing as numpy data (else one line naming it)."""
    p = Path(path)
    if not p.exists():
        raise user_error(p, option, f"an existing {what} file", "none (file not found)")
    if p.is_dir():
        raise user_error(p, option, f"a {what} file", "a directory")
    try:
        with open(p, "rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return p                      # the loader reports it
    if head[:1] in (b"{", b"[") or p.suffix.lower() == ".json":
        raise user_error(p, option, f"a numpy {kinds} file ({what})", "a JSON file")
    return p


def check_seed(value, option="--seed"):
    if not 0 <= value < 1 << 32:
        raise user_error(None, option, "an integer in 0..2^32-1", value)
    return value


# IEEE 1364-2005 reserved words (a module may not be named after one).
VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone incdir include initial inout input instance integer join large liblist library localparam
macromodule medium module nand negedge nmos nor noshowcancelled not notif0 notif1 or output parameter
pmos posedge primitive pull0 pull1 pulldown pullup pulsestyle_onevent pulsestyle_ondetect rcmos real
realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
""".split())

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,1023}\Z")


def check_verilog_name(name, option="--name"):
    """A simple Verilog identifier (letters, digits, _ and $, not first a digit or $; not a keyword)."""
    if name is None:
        return None
    if not _IDENT.match(name) or name in VERILOG_KEYWORDS:
        raise user_error(None, option, "a Verilog identifier ([A-Za-z_][A-Za-z0-9_$]*, not a keyword)",
                         repr(name))
    return name
