"""Sync receivers under asend without Django: tocsin's own bridge, unless the caller is
inside one of asgiref's thread-sensitive contexts, where asgiref's rule is followed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tocsin import Signal

asgiref_sync = pytest.importorskip("asgiref.sync")


def thread_recorder() -> tuple[Signal, list[int], Any]:
    signal = Signal()
    threads: list[int] = []

    def on_signal(sender: Any, **kwargs: Any) -> None:
        threads.append(threading.get_ident())

    signal.connect(on_signal, weak=False)
    return signal, threads, on_signal


def test_below_async_to_sync_sync_receivers_run_in_the_calling_thread():
    signal, threads, _ = thread_recorder()
    caller = threading.get_ident()
    # A sync caller (a Django view, say) calls async code that sends with asend.
    asgiref_sync.async_to_sync(signal.asend)(sender=None)
    assert threads == [caller]


def test_in_a_thread_sensitive_context_sync_receivers_run_in_its_thread():
    signal, threads, _ = thread_recorder()

    async def sends() -> tuple[int, int]:
        async with asgiref_sync.ThreadSensitiveContext():
            # The thread asgiref gives this context's sync code (the request's, in Django).
            owner = await asgiref_sync.sync_to_async(threading.get_ident)()
            await signal.asend(sender=None)
            await signal.asend(sender=None)
        return owner, threading.get_ident()

    owner, loop_thread = asyncio.run(sends())
    assert threads == [owner, owner]
    assert owner != loop_thread


def test_elsewhere_tocsins_own_bridge_runs_them_in_a_worker_thread():
    signal, threads, _ = thread_recorder()

    async def send() -> int:
        await signal.asend(sender=None)
        return threading.get_ident()

    loop_thread = asyncio.run(send())
    assert len(threads) == 1
    assert threads[0] != loop_thread
