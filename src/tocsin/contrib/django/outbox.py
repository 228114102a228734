"""The transactional outbox for Django: events written in the data's own transaction.

::

    from tocsin.contrib.django.outbox import DjangoOutboxTransport

    broker = RedisStreamsTransport("redis://redis.internal:6379/0")
    publish(post_save, DjangoOutboxTransport(broker), envelope, sender=Order)

    with transaction.atomic():
        Order.objects.create(...)   # the order row and its event row commit together

    # python manage.py tocsin_relay   (or tocsin_worker --relay) moves them to the broker

:class:`DjangoOutboxTransport` writes each event as an
:class:`~tocsin.contrib.django.models.OutboxEvent` row on the database *using* (default
``"default"``; :func:`writing_to` changes it around a block), inside whatever
``atomic()`` block is open there: a rollback, or a rolled-back savepoint, removes the
event with the data; outside ``atomic()`` the row commits at once, as the data does.
Publish with ``on_commit=False`` (the default): the row must be written inside the
transaction. Consuming, dead letters and idempotency are the real transport's, so the
same object serves a worker.

:class:`DjangoRelay` moves committed rows to the broker, oldest first, in batches, with
the guarantees of ``tocsin.remote.outbox.Relay`` (at-least-once; a failed publish leaves
the row, its ``attempts`` and ``last_error`` updated; ``SELECT ... FOR UPDATE SKIP
LOCKED`` where the database has it, so relays share the work). Stale connections are
closed around each batch, so a relay survives a database restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from tocsin.contrib.django.worker import close_stale_connections
from tocsin.remote import PublishError, Transport
from tocsin.remote.outbox import OutboxTransport, RelayLoop

__all__ = ["DjangoOutboxTransport", "DjangoRelay", "writing_to"]

logger = logging.getLogger("tocsin.remote")

# Django ships no types: pyright reads its source and cannot follow these.
_connections: Any = connections
_atomic: Any = transaction.atomic


def _outbox(using: str) -> Any:
    """The outbox rows of database *using* (a QuerySet)."""
    from tocsin.contrib.django.models import OutboxEvent

    model: Any = OutboxEvent
    return model.objects.using(using)


def _table() -> _Table:
    from tocsin.contrib.django.models import OutboxEvent

    model: Any = OutboxEvent
    return _Table(model._meta.db_table)


_using: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tocsin_django_outbox", default=None
)


@contextlib.contextmanager
def writing_to(using: str) -> Iterator[None]:
    """Write outbox events to the database *using* within the block (for data saved
    on another database than the transport's)."""
    if using not in _connections.settings:
        raise ValueError(f"no database {using!r} in settings.DATABASES")
    token = _using.set(using)
    try:
        yield
    finally:
        _using.reset(token)


class _Table(NamedTuple):
    name: str


class DjangoOutboxTransport(OutboxTransport):
    """Publishes into the ``tocsin_outbox`` table through Django's ORM; delegates the
    rest to *target* (see the module docstring). :meth:`publish` returns
    ``"outbox:<row id>"``."""

    def __init__(self, target: Transport, *, using: str = DEFAULT_DB_ALIAS) -> None:
        self.target = target
        self.using = using
        self.table = _table()  # type: ignore[assignment]
        self.supports_groups = target.supports_groups

    def __repr__(self) -> str:
        return f"<DjangoOutboxTransport {self.table.name}@{self.using} -> {self.target!r}>"

    def publish(self, stream: str, data: bytes) -> str:
        """Insert the event on the current outbox database; returns its row id."""
        using = _using.get() or self.using
        row = _outbox(using).create(
            stream=stream, data=bytes(data), created_at=time.time(), attempts=0
        )
        return f"outbox:{row.pk}"

    async def apublish(self, stream: str, data: bytes) -> str:
        """As :meth:`publish`, from async code (the ORM call runs in a thread)."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.publish)(stream, data)


class DjangoRelay(RelayLoop):
    """Moves committed outbox rows of database *using* to *target* (module docstring).

    ``batch`` rows per transaction; ``interval`` seconds between polls when idle.
    """

    def __init__(
        self,
        target: Transport,
        *,
        using: str = DEFAULT_DB_ALIAS,
        batch: int = 100,
        interval: float = 0.5,
    ) -> None:
        super().__init__(batch=batch, interval=interval)
        self.target = target
        self.using = using
        self.table = _table()

    def __repr__(self) -> str:
        return f"<DjangoRelay {self.table.name}@{self.using} -> {self.target!r}>"

    def relay_once(self) -> int:
        """Relay one batch; returns how many rows were published (and deleted).

        Stops at the first row the broker refuses: it and the rows after it stay.
        """
        from django.db.models import F

        rows = _outbox(self.using).order_by("id")
        published: list[int] = []
        close_stale_connections()
        try:
            with _atomic(using=self.using):
                if _connections[self.using].features.has_select_for_update_skip_locked:
                    rows = rows.select_for_update(skip_locked=True)
                batch = list(rows.values_list("id", "stream", "data")[: self.batch])
                for row_id, stream, data in batch:
                    try:
                        self.target.publish(stream, bytes(data))
                    except PublishError as error:
                        logger.warning(
                            "outbox relay: row %s (stream %r) not published: %s; "
                            "%d row(s) waiting",
                            row_id,
                            stream,
                            error,
                            len(batch) - len(published),
                        )
                        _outbox(self.using).filter(id=row_id).update(
                            attempts=F("attempts") + 1, last_error=str(error)[:2000]
                        )
                        break
                    published.append(row_id)
                if published:
                    # In the transaction that read them: a crash before the commit
                    # republishes them (at-least-once), never loses them.
                    _outbox(self.using).filter(id__in=published).delete()
        finally:
            close_stale_connections()
        self.relayed += len(published)
        return len(published)

    def pending(self) -> int:
        """How many rows wait in the outbox."""
        return int(_outbox(self.using).count())

    async def run(self) -> None:
        """Relay as a task of the running loop (a worker's) until :meth:`stop`.

        Each batch runs in one thread of its own (Django's connections are per thread)."""
        self._stop.clear()
        loop = asyncio.get_running_loop()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="tocsin-relay") as thread:
            try:
                while not self._stop.is_set():
                    try:
                        moved = await loop.run_in_executor(thread, self.relay_once)
                    except Exception:
                        logger.exception("outbox relay: could not read the outbox")
                        moved = 0
                    if moved < self.batch:
                        await asyncio.to_thread(self._stop.wait, self.interval)
            finally:
                self._stop.set()
                # The relay thread's connection, closed in that thread.
                await loop.run_in_executor(thread, _connections.close_all)
