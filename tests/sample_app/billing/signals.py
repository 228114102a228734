"""Billing's signal, and a receiver of the sample app's order_placed."""

from __future__ import annotations

from typing import Any

from tests.sample_app.signals import order_placed
from tocsin import Signal, receiver

invoice_paid = Signal(name="invoice_paid", doc="Sent when an invoice is paid.")

invoices: list[Any] = []


@receiver(order_placed)
def open_invoice(sender: Any, **kwargs: Any) -> None:
    invoices.append(kwargs.get("order_id"))
    invoice_paid.send(sender=open_invoice, invoice=len(invoices))


@receiver(invoice_paid)
def thank_customer(sender: Any, **kwargs: Any) -> None:
    """Nothing to do: connected so that the graph has a chain."""
