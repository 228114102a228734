"""Remote receivers and the worker on the in-memory transport: no broker needed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tocsin import Signal
from tocsin.remote import (
    Envelope,
    Keyring,
    MemoryTransport,
    PublishError,
    Worker,
    publish,
    remote_receiver,
    replay_dead_letters,
    unpublish,
)

# Module-level signals: only those have a dotted path that other processes can name.
paid = Signal(name="test.paid")
shipped = Signal(name="test.shipped")
PAID = f"{__name__}.paid"


class Shop:
    """A sender class: classes travel by import path."""


async def run_until(worker: Worker, condition: Any, timeout: float = 5.0) -> None:
    """Run *worker* until *condition()* holds (bounded), then stop it gracefully."""
    task = worker.start()
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    assert task.done()


def make_worker(memory: MemoryTransport, envelope: Envelope, **options: Any) -> Worker:
    options.setdefault("poll_timeout", 0.05)
    options.setdefault("retry_backoff", 0.01)
    return Worker(memory, envelope, **options)


def test_send_is_published_and_every_group_receives_it(memory, envelope):
    calls: list[tuple[str, dict[str, Any]]] = []

    @remote_receiver(paid, group="emails")
    def email(sender, **kwargs):
        calls.append(("emails", {"sender": sender, **kwargs}))

    @remote_receiver(paid, group="audit")
    async def audit(sender, **kwargs):
        calls.append(("audit", {"sender": sender, **kwargs}))

    publisher = publish(paid, memory, envelope)
    try:
        responses = paid.send(sender=Shop, amount=12)
    finally:
        assert unpublish(paid, memory)
    assert responses == [(publisher, "1-0")]
    assert len(memory.messages(PAID)) == 1

    asyncio.run(run_until(make_worker(memory, envelope), lambda: len(calls) == 2))
    by_group = dict(calls)
    assert set(by_group) == {"emails", "audit"}
    for kwargs in by_group.values():
        assert kwargs["sender"] is Shop
        assert kwargs["amount"] == 12
        assert kwargs["signal"] is paid
        assert kwargs["event_origin"].endswith(f":{__import__('os').getpid()}")
    assert by_group["emails"]["event_id"] == by_group["audit"]["event_id"]
    assert memory.pending(PAID, "emails") == 0


def test_a_group_shares_events_between_its_workers(memory, envelope):
    seen: list[tuple[str, int]] = []

    @remote_receiver(paid, group="billing")
    async def bill(sender, amount, **kwargs):
        await asyncio.sleep(0.01)
        seen.append((asyncio.current_task().get_name(), amount))  # type: ignore[union-attr]

    publish(paid, memory, envelope)
    try:
        for amount in range(20):
            paid.send(sender=Shop, amount=amount)
    finally:
        unpublish(paid, memory)

    async def two_workers() -> tuple[Worker, Worker]:
        first = make_worker(memory, envelope, concurrency=2)
        second = make_worker(memory, envelope, concurrency=2)
        first.start()
        second.start()
        async with asyncio.timeout(5):
            while len(seen) < 20:
                await asyncio.sleep(0.01)
        await first.stop()
        await second.stop()
        return first, second

    first, second = asyncio.run(two_workers())
    assert sorted(amount for _, amount in seen) == list(range(20))
    assert first.stats.handled > 0
    assert second.stats.handled > 0
    assert first.stats.handled + second.stats.handled == 20


def test_sender_filter_and_strong_publisher_priority(memory, envelope):
    got: list[Any] = []
    order: list[str] = []

    @remote_receiver(paid, group="shops-only", sender=Shop)
    def only_shops(sender, **kwargs):
        got.append(sender)

    def local(sender, **kwargs):
        order.append("local")

    paid.connect(local, priority=10)
    publish(paid, memory, envelope)
    try:
        paid.send(sender=Shop, amount=1)
        paid.send(sender="somebody else", amount=2)
    finally:
        unpublish(paid, memory)
        paid.disconnect(local)
    assert order == ["local", "local"]
    asyncio.run(run_until(make_worker(memory, envelope), lambda: len(got) == 1))
    assert got == [Shop]


def test_per_sender_publishing(memory, envelope):
    publish(shipped, memory, envelope, sender=Shop)
    try:
        shipped.send(sender=Shop)
        shipped.send(sender=object())
    finally:
        assert unpublish(shipped, memory, sender=Shop)
    assert len(memory.messages(f"{__name__}.shipped")) == 1


def test_publish_failure_raises_publish_error(memory, envelope):
    memory.fail_publish = True
    publish(paid, memory, envelope)
    try:
        with pytest.raises(PublishError):
            paid.send(sender=Shop, amount=1)
    finally:
        unpublish(paid, memory)


def test_a_local_signal_cannot_be_published(memory, envelope):
    with pytest.raises(ValueError, match="module-level"):
        publish(Signal(), memory, envelope)


def test_retries_then_dead_letter_then_replay(memory, envelope, caplog):
    caplog.set_level(logging.CRITICAL, logger="tocsin.remote")
    attempts: list[int] = []
    healed = False

    @remote_receiver(paid, group="flaky")
    def flaky(sender, amount, **kwargs):
        attempts.append(amount)
        if not healed:
            raise RuntimeError("not yet")

    memory.publish(PAID, envelope.encode(_event(amount=7)))
    worker = make_worker(memory, envelope, max_deliveries=3)
    asyncio.run(run_until(worker, lambda: worker.stats.dead_lettered == 1))
    assert attempts == [7, 7, 7]
    assert worker.stats.retried == 2
    letters = asyncio.run(memory.dead_letters(PAID))
    assert [(d.group, d.attempts) for d in letters] == [("flaky", 3)]
    assert "RuntimeError: not yet" in letters[0].reason

    healed = True
    results = asyncio.run(replay_dead_letters(memory, envelope, PAID))
    assert [outcome for _, outcome in results] != []
    assert asyncio.run(memory.dead_letters(PAID)) == []
    worker = make_worker(memory, envelope, max_deliveries=3)
    asyncio.run(run_until(worker, lambda: worker.stats.handled == 1))
    assert attempts == [7, 7, 7, 7]


def test_duplicate_event_ids_run_once_per_group(memory, envelope):
    handled: list[str] = []

    @remote_receiver(paid, group="once")
    def once(sender, event_id, **kwargs):
        handled.append(event_id)

    event = _event(amount=1)
    memory.publish(PAID, envelope.encode(event))
    worker = make_worker(memory, envelope)
    asyncio.run(run_until(worker, lambda: worker.stats.handled == 1))
    # The same event published again (a producer retry) as a new attempt: not run again.
    import dataclasses

    memory.publish(PAID, envelope.encode(dataclasses.replace(event, attempt=2)))
    worker = make_worker(memory, envelope)
    asyncio.run(run_until(worker, lambda: worker.stats.duplicates == 1))
    assert handled == [event.id]


def test_forged_and_replayed_events_never_reach_receivers(memory, envelope, caplog):
    caplog.set_level(logging.CRITICAL, logger="tocsin.remote")
    handled: list[int] = []

    @remote_receiver(paid, group="guarded")
    def guarded(sender, amount, **kwargs):
        handled.append(amount)

    genuine = envelope.encode(_event(amount=1))
    forger = Envelope(Keyring({"test1": b"not the real key, but the same id!"}))
    memory.publish(PAID, forger.encode(_event(amount=666)))
    memory.publish(PAID, genuine.replace(b'"amount\\":1', b'"amount\\":2'))  # altered
    memory.publish(PAID, genuine)
    memory.publish(PAID, genuine)  # injected copy
    worker = make_worker(memory, envelope)
    asyncio.run(run_until(worker, lambda: worker.stats.received == 4))
    assert handled == [1]
    reasons = [d.reason for d in asyncio.run(memory.dead_letters(PAID))]
    assert len(reasons) == 2
    assert all("bad-signature" in reason for reason in reasons)
    # A forged dead letter is never re-signed by a replay.
    results = asyncio.run(replay_dead_letters(memory, envelope, PAID))
    outcomes = [outcome for _, outcome in results]
    assert outcomes == ["not replayed: bad-signature: does not match key 'test1'"] * 2


def test_crashed_consumer_events_are_claimed_with_their_delivery_count(envelope):
    now = [0.0]
    memory = MemoryTransport(clock=lambda: now[0])
    memory.publish(PAID, envelope.encode(_event(amount=1)))

    async def scenario() -> None:
        await memory.ensure_group(PAID, "g")
        [lost] = await memory.consume([PAID], "g", "crashed", count=10, timeout=0)
        assert lost.attempt == 1
        assert await memory.claim_stale([PAID], "g", "other", min_idle=30, count=10) == []
        now[0] += 31
        [claimed] = await memory.claim_stale([PAID], "g", "other", min_idle=30, count=10)
        assert (claimed.message_id, claimed.attempt) == (lost.message_id, 2)
        await claimed.ack()
        assert memory.pending(PAID, "g") == 0

    asyncio.run(scenario())


def test_broadcast_reaches_every_worker(memory, envelope):
    got: list[str] = []

    @remote_receiver(paid, broadcast=True, group="cache")
    async def invalidate(sender, **kwargs):
        got.append(asyncio.current_task().get_name())  # type: ignore[union-attr]

    async def scenario() -> tuple[Worker, Worker]:
        first = make_worker(memory, envelope)
        second = make_worker(memory, envelope)
        first.start()
        second.start()
        await asyncio.sleep(0.2)  # both subscribed: broadcast groups start at "new"
        await memory.apublish(PAID, envelope.encode(_event(amount=1)))
        async with asyncio.timeout(5):
            while first.stats.handled + second.stats.handled < 2:
                await asyncio.sleep(0.01)
        await first.stop()
        await second.stop()
        return first, second

    first, second = asyncio.run(scenario())
    assert (first.stats.handled, second.stats.handled) == (1, 1)


def test_graceful_stop_finishes_in_flight_events(memory, envelope):
    finished: list[int] = []

    @remote_receiver(paid, group="slow")
    async def slow(sender, amount, **kwargs):
        await asyncio.sleep(0.3)
        finished.append(amount)

    memory.publish(PAID, envelope.encode(_event(amount=1)))

    async def scenario() -> Worker:
        worker = make_worker(memory, envelope)
        worker.start()
        async with asyncio.timeout(5):
            while worker.in_flight == 0:
                await asyncio.sleep(0.01)
        await worker.stop()
        return worker

    worker = asyncio.run(scenario())
    assert finished == [1]
    assert worker.stats.handled == 1
    assert memory.pending(PAID, "slow") == 0


def test_stop_timeout_releases_in_flight_events_for_others(memory, envelope):
    @remote_receiver(paid, group="stuck")
    async def stuck(sender, **kwargs):
        await asyncio.sleep(60)

    memory.publish(PAID, envelope.encode(_event(amount=1)))

    async def scenario() -> None:
        worker = make_worker(memory, envelope, shutdown_timeout=0.1)
        worker.start()
        async with asyncio.timeout(5):
            while worker.in_flight == 0:
                await asyncio.sleep(0.01)
        await worker.stop()
        assert worker.stats.released == 1
        assert memory.pending(PAID, "stuck") == 1
        # Handed back: another consumer takes it at once, not after the idle timeout.
        [again] = await memory.claim_stale([PAID], "stuck", "next", min_idle=60, count=1)
        assert again.attempt == 2

    asyncio.run(scenario())


def _event(**kwargs: Any) -> Any:
    from tocsin.remote import new_event

    return new_event(PAID, Shop, kwargs)
