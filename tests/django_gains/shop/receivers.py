"""Remote receivers the management commands find (``receivers`` modules are imported).

They record what they received to the file named by $TOCSIN_TEST_RECORD, when set, so
the tests in other processes can see it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.django_gains.shop.models import Order
from tests.django_gains.shop.signals import order_placed
from tocsin.remote import remote_receiver


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
