"""``tocsin inspect`` and ``tocsin graph``: what is connected to what, from the shell.

Both import the targets given (modules or packages; ``autodiscover`` runs on each so
their ``signals`` submodules are imported too), then describe the signals:

    tocsin inspect myapp                    # a table (plain text when piped)
    tocsin inspect myapp --json             # for tools
    tocsin graph myapp --format svg -o signals.svg

This module is the ``inspect`` subcommand; ``tocsin.cli_graph`` is the ``graph`` one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from tocsin.discovery import autodiscover
from tocsin.graph import FORMATS, GraphvizNotFound, render
from tocsin.inspect import ReceiverInfo, SignalInfo, describe_all

__all__ = ["add_arguments", "add_graph_arguments", "run", "run_graph"]


class TargetError(Exception):
    """A target could not be imported; the message says which and why."""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="modules or packages to import (dotted names, e.g. myapp or myapp.signals)",
    )
    parser.add_argument(
        "--module",
        action="append",
        metavar="NAME",
        help="the submodule to import from each package (default: signals; repeatable)",
    )
    parser.add_argument(
        "--no-entry-points",
        action="store_true",
        help="do not import the modules installed distributions register (tocsin.receivers)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="list every signal alive, not only the targets' and those with receivers",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tocsin inspect``."""
    parser.description = (
        "Import TARGETs (running autodiscover on each), then list the signals and their "
        "receivers: a table in a terminal, plain text when piped, JSON with --json."
    )
    _add_common(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (for tools)")


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tocsin graph``."""
    parser.description = (
        "Import TARGETs (running autodiscover on each), then draw the signal -> receiver "
        "graph, grouped by module, with sender filters on the edges. SVG and PNG need "
        "Graphviz's dot program (apt-get install graphviz)."
    )
    _add_common(parser)
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=None,
        help="output format (default: from the -o file's extension, else mermaid)",
    )
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write to FILE (default: standard output)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``tocsin inspect``; returns the exit status."""
    try:
        signals = _load(args)
    except TargetError as error:
        print(f"tocsin inspect: {error}", file=sys.stderr)
        return 1
    try:
        if args.json:
            json.dump([info.to_dict() for info in signals], sys.stdout, indent=2)
            sys.stdout.write("\n")
        elif sys.stdout.isatty() and _rich_available():
            _print_rich(signals)
        else:
            _print_plain(signals, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # Piped into `head`, say: stop quietly, and keep Python from complaining again
        # when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def run_graph(args: argparse.Namespace) -> int:
    """Run ``tocsin graph``; returns the exit status."""
    format = args.format or _format_of(args.output)
    try:
        signals = _load(args)
        output = render(signals, format)
    except TargetError as error:
        print(f"tocsin graph: {error}", file=sys.stderr)
        return 1
    except GraphvizNotFound as error:
        print(f"tocsin graph: {error}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "wb") as file:
            file.write(output)
    elif format == "png":
        print("tocsin graph: PNG is binary: write it to a file with -o FILE", file=sys.stderr)
        return 2
    else:
        sys.stdout.write(output.decode())
    return 0


def _format_of(output: str | None) -> str:
    extension = os.path.splitext(output or "")[1].lstrip(".").lower()
    aliases = {"mmd": "mermaid", "gv": "dot"}
    extension = aliases.get(extension, extension)
    return extension if extension in FORMATS else "mermaid"


def _load(args: argparse.Namespace) -> list[SignalInfo]:
    """Import the targets and describe the signals worth showing."""
    # The console script does not put the working directory on sys.path, as
    # `python -m tocsin` does: without it, the project's own packages are not found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    modules = args.module or ["signals"]
    target_names: list[str] = []
    for target in args.targets:
        try:
            module = importlib.import_module(target)
            found = autodiscover(module, module=modules, entry_points=False)
        except ImportError as error:
            raise TargetError(f"cannot import {target!r}: {error}") from error
        except Exception as error:
            raise TargetError(
                f"importing {target!r} raised {type(error).__name__}: {error}"
            ) from error
        target_names += [module.__name__, *found]
    if not args.no_entry_points:
        try:
            autodiscover(module=modules)
        except ImportError as error:
            raise TargetError(str(error)) from error
    infos = describe_all()
    if args.all:
        return infos
    return [
        info for info in infos if info.receivers or info.waiting or _within(info, target_names)
    ]


def _within(info: SignalInfo, modules: Sequence[str]) -> bool:
    module = info.module or ""
    return any(module == name or module.startswith(name + ".") for name in modules)


def _flags(receiver: ReceiverInfo) -> str:
    flags = ["async" if receiver.is_async else "sync", "weak" if receiver.weak else "strong"]
    if receiver.after_commit:
        flags.append("after commit")
    if receiver.priority:
        flags.append(f"priority={receiver.priority}")
    if receiver.dispatch_uid is not None:
        flags.append(f"uid={receiver.dispatch_uid}")
    return ", ".join(flags)


def _where(receiver: ReceiverInfo) -> str:
    if receiver.file is None:
        return "?"
    file = receiver.file
    try:
        relative = os.path.relpath(file)
        file = relative if not relative.startswith("..") else file
    except ValueError:  # another drive, on Windows
        pass
    return f"{file}:{receiver.line}" if receiver.line else file


def _rows(signals: Sequence[SignalInfo]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for info in signals:
        if not info.receivers and not info.waiting:
            rows.append((info.name, "(no receivers)", "", "", ""))
        for number, receiver in enumerate([*info.receivers, *info.waiting]):
            if receiver.waiting_for is not None:
                sender = f"waiting for {receiver.waiting_for!r}"
            else:
                sender = receiver.sender or "any"
            rows.append(
                (
                    info.name if number == 0 else "",
                    receiver.name,
                    sender,
                    _flags(receiver),
                    _where(receiver),
                )
            )
    return rows


HEADERS = ("SIGNAL", "RECEIVER", "SENDER", "HOW", "DEFINED AT")


def _print_plain(signals: Sequence[SignalInfo], out: TextIO) -> None:
    rows = _rows(signals)
    if not rows:
        out.write("No signals found.\n")
        return
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS))]
    for row in [HEADERS, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip() + "\n")
    connected = sum(len(info.receivers) for info in signals)
    waiting = sum(len(info.waiting) for info in signals)
    # A receiver waiting for its sender class is not called yet: counted apart.
    also = f", {waiting} waiting for their sender class" if waiting else ""
    out.write(f"\n{len(signals)} signal(s), {connected} receiver(s){also}\n")


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _print_rich(signals: Sequence[SignalInfo]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tocsin: signals and receivers", show_lines=False)
    for header, style in zip(HEADERS, ["bold yellow", "cyan", "magenta", "", "dim"], strict=True):
        # Dotted names have no spaces to wrap at: fold them rather than cut them short.
        table.add_column(header.title(), style=style or None, overflow="fold")
    for row in _rows(signals):
        table.add_row(*row, end_section=False)
    Console().print(table)
