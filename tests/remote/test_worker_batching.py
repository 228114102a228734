"""Batched settling (seen_many, remember_and_ack) and relays run by the worker."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, insert

from tests.remote.helpers import TEST_KEYS, records, start_worker, stop, wait_for
from tocsin import Signal
from tocsin.remote import Envelope, Keyring, Worker, new_event, remote_receiver
from tocsin.remote.memory import MemoryTransport
from tocsin.remote.outbox import Relay, outbox_table
from tocsin.remote.redis import RedisStreamsTransport

batched = Signal(name="batched")


def test_default_batch_apis_loop_over_the_single_ones(memory: MemoryTransport) -> None:
    async def main() -> None:
        await memory.ensure_group("s", "g")
        for n in range(3):
            memory.publish("s", b"%d" % n)
        deliveries = await memory.consume(["s"], "g", "c", count=3, timeout=0)
        await memory.remember_and_ack([(d, f"e{d.data.decode()}") for d in deliveries[:2]], 60)
        assert await memory.seen_many([("g", "e0"), ("g", "e1"), ("g", "e2"), ("x", "e0")]) == [
            True,
            True,
            False,
            False,
        ]
        # The two settled are gone for good; only the third is still pending.
        taken = await memory.claim_stale(["s"], "g", "other", min_idle=0, count=10)
        assert [d.message_id for d in taken] == [deliveries[2].message_id]

    asyncio.run(main())


def test_redis_remembers_then_acks_a_batch_in_one_call(redis_url: str, prefix: str) -> None:
    transport = RedisStreamsTransport(redis_url, prefix=prefix)

    async def main() -> None:
        for group in ("g1", "g2"):
            await transport.ensure_group("s", group)
        for n in range(5):
            await transport.apublish("s", b"%d" % n)
        first = await transport.consume(["s"], "g1", "c", count=5, timeout=0.1)
        second = await transport.consume(["s"], "g2", "c", count=5, timeout=0.1)
        settled = first[:3] + second[:1]
        await transport.remember_and_ack([(d, f"ev{d.data.decode()}") for d in settled], 30)
        keys = [(d.group, f"ev{d.data.decode()}") for d in first + second]
        assert await transport.seen_many(keys) == [
            True, True, True, False, False, True, False, False, False, False,
        ]  # fmt: skip
        client = transport.aclient
        assert (await client.xpending(transport.key("s"), "g1"))["pending"] == 2
        assert (await client.xpending(transport.key("s"), "g2"))["pending"] == 4
        ttl = await client.pttl(f"{prefix}seen:g1:ev0")
        assert 0 < ttl <= 30_000
        # Already remembered: remembering again keeps the record (NX) and still acks.
        await transport.remember_and_ack([(first[3], "ev0")], 60)
        assert await client.pttl(f"{prefix}seen:g1:ev0") <= 30_000
        assert (await client.xpending(transport.key("s"), "g1"))["pending"] == 1
        assert await transport.seen_many([]) == []
        await transport.remember_and_ack([], 30)
        await transport.aclose()

    asyncio.run(main())


def test_a_worker_settles_many_events_with_few_round_trips(
    envelope: Envelope, redis_url: str, prefix: str
) -> None:
    transport = RedisStreamsTransport(redis_url, prefix=prefix)
    calls: list[int] = []
    handled: list[int] = []
    settle = transport.remember_and_ack

    async def counting(items: Any, ttl: float) -> None:
        calls.append(len(items))
        await settle(items, ttl)

    transport.remember_and_ack = counting  # type: ignore[method-assign,assignment]

    @remote_receiver(batched, group="batch")
    async def receive(sender: Any, n: int, **kwargs: Any) -> None:
        handled.append(n)

    async def main() -> None:
        await transport.ensure_group("tests.remote.test_worker_batching.batched", "batch")
        for n in range(40):
            event = new_event("tests.remote.test_worker_batching.batched", None, {"n": n})
            await transport.apublish(
                "tests.remote.test_worker_batching.batched", envelope.encode(event)
            )
        worker = Worker(transport, envelope, groups=["batch"], concurrency=8, poll_timeout=0.05)
        worker.start()
        deadline = time.monotonic() + 10
        while len(handled) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await worker.stop()
        assert worker.stats.handled == 40

    asyncio.run(main())
    assert sorted(handled) == list(range(40))
    assert sum(calls) == 40
    assert len(calls) < 40  # batched, not one call per event
    assert max(calls) <= 8  # never more than the worker holds


def _outbox(tmp_path: Path) -> tuple[Any, Any]:
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    table = outbox_table(MetaData())
    table.metadata.create_all(engine)
    return engine, table


def test_a_worker_runs_relays_and_stops_them(
    envelope: Envelope, memory: MemoryTransport, tmp_path: Path
) -> None:
    engine, table = _outbox(tmp_path)
    stream = "tests.remote.test_worker_batching.batched"
    got: list[int] = []

    @remote_receiver(batched, group="relayed")
    async def receive(sender: Any, n: int, **kwargs: Any) -> None:
        got.append(n)

    with engine.begin() as connection:
        for n in range(3):
            data = envelope.encode(new_event(stream, None, {"n": n}))
            connection.execute(
                insert(table).values(stream=stream, data=data, created_at=time.time())
            )
    relay = Relay(engine, memory, table, interval=0.02)

    async def main() -> Worker:
        worker = Worker(memory, envelope, groups=["relayed"], poll_timeout=0.02, relays=[relay])
        task = worker.start()
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await worker.stop()
        assert task.done()
        return worker

    worker = asyncio.run(main())
    assert sorted(got) == [0, 1, 2]
    assert relay.relayed == 3
    assert relay.pending() == 0
    assert relay._stop.is_set()  # stopped with the worker
    assert worker.relays == [relay]
    engine.dispose()


def test_tocsin_worker_relay_db(redis_url: str, prefix: str, tmp_path: Path) -> None:
    engine, table = _outbox(tmp_path)
    envelope = Envelope(Keyring.from_env(environ={"TOCSIN_KEYS": TEST_KEYS}))
    stream = "tests.remote.sample_receivers.order_placed"  # the signal's dotted path
    with engine.begin() as connection:
        data = envelope.encode(new_event(stream, None, {"order": 7}))
        connection.execute(insert(table).values(stream=stream, data=data, created_at=time.time()))
    engine.dispose()
    record = f"{prefix}record-{uuid.uuid4().hex[:6]}"
    process = start_worker(
        redis_url,
        prefix,
        record,
        "--group",
        "shipping",
        "--relay-db",
        f"sqlite:///{tmp_path / 'outbox.db'}",
    )
    try:
        done = wait_for(
            lambda: [r for r in records(redis_url, record) if r["phase"] == "done"],
            timeout=20,
            what="the relayed event handled",
        )
    finally:
        output = stop(process)
    assert [r["order"] for r in done] == [7], output
    assert process.returncode == 0, output
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    assert Relay(engine, RedisStreamsTransport(redis_url), table).pending() == 0
    engine.dispose()


@pytest.mark.parametrize("at_least", [1, 4])
def test_slots_are_taken_together_and_first_come_first_served(at_least: int) -> None:
    from tocsin.remote._concurrency import Slots as _Slots

    async def main() -> None:
        slots = _Slots(8)
        assert await slots.take(at_least) == 8
        first = asyncio.ensure_future(slots.take(at_least))
        second = asyncio.ensure_future(slots.take(1))
        await asyncio.sleep(0)
        slots.give(1)
        slots.give(at_least - 1)
        await asyncio.sleep(0.01)
        assert first.done()
        assert first.result() == at_least
        assert not second.done()  # no slot left for it yet
        slots.give(2)
        assert await second == 2
        third = asyncio.ensure_future(slots.take(8))
        await asyncio.sleep(0)
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third
        slots.give(8)
        assert slots.free == 8

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_claims_exclude_other_consumers_and_expire(kind: str, request: Any) -> None:
    if kind == "memory":
        transport: Any = MemoryTransport()
    else:
        transport = RedisStreamsTransport(
            request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("prefix")
        )

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


runner_signal = Signal()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_envelope_api_runs_an_event_without_a_worker(
    kind: str, request: Any, envelope: Envelope
) -> None:
    """What a task queue's worker does with a signed envelope: verify and decode it,
    claim its id for the group, call the receivers, remember it; or dead-letter it."""
    from tocsin.remote import DeadLetter, remote_receivers

    if kind == "memory":
        transport: Any = MemoryTransport()
    else:
        transport = RedisStreamsTransport(
            request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("prefix")
        )
    path = f"{__name__}.runner_signal"
    calls: list[dict[str, Any]] = []

    @remote_receiver(runner_signal, group="tasks")
    def on_event(sender: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    data = envelope.encode(new_event(path, None, {"n": 1}))

    async def run_task(task_id: str) -> str:
        event = envelope.decode(data, redelivered=task_id != "t1")
        verdict: str = await transport.claim(
            "tasks", event.id, consumer="celery@host", message=task_id, ttl=60
        )
        if verdict != "claimed":
            return verdict
        for entry in remote_receivers(["tasks"]):
            if entry.signal_path == event.signal and entry.matches(event.sender):
                await entry.call(event)
        await transport.remember("tasks", event.id, 3600)
        return verdict

    async def scenario() -> list[str]:
        outcomes = [await run_task("t1"), await run_task("t2")]  # t2: a duplicate task
        letter = DeadLetter("", path, "tasks", "t3", data, 3, "gave up", 0.0)
        stored = await transport.add_dead_letter(letter)
        [listed] = await transport.dead_letters(path, group="tasks")
        assert (listed.id, listed.data, listed.attempts, listed.reason) == (
            stored,
            data,
            3,
            "gave up",
        )
        await transport.aclose()
        return outcomes

    assert asyncio.run(scenario()) == ["claimed", "done"]
    assert [call["n"] for call in calls] == [1]
    assert calls[0]["signal"] is runner_signal
