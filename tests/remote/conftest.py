"""Fixtures for the remote tests: a real Redis (or a skip, or in CI a failure), keys
isolated per test and deleted afterwards, envelopes, and a clean receiver registry."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from tests.remote.helpers import REDIS_URL, TEST_KEYS, redis_or_skip
from tocsin.remote import Envelope, Keyring, MemoryTransport
from tocsin.remote.receivers import _registry


@pytest.fixture
def redis_url() -> str:
    """The URL of a reachable Redis (skips, or fails in CI, without one)."""
    return redis_or_skip()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    import redis

    prefix = f"tocsin-test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def keyring() -> Keyring:
    """The keyring the worker processes get through $TOCSIN_KEYS."""
    key_id, _, secret = TEST_KEYS.partition(":")
    return Keyring({key_id: base64.b64decode(secret)})


@pytest.fixture
def envelope(keyring: Keyring) -> Envelope:
    """A signing envelope with the test keys."""
    return Envelope(keyring)


@pytest.fixture
def memory() -> MemoryTransport:
    """An in-memory transport."""
    return MemoryTransport()


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Remote receivers declared by a test are forgotten after it."""
    saved = list(_registry)
    yield
    _registry[:] = saved


__all__ = ["REDIS_URL"]
