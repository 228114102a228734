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
    """Run a blocking *function* in the loop's default executor, inside *context*."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, context.run, function)
