"""Signals and remote receivers that the worker processes of the tests run.

``python -m tocsin worker tests.remote.sample_receivers`` imports this module. Receivers
record what they do in the Redis list named by $TOCSIN_TEST_RECORD (at $TOCSIN_TEST_REDIS),
so the test process can see it: one JSON item per phase ("started", "done", "failed").
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tocsin import Signal
from tocsin.remote import remote_receiver

order_placed = Signal(name="sample.order_placed")
always_fails = Signal(name="sample.always_fails")

_client: Any = None


def record(group: str, phase: str, **fields: Any) -> None:
    """Append one record to the test's list."""
    global _client
    import redis

    if _client is None:
        _client = redis.Redis.from_url(os.environ["TOCSIN_TEST_REDIS"])
    item = {"group": group, "phase": phase, "pid": os.getpid(), **fields}
    _client.rpush(os.environ["TOCSIN_TEST_RECORD"], json.dumps(item))


def _handle(group: str, order: int, event_id: str, event_origin: str, sleep: float) -> None:
    record(group, "started", order=order, event_id=event_id)
    time.sleep(sleep)
    record(group, "done", order=order, event_id=event_id, origin=event_origin)


@remote_receiver(order_placed, group="billing")
def bill(
    sender: Any, order: int, event_id: str, event_origin: str, sleep: float = 0.0, **kwargs: Any
) -> None:
    _handle("billing", order, event_id, event_origin, sleep)


@remote_receiver(order_placed, group="shipping")
async def ship(sender: Any, order: int, event_id: str, event_origin: str, **kwargs: Any) -> None:
    record("shipping", "done", order=order, event_id=event_id, origin=event_origin)


@remote_receiver(always_fails, group="flaky")
def fail_until_healed(sender: Any, order: int, event_id: str, **kwargs: Any) -> None:
    import redis

    client = redis.Redis.from_url(os.environ["TOCSIN_TEST_REDIS"])
    healed = client.exists(os.environ["TOCSIN_TEST_RECORD"] + ":healed")
    client.close()
    if not healed:
        record("flaky", "failed", order=order, event_id=event_id)
        raise RuntimeError(f"order {order} cannot be handled yet")
    record("flaky", "done", order=order, event_id=event_id)
