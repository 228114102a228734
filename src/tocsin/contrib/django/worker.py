"""Remote receivers run inside a Django project: connections handled per event.

``manage.py tocsin_worker`` builds its :class:`~tocsin.remote.Worker` with
:func:`django_worker`, which wraps every remote receiver so that, in the thread the
receiver runs in (Django's connections are per thread):

- before the call, queries logged under DEBUG are reset and stale connections closed
  (``close_old_connections``: unusable after an error, or older than ``CONN_MAX_AGE``),
  as Django does at the start of each request, and Celery's Django support before each
  task; so a worker running for weeks survives a database restart: the event that
  meets the dead connection fails and is retried, on a fresh connection;
- the :class:`~tocsin.contrib.django.codec.ModelRef` values the envelope decoded are
  loaded, so receivers get model instances;
- after the call, stale connections are closed again, as at the end of a request.

``async def`` receivers get the same, with the database work done through
``sync_to_async``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, reset_queries

from tocsin.contrib.django.codec import load_models
from tocsin.remote import Envelope, RemoteReceiver, Transport, Worker, remote_receivers

__all__ = [
    "close_stale_connections",
    "django_receiver",
    "django_receivers",
    "django_worker",
    "event_ended",
    "event_started",
]


def close_stale_connections() -> None:
    """Django's ``close_old_connections`` for the calling thread, except connections in
    an ``atomic()`` block, which it would close (their autocommit is off): a receiver
    called inside a test's transaction keeps it."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def event_started() -> None:
    """What Django does when a request starts: reset the query log, close stale
    connections (of the calling thread)."""
    reset_queries()
    close_stale_connections()


def event_ended() -> None:
    """What Django does when a request ends: close stale connections."""
    close_stale_connections()


def _load_all(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: load_models(value) for name, value in kwargs.items()}


def django_receiver(function: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
    """Return *function* wrapped as described in the module docstring."""
    if is_async:
        from asgiref.sync import sync_to_async

        @functools.wraps(function)
        async def call_async(**kwargs: Any) -> Any:
            await sync_to_async(event_started)()
            try:
                loaded = await sync_to_async(_load_all)(kwargs)
                return await function(**loaded)
            finally:
                await sync_to_async(event_ended)()

        return call_async

    @functools.wraps(function)
    def call(**kwargs: Any) -> Any:
        event_started()
        try:
            return function(**_load_all(kwargs))
        finally:
            event_ended()

    return call


def django_receivers(
    receivers: Iterable[RemoteReceiver] | None = None, *, groups: Iterable[str] | None = None
) -> list[RemoteReceiver]:
    """The remote receivers (default: those declared, of *groups* if given), each with
    its function wrapped by :func:`django_receiver`; group, signal and stream unchanged."""
    declared = list(receivers) if receivers is not None else remote_receivers(groups)
    return [
        dataclasses.replace(
            entry, receiver=django_receiver(entry.receiver, is_async=entry.is_async)
        )
        for entry in declared
    ]


def django_worker(
    transport: Transport,
    envelope: Envelope,
    *,
    groups: Iterable[str] | None = None,
    receivers: Iterable[RemoteReceiver] | None = None,
    **options: Any,
) -> Worker:
    """A :class:`~tocsin.remote.Worker` running the receivers the Django way; *options*
    go to ``Worker`` (``concurrency``, ``relays``, ...). Returns it, not started."""
    wrapped = django_receivers(receivers, groups=groups)
    return Worker(transport, envelope, receivers=wrapped, **options)
