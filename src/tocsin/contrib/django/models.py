"""The transactional outbox as a Django model (see :mod:`tocsin.contrib.django.outbox`).

Its table, ``tocsin_outbox``, has the columns of ``tocsin.remote.outbox.outbox_table``,
so either relay (``manage.py tocsin_relay``, or ``tocsin relay --db``) can drain it.
``manage.py migrate`` creates it.
"""

from __future__ import annotations

from django.db import models


class OutboxEvent(models.Model):  # type: ignore[misc]  # Django ships no types
    """One signed event waiting to be relayed to the broker, oldest first."""

    id = models.BigAutoField(primary_key=True)
    stream = models.CharField(max_length=255)
    data = models.BinaryField()
    created_at = models.FloatField(help_text="Unix time the event was written")
    attempts = models.IntegerField(default=0, help_text="relay attempts that failed")  # pyright: ignore[reportArgumentType]
    last_error = models.TextField(null=True, blank=True)

    class Meta:
        app_label = "tocsin"
        db_table = "tocsin_outbox"
        ordering = ("id",)
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"outbox event {self.pk} for {self.stream}"
