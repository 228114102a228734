"""``@tocsin.after_commit`` on Django's transactions, by Django's own ``on_commit``.

With the app installed (``django.setup()`` calls :func:`install_transactions`), an
``@after_commit`` receiver, and a ``publish(..., on_commit=True)``, defers its call with
``django.db.transaction.on_commit`` on the database the send names::

    @receiver(post_save, sender=Order)
    @tocsin.after_commit
    def send_receipt(sender, instance, created, **kwargs): ...

    with transaction.atomic(using="orders"):
        order.save(using="orders")   # post_save(using="orders"): queued on "orders"
    # send_receipt runs here, after COMMIT on "orders"; never if the block rolled back

The alias is the send's ``using=`` (Django's model signals always give it); a send
without one, or naming no configured database, uses ``"default"``. Django's rules then
hold, because Django applies them: outside ``atomic()`` the receiver runs at once; a
rollback drops it; a savepoint (an inner ``atomic()``) that rolls back drops only the
calls queued inside it; the calls are robust, so one that raises is logged (on
``django.db.backends.base``) and the others still run. ``TestCase`` never commits, so
its tests see the calls with ``self.captureOnCommitCallbacks(execute=True)``.

A transaction declared in the context (``tocsin._commit.deferring_to``: a SQLAlchemy
Session sending its model signals inside a Django project) takes precedence.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from tocsin._commit import (
    Scheduler,
    add_scheduler_finder,
    remove_scheduler_finder,
    run_callback,
)

__all__ = ["install_transactions", "scheduler_for", "uninstall_transactions"]

logger = logging.getLogger("tocsin.dispatch")

# Django 4.2 added robust=; before it, the callback logs its own failure.
_HAS_ROBUST = "robust" in inspect.signature(transaction.on_commit).parameters


# Django ships no types: pyright reads its source and cannot follow this one.
_connections: Any = connections


def _alias(using: object) -> str:
    if isinstance(using, str) and using in _connections.settings:
        return using
    return str(DEFAULT_DB_ALIAS)


def scheduler_for(using: str | None = None) -> Scheduler | None:
    """The scheduler that defers callbacks to the commit of *using*'s ``atomic()`` block.

    Returns None when that connection is not in an atomic block (the callback then runs
    at once, as ``on_commit`` would run it): deciding so reads no database state, so it
    is safe from async code, where Django forbids touching connections.
    """
    alias = _alias(using)
    if not connections[alias].in_atomic_block:
        return None
    return functools.partial(_schedule, alias)


def _from_send(kwargs: Mapping[str, Any]) -> Scheduler | None:
    return scheduler_for(kwargs.get("using"))


def _schedule(alias: str, callback: Callable[[], Any]) -> None:
    run = _named(callback)
    if _HAS_ROBUST:
        transaction.on_commit(run, using=alias, robust=True)
    else:  # pragma: no cover - Django < 4.2
        transaction.on_commit(functools.partial(_robust, run), using=alias)


def _named(callback: Callable[[], Any]) -> Callable[[], None]:
    """A plain function calling *callback*: Django's log line names it by __qualname__,
    which a partial lacks."""

    def run() -> None:
        run_callback(callback)

    run.__qualname__ = run.__name__ = _describe(callback)
    return run


def _robust(callback: Callable[[], Any]) -> None:  # pragma: no cover - Django < 4.2
    try:
        callback()
    except Exception as error:
        logger.error("Error calling %s in on_commit() (%s).", _describe(callback), error)


def _describe(callback: Callable[[], Any]) -> str:
    while isinstance(callback, functools.partial):
        if callback.func is run_callback and callback.args:
            callback = callback.args[0]
        else:
            callback = callback.func
    return getattr(callback, "__qualname__", None) or repr(callback)


def install_transactions() -> None:
    """Make after-commit receivers and publishers defer to Django's ``on_commit``.

    Returns None. Idempotent. The app's ``ready()`` calls it; call it yourself only for
    a Django program that does not list ``"tocsin.contrib.django"`` in INSTALLED_APPS.
    """
    add_scheduler_finder(_from_send)


def uninstall_transactions() -> bool:
    """Undo :func:`install_transactions`; returns whether it was installed."""
    return remove_scheduler_finder(_from_send)
