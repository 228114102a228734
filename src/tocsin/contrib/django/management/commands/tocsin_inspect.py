"""``python manage.py tocsin_inspect``: every receiver of every signal of the project.

Django's signals included: for each receiver, where it is defined (file and line), the
sender it is connected for, its ``dispatch_uid``, weak or strong, after-commit, and the
remote receivers with their consumer groups. ``--json`` for tools.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tocsin.contrib.django.inspection import DEFAULT_MODULES, project_signals, rows, to_json

HEADERS = ("SIGNAL", "RECEIVER", "SENDER", "HOW", "DEFINED AT")


class Command(BaseCommand):  # type: ignore[misc]
    help = "List every signal of the project and its receivers, local and remote (tocsin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON (for tools)")
        parser.add_argument(
            "--all", action="store_true", help="list signals without receivers too"
        )
        parser.add_argument(
            "--only",
            action="append",
            default=[],
            metavar="PACKAGE",
            help="only the receivers defined in this package (repeatable), e.g. an app",
        )
        parser.add_argument(
            "--module",
            action="append",
            dest="modules",
            metavar="NAME",
            help="the module of each app to import (default: receivers, signals)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        signals = project_signals(
            options["modules"] or DEFAULT_MODULES, everything=options["all"], only=options["only"]
        )
        if options["json"]:
            self.stdout.write(json.dumps(to_json(signals), indent=2))
            return
        table = rows(signals)
        if not table:
            self.stdout.write("No signals found.")
            return
        widths = [max(len(row[i]) for row in [HEADERS, *table]) for i in range(len(HEADERS))]
        for row in [HEADERS, *table]:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())
        local = sum(len(item.info.receivers) for item in signals)
        remote = sum(len(item.remote) for item in signals)
        self.stdout.write(
            f"\n{len(signals)} signal(s), {local} receiver(s), {remote} remote receiver(s)"
        )
