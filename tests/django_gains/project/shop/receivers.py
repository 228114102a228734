"""Receivers the management commands find (each app's ``receivers`` module is imported).

The remote ones record what they received to the file named by $TOCSIN_TEST_RECORD, when set, so
the tests in other processes can see it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

import tocsin
from tests.django_gains.project.shop.models import Order
from tests.django_gains.project.shop.signals import order_placed
from tocsin.remote import remote_receiver


@receiver(post_save, sender=Order, dispatch_uid="shop-order-saved")  # type: ignore[untyped-decorator]
def order_saved(sender: type[Order], instance: Order, created: bool, **kwargs: Any) -> None:
    """A plain Django receiver, as every project has them."""


@tocsin.receiver(order_placed, dispatch_uid="shop-audit", weak=False)
@tocsin.after_commit
def audit_order(sender: Any, order: Order, **kwargs: Any) -> None:
    """An after-commit receiver of the shop's own signal."""


@remote_receiver(order_placed, group="shop-invoices")
def make_invoice(sender: Any, order: Order | None, **kwargs: Any) -> None:
    record = os.environ.get("TOCSIN_TEST_RECORD")
    if record:
        line = {
            "type": type(order).__name__,
            "number": getattr(order, "number", None),
            "event_id": kwargs["event_id"],
        }
        with open(record, "a") as file:
            file.write(json.dumps(line) + "\n")
