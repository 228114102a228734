"""The bakery's receivers (``receivers`` modules are what tocsin's commands import)."""

from __future__ import annotations

from typing import Any

import tocsin
from bakery.models import Cake
from bakery.signals import cake_ordered
from tocsin.contrib.django.signals import post_save
from tocsin.remote import remote_receiver

#: What the receivers did, in order, for the demo to print.
log: list[str] = []


@tocsin.receiver(post_save, sender=Cake, dispatch_uid="bakery-count")
def count_cakes(sender: type[Cake], instance: Cake, created: bool, **kwargs: Any) -> None:
    """Runs inside save(), in the transaction."""
    log.append(f"post_save: {instance} saved (inside the transaction)")


@tocsin.receiver(post_save, sender=Cake, dispatch_uid="bakery-email")
@tocsin.after_commit
def email_the_baker(sender: type[Cake], instance: Cake, **kwargs: Any) -> None:
    """Runs once the transaction commits; never for a rolled-back save."""
    log.append(f"after commit: emailing the baker about {instance}")


@remote_receiver(cake_ordered, group="bakery-oven")
def bake(sender: Any, cake: Cake, event_id: str, **kwargs: Any) -> None:
    """Runs in a worker (manage.py tocsin_worker); the cake is loaded from its database."""
    log.append(f"worker: baking {cake} (loaded from the database: {type(cake).__name__})")
