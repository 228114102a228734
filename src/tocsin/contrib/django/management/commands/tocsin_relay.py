"""``python manage.py tocsin_relay``: move committed outbox events to the broker.

Reads the ``tocsin_outbox`` table (the :class:`~tocsin.contrib.django.models.OutboxEvent`
model) of ``--database`` and publishes each row to the broker, oldest first, deleting
it once the broker has it. ``--once`` relays what is there and exits.
"""

from __future__ import annotations

import signal as signals
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tocsin.contrib.django.management import _options
from tocsin.contrib.django.outbox import DjangoRelay


class Command(BaseCommand):  # type: ignore[misc]
    help = "Relay the tocsin outbox to the broker, until SIGTERM or SIGINT (or --once)."

    def add_arguments(self, parser: CommandParser) -> None:
        _options.add_broker_arguments(parser)
        parser.add_argument("--database", default="default", help="the outbox's database")
        parser.add_argument("--batch", type=int, default=100, help="rows per transaction")
        parser.add_argument("--interval", type=float, default=0.5, help="idle poll interval")
        parser.add_argument("--once", action="store_true", help="relay what is there, exit")

    def handle(self, *args: Any, **options: Any) -> None:
        transport = _options.transport(options)
        relay = DjangoRelay(
            transport,
            using=options["database"],
            batch=options["batch"],
            interval=options["interval"],
        )
        if not options["once"]:
            for number in (signals.SIGTERM, signals.SIGINT):
                signals.signal(number, lambda *_: relay.stop())
        try:
            moved = relay.run_forever(once=options["once"])
        finally:
            transport.close()
        self.stdout.write(f"{moved} event(s) relayed, {relay.pending()} waiting")
