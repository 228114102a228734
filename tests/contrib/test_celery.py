"""Remote receivers run by real `celery worker` processes, on RabbitMQ and on Redis.

Two workers per broker (one solo pool, one prefork pool of two children) serve one queue
of this test run; events are published
from the test process with ``tocsin.remote.publish`` and a :class:`CeleryTransport`, the
receivers (tests/contrib/celery_receivers.py) record what ran where, and every wait is
bounded (polling for an outcome, never timing one).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("celery")

from celery import Celery

from tests.contrib import celery_receivers
from tests.remote.helpers import REDIS_URL, ROOT, TEST_KEYS, redis_or_skip, wait_for
from tocsin._commit import deferring_to
from tocsin.contrib.celery import CeleryTransport
from tocsin.remote import (
    Envelope,
    Keyring,
    PublishError,
    new_event,
    publish,
    replay_dead_letters,
    unpublish,
)
from tocsin.remote.redis import RedisStreamsTransport

AMQP_URL = os.environ.get("TOCSIN_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PATIENCE = 30.0  # seconds: generous, for a machine shared by many test runs


def amqp_or_skip(url: str = AMQP_URL) -> str:
    """The RabbitMQ URL, or skip (fail in CI) if it does not answer."""
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:
        reason = f"RabbitMQ is not reachable at {url} ({type(error).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI requires it (set TOCSIN_AMQP_URL)")
        pytest.skip(reason)
    return url


class Cluster:
    """Celery worker processes on one broker and queue, and what their receivers did."""

    def __init__(self, broker: str, store: str, tmp: Path) -> None:
        self.broker = broker
        self.store_url = store
        self.prefix = f"tocsin-test:{uuid.uuid4().hex[:10]}:"
        self.queue = f"tocsin-test-{uuid.uuid4().hex[:10]}"
        self.tmp = tmp
        self.record = tmp / "record"
        self.record.touch()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.pools: dict[str, str] = {}
        self.app = Celery("tocsin-test-publisher", broker=broker)
        self.app.conf.broker_transport_options = {"global_keyprefix": self.prefix}
        self.store = RedisStreamsTransport(store, prefix=self.prefix)
        self.transport = CeleryTransport(self.app, self.store, queue=self.queue)
        key_id, _, secret = TEST_KEYS.partition(":")
        self.envelope = Envelope(Keyring({key_id: base64.b64decode(secret)}))

    def run(self, use: Callable[[CeleryTransport], Any]) -> Any:
        """Run ``use(transport)`` (a coroutine) on a transport of its own: the store's
        asyncio client belongs to the loop that made it, and each call has its own."""

        async def main() -> Any:
            store = RedisStreamsTransport(self.store_url, prefix=self.prefix)
            try:
                return await use(CeleryTransport(self.app, store, queue=self.queue))
            finally:
                await store.aclose()

        return asyncio.run(main())

    def dead_letters(self, stream: str, group: str | None = None) -> list[Any]:
        """The dead letters of *stream* (of *group* only)."""
        return self.run(lambda t: t.dead_letters(stream, group=group))  # type: ignore[no-any-return]

    def start(self, name: str, pool: str = "solo") -> subprocess.Popen[bytes]:
        """Start a worker (``pool="prefork"``: two child processes); return once it says
        it is ready."""
        log = self.tmp / f"{name}.log"
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            TOCSIN_KEYS=TEST_KEYS,
            TOCSIN_TEST_BROKER=self.broker,
            TOCSIN_TEST_STORE=self.store_url,
            TOCSIN_TEST_PREFIX=self.prefix,
            TOCSIN_TEST_QUEUE=self.queue,
            TOCSIN_TEST_RECORD=str(self.record),
        )
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.contrib.celery_app",
            "worker",
            f"--pool={pool}",
            f"--concurrency={1 if pool == 'solo' else 2}",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            f"--queues={self.queue}",
            f"--hostname={name}@%h",
        ]
        with log.open("ab") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.workers[name] = process
        self.pools[name] = pool
        wait_for(
            lambda: " ready." in self.log(name) or process.poll() is not None,
            PATIENCE,
            f"worker {name} to be ready",
        )
        assert process.poll() is None, self.log(name)
        return process

    def flag(self, mark: str, name: str) -> Path:
        """The file that changes a receiver's behaviour for *mark* (celery_receivers.flag)."""
        return Path(f"{self.record}.{mark}.{name}")

    def log(self, name: str) -> str:
        """What worker *name* logged."""
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        """What every worker logged."""
        return "".join(self.log(name) for name in self.workers)

    def lines(self, marker: str) -> list[tuple[str, int]]:
        """(tag, pid) of each receiver run recorded for *marker*, in order."""
        found = []
        for line in self.record.read_text().splitlines():
            tag, seen, pid, _ = line.split()
            if seen == marker:
                found.append((tag, int(pid)))
        return found

    def tags(self, marker: str) -> Counter[str]:
        """How many times each receiver ran for *marker*."""
        return Counter(tag for tag, _ in self.lines(marker))

    def stop(self) -> None:
        """Stop every worker (bounded), then remove the test's keys and queue."""
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        import redis

        client = redis.Redis.from_url(self.store_url)
        keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        if self.broker.startswith("amqp"):
            with self.app.connection_for_write() as connection:
                connection.default_channel.queue_delete(self.queue)
        self.store.close()


@pytest.fixture(scope="module", params=["amqp", "redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two Celery workers on RabbitMQ (or Redis as the broker), a Redis store: one runs
    tasks in its own process (solo pool), the other in two forked children (prefork)."""
    store = redis_or_skip()
    broker = amqp_or_skip() if request.param == "amqp" else REDIS_URL
    cluster = Cluster(broker, store, tmp_path_factory.mktemp(f"celery-{request.param}"))
    try:
        cluster.start("w1")
        cluster.start("w2", pool="prefork")
        yield cluster
    finally:
        cluster.stop()


# The broker redelivering a dead worker's message at once is RabbitMQ's behaviour (a Redis
# broker does so after its visibility_timeout, an hour by default): shown there.
on_rabbitmq = pytest.mark.parametrize("cluster", ["amqp"], indirect=True)


@pytest.fixture
def published(cluster: Cluster) -> Iterator[Callable[[Any], None]]:
    """Publish a signal of celery_receivers to the cluster for the test's duration."""
    signals: list[Any] = []

    def start(signal: Any) -> None:
        publish(signal, cluster.transport, cluster.envelope)
        signals.append(signal)

    yield start
    for signal_ in signals:
        unpublish(signal_, cluster.transport)


def marker() -> str:
    return uuid.uuid4().hex[:12]


def raw_event(cluster: Cluster, signal: Any, mark: str) -> bytes:
    """A signed envelope of *signal* sent with ``marker=mark``, as the publisher makes it."""
    path = f"tests.contrib.celery_receivers.{signal}"
    return cluster.envelope.encode(new_event(path, None, {"marker": mark}))


def test_each_group_runs_each_event_exactly_once(
    cluster: Cluster, published: Callable[[Any], None]
) -> None:
    published(celery_receivers.order_placed)
    marks = [marker() for _ in range(4)]
    for mark in marks:
        celery_receivers.order_placed.send(sender=None, marker=mark)
    for mark in marks:
        wait_for(
            lambda mark=mark: cluster.tags(mark) == Counter(emails=1, audit=1),  # type: ignore[misc]
            PATIENCE,
            f"both groups to run {mark}",
        )
    # An event sent as-is (the bytes a publisher made), then a verbatim copy of it once
    # handled, as a new message: the copy is skipped by both groups.
    stream, mark = "tests.contrib.celery_receivers.order_placed", marker()
    data = raw_event(cluster, "order_placed", mark)
    cluster.transport.publish(stream, data)
    wait_for(lambda: cluster.tags(mark) == Counter(emails=1, audit=1), PATIENCE, "the event")
    cluster.transport.publish(stream, data)
    event_id = json.loads(json.loads(data)["body"])["id"]
    wait_for(
        lambda: (
            cluster.logs().count(f"event {event_id} already handled") == 2
            or f"rejected event {event_id} (replayed)" in cluster.logs()
        ),
        PATIENCE,
        "both groups to skip the copy",
    )
    assert cluster.tags(mark) == Counter(emails=1, audit=1)


def test_forged_altered_or_undeclared_events_never_reach_a_receiver(cluster: Cluster) -> None:
    stream = "tests.contrib.celery_receivers.order_placed"
    mark = marker()
    forged = Envelope(Keyring({"test1": b"not the real key, 32 bytes long!"}))
    data = forged.encode(new_event(stream, None, {"marker": mark}))
    cluster.transport.publish(stream, data)
    genuine = json.loads(raw_event(cluster, "order_placed", mark))
    other = marker()
    genuine["body"] = genuine["body"].replace(mark, other)  # altered after signing
    cluster.transport.publish(stream, json.dumps(genuine).encode())
    # Signed with the right key, but naming a signal no receiver is declared for.
    third = marker()
    undeclared = new_event("tests.contrib.celery_receivers.undeclared", None, {"marker": third})
    cluster.transport.publish(stream, cluster.envelope.encode(undeclared))

    def rejected() -> list[Any]:
        letters = cluster.dead_letters(stream)
        mine = [x for x in letters if any(m.encode() in x.data for m in (mark, other, third))]
        return mine if len(mine) == 3 else []

    letters = wait_for(rejected, PATIENCE, "the three rejections to be dead-lettered")
    assert sorted(letter.reason.split(":")[0] for letter in letters) == [
        "rejected (bad-signature)",
        "rejected (bad-signature)",
        "rejected (unknown-signal)",
    ]
    assert "rejected event <unknown id> (bad-signature)" in cluster.logs()
    assert cluster.tags(mark) == Counter()
    assert cluster.tags(other) == Counter()
    assert cluster.tags(third) == Counter()


def test_a_failing_group_is_retried_then_dead_lettered_and_replayed(
    cluster: Cluster, published: Callable[[Any], None]
) -> None:
    stream = "tests.contrib.celery_receivers.flaky"
    published(celery_receivers.flaky)
    mark = marker()
    celery_receivers.flaky.send(sender=None, marker=mark)

    def letter() -> Any:
        for found in cluster.dead_letters(stream, "flaky-fails"):
            if mark.encode() in found.data:
                return found
        return None

    dead = wait_for(letter, PATIENCE, "the failing group to be dead-lettered")
    assert dead.attempts == 3
    assert f"RuntimeError: boom {mark}" in dead.reason
    # Three deliveries of the failing group; the other group ran once, not on each retry.
    assert cluster.tags(mark) == Counter(fails=3, ok=1)

    cluster.flag(mark, "fixed").touch()
    outcomes = cluster.run(lambda t: replay_dead_letters(t, cluster.envelope, stream, [dead.id]))
    assert [letter for letter, _ in outcomes] == [dead]
    wait_for(lambda: cluster.tags(mark)["fixed"] == 1, PATIENCE, "the replayed group to run")
    assert cluster.tags(mark) == Counter(fails=3, ok=1, fixed=1)
    assert letter() is None


@on_rabbitmq
def test_a_worker_killed_mid_receiver_has_its_event_run_by_another(
    cluster: Cluster, published: Callable[[Any], None]
) -> None:
    published(celery_receivers.slow)
    mark = marker()
    celery_receivers.slow.send(sender=None, marker=mark)
    first = wait_for(lambda: cluster.lines(mark), PATIENCE, "a worker to start the receiver")
    (tag, victim_pid), *_ = first
    assert tag == "start"
    # A solo worker runs the receiver itself: kill the worker, the broker redelivers when
    # its connection drops (acks_late). A prefork child: kill the child, its parent hands
    # the message back (reject_on_worker_lost).
    victim = next((name for name, p in cluster.workers.items() if p.pid == victim_pid), None)
    os.kill(victim_pid, signal.SIGKILL)
    if victim is not None:
        cluster.workers[victim].wait(10)
    cluster.flag(mark, "go").touch()
    wait_for(lambda: cluster.tags(mark)["end"] == 1, PATIENCE, "the survivor to finish it")
    starts = [pid for tag, pid in cluster.lines(mark) if tag == "start"]
    ends = [pid for tag, pid in cluster.lines(mark) if tag == "end"]
    assert len(starts) == 2
    assert starts[0] == victim_pid
    assert starts[1] != victim_pid
    assert ends == [starts[1]]
    if victim is not None:
        cluster.start(victim, cluster.pools[victim])  # for the tests that follow


@on_rabbitmq
def test_a_copy_of_a_running_event_is_skipped(cluster: Cluster) -> None:
    stream = "tests.contrib.celery_receivers.slow"
    mark = marker()
    data = raw_event(cluster, "slow", mark)
    event_id = json.loads(json.loads(data)["body"])["id"]
    cluster.transport.publish(stream, data)
    wait_for(lambda: cluster.tags(mark)["start"] == 1, PATIENCE, "the receiver to start")
    # A verbatim copy as another message goes to the other worker (the first is busy):
    # the first worker's claim makes it a copy, acknowledged without running.
    cluster.transport.publish(stream, data)
    wait_for(
        lambda: f"event {event_id} being handled from a copy by group 'slow'" in cluster.logs(),
        PATIENCE,
        "the copy to be skipped",
    )
    cluster.flag(mark, "go").touch()
    wait_for(lambda: cluster.tags(mark)["end"] == 1, PATIENCE, "the first to finish")
    assert cluster.tags(mark) == Counter(start=1, end=1)


def test_on_commit_sends_only_when_the_transaction_commits(
    cluster: Cluster, published: Callable[[Any], None]
) -> None:
    publish(celery_receivers.order_placed, cluster.transport, cluster.envelope, on_commit=True)
    try:
        committed: list[Callable[[], Any]] = []
        mark = marker()
        with deferring_to(committed.append):
            celery_receivers.order_placed.send(sender=None, marker=mark)
        assert len(committed) == 1  # nothing sent yet: held for the commit
        committed[0]()
        wait_for(
            lambda: cluster.tags(mark) == Counter(emails=1, audit=1),
            PATIENCE,
            "the committed event to run",
        )
    finally:
        unpublish(celery_receivers.order_placed, cluster.transport)


def test_the_outbox_relays_to_celery_only_what_committed(cluster: Cluster, tmp_path: Path) -> None:
    from sqlalchemy import MetaData, create_engine
    from sqlalchemy.orm import Session

    from tocsin.contrib.sqlalchemy.outbox import OutboxTransport, Relay, outbox_table, writing_to

    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    table = outbox_table(MetaData())
    table.metadata.create_all(engine)
    outbox = OutboxTransport(cluster.transport, table)
    publish(celery_receivers.order_placed, outbox, cluster.envelope)
    try:
        kept, dropped = marker(), marker()
        with Session(engine) as session, writing_to(session):
            celery_receivers.order_placed.send(sender=None, marker=dropped)
            session.rollback()
        with Session(engine) as session, writing_to(session):
            celery_receivers.order_placed.send(sender=None, marker=kept)
            session.commit()
        assert Relay(engine, cluster.transport, table).relay_once() == 1
        wait_for(lambda: cluster.tags(kept) == Counter(emails=1, audit=1), PATIENCE, "it")
        assert cluster.tags(dropped) == Counter()
    finally:
        unpublish(celery_receivers.order_placed, outbox)
        engine.dispose()


def test_async_code_publishes_with_asend(
    cluster: Cluster, published: Callable[[Any], None]
) -> None:
    published(celery_receivers.order_placed)
    mark = marker()

    async def main() -> None:
        await celery_receivers.order_placed.asend(sender=None, marker=mark)

    asyncio.run(main())
    wait_for(lambda: cluster.tags(mark) == Counter(emails=1, audit=1), PATIENCE, "the event")


def test_task_arguments_are_not_trusted(cluster: Cluster) -> None:
    # Only the envelope is signed: retry arguments of the wrong shape mean "every group,
    # no failures so far", never a crash or a skipped group.
    mark = marker()
    data = raw_event(cluster, "order_placed", mark).decode()
    cluster.app.send_task(
        "tocsin.deliver",
        args=("tests.contrib.celery_receivers.order_placed", data),
        kwargs={"groups": "emails", "failures": {"emails": "many", "audit": 99.5}},
        queue=cluster.queue,
        serializer="json",
    )
    wait_for(lambda: cluster.tags(mark) == Counter(emails=1, audit=1), PATIENCE, "both groups")


def test_in_one_process_broadcast_receivers_are_left_out_and_bad_payloads_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The task run in this process (Celery's apply), with a real Redis store: what a
    # worker does with a message, without a broker.
    from tocsin.remote import clear_remote_receivers, remote_receiver

    store_url = redis_or_skip()
    monkeypatch.setenv("TOCSIN_TEST_RECORD", str(tmp_path / "record"))
    prefix = f"tocsin-test:{uuid.uuid4().hex[:10]}:"
    store = RedisStreamsTransport(store_url, prefix=prefix)
    transport = CeleryTransport(Celery("in-process", broker="memory://"), store)
    key_id, _, secret = TEST_KEYS.partition(":")
    envelope = Envelope(Keyring({key_id: base64.b64decode(secret)}))
    task = transport.install(envelope)

    @remote_receiver(celery_receivers.order_placed, group="everywhere", broadcast=True)
    def everywhere(sender: Any, marker: str, **kwargs: Any) -> None:
        celery_receivers.record("everywhere", marker)

    stream = "tests.contrib.celery_receivers.order_placed"
    try:
        mark = marker()
        data = envelope.encode(new_event(stream, None, {"marker": mark}))
        assert task.apply(args=(stream, data.decode())).get() == "handled: ['emails', 'audit']"
        assert "broadcast group 'everywhere' is not run by Celery workers" in caplog.text
        records = (tmp_path / "record").read_text().split()
        assert sorted(records[0::4]) == ["audit", "emails"]
        assert task.apply(args=(stream, 42)).get() == "rejected (malformed)"

        async def letters() -> list[Any]:
            # A client of this loop's own (the store's belongs to the task's loop).
            reader = RedisStreamsTransport(store_url, prefix=prefix)
            try:
                return await reader.dead_letters(stream)
            finally:
                await reader.aclose()

        [letter] = asyncio.run(letters())
        assert letter.reason == "rejected (malformed): task payload is int, not the envelope's str"
    finally:
        clear_remote_receivers(["everywhere"])
        import redis

        client = redis.Redis.from_url(store_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def test_an_unreachable_broker_is_a_publish_error() -> None:
    app = Celery("tocsin-test-down", broker="amqp://guest:guest@127.0.0.1:1//")
    app.conf.broker_connection_timeout = 0.5
    transport = CeleryTransport(app, REDIS_URL, publish_retries=0)
    with pytest.raises(PublishError, match=r"could not send 'some\.stream' to Celery broker"):
        transport.publish("some.stream", b"{}")


def test_consuming_a_celery_transport_says_celery_does_it() -> None:
    transport = CeleryTransport(Celery("x", broker="memory://"), REDIS_URL)
    with pytest.raises(TypeError, match="celery -A"):
        asyncio.run(transport.consume(["s"], "g", "c", count=1, timeout=0))
    with pytest.raises(TypeError, match="Redis URL or a RedisStreamsTransport"):
        CeleryTransport(Celery("x"), object())  # type: ignore[arg-type]
