"""The ``sparsa`` command line: one entry point in front of sw, hw, sim and boards.

Each sub-command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; its module docstring's first line is the command's help text.
User errors (:class:`sparsa.sw.errors.UserError`) print one line and exit with status 2.
"""

import argparse
import importlib
import signal
import sys
import threading

from sparsa.sw.errors import UserError

__all__ = ["main", "COMMANDS"]

# name -> module implementing it. Order is the order of `sparsa --help`.
COMMANDS = {
    "import": "sparsa.cli.import_model",
    "compress": "sparsa.cli.compress",
    "pack": "sparsa.cli.pack",
    "unpack": "sparsa.cli.unpack",
    "inspect": "sparsa.cli.inspect",
    "run": "sparsa.cli.run",
    "verilog": "sparsa.cli.verilog",
    "report": "sparsa.cli.report",
    "build": "sparsa.cli.build",
    "swap-weights": "sparsa.cli.swap_weights",
    "flash": "sparsa.cli.flash",
    "bench": "sparsa.cli.bench",
    "demo": "sparsa.cli.demo",
    "explore": "sparsa.cli.explore",
}


class _Parser(argparse.ArgumentParser):
    """argparse with sparsa's error contract: one line (no usage block), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(
        prog="sparsa",
        description="Compress neural networks and generate sparse FPGA accelerators for them.")
    from sparsa import __version__
    parser.add_argument("--version", action="version", version=f"sparsa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(modname)
        doc = (mod.__doc__ or "").strip().splitlines()
        help_ = doc[0].rstrip(".") if doc else name
        p = sub.add_parser(name, help=help_, description=(mod.__doc__ or "").strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` runs (temporaries go)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _one_line(e):
    """The message on one line: a newline inside a found value (a file name, a manifest field) is escaped."""
    return str(e).replace("\r", "\\r").replace("\n", "\\n")


def main(argv=None):
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        print(f"sparsa: error: give a command: {', '.join(COMMANDS)} (see sparsa --help)", file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"sparsa {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:          # a path that cannot be read or written: the user's to fix
        where = f"{e.filename}: " if e.filename else ""
        print(f"sparsa {args.command}: error: {_one_line(f'{where}{e.strerror or e}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sparsa: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("sparsa: terminated", file=sys.stderr)
        return 143


if __name__ == "__main__":
    raise SystemExit(main())
