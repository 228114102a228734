"""The NATS JetStream transport against a real nats-server with JetStream.

Every test works under a prefix of its own (its streams, consumers and bucket) and
deletes them afterwards. Without a server the tests skip; in CI (CI=true) they fail.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.remote.helpers import free_port
from tocsin import Signal
from tocsin.remote import Delivery, Envelope, PublishError, Worker, publish, remote_receiver

nats = pytest.importorskip("nats")

from tocsin.remote.nats import NatsJetStreamTransport  # noqa: E402

NATS_URL = os.environ.get("TOCSIN_NATS_URL", "nats://127.0.0.1:4222")

# Signals must be module attributes: events name them by dotted path.
nats_order_placed = Signal(name="nats_order_placed")


def nats_or_skip(url: str = NATS_URL) -> str:
    """The NATS URL, or skip the test (fail it in CI) if no JetStream server answers."""

    async def probe() -> None:
        client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            await client.jetstream().account_info()
        finally:
            await client.close()

    try:
        asyncio.run(probe())
    except Exception as error:
        reason = f"NATS JetStream is not reachable at {url} ({type(error).__name__}: {error})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI requires it (set TOCSIN_NATS_URL)")
        pytest.skip(f"{reason}; set TOCSIN_NATS_URL to run these tests")
    return url


async def _delete_prefixed(url: str, prefix: str) -> None:
    client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if name.startswith(f"{prefix}_") or name == f"KV_{prefix}_seen":
                await js.delete_stream(name)
    finally:
        await client.close()


@pytest.fixture
def transport() -> Iterator[NatsJetStreamTransport]:
    """A transport under a prefix of this test's own; everything under it is deleted."""
    url = nats_or_skip()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    made = NatsJetStreamTransport(url, prefix=prefix, ack_wait=5.0)
    yield made
    made.close()
    asyncio.run(_delete_prefixed(url, prefix))


async def _consume_all(
    transport: NatsJetStreamTransport,
    group: str,
    consumer: str,
    want: int,
    timeout: float = 5.0,
    stream: str = "orders",
) -> list[Delivery]:
    found: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(found) < want and time.monotonic() < deadline:
        found += await transport.consume([stream], group, consumer, count=want, timeout=0.5)
    return found


def test_publish_then_consume(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        await transport.ensure_group("orders", "g")
        first = transport.publish("orders", b"one")  # blocking, from async code too
        second = await transport.apublish("orders", b"two")
        assert int(second) == int(first) + 1
        deliveries = await _consume_all(transport, "g", "c1", 2)
        assert [d.data for d in deliveries] == [b"one", b"two"]
        assert [d.attempt for d in deliveries] == [1, 1]
        assert deliveries[0].message_id == first
        for delivery in deliveries:
            await delivery.ack()
            await delivery.ack()  # settling twice is harmless
        assert await transport.consume(["orders"], "g", "c1", count=5, timeout=0.2) == []
        await transport.aclose()

    asyncio.run(scenario())


def test_published_before_the_group_exists_is_kept(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        await transport.apublish("orders", b"early")
        await transport.ensure_group("orders", "late", start="all")
        await transport.ensure_group("orders", "new-only", start="new")
        await transport.apublish("orders", b"later")
        assert [d.data for d in await _consume_all(transport, "late", "c", 2)] == [
            b"early",
            b"later",
        ]
        assert [d.data for d in await _consume_all(transport, "new-only", "c", 1)] == [b"later"]
        await transport.aclose()

    asyncio.run(scenario())


def test_two_groups_both_receive_everything(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        await transport.ensure_group("orders", "emails")
        await transport.ensure_group("orders", "billing")
        for index in range(4):
            await transport.apublish("orders", f"m{index}".encode())
        for group in ("emails", "billing"):
            deliveries = await _consume_all(transport, group, "c", 4)
            assert sorted(d.data for d in deliveries) == [b"m0", b"m1", b"m2", b"m3"]
            for delivery in deliveries:
                await delivery.ack()
        await transport.aclose()

    asyncio.run(scenario())


def test_two_consumers_of_one_group_split_the_load(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        await transport.ensure_group("orders", "g")
        for index in range(6):
            await transport.apublish("orders", f"m{index}".encode())
        first = await transport.consume(["orders"], "g", "c1", count=3, timeout=2)
        second = await _consume_all(transport, "g", "c2", 3)
        assert len(first) == 3
        assert len(second) == 3
        assert {d.data for d in first}.isdisjoint({d.data for d in second})
        assert {d.data for d in first + second} == {f"m{i}".encode() for i in range(6)}
        await transport.aclose()

    asyncio.run(scenario())


def test_redelivery_after_nack_with_delay(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        await transport.ensure_group("orders", "g")
        await transport.apublish("orders", b"retry me")
        (delivery,) = await _consume_all(transport, "g", "c", 1)
        nacked_at = time.monotonic()
        await delivery.nack(0.4)
        (again,) = await _consume_all(transport, "g", "c", 1)
        assert time.monotonic() - nacked_at >= 0.35
        assert again.data == b"retry me"
        assert again.message_id == delivery.message_id
        assert again.attempt == 2
        await again.release()  # back at once
        (third,) = await _consume_all(transport, "g", "c", 1, timeout=2)
        assert third.attempt == 3
        await third.ack()
        await transport.aclose()

    asyncio.run(scenario())


def test_unacked_message_is_redelivered_after_the_idle_timeout(
    transport: NatsJetStreamTransport,
) -> None:
    # claim_stale: the idle timeout becomes the durable's ack_wait; the server then
    # redelivers a crashed consumer's message to whoever pulls next.
    async def scenario() -> None:
        await transport.ensure_group("orders", "g")
        assert await transport.claim_stale(["orders"], "g", "c2", min_idle=1.0, count=5) == []
        await transport.apublish("orders", b"orphan")
        (taken,) = await _consume_all(transport, "g", "crashed", 1)
        assert await transport.consume(["orders"], "g", "c2", count=1, timeout=0.3) == []
        (recovered,) = await _consume_all(transport, "g", "c2", 1, timeout=5)
        assert recovered.message_id == taken.message_id
        assert recovered.attempt == 2
        await recovered.touch()  # still working: restarts the timer
        await recovered.ack()
        await transport.aclose()

    asyncio.run(scenario())


def test_dead_letters_and_replay_to_one_group(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        await transport.ensure_group("orders", "a")
        await transport.ensure_group("orders", "b")
        await transport.apublish("orders", b"poison")
        (delivery,) = await _consume_all(transport, "a", "c", 1)
        await delivery.dead_letter("it failed\nbadly")
        await delivery.dead_letter("twice")  # harmless
        (letter,) = await transport.dead_letters("orders")
        assert (letter.group, letter.data, letter.attempts) == ("a", b"poison", 1)
        assert letter.reason == "it failed\nbadly"
        assert await transport.dead_letters("orders", group="b") == []
        assert await transport.consume(["orders"], "a", "c", count=1, timeout=0.3) == []

        await transport.republish_dead_letter(letter, b"poison again")
        assert await transport.dead_letters("orders") == []
        (again,) = await _consume_all(transport, "a", "c", 1)
        assert again.data == b"poison again"
        await again.ack()
        # Group b sees the original once, never the replay meant for a.
        seen_by_b = await _consume_all(transport, "b", "c", 2, timeout=1.0)
        assert [d.data for d in seen_by_b] == [b"poison"]
        assert await transport.delete_dead_letters("orders", ["999"]) == 0
        await transport.aclose()

    asyncio.run(scenario())


def test_idempotency_store(transport: NatsJetStreamTransport) -> None:
    async def scenario() -> None:
        assert not await transport.seen("g", "event-1")
        assert await transport.remember("g", "event-1", 60)
        assert not await transport.remember("g", "event-1", 60)
        assert await transport.seen("g", "event-1")
        assert not await transport.seen("other", "event-1")
        odd = "ids may hold: spaces/and:colons"
        assert await transport.remember("g", odd, 60)
        assert await transport.seen("g", odd)
        await transport.aclose()

    asyncio.run(scenario())


def test_republishing_the_same_bytes_is_deduplicated(transport: NatsJetStreamTransport) -> None:
    # A publish retried after a timeout, or an outbox row relayed twice, arrives once.
    first = transport.publish("orders", b"same bytes")
    assert transport.publish("orders", b"same bytes") == first


def test_publish_raises_when_unreachable() -> None:
    down = NatsJetStreamTransport(f"nats://127.0.0.1:{free_port()}", connect_timeout=0.5)
    try:
        with pytest.raises(PublishError) as raised:
            down.publish("orders", b"x")
        assert raised.value.stream == "orders"

        async def scenario() -> None:
            with pytest.raises(PublishError):
                await down.apublish("orders", b"x")
            from tocsin.remote import TransportError

            with pytest.raises(TransportError):
                await down.consume(["orders"], "g", "c", count=1, timeout=0.1)

        asyncio.run(scenario())
    finally:
        down.close()


def test_names_are_safe_and_distinct(transport: NatsJetStreamTransport) -> None:
    assert transport.stream_name("a.b c") != transport.stream_name("a_b_c")
    assert "." not in transport.stream_name("myapp.signals.order_placed")
    with pytest.raises(ValueError, match="prefix"):
        NatsJetStreamTransport(prefix="bad.prefix")


def test_worker_end_to_end_with_retries_dead_letters_and_dedupe(
    transport: NatsJetStreamTransport, envelope: Envelope
) -> None:
    calls: list[tuple[str, Any]] = []
    group = f"g{uuid.uuid4().hex[:8]}"

    @remote_receiver(nats_order_placed, group=group)
    def handle(sender: Any, order_id: int, event_id: str, **kwargs: Any) -> None:
        calls.append((event_id, order_id))
        if order_id == 13:
            raise RuntimeError("unlucky")

    publisher = publish(nats_order_placed, transport, envelope)
    stream = publisher.stream

    async def scenario() -> None:
        worker = Worker(
            transport,
            envelope,
            groups=[group],
            claim_idle=5.0,
            max_deliveries=3,
            retry_backoff=0.05,
            poll_timeout=0.2,
        )
        worker.start()
        try:
            nats_order_placed.send(sender=None, order_id=1)
            nats_order_placed.send(sender=None, order_id=13)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (
                worker.stats.handled < 1 or worker.stats.dead_lettered < 1
            ):
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()
        assert worker.stats.handled == 1
        assert worker.stats.dead_lettered == 1
        assert [order for _, order in calls].count(13) == 3
        assert [order for _, order in calls].count(1) == 1
        letters = await transport.dead_letters(stream, group=group)
        assert len(letters) == 1
        assert letters[0].attempts == 3
        assert "unlucky" in letters[0].reason
        # The handled event is remembered: a redelivery would be acknowledged unseen.
        handled_id = next(event_id for event_id, order in calls if order == 1)
        assert await transport.seen(group, handled_id)
        await transport.aclose()

    try:
        asyncio.run(scenario())
    finally:
        nats_order_placed.disconnect(publisher)
        from tocsin.remote import unpublish

        unpublish(nats_order_placed, transport)


def test_claims_exclude_other_consumers_and_expire(transport):
    async def scenario() -> list[str]:
        claim = transport.claim
        seen = [
            await claim("g", "e1", consumer="a", message="s/1", ttl=1.0),
            await claim("g", "e1", consumer="b", message="s/2", ttl=1.0),  # a copy
            await claim("g", "e1", consumer="b", message="s/1", ttl=1.0),  # redelivered
            await claim("g", "e1", consumer="a", message="s/1", ttl=1.0),  # renewed
        ]
        await transport.unclaim("g", "e1", consumer="b", message="s/1")  # not b's: kept
        seen.append(await claim("g", "e1", consumer="b", message="s/2", ttl=1.0))
        await transport.unclaim("g", "e1", consumer="a", message="s/1")
        seen.append(await claim("g", "e1", consumer="b", message="s/2", ttl=0.2))
        await asyncio.sleep(0.3)  # b's claim expired: a crashed consumer's never blocks
        seen.append(await claim("g", "e1", consumer="c", message="s/1", ttl=1.0))
        assert await transport.remember("g", "e1", 60)
        seen.append(await claim("g", "e1", consumer="a", message="s/1", ttl=1.0))
        assert await transport.seen("g", "e1")
        assert not await transport.remember("g", "e1", 60)
        await transport.aclose()
        return seen

    assert asyncio.run(scenario()) == [
        "claimed", "copy", "busy", "claimed", "copy", "claimed", "claimed", "done",
    ]  # fmt: skip
