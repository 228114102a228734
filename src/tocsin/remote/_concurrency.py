"""The worker's concurrency primitives: shared capacity, and group commit of settles."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batcher", "Slots"]


class Slots:
    """How many more events the worker may take on (``concurrency`` in all).

    Unlike a semaphore, :meth:`take` waits for several free slots and takes them all at
    once, without holding any while it waits (consume loops share the slots). Waiters
    are served first come, first served, so no consume loop starves another.
    """

    def __init__(self, total: int) -> None:
        self.free = total
        self._waiters: collections.deque[tuple[int, asyncio.Future[int]]] = collections.deque()
        self._granting = False

    async def take(self, at_least: int) -> int:
        """Wait until *at_least* slots are free, then take every free one; returns how many."""
        if not self._waiters and self.free >= at_least:
            taken, self.free = self.free, 0
            return taken
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((at_least, future))
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give(future.result())  # granted as we were cancelled: give them back
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove((at_least, future))
                self.give(0)  # the next waiter may be satisfiable now
            raise

    def give(self, count: int) -> None:
        """Give back *count* slots; waiters are served once the callbacks running now
        have given back theirs (events settled together come back together)."""
        self.free += count
        if self._waiters and not self._granting:
            self._granting = True
            asyncio.get_running_loop().call_soon(self._grant)

    def _grant(self) -> None:
        self._granting = False
        while self._waiters and self.free >= self._waiters[0][0]:
            _, future = self._waiters.popleft()
            if not future.done():
                taken, self.free = self.free, 0
                future.set_result(taken)


_T = TypeVar("_T")
_R = TypeVar("_R")


class Batcher(Generic[_T, _R]):
    """Coalesces the calls made while a flush is running (or in one loop iteration) into
    one call of *flush*: group commit. ``await submit(item)`` returns *item*'s result,
    or raises the flush's error. One flush runs at a time.
    """

    def __init__(self, flush: Callable[[list[_T]], Awaitable[list[_R]]]) -> None:
        self._flush = flush
        self._items: list[_T] = []
        self._futures: list[asyncio.Future[_R]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: _T) -> _R:
        future: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
        self._items.append(item)
        self._futures.append(future)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._items:
                items, futures = self._items, self._futures
                self._items, self._futures = [], []
                try:
                    results = await self._flush(items)
                except Exception as error:
                    for future in futures:
                        if not future.done():
                            future.set_exception(error)
                    continue
                except BaseException:  # cancelled: so are the callers waiting
                    for future in futures:
                        future.cancel()
                    raise
                for future, result in zip(futures, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None
            for future in self._futures:  # left by a cancellation: never leave them hanging
                if not future.done():
                    future.cancel()
            self._items, self._futures = [], []

    async def wait(self, timeout: float) -> None:
        """Wait (up to *timeout* seconds) for the flush in progress, if any."""
        if self._task is not None:
            await asyncio.wait([self._task], timeout=timeout)
