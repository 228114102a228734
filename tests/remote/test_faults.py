"""What a fault-injection run against real workers and brokers found, each pinned down.

Real Redis (the shared one, or a redis-server of the test's own to stop, pause or
restart), real worker processes where the finding was about them. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

import pytest

from tests.remote import sample_receivers
from tocsin.remote import (
    Worker,
    new_event,
    remote_receiver,
)
from tocsin.remote.redis import RedisStreamsTransport

ORDER = "tests.remote.sample_receivers.order_placed"
FAILS = "tests.remote.sample_receivers.always_fails"

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server program"
)


@pytest.fixture
def transport(redis_url, prefix):
    transport = RedisStreamsTransport(redis_url, prefix=prefix)
    yield transport
    transport.close()


@pytest.fixture
def quiet():
    """The worker's warnings about rejected events are expected here."""
    logger = logging.getLogger("tocsin.remote")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


async def run_until(worker: Worker, condition: Any, timeout: float = 10.0) -> None:
    """Run *worker* until *condition()* holds (bounded), then stop it gracefully."""
    worker.start()
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()


# --------------------------------------------------------------------------- finding 6


def test_a_worker_accepts_only_the_signals_its_groups_declare(
    redis_url, prefix, transport, envelope, quiet
):
    handled: list[int] = []

    @remote_receiver(sample_receivers.order_placed, group="strict")
    def bill(sender, order, **kwargs):
        handled.append(order)

    # A correctly signed event on the group's stream, naming a signal nobody declared.
    transport.publish(ORDER, envelope.encode(new_event(FAILS, None, {"order": 1})))
    transport.publish(ORDER, envelope.encode(new_event(ORDER, None, {"order": 2})))
    assert envelope.allowed_signals is None  # no allow-list given: the worker makes one
    worker = Worker(
        RedisStreamsTransport(redis_url, prefix=prefix),
        envelope,
        groups=["strict"],
        poll_timeout=0.1,
    )
    asyncio.run(run_until(worker, lambda: worker.stats.received == 2))
    assert handled == [2]
    assert worker.stats.rejected == 1
    assert worker.stats.handled == 1
    letters = asyncio.run(transport.dead_letters(ORDER))
    assert [letter.reason.split(":")[0] for letter in letters] == ["rejected (unknown-signal)"]
