"""The bridges between sync and async dispatch, written on asyncio, threading and contextvars.

Django uses asgiref for these; tocsin keeps the same observable contract (Django 6.1) with
the standard library only:

- async receivers run concurrently in one ``asyncio.TaskGroup``, all in one copied
  context, and their results come back in registration order;
- a failure in the non-robust path cancels the siblings; a single failure is re-raised as
  itself, several as an ``ExceptionGroup``;
- whatever ContextVar changes the receivers made are copied back into the caller's
  context, even when a receiver failed.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def restore_context(context: contextvars.Context) -> None:
    """Copy into the current context every variable whose value differs in *context*."""
    for var, value in context.items():
        if var.get(_MISSING) is not value:
            var.set(value)


_MISSING = object()


async def run_concurrently(
    coroutines: Sequence[Coroutine[Any, Any, T]], context: contextvars.Context
) -> list[T | None]:
    """Run *coroutines* as tasks of one TaskGroup sharing *context*; results in order.

    A coroutine that ends by raising ``CancelledError`` itself leaves ``None`` in its slot,
    as Django's does. One failure is re-raised unwrapped; several raise an ExceptionGroup.
    """
    results: list[T | None] = [None] * len(coroutines)

    async def run_one(index: int, coroutine: Coroutine[Any, Any, T]) -> None:
        results[index] = await coroutine

    try:
        async with asyncio.TaskGroup() as group:
            for index, coroutine in enumerate(coroutines):
                group.create_task(run_one(index, coroutine), context=context)
    except BaseExceptionGroup as failures:
        if len(failures.exceptions) == 1:
            raise failures.exceptions[0] from None
        raise
    return results


def run_blocking(
    make_coroutine: Callable[[contextvars.Context], Coroutine[Any, Any, T]],
) -> T:
    """Run a coroutine to completion from synchronous code, on a fresh event loop.

    This is how ``Signal.send()`` runs async receivers from a thread with no running loop.
    The loop is private: the thread's current event loop (if one is set) is left alone.
    ContextVar changes made by the coroutine are copied back into the caller's context.
    """
    context = contextvars.copy_context()
    try:
        # loop_factory keeps the Runner from installing its loop as the thread's current
        # one; on exit it cancels and awaits whatever tasks the receivers left behind.
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            return runner.run(make_coroutine(context), context=context)
    finally:
        restore_context(context)


def loop_is_running() -> bool:
    """Whether this thread is currently running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def run_in_worker_thread(function: Callable[[], T], context: contextvars.Context) -> T:
    """Run a blocking *function* in a worker thread, inside *context*, and return its result.

    Where asgiref's rule applies (see ``_asgiref_sync_to_async``), that thread is the one
    asgiref picks, as Django's ``asend`` does; elsewhere it is the loop's default executor.
    """
    sync_to_async = _asgiref_sync_to_async()
    if sync_to_async is not None:
        result: T = await sync_to_async(context.run, thread_sensitive=True)(function)
        return result
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, context.run, function)


# Set by tocsin.contrib.django when it becomes Django's dispatcher: from then on sync
# receivers under asend run exactly where Django would run them.
follow_asgiref = False


def _asgiref_sync_to_async() -> Callable[..., Any] | None:
    """asgiref's ``sync_to_async`` if sync receivers under ``asend`` must follow it, else None.

    They must under Django (``follow_asgiref``), and whenever the caller is inside one of
    asgiref's thread-sensitive contexts: below an ``async_to_sync`` call, in a
    ``ThreadSensitiveContext``, or on a loop that asgiref runs for a sync thread. There
    the thread that owns the caller's resources (a request's database connection) is
    known, and running anywhere else would be wrong. Outside Django, asgiref is never
    imported here: if nothing imported it, no caller can be inside its contexts.
    """
    if follow_asgiref:
        from asgiref.sync import sync_to_async

        return sync_to_async
    asgiref = sys.modules.get("asgiref.sync")
    if asgiref is None or not _inside_thread_sensitive_context(asgiref):
        return None
    return getattr(asgiref, "sync_to_async", None)


def _inside_thread_sensitive_context(asgiref: Any) -> bool:
    # asgiref's own tests for where a thread-sensitive sync_to_async call goes
    # (SyncToAsync.__call__), read defensively: they are not public API.
    async_to_sync = getattr(asgiref, "AsyncToSync", None)
    if async_to_sync is not None:
        if getattr(getattr(async_to_sync, "executors", None), "current", None) is not None:
            return True
        if asyncio.get_running_loop() in getattr(async_to_sync, "loop_thread_executors", {}):
            return True
    context = getattr(getattr(asgiref, "SyncToAsync", None), "thread_sensitive_context", None)
    return context is not None and context.get(None) is not None
