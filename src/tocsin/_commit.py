"""Receivers that run only after the transaction that produced the event commits.

Django's most famous signal trap: ``post_save`` runs inside the transaction, so a receiver
that sends an email or enqueues a task acts on a row that may yet be rolled back. Mark
such a receiver with ``@after_commit``::

    @receiver(post_save, sender=User)
    @after_commit
    def send_welcome_email(sender, instance, created, **kwargs): ...

When the signal is sent while an integration has declared a transaction for the current
context (the SQLAlchemy integration does, around the model signals it sends from a
Session), the call is handed to that transaction and runs after it commits, or never if
it rolls back. With no transaction declared, the receiver runs at once, as Django's
``transaction.on_commit`` does outside a transaction.

The core knows nothing of databases: a transaction is anything that can take a callback
to run on commit (a ``Scheduler``), declared with ``deferring_to(scheduler)``. An
integration whose transactions are ambient rather than declared per send (Django's
``atomic()``, named by the ``using=`` a model signal sends) registers a *finder* with
``add_scheduler_finder()``: asked with the send's keyword arguments when no transaction
is declared in the context, it returns the scheduler to use, or None.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = [
    "Scheduler",
    "SchedulerFinder",
    "add_scheduler_finder",
    "after_commit",
    "current_scheduler",
    "deferring_to",
    "remove_scheduler_finder",
    "run_callback",
]

logger = logging.getLogger("tocsin.dispatch")

# Takes a zero-argument callback and runs it when the transaction commits (or at once).
Scheduler = Callable[[Callable[[], Any]], None]

# Takes a send's keyword arguments; returns the scheduler of the transaction they name.
SchedulerFinder = Callable[[Mapping[str, Any]], "Scheduler | None"]

# Replaced, never mutated: sends read it without a lock.
_finders: tuple[SchedulerFinder, ...] = ()
_finders_lock = threading.Lock()

_current: contextvars.ContextVar[Scheduler | None] = contextvars.ContextVar(
    "tocsin_transaction", default=None
)

_F = TypeVar("_F", bound=Callable[..., Any])

# Tasks started for async after-commit receivers: held so they are not collected early.
_background: set[asyncio.Task[Any]] = set()


def current_scheduler(kwargs: Mapping[str, Any] | None = None) -> Scheduler | None:
    """The transaction declared for the current context, if any.

    With none declared, the finders registered with ``add_scheduler_finder()`` are asked
    in turn with *kwargs* (a send's keyword arguments); the first scheduler one returns
    is the answer. Returns None when there is no transaction: run at once.
    """
    scheduler = _current.get()
    if scheduler is not None or not _finders:
        return scheduler
    named: Mapping[str, Any] = {} if kwargs is None else kwargs
    for finder in _finders:
        scheduler = finder(named)
        if scheduler is not None:
            return scheduler
    return None


def add_scheduler_finder(finder: SchedulerFinder) -> None:
    """Register *finder*, asked for the transaction of sends that declare none.

    Returns None; adding the same finder twice keeps one. Integrations call it when
    they are set up (``tocsin.contrib.django`` does at ``django.setup()``).
    """
    global _finders
    with _finders_lock:
        if finder not in _finders:
            _finders = (*_finders, finder)


def remove_scheduler_finder(finder: SchedulerFinder) -> bool:
    """Unregister *finder*; returns whether it was registered."""
    global _finders
    with _finders_lock:
        if finder not in _finders:
            return False
        _finders = tuple(f for f in _finders if f != finder)
        return True


@contextlib.contextmanager
def deferring_to(scheduler: Scheduler | None) -> Iterator[None]:
    """Declare *scheduler* as the current transaction while the block runs.

    Integrations wrap their sends in it; ``@after_commit`` receivers called inside hand
    their call to *scheduler* instead of running.
    """
    token = _current.set(scheduler)
    try:
        yield
    finally:
        _current.reset(token)


def after_commit(receiver: _F) -> _F:
    """Decorator: run *receiver* after the current transaction commits, not when sent.

    The wrapper returns ``None`` (the receiver has not run yet); ``__wrapped__`` is the
    receiver. An ``async def`` receiver is run on the event loop that is running when
    the transaction commits, or to completion if none is.
    """
    if getattr(receiver, "_tocsin_after_commit", False):
        return receiver

    @functools.wraps(receiver)
    def deferred(**kwargs: Any) -> None:
        call = functools.partial(run_callback, functools.partial(receiver, **kwargs))
        scheduler = current_scheduler(kwargs)
        if scheduler is None:
            call()
        else:
            scheduler(call)

    deferred._tocsin_after_commit = True  # type: ignore[attr-defined]
    return deferred  # type: ignore[return-value]


def run_callback(callback: Callable[[], Any]) -> None:
    """Run an after-commit callback; an async one is started on the running loop."""
    result = callback()
    if inspect.isawaitable(result):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_await(result))
        else:
            task = loop.create_task(_await(result))
            _background.add(task)
            task.add_done_callback(_finished)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("Error in an after-commit receiver (%s)", error, exc_info=error)
