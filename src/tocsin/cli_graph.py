"""``tocsin graph``: the signal -> receiver graph (implemented in ``tocsin.cli_inspect``).

A module of its own because the command line registers one subcommand per module.
"""

from __future__ import annotations

from tocsin.cli_inspect import add_graph_arguments as add_arguments
from tocsin.cli_inspect import run_graph as run

__all__ = ["add_arguments", "run"]
