"""The bridges between sync and async dispatch, on asyncio or trio, with the standard library.

Django uses asgiref for these, which is asyncio only; tocsin keeps the same observable
contract (Django 6.1) on asyncio and on trio, directly or through anyio (either backend):

- the sync receivers run as one group in a worker thread (the loop's own: asyncio's default
  executor, ``trio.to_thread``), inside the send's copied context; the thread cannot be
  interrupted, so a cancellation meanwhile waits for the group to finish, then propagates
  before any async receiver starts;
- async receivers run concurrently (an ``asyncio.TaskGroup``, a trio nursery), all in that
  one copied context, and their results come back in registration order;
- a failure in the non-robust path cancels the siblings; a single failure is re-raised as
  itself, several as an ``ExceptionGroup``; a caller's cancellation reaches every running
  receiver, and the send returns only once they have all finished;
- whatever ContextVar changes the receivers made are copied back into the caller's
  context, even when a receiver failed.

Which loop is running is decided once per send (``current_event_loop``); trio (and anyio)
are imported only by code that is running under them, never by ``import tocsin``.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import types
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def restore_context(context: contextvars.Context) -> None:
    """Copy into the current context every variable whose value differs in *context*."""
    for var, value in context.items():
        if var.get(_MISSING) is not value:
            var.set(value)


_MISSING = object()


class EventLoop:
    """The parts of an async send that depend on the running event loop."""

    name = "?"

    async def run_in_thread(self, function: Callable[[], T], context: contextvars.Context) -> T:
        """Run a blocking *function* in a worker thread, inside *context*; its result."""
        raise NotImplementedError

    async def run_concurrently(
        self, coroutines: Sequence[Coroutine[Any, Any, T]], context: contextvars.Context
    ) -> list[T | None]:
        """Run *coroutines* concurrently, all inside *context*; their results, in order."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<tocsin event loop bridge: {self.name}>"


class _Asyncio(EventLoop):
    name = "asyncio"

    async def run_in_thread(self, function: Callable[[], T], context: contextvars.Context) -> T:
        loop = asyncio.get_running_loop()
        job = _ThreadJob(function, context)
        try:
            return await loop.run_in_executor(None, job.run)
        except asyncio.CancelledError:
            # The future is cancelled, the thread (if it started) runs on: wait for it.
            finished = job.abandon(loop)
            if finished is not None:
                await _wait_for_thread(finished)
            raise

    async def run_concurrently(
        self, coroutines: Sequence[Coroutine[Any, Any, T]], context: contextvars.Context
    ) -> list[T | None]:
        # A coroutine that ends by raising CancelledError itself leaves None in its slot,
        # as Django's does.
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


class _ThreadJob:
    """The sync group as run by asyncio's executor, which can be abandoned but not stopped.

    Awaiting ``run_in_executor`` directly costs nothing extra; on cancellation, the
    future is cancelled (and, if no thread has picked the job up yet, so is the job),
    while a job already running goes on. ``abandon`` tells the two apart.
    """

    __slots__ = ("abandoned", "context", "finished", "function", "lock", "running")

    def __init__(self, function: Callable[[], Any], context: contextvars.Context) -> None:
        self.function = function
        self.context = context
        self.lock = threading.Lock()
        self.abandoned = False
        self.running = False
        self.finished: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def run(self) -> Any:
        with self.lock:
            if self.abandoned:
                return None
            self.running = True
        try:
            return self.context.run(self.function)
        finally:
            with self.lock:
                self.running = False
                if self.finished is not None:
                    loop, future = self.finished
                    loop.call_soon_threadsafe(_set_done, future)

    def abandon(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None] | None:
        """Stop the job from starting; the future to await if it is running, else None."""
        with self.lock:
            self.abandoned = True
            if not self.running:
                return None
            future = loop.create_future()
            self.finished = (loop, future)
            return future


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait_for_thread(future: asyncio.Future[None]) -> None:
    """Wait for *future*, set when the worker thread is done, through any cancellation."""
    anyio = sys.modules.get("anyio")
    if anyio is not None:
        # anyio re-delivers a scope's cancellation on every loop iteration until the task
        # leaves the scope; a shielded scope stops that spinning while the thread finishes.
        with anyio.CancelScope(shield=True):
            await _wait_through_cancellation(future)
    else:
        await _wait_through_cancellation(future)


async def _wait_through_cancellation(future: asyncio.Future[None]) -> None:
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            continue


class _Trio(EventLoop):
    name = "trio"

    async def run_in_thread(self, function: Callable[[], T], context: contextvars.Context) -> T:
        import trio

        def in_context() -> T:
            # trio runs the thread in a copy of this task's context; this enters the
            # send's own copy inside it, so the changes land where the send reads them.
            return context.run(_off_the_loop, function)

        try:
            # The thread is not abandoned on cancellation: trio waits for it.
            return await trio.to_thread.run_sync(in_context)
        finally:
            # As on asyncio: a cancellation that arrived meanwhile propagates now, before
            # any async receiver starts (and over a failure of the sync group).
            await trio.lowlevel.checkpoint_if_cancelled()

    async def run_concurrently(
        self, coroutines: Sequence[Coroutine[Any, Any, T]], context: contextvars.Context
    ) -> list[T | None]:
        import trio

        results: list[T | None] = [None] * len(coroutines)

        async def run_one(index: int, coroutine: Coroutine[Any, Any, T]) -> None:
            results[index] = await _stepped_in(context, coroutine)

        try:
            async with trio.open_nursery() as nursery:
                for index, coroutine in enumerate(coroutines):
                    nursery.start_soon(run_one, index, coroutine)
        except BaseExceptionGroup as group:
            # Cancelled exceptions reaching here are the caller's (the nursery absorbs
            # the ones it caused itself): raised as one, as a plain checkpoint would,
            # unless receivers failed, whose errors then follow asyncio's rule. The
            # caller's scope stays cancelled, so its next checkpoint raises again.
            cancelled, failures = group.split(trio.Cancelled)
            if failures is None:
                raise _first_leaf(group) from None
            if len(failures.exceptions) == 1:
                raise failures.exceptions[0] from None
            if cancelled is None:
                raise
            raise failures from None
        return results


def _off_the_loop(function: Callable[[], T]) -> T:
    """Call *function* with sniffio's "current async library" unset, then restore it.

    anyio.run() records its backend in that ContextVar, and the send's context carries
    it into the worker thread, where no loop runs; trio clears it in the contexts of its
    own threads, for the same reason: otherwise a ``send()`` there, running async
    receivers on a private asyncio loop, would have anyio take that loop for trio.
    """
    sniffio = sys.modules.get("sniffio")
    if sniffio is None:
        return function()
    token = sniffio.current_async_library_cvar.set(None)
    try:
        return function()
    finally:
        sniffio.current_async_library_cvar.reset(token)


def _first_leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


@types.coroutine
def _stepped_in(
    context: contextvars.Context, coroutine: Coroutine[Any, Any, T]
) -> Generator[Any, Any, T]:
    """Await *coroutine*, running each of its steps inside *context*.

    asyncio's ``create_task(context=...)`` lets sibling tasks share one context; trio
    starts every task in a copy of its spawner's, so the sharing is done step by step:
    whatever the coroutine yields goes to trio unchanged, whatever trio sends (or
    throws) goes back in, inside the shared context.
    """
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            if thrown is None:
                request = context.run(coroutine.send, sent)
            else:
                request = context.run(coroutine.throw, thrown)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        thrown = None
        try:
            sent = yield request
        except GeneratorExit:
            context.run(coroutine.close)
            raise
        except BaseException as error:
            thrown = error


ASYNCIO = _Asyncio()
TRIO = _Trio()


def current_event_loop() -> EventLoop:
    """The bridge for the event loop running the current coroutine.

    asyncio (plain or under anyio's asyncio backend) unless trio is running this thread
    (plain or under anyio's trio backend). The test is ordered to be cheapest for
    asyncio: one dictionary lookup while trio has not been imported at all, and then
    asyncio's current task (in trio's guest mode an asyncio loop hosts the trio run,
    and trio's tasks run in no asyncio task). Where no loop runs and trio has not been
    imported, asyncio's own "no running event loop" is what the send raises.
    """
    trio = sys.modules.get("trio")
    if trio is None:
        return ASYNCIO
    try:
        if asyncio.current_task() is not None:
            return ASYNCIO
    except RuntimeError:  # no asyncio loop in this thread
        pass
    if _trio_runs(trio):
        return TRIO
    if asyncio._get_running_loop() is not None:
        return ASYNCIO
    raise RuntimeError(
        "tocsin's asend() and asend_robust() run under asyncio or trio (directly or "
        "through anyio), and neither is running this coroutine. Await them from a "
        "coroutine run by asyncio.run(), trio.run() or anyio.run(), or call send() from "
        "synchronous code."
    )


def _trio_runs(trio: Any) -> bool:
    """Whether this thread is running trio (not one of trio's worker threads)."""
    in_trio_run = getattr(trio.lowlevel, "in_trio_run", None)  # trio 0.26 and later
    if in_trio_run is not None:
        return bool(in_trio_run())
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


def _in_trio() -> bool:
    trio = sys.modules.get("trio")
    return trio is not None and _trio_runs(trio)


async def run_in_worker_thread(
    function: Callable[[], T], context: contextvars.Context, loop: EventLoop | None = None
) -> T:
    """Run the sync group *function* in a worker thread, inside *context*; its result.

    The one place that chooses the thread for sync receivers: the running loop's worker
    threads, unless a framework's thread rule applies first. *loop* is the send's
    ``current_event_loop()``, when it has already been looked up.
    """
    loop = loop or current_event_loop()
    # A framework's thread rule goes here, ahead of the loop's default: the Django
    # integration's (asgiref's thread-sensitive executor) when loop is ASYNCIO, as
    # asgiref runs on asyncio only.
    return await loop.run_in_thread(function, context)


def run_concurrently(
    coroutines: Sequence[Coroutine[Any, Any, T]],
    context: contextvars.Context,
    loop: EventLoop | None = None,
) -> Coroutine[Any, Any, list[T | None]]:
    """Run *coroutines* concurrently, sharing *context*; await it for the results, in order.

    One failure is re-raised unwrapped; several raise an ExceptionGroup. (A plain
    function returning the loop's coroutine: one coroutine less on the asend path.)
    """
    return (loop or current_event_loop()).run_concurrently(coroutines, context)


def run_blocking(
    make_coroutine: Callable[[contextvars.Context], Coroutine[Any, Any, T]],
) -> T:
    """Run a coroutine to completion from synchronous code, on a fresh event loop.

    This is how ``Signal.send()`` runs async receivers from a thread with no running loop
    (a trio worker thread included: trio's loop runs in another thread).
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
    """Whether this thread is currently running an event loop (asyncio or trio)."""
    return asyncio._get_running_loop() is not None or _in_trio()
