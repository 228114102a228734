"""The Redis transports against a real Redis, and workers as real OS processes.

Every wait is bounded; every key lives under the test's own prefix and is deleted after.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.remote import sample_receivers
from tests.remote.helpers import (
    Output,
    free_port,
    records,
    redis_pings,
    run_cli,
    start_worker,
    stop,
    wait_for,
)
from tocsin.remote import Envelope, PublishError, Worker, new_event, publish, unpublish
from tocsin.remote.redis import RedisPubSubTransport, RedisStreamsTransport

ORDER = "tests.remote.sample_receivers.order_placed"
FAILS = "tests.remote.sample_receivers.always_fails"


def done(url: str, key: str, group: str) -> list[dict[str, Any]]:
    return [r for r in records(url, key) if r["group"] == group and r["phase"] == "done"]


@pytest.fixture
def transport(redis_url, prefix):
    transport = RedisStreamsTransport(redis_url, prefix=prefix)
    yield transport
    transport.close()


def test_publish_then_consume_in_another_process_every_group(
    redis_url, prefix, transport, envelope
):
    record = f"{prefix}record"
    publish(sample_receivers.order_placed, transport, envelope)
    try:
        for order in range(3):
            sample_receivers.order_placed.send(sender=None, order=order)
    finally:
        unpublish(sample_receivers.order_placed, transport)
    worker = start_worker(redis_url, prefix, record)
    try:
        wait_for(
            lambda: (
                len(done(redis_url, record, "billing")) == 3
                and len(done(redis_url, record, "shipping")) == 3
            ),
            what="both groups",
        )
    finally:
        output = stop(worker)
    assert worker.returncode == 0, output
    for group in ("billing", "shipping"):
        handled = done(redis_url, record, group)
        assert sorted(r["order"] for r in handled) == [0, 1, 2]
        assert all(r["origin"].endswith(f":{os.getpid()}") for r in handled)
    assert "started: 3 group(s)" in output
    assert "stopped:" in output


def test_two_workers_of_one_group_split_the_load(redis_url, prefix, transport, envelope):
    record = f"{prefix}record"
    workers = [
        Output(start_worker(redis_url, prefix, record, "--group", "billing", "--concurrency", "1"))
        for _ in range(2)
    ]
    try:
        # Both started (on a loaded machine one may take seconds longer than the other).
        wait_for(lambda: all(w.has("started:") for w in workers), 30, "both workers")
        time.sleep(0.2)  # and reading
        for order in range(12):
            transport.publish(
                ORDER, envelope.encode(new_event(ORDER, None, {"order": order, "sleep": 0.05}))
            )
        wait_for(lambda: len(done(redis_url, record, "billing")) == 12, what="12 events")
    finally:
        outputs = [w.stop() for w in workers]
    handled = done(redis_url, record, "billing")
    assert sorted(r["order"] for r in handled) == list(range(12)), outputs
    by_pid = Counter(r["pid"] for r in handled)
    assert set(by_pid) == {w.process.pid for w in workers}, by_pid


def test_kill_9_mid_event_is_reclaimed_and_handled_exactly_once(
    redis_url, prefix, transport, envelope
):
    record = f"{prefix}record"
    first = start_worker(redis_url, prefix, record, "--group", "billing", "--claim-idle", "1")
    second = None
    try:
        transport.publish(
            ORDER, envelope.encode(new_event(ORDER, None, {"order": 1, "sleep": 2.0}))
        )
        wait_for(
            lambda: [r for r in records(redis_url, record) if r["phase"] == "started"],
            what="the first worker to start the event",
        )
        first.kill()  # SIGKILL: no cleanup, no ack
        first.wait(timeout=5)
        second = start_worker(redis_url, prefix, record, "--group", "billing", "--claim-idle", "1")
        wait_for(lambda: done(redis_url, record, "billing"), timeout=15, what="redelivery")
        time.sleep(0.5)  # would a duplicate show up?
    finally:
        stop(first)
        output = stop(second) if second is not None else ""
    started = [r for r in records(redis_url, record) if r["phase"] == "started"]
    assert [r["pid"] for r in started] == [first.pid, second.pid]
    assert len(done(redis_url, record, "billing")) == 1
    assert "took over 1 stale event" in output
    assert transport.client.xpending(transport.key(ORDER), "billing")["pending"] == 0


def test_sigterm_mid_event_finishes_it_and_loses_nothing(redis_url, prefix, transport, envelope):
    record = f"{prefix}record"
    worker = start_worker(redis_url, prefix, record, "--group", "billing")
    try:
        transport.publish(
            ORDER, envelope.encode(new_event(ORDER, None, {"order": 1, "sleep": 1.0}))
        )
        wait_for(lambda: records(redis_url, record), what="the event to start")
    finally:
        output = stop(worker, signal.SIGTERM)
    assert worker.returncode == 0, output
    assert len(done(redis_url, record, "billing")) == 1
    assert "SIGTERM received" in output
    assert transport.client.xpending(transport.key(ORDER), "billing")["pending"] == 0


def test_always_failing_receiver_is_dead_lettered_and_replayed_by_the_cli(
    redis_url, prefix, transport, envelope
):
    record = f"{prefix}record"
    worker = start_worker(
        redis_url,
        prefix,
        record,
        "--group",
        "flaky",
        "--max-deliveries",
        "3",
        "--retry-backoff",
        "0.05",
    )
    try:
        transport.publish(FAILS, envelope.encode(new_event(FAILS, None, {"order": 5})))
        wait_for(lambda: asyncio.run(_dead(redis_url, prefix)), what="a dead letter")
        listed = run_cli("deadletter", "list", FAILS, url=redis_url, prefix=prefix)
        assert listed.returncode == 0, listed.stderr
        assert "group=flaky" in listed.stdout
        assert "attempts=3" in listed.stdout
        assert "RuntimeError: order 5 cannot be handled yet" in listed.stdout
        failed = [r for r in records(redis_url, record) if r["phase"] == "failed"]
        assert len(failed) == 3

        transport.client.set(record + ":healed", 1)
        replayed = run_cli("deadletter", "replay", FAILS, "--all", url=redis_url, prefix=prefix)
        assert replayed.returncode == 0, replayed.stderr
        assert "1 replayed" in replayed.stderr
        wait_for(lambda: done(redis_url, record, "flaky"), what="the replayed event")
    finally:
        output = stop(worker)
    assert len(done(redis_url, record, "flaky")) == 1, output
    assert asyncio.run(_dead(redis_url, prefix)) == 0


async def _dead(url: str, prefix: str) -> int:
    transport = RedisStreamsTransport(url, prefix=prefix)
    try:
        return len(await transport.dead_letters(FAILS))
    finally:
        await transport.aclose()


def test_publish_with_the_broker_down_raises_publish_error(envelope):
    transport = RedisStreamsTransport(f"redis://127.0.0.1:{free_port()}/0")
    publish(sample_receivers.order_placed, transport, envelope)
    try:
        with pytest.raises(PublishError, match="could not publish") as caught:
            sample_receivers.order_placed.send(sender=None, order=1)
    finally:
        unpublish(sample_receivers.order_placed, transport)
        transport.close()
    assert caught.value.stream == ORDER
    with pytest.raises(PublishError):
        RedisPubSubTransport(f"redis://127.0.0.1:{free_port()}/0").publish("x", b"y")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary")
def test_unacknowledged_events_survive_a_broker_restart(tmp_path: Path, envelope):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def start() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(tmp_path),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_pings(url), what="redis-server to start")
        return server

    server = start()
    handled: list[int] = []
    try:
        transport = RedisStreamsTransport(url)
        for order in range(3):
            transport.publish(ORDER, envelope.encode(new_event(ORDER, None, {"order": order})))

        async def take_without_acking() -> int:
            await transport.ensure_group(ORDER, "restarted")
            taken = await transport.consume([ORDER], "restarted", "doomed", count=2, timeout=1)
            await transport.aclose()
            return len(taken)

        assert asyncio.run(take_without_acking()) == 2
        transport.close()
        server.send_signal(signal.SIGTERM)  # a clean shutdown; AOF is fsynced on each write
        server.wait(timeout=10)
        server = start()

        from tocsin.remote import remote_receiver

        @remote_receiver(sample_receivers.order_placed, group="restarted")
        def bill(sender, order, **kwargs):
            handled.append(order)

        async def drain() -> None:
            worker = Worker(
                RedisStreamsTransport(url),
                envelope,
                groups=["restarted"],
                claim_idle=0.2,
                poll_timeout=0.1,
            )
            worker.start()
            async with asyncio.timeout(10):
                while len(handled) < 3:
                    await asyncio.sleep(0.02)
            await worker.stop()
            assert worker.stats.reclaimed == 2

        asyncio.run(drain())
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert sorted(handled) == [0, 1, 2]


def test_forged_and_replayed_events_on_redis_never_reach_receivers(
    redis_url, prefix, transport, envelope
):
    from tocsin.remote import Keyring, remote_receiver

    handled: list[int] = []

    @remote_receiver(sample_receivers.order_placed, group="guarded")
    def guarded(sender, order, **kwargs):
        handled.append(order)

    genuine = envelope.encode(new_event(ORDER, None, {"order": 1}))
    forger = Envelope(Keyring({"test1": b"a guess at the key, with the right id"}))
    transport.publish(ORDER, forger.encode(new_event(ORDER, None, {"order": 666})))
    transport.publish(ORDER, genuine)
    transport.publish(ORDER, genuine)  # a copy injected into the stream

    async def run() -> Worker:
        worker = Worker(
            RedisStreamsTransport(redis_url, prefix=prefix),
            envelope,
            groups=["guarded"],
            poll_timeout=0.1,
        )
        worker.start()
        async with asyncio.timeout(10):
            while worker.stats.received < 3:
                await asyncio.sleep(0.02)
        await worker.stop()
        return worker

    import logging

    logging.getLogger("tocsin.remote").setLevel(logging.CRITICAL)
    try:
        worker = asyncio.run(run())
    finally:
        logging.getLogger("tocsin.remote").setLevel(logging.NOTSET)
    assert handled == [1]
    assert worker.stats.rejected == 2
    letters = asyncio.run(_letters(redis_url, prefix))
    assert [d.reason.split(":")[0] for d in letters] == ["rejected (bad-signature)"]


async def _letters(url: str, prefix: str) -> list[Any]:
    transport = RedisStreamsTransport(url, prefix=prefix)
    try:
        return await transport.dead_letters(ORDER)
    finally:
        await transport.aclose()


def test_pubsub_is_broadcast_at_most_once(redis_url, prefix, envelope):
    transport = RedisPubSubTransport(redis_url, prefix=prefix)
    # Nobody subscribed: the message is simply gone.
    assert transport.publish(ORDER, envelope.encode(new_event(ORDER, None, {"order": 0}))) == "0"

    async def scenario() -> list[Any]:
        first = await transport.consume([ORDER], "a", "one", count=10, timeout=0.05)
        assert first == []
        await transport.apublish(ORDER, envelope.encode(new_event(ORDER, None, {"order": 1})))
        got = await transport.consume([ORDER], "a", "one", count=10, timeout=2)
        await got[0].nack(0)  # retried in this process only
        again = await transport.consume([ORDER], "a", "one", count=10, timeout=2)
        await transport.aclose()
        return [got, again]

    got, again = asyncio.run(scenario())
    transport.close()
    assert len(got) == 1
    assert again[0].attempt == 2
    assert envelope.decode(got[0].data).kwargs == {"order": 1}
