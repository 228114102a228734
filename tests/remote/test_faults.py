"""What a fault-injection run against real workers and brokers found, each pinned down.

Real Redis (the shared one, or a redis-server of the test's own to stop, pause or
restart), real worker processes where the finding was about them. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.remote import sample_receivers
from tests.remote.helpers import (
    ROOT,
    Output,
    OwnRedis,
    records,
    run_cli,
    start_worker,
    wait_for,
)
from tocsin.remote import (
    DEFAULT_URL,
    Envelope,
    EventTooLargeToPublish,
    Keyring,
    PublishError,
    TransportError,
    Worker,
    new_event,
    publish,
    remote_receiver,
    remote_receivers,
    unpublish,
)
from tocsin.remote.broker import DEAD_LETTER_MAXLEN
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


async def dead_letters(url: str, prefix: str, stream: str = ORDER) -> list[Any]:
    """The dead letters of *stream*, read with a connection of this loop's own."""
    transport = RedisStreamsTransport(url, prefix=prefix)
    try:
        return await transport.dead_letters(stream)
    finally:
        await transport.aclose()


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
    letters = asyncio.run(dead_letters(redis_url, prefix))
    assert [letter.reason.split(":")[0] for letter in letters] == ["rejected (unknown-signal)"]


# --------------------------------------------------------------------------- finding 7


def test_an_oversized_event_is_a_publish_error_and_stops_the_local_receivers(
    redis_url, prefix, transport, keyring
):
    envelope = Envelope(keyring, max_bytes=4096)
    local: list[int] = []

    def local_receiver(sender, order, **kwargs):
        local.append(order)

    sample_receivers.order_placed.connect(local_receiver)
    publish(sample_receivers.order_placed, transport, envelope)
    try:
        with pytest.raises(PublishError, match="max_bytes=4096") as caught:
            sample_receivers.order_placed.send(sender=None, order=1, note="x" * 5000)
        # The publisher runs first: a send that cannot be published does nothing locally.
        assert local == []
        assert isinstance(caught.value, EventTooLargeToPublish)
        assert isinstance(caught.value, ValueError)  # what encode() raised before
        assert caught.value.stream == ORDER
        assert caught.value.size > 5000
        # send_robust runs the local receivers anyway and returns the error.
        responses = sample_receivers.order_placed.send_robust(
            sender=None, order=2, note="x" * 5000
        )
        assert local == [2]
        assert any(isinstance(r, EventTooLargeToPublish) for _, r in responses)
        sample_receivers.order_placed.send(sender=None, order=3)  # small: published
    finally:
        unpublish(sample_receivers.order_placed, transport)
        sample_receivers.order_placed.disconnect(local_receiver)
    assert local == [2, 3]
    assert transport.client.xlen(transport.key(ORDER)) == 1


# --------------------------------------------------------------------------- finding 8


def test_the_dead_letter_stream_is_trimmed_by_default(
    redis_url, prefix, transport, envelope, quiet
):
    assert transport.dead_letter_maxlen == DEAD_LETTER_MAXLEN
    dead = transport.dead_key(ORDER)
    client = transport.client
    pipe = client.pipeline(transaction=False)
    for _ in range(DEAD_LETTER_MAXLEN):
        pipe.xadd(dead, {"data": b"old", "group": "other"})
    pipe.execute()
    # Anyone who can write to the broker can make events fail: forged ones, here.
    forger = Envelope(Keyring({"test1": b"not the key the workers hold"}))
    forged = 300
    for order in range(forged):
        transport.publish(ORDER, forger.encode(new_event(ORDER, None, {"order": order})))

    @remote_receiver(sample_receivers.order_placed, group="trimmed")
    def bill(sender, order, **kwargs):
        raise AssertionError("a forged event reached a receiver")

    worker = Worker(RedisStreamsTransport(redis_url, prefix=prefix), envelope, groups=["trimmed"])
    asyncio.run(run_until(worker, lambda: worker.stats.dead_lettered == forged, timeout=30))
    # Approximate trimming (MAXLEN ~) keeps at most one macro node (100 entries) more.
    assert client.xlen(dead) <= DEAD_LETTER_MAXLEN + 100


MAIN_SCRIPT = """
import warnings
from tocsin import Signal
from tocsin.remote import Envelope, MemoryTransport, publish

order_placed = Signal()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    publisher = publish(order_placed, MemoryTransport(), Envelope(None, require_signature=False))
print(publisher.name)
print("|".join(type(w.message).__name__ + ": " + str(w.message) for w in caught))
"""


def test_a_signal_defined_in_main_is_named_by_its_module_or_warned_about(tmp_path: Path):
    (tmp_path / "shopsignals.py").write_text(MAIN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT / 'src'}")

    def run(*command: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.splitlines()

    # python -m: the module's real name, which a worker importing it also finds.
    name, warned = run("-m", "shopsignals")
    assert name == "shopsignals.order_placed"
    assert warned == ""
    # python file.py: a name no worker can import, said out loud.
    name, warned = run("shopsignals.py")
    assert name == "__main__.order_placed"
    assert warned.startswith("RemoteSignalWarning: ")
    assert "python -m" in warned


# --------------------------------------------------------------------------- finding 3


class Shop:
    """A sender class in a module the command line never imports."""


def test_deadletter_replay_needs_no_receivers_modules_and_says_why_it_refuses(
    redis_url, prefix, transport, envelope, quiet
):
    @remote_receiver(sample_receivers.always_fails, group="flaky-class")
    def refuse(sender, order, **kwargs):
        raise RuntimeError("not today")

    transport.publish(FAILS, envelope.encode(new_event(FAILS, Shop, {"order": 7})))
    forger = Envelope(Keyring({"test1": b"not the key the workers hold"}))
    transport.publish(FAILS, forger.encode(new_event(FAILS, Shop, {"order": 666})))
    worker = Worker(
        RedisStreamsTransport(redis_url, prefix=prefix),
        envelope,
        groups=["flaky-class"],
        max_deliveries=1,
    )
    asyncio.run(run_until(worker, lambda: worker.stats.dead_lettered == 2))
    # `tocsin deadletter replay` runs in a process that never imported this module.
    replayed = run_cli("deadletter", "replay", FAILS, "--all", url=redis_url, prefix=prefix)
    assert replayed.returncode == 1, replayed.stderr  # one of the two was refused
    assert "1 replayed, 1 refused" in replayed.stderr
    assert "not replayed: bad-signature: does not match key 'test1'" in replayed.stdout
    assert "malformed" not in replayed.stdout

    received: list[tuple[Any, int]] = []

    @remote_receiver(sample_receivers.always_fails, group="flaky-class")
    def accept(sender, order, **kwargs):
        received.append((sender, order))

    worker = Worker(
        RedisStreamsTransport(redis_url, prefix=prefix),
        envelope,
        receivers=[r for r in remote_receivers(["flaky-class"]) if r.receiver is accept],
    )
    asyncio.run(run_until(worker, lambda: received))
    assert received == [(Shop, 7)]
    assert [letter.reason for letter in asyncio.run(dead_letters(redis_url, prefix, FAILS))] == [
        "rejected (bad-signature): does not match key 'test1'"
    ]


# --------------------------------------------------------------------------- finding 4


def in_a_thread(call: Any, limit: float) -> BaseException | None:
    """Run *call* in a daemon thread; return what it raised (None if it returned).
    Fails the test if it is still blocked after *limit* seconds (a hang, not an error)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    assert outcome, f"still blocked after {limit}s: the broker's silence was waited on forever"
    return outcome[0]


@needs_redis_server
def test_a_hung_broker_makes_send_raise_publish_error_not_block(tmp_path, envelope):
    server = OwnRedis(tmp_path).start()
    transport = RedisStreamsTransport(server.url, timeout=0.5)
    publish(sample_receivers.order_placed, transport, envelope)
    try:
        sample_receivers.order_placed.send(sender=None, order=1)  # connected, answering
        server.pause()  # SIGSTOP: the kernel still accepts connections; nobody answers
        error = in_a_thread(lambda: sample_receivers.order_placed.send(sender=None, order=2), 20)
        assert isinstance(error, PublishError), error
        assert "Timeout" in str(error)
        # A connection made while it hangs: accepted by the kernel, then silence.
        fresh = RedisStreamsTransport(server.url, timeout=0.5)
        error = in_a_thread(lambda: fresh.publish(ORDER, b"x"), 20)
        assert isinstance(error, PublishError), error
        fresh.close()

        async def consume() -> None:
            worker_side = RedisStreamsTransport(server.url, timeout=0.5)
            try:
                await worker_side.ensure_group(ORDER, "hung")
            finally:
                await worker_side.aclose()

        error = in_a_thread(lambda: asyncio.run(consume()), 20)
        assert isinstance(error, TransportError), error
        server.resume()
        sample_receivers.order_placed.send(sender=None, order=3)  # answering again
    finally:
        unpublish(sample_receivers.order_placed, transport)
        transport.close()
        server.stop()
    assert RedisStreamsTransport(DEFAULT_URL).options["socket_timeout"] == 5.0


# --------------------------------------------------------------------------- finding 1


def test_a_copy_of_an_event_in_flight_is_not_run_by_another_worker(
    redis_url, prefix, transport, envelope
):
    record = f"{prefix}record"
    key = transport.key(ORDER)
    # A stays in its receiver long enough for B to start on a loaded machine.
    event = new_event(ORDER, None, {"order": 1, "sleep": 10.0})
    transport.publish(ORDER, envelope.encode(event))
    # A has room for one event only, so the copy can only go to B.
    first = Output(
        start_worker(redis_url, prefix, record, "--group", "billing", "--concurrency", "1")
    )
    second = None
    try:
        wait_for(lambda: started(redis_url, record, event.id), what="A to start the event")
        second = Output(start_worker(redis_url, prefix, record, "--group", "billing"))
        wait_for(lambda: second.has("started: 1 group(s)"), timeout=30, what="B to start")
        # A verbatim copy of the event, injected while A is still in its receiver.
        [(_, fields)] = transport.client.xrange(key, count=1)
        transport.client.xadd(key, {"data": fields[b"data"]})
        wait_for(
            lambda: (
                done(redis_url, record, event.id)
                and transport.client.xpending(key, "billing")["pending"] == 0
            ),
            timeout=30,
            what="the event and its copy to be settled",
        )
    finally:
        outputs = [first.stop()] + ([second.stop()] if second else [])
    assert len(started(redis_url, record, event.id)) == 1, outputs
    assert len(done(redis_url, record, event.id)) == 1, outputs
    assert "duplicates=1" in outputs[1], outputs  # B acknowledged the copy unrun


def started(url: str, record: str, event_id: str) -> list[dict[str, Any]]:
    return [
        r for r in records(url, record) if r["phase"] == "started" and r["event_id"] == event_id
    ]


def done(url: str, record: str, event_id: str) -> list[dict[str, Any]]:
    return [r for r in records(url, record) if r["phase"] == "done" and r["event_id"] == event_id]


# --------------------------------------------------------------------------- finding 5


@needs_redis_server
def test_a_settle_that_fails_during_an_outage_is_retried_not_run_again(tmp_path, envelope):
    server = OwnRedis(tmp_path).start()
    transport = RedisStreamsTransport(server.url, timeout=0.5)
    transport.publish(ORDER, envelope.encode(new_event(ORDER, None, {"order": 1})))
    transport.close()
    entered, proceed = threading.Event(), threading.Event()
    calls: list[int] = []

    @remote_receiver(sample_receivers.order_placed, group="outage")
    def bill(sender, order, **kwargs):
        calls.append(order)
        entered.set()
        proceed.wait(30)

    async def scenario() -> Worker:
        worker = Worker(
            RedisStreamsTransport(server.url, timeout=0.5),
            envelope,
            groups=["outage"],
            claim_idle=2.0,  # a settle that gave up would be reclaimed and run again soon
            poll_timeout=0.1,
        )
        worker.start()
        try:
            async with asyncio.timeout(30):
                await asyncio.to_thread(entered.wait, 10)
                await asyncio.to_thread(server.stop)  # the broker goes away mid-receiver
                proceed.set()  # the receiver returns while the broker is down
                while worker.stats.settle_retries < 2:
                    await asyncio.sleep(0.02)
                await asyncio.to_thread(server.start)  # and comes back
                # Had the settle been given up, the event would stay pending, be
                # reclaimed after claim_idle and run again before it counts as handled.
                while worker.stats.handled < 1:
                    await asyncio.sleep(0.02)
        finally:
            await worker.stop()
        return worker

    try:
        worker = asyncio.run(scenario())
        check = RedisStreamsTransport(server.url)
        assert check.client.xpending(check.key(ORDER), "outage")["pending"] == 0
        check.close()
    finally:
        proceed.set()
        server.stop()
    assert calls == [1]
    assert worker.stats.handled == 1
    assert worker.stats.reclaimed == 0


# --------------------------------------------------------------------------- finding 2


@pytest.mark.parametrize("groups", [12, 50])
def test_a_lone_event_reaches_its_group_at_once_however_many_groups_a_worker_runs(
    redis_url, prefix, transport, envelope, groups
):
    # One group per receiver (the default), each on a stream of its own, as receivers
    # of different signals are: the old consume loops took turns in blocking reads on
    # their own streams, so the one group with an event waited for all the others.
    arrived: list[str] = []
    for number in range(groups):
        name = f"many-{number}"

        def receiver(sender, order, _name=name, **kwargs):
            arrived.append(_name)

        remote_receiver(sample_receivers.order_placed, group=name, stream=name)(receiver)

    async def scenario() -> tuple[Worker, list[str]]:
        # A poll timeout far longer than the wait below: nothing but the event itself
        # may wake its group in time.
        worker = Worker(
            RedisStreamsTransport(redis_url, prefix=prefix),
            envelope,
            groups=[f"many-{n}" for n in range(groups)],
            poll_timeout=60.0,
        )
        worker.start()
        loop = asyncio.get_running_loop()
        reached: list[str] = []
        try:
            await asyncio.sleep(0.5)  # every group created and waiting, idle
            for target in (f"many-{groups - 1}", "many-0", f"many-{groups // 2}"):
                event = envelope.encode(new_event(ORDER, None, {"order": 1}))
                await asyncio.to_thread(transport.publish, target, event)
                deadline = loop.time() + 3.0
                while target not in arrived and loop.time() < deadline:
                    await asyncio.sleep(0.005)
                reached += [name for name in arrived if name == target]
        finally:
            await worker.stop()
        return worker, reached

    worker, reached = asyncio.run(scenario())
    assert reached == [f"many-{groups - 1}", "many-0", f"many-{groups // 2}"]
    assert worker.stats.handled == 3


# --------------------------------------------------------------------------- finding 9


def test_an_event_handed_back_at_shutdown_is_taken_by_another_worker_at_once(
    redis_url, prefix, transport, envelope
):
    record = f"{prefix}record"
    event = new_event(ORDER, None, {"order": 9, "sleep": 5.0})
    transport.publish(ORDER, envelope.encode(event))
    first = Output(
        start_worker(redis_url, prefix, record, "--group", "billing", "--shutdown-timeout", "0.2")
    )
    taken: list[tuple[int, int]] = []

    @remote_receiver(sample_receivers.order_placed, group="billing")
    async def bill(sender, order, event_id, **kwargs):
        taken.append((order, kwargs.get("sleep", 0)))

    async def scenario() -> Worker:
        # claim_idle is long: only the hand-back, not an idle-timeout takeover, can
        # bring the event here while the test waits.
        worker = Worker(
            RedisStreamsTransport(redis_url, prefix=prefix),
            envelope,
            receivers=[r for r in remote_receivers(["billing"]) if r.receiver is bill],
            claim_idle=600.0,
            poll_timeout=60.0,
        )
        worker.start()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(0.3)  # this worker's first takeover sweep is behind it
            first.process.send_signal(signal.SIGTERM)  # A hands the event back
            deadline = loop.time() + 4.0  # under the 5 s between takeover sweeps
            while not taken and loop.time() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await worker.stop()
        return worker

    try:
        wait_for(lambda: started(redis_url, record, event.id), 15, "A to start the event")
        worker = asyncio.run(scenario())
    finally:
        output = first.stop()
    assert "released=1" in output, output
    assert taken == [(9, 5.0)]
    assert worker.stats.reclaimed == 0  # fetched as a new entry, not taken over
    assert worker.stats.handled == 1
