"""``python manage.py tocsin_worker``: run the project's remote receivers.

The project's settings and apps are loaded (it is a management command); the receiver
modules of every app are imported; each event's receivers run with Django's connection
handling and their model references loaded (:mod:`tocsin.contrib.django.worker`).
SIGTERM or SIGINT stops it gracefully. ``--relay`` also relays the outbox, in this
process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tocsin.contrib.django.management import _options
from tocsin.contrib.django.outbox import DjangoRelay
from tocsin.contrib.django.worker import django_worker
from tocsin.remote import remote_receivers


class Command(BaseCommand):  # type: ignore[misc]
    help = "Run the project's remote receivers (tocsin), until SIGTERM or SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        _options.add_broker_arguments(parser)
        parser.add_argument(
            "--group",
            action="append",
            dest="groups",
            metavar="GROUP",
            help="run only this group (repeatable; default: every group declared)",
        )
        parser.add_argument("--concurrency", type=int, default=8, help="events at once")
        parser.add_argument(
            "--max-deliveries", type=int, default=5, help="deliveries before dead-lettering"
        )
        parser.add_argument(
            "--retry-backoff", type=float, default=1.0, help="first retry delay, in seconds"
        )
        parser.add_argument(
            "--shutdown-timeout", type=float, default=30.0, help="grace period on SIGTERM"
        )
        parser.add_argument(
            "--relay",
            action="store_true",
            help="also relay the outbox (the tocsin_outbox table) to the broker",
        )
        parser.add_argument(
            "--database", default="default", help="the outbox's database (with --relay)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not logging.getLogger("tocsin").handlers and not logging.getLogger().handlers:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
        _options.import_receivers(options)
        declared = remote_receivers(options["groups"])
        if not declared:
            raise CommandError("no remote receivers are declared in the installed apps")
        envelope = _options.envelope(options, {r.signal_path for r in declared})
        transport = _options.transport(options)
        relays = [DjangoRelay(transport, using=options["database"])] if options["relay"] else []
        worker = django_worker(
            transport,
            envelope,
            receivers=declared,
            concurrency=options["concurrency"],
            max_deliveries=options["max_deliveries"],
            retry_backoff=options["retry_backoff"],
            shutdown_timeout=options["shutdown_timeout"],
            relays=relays,
        )
        self.stderr.write(f"tocsin worker: {len(declared)} receiver(s) on {transport!r}")
        try:
            asyncio.run(worker.run(handle_signals=True))
        finally:
            transport.close()
