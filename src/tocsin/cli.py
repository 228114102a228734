"""The ``tocsin`` command line (also ``python -m tocsin``).

Each subcommand lives with the feature it belongs to and is registered here by name, so
importing this module stays cheap: a subcommand's module is imported only when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, help): the module defines add_arguments(parser) and run(args) -> int
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "worker": ("tocsin.remote.cli", "run remote receivers: consume signals from other processes"),
    "deadletter": ("tocsin.remote.cli", "list or replay the events remote receivers gave up on"),
    "relay": ("tocsin.remote.outbox", "move committed outbox rows to the broker (never lose)"),
    "inspect": ("tocsin.cli_inspect", "list the signals and the receivers connected to them"),
    "graph": ("tocsin.cli_graph", "draw the signal -> receiver graph (mermaid, dot, svg, png)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``tocsin`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tocsin", description="Django-style signals for any Python program."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    status: int = args._run(args)
    return status


def _version() -> str:
    from tocsin import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
