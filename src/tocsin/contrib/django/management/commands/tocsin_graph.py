"""``python manage.py tocsin_graph``: the project's signal -> receiver graph.

Mermaid (default), Graphviz DOT, or SVG/PNG through Graphviz's ``dot``; remote
receivers are drawn with their group. ``-o FILE`` writes to a file (the format follows
its extension unless ``--format`` says).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tocsin.contrib.django.inspection import DEFAULT_MODULES, graph_signals, project_signals
from tocsin.graph import FORMATS, GraphvizNotFound, render


class Command(BaseCommand):  # type: ignore[misc]
    help = "Draw the project's signals and receivers (tocsin): Mermaid, DOT, SVG or PNG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", "-f", choices=FORMATS, default=None)
        parser.add_argument("--output", "-o", metavar="FILE", default=None)
        parser.add_argument("--all", action="store_true", help="signals without receivers too")
        parser.add_argument(
            "--module", action="append", dest="modules", metavar="NAME", default=None
        )
        parser.add_argument("--only", action="append", default=[], metavar="PACKAGE")

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        extension = os.path.splitext(output or "")[1].lstrip(".").lower()
        extension = {"mmd": "mermaid", "gv": "dot"}.get(extension, extension)
        format = options["format"] or (extension if extension in FORMATS else "mermaid")
        signals = project_signals(
            options["modules"] or DEFAULT_MODULES, everything=options["all"], only=options["only"]
        )
        try:
            data = render(graph_signals(signals), format)
        except GraphvizNotFound as error:
            raise CommandError(str(error)) from error
        if output:
            with open(output, "wb") as file:
                file.write(data)
        elif format == "png":
            raise CommandError("PNG is binary: write it to a file with -o FILE")
        else:
            self.stdout.write(data.decode(), ending="")
