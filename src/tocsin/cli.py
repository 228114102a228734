"""The ``tocsin`` command line (also ``python -m tocsin``).

Each subcommand lives with the feature it belongs to and is registered here by name and
module path only. Building the parser imports nothing: ``tocsin --help`` lists every
subcommand from this table, and ``tocsin NAME ...`` imports NAME's module alone (so
``tocsin inspect`` never loads ``tocsin.remote``, nor the libraries it needs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Subcommand(NamedTuple):
    """A subcommand: its module defines ``add_arguments(parser)`` and ``run(args) -> int``."""

    module: str
    help: str


SUBCOMMANDS: dict[str, Subcommand] = {
    "worker": Subcommand(
        "tocsin.remote.cli", "run remote receivers: consume signals from other processes"
    ),
    "deadletter": Subcommand(
        "tocsin.remote.cli", "list or replay the events remote receivers gave up on"
    ),
    "relay": Subcommand(
        "tocsin.remote.outbox", "move committed outbox rows to the broker (never lose)"
    ),
    "inspect": Subcommand(
        "tocsin.cli_inspect", "list the signals and the receivers connected to them"
    ),
    "graph": Subcommand(
        "tocsin.cli_graph", "draw the signal -> receiver graph (mermaid, dot, svg, png)"
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for ``tocsin``: every subcommand listed, and *command*'s own
    arguments added (importing its module, and no other). Returns the parser."""
    parser = argparse.ArgumentParser(
        prog="tocsin", description="Django-style signals for any Python program."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, subcommand in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=subcommand.help, description=subcommand.help)
        if name == command:
            module = importlib.import_module(subcommand.module)
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand *argv* names: its first argument that is not an option (the
    top-level options take no values), if it is a known subcommand."""
    for argument in argv:
        if argument == "--":
            break
        if not argument.startswith("-"):
            return argument if argument in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(arguments))
    args = parser.parse_args(arguments)
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
