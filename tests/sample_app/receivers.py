"""The sample application's receivers: one of each kind that `tocsin inspect` describes.

Imported by `autodiscover("tests.sample_app", module="receivers")`; every receiver is
held by a module attribute, so connecting weakly is safe.
"""

from __future__ import annotations

import functools
from typing import Any

from tests.sample_app.signals import order_placed, order_shipped
from tocsin import after_commit, receiver

calls: list[str] = []


class Warehouse:
    """Ships orders (a sender filter on this class)."""


@receiver(order_placed, priority=10)
def reserve_stock(sender: Any, **kwargs: Any) -> str:
    calls.append("reserve_stock")
    return "reserved"


@receiver(order_placed, dispatch_uid="sample-app-email")
@after_commit
def email_customer(sender: Any, **kwargs: Any) -> None:
    calls.append("email_customer")


@receiver(order_shipped, sender=Warehouse)
async def notify_tracking(sender: Any, **kwargs: Any) -> None:
    calls.append("notify_tracking")


class Ledger:
    """A bound method as a receiver."""

    def record(self, sender: Any, **kwargs: Any) -> None:
        calls.append("Ledger.record")


ledger = Ledger()
order_placed.connect(ledger.record)


class Auditor:
    """A callable object as a receiver, held strongly."""

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        calls.append("Auditor")


order_shipped.connect(Auditor(), weak=False)


def log_event(prefix: str, sender: Any, **kwargs: Any) -> None:
    calls.append(f"{prefix}log_event")


log_shipment = functools.partial(log_event, "shipment: ")
order_shipped.connect(log_shipment)
