"""Program a board with a ``sparsa build`` output through openFPGALoader.

``sparsa flash BUILD_DIR [--board B] [--sram | --flash]`` reads ``BUILD_DIR/report.json`` for
the board and the bitstream, and runs ``openFPGALoader -b ulx3s`` (the ULX3S's FT231X: SRAM by
default, ``--flash`` writes the SPI flash so the design survives a power cycle) or
``openFPGALoader -b ice40_generic -f`` (the iCEBreaker's FT2232H reaches the iCE40 through its
SPI flash only, so ``--sram`` is refused). ``--board`` must agree with the build when given.
With no board attached openFPGALoader's own message comes back as one line and exit 2.
"""

import subprocess
from pathlib import Path

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import read_json

__all__ = ["add_arguments", "run", "LOADER"]

# openFPGALoader's board names and what each can program.
LOADER = {"ulx3s-85f": {"board": "ulx3s", "sram": True, "bitstream": "top.bit"},
          "icebreaker": {"board": "ice40_generic", "sram": False, "bitstream": "top.bin"}}
TIMEOUT_S = 600


def add_arguments(p):
    p.add_argument("build_dir", metavar="BUILD_DIR", help="a sparsa build output directory (open flow)")
    p.add_argument("--board", choices=sorted(LOADER), default=None, help="the board (default: the build's)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sram", action="store_true", help="load into the FPGA's configuration RAM (ULX3S; the default there)")
    mode.add_argument("--flash", action="store_true", help="write the board's SPI flash (the iCEBreaker's only way)")
    p.add_argument("--loader", default="openFPGALoader", metavar="EXE", help="the openFPGALoader executable")


def command(build_dir, board=None, flash=None, loader="openFPGALoader"):
    """The openFPGALoader command line for ``build_dir`` (checked: a UserError names what is wrong)."""
    build_dir = Path(build_dir)
    rep = read_json(build_dir / "report.json", "BUILD_DIR")
    built = rep.get("board") if isinstance(rep, dict) else None
    if built not in LOADER:
        raise user_error(build_dir / "report.json", "board", f"an open-flow board ({', '.join(LOADER)})", repr(built))
    if board is not None and board != built:
        raise user_error(build_dir / "report.json", "board", f"--board {board}", built)
    facts = LOADER[built]
    bit = build_dir / facts["bitstream"]
    if not bit.is_file():
        raise user_error(build_dir, "bitstream", f"{facts['bitstream']} (a build that ran, not --no-build)", "none")
    flash = (not facts["sram"]) if flash is None else flash
    if not flash and not facts["sram"]:
        raise user_error(None, "--sram", f"--flash on the {built} (openFPGALoader reaches the iCE40 through its "
                         "SPI flash only)", "--sram")
    return [loader, "-b", facts["board"], *(["-f"] if flash else []), str(bit)], flash


def run(args):
    cmd, flash = command(args.build_dir, args.board, True if args.flash else (False if args.sram else None), args.loader)
    print(f"programming the {'flash' if flash else 'SRAM'}: {' '.join(cmd)}", flush=True)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        raise UserError(f"{args.loader}: not found (make setup installs openFPGALoader from apt)") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{args.loader}: no answer within {TIMEOUT_S} s programming {cmd[-1]}") from None
    if res.returncode != 0:
        lines = [l.strip() for l in (res.stderr + res.stdout).splitlines() if l.strip()]
        why = next((l for l in lines if "unable" in l.lower() or "error" in l.lower()), lines[-1] if lines else "")
        raise UserError(f"{cmd[-1]}: {args.loader} -b {cmd[2]} failed (exit {res.returncode}): {why}; "
                        f"is the board plugged in and its USB device readable?")
    print(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "done")
    return 0
