"""The transactional outbox against real databases (SQLite file, PostgreSQL) and Redis.

Rollback writes nothing; commit writes a row that the relay moves to Redis Streams once,
where a Worker receives it; a broker outage, or a relay killed at any point, loses
nothing, and the duplicates a crash can cause never run a receiver twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.contrib.databases import drop_schema, make_engine
from tests.remote.helpers import ROOT, free_port, wait_for
from tocsin import Signal
from tocsin.contrib import sqlalchemy as tocsin_sa
from tocsin.contrib.sqlalchemy import model_codec
from tocsin.contrib.sqlalchemy._models import current_session
from tocsin.contrib.sqlalchemy.outbox import OutboxTransport, Relay, outbox_table, writing_to
from tocsin.remote import (
    Envelope,
    Keyring,
    PublishError,
    Transport,
    Worker,
    publish,
    remote_receiver,
    unpublish,
)
from tocsin.remote.redis import RedisStreamsTransport
from tocsin.signals import post_save

# Signals and models are module attributes: events name them by path.
outbox_order_placed = Signal(name="outbox_order_placed")


class Base(DeclarativeBase):
    pass


class OutboxOrder(Base):
    __tablename__ = "outbox_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str]


OUTBOX = outbox_table(Base.metadata)


@pytest.fixture(params=["sqlite-file", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real database with the order and outbox tables, and the model signals installed."""
    made, schema = make_engine(request.param, tmp_path)
    Base.metadata.create_all(made)
    tocsin_sa.install(Base)
    yield made
    tocsin_sa.uninstall(Base)
    made.dispose()
    if schema is not None:
        drop_schema(schema)


@pytest.fixture
def broker(redis_url: str, prefix: str) -> Iterator[RedisStreamsTransport]:
    """The real transport (Redis Streams, keys under the test's prefix)."""
    made = RedisStreamsTransport(redis_url, prefix=prefix)
    yield made
    made.close()


@pytest.fixture
def codec_envelope(keyring: Keyring, engine: Engine) -> Envelope:
    """A signing envelope that carries mapped instances as their primary key."""
    return Envelope(keyring, codec=model_codec(lambda: Session(engine)))


@pytest.fixture
def outbox(broker: RedisStreamsTransport, codec_envelope: Envelope) -> Iterator[OutboxTransport]:
    """post_save of OutboxOrder published through the outbox to the broker."""
    transport = OutboxTransport(broker, OUTBOX)
    publish(post_save, transport, codec_envelope, sender=OutboxOrder)
    yield transport
    unpublish(post_save, transport, sender=OutboxOrder)


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OUTBOX)).scalar_one())


def stream_length(broker: RedisStreamsTransport) -> int:
    return int(broker.client.xlen(broker.key("tocsin.signals.post_save")))


def add_orders(engine: Engine, *items: str) -> list[int]:
    with Session(engine) as session:
        orders = [OutboxOrder(item=item) for item in items]
        session.add_all(orders)
        session.commit()
        return [order.id for order in orders]


async def receive(
    broker: Transport, envelope: Envelope, want: int, timeout: float = 10.0
) -> tuple[list[int], Worker]:
    """Run a worker for post_save of OutboxOrder until *want* events were handled."""
    received: list[int] = []
    group = f"outbox-{time.monotonic_ns()}"

    @remote_receiver(post_save, group=group)
    def record(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        received.append(instance.id)

    worker = Worker(broker, envelope, groups=[group], poll_timeout=0.1, retry_backoff=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while worker.stats.handled < want and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # anything extra would arrive now
    finally:
        await worker.stop()
    return received, worker


def test_rollback_writes_nothing_and_publishes_nothing(
    engine: Engine, outbox: OutboxTransport, broker: RedisStreamsTransport
) -> None:
    with Session(engine) as session:
        session.add(OutboxOrder(item="never"))
        session.flush()
        assert rows_in(session) == 1  # written, inside the transaction
        session.rollback()
    with Session(engine) as session:
        session.add(OutboxOrder(item="kept"))
        session.flush()
        savepoint = session.begin_nested()
        session.add(OutboxOrder(item="savepoint only"))
        session.flush()
        savepoint.rollback()
        session.commit()
    assert rows(engine) == 1  # the savepoint's event went with its row
    assert Relay(engine, broker, OUTBOX).relay_once() == 1
    assert stream_length(broker) == 1


def rows_in(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(OUTBOX)).scalar_one())


def test_commit_is_relayed_once_and_received_by_a_worker(
    engine: Engine,
    outbox: OutboxTransport,
    broker: RedisStreamsTransport,
    codec_envelope: Envelope,
) -> None:
    ids = add_orders(engine, "a", "b", "c")
    assert rows(engine) == 3
    assert stream_length(broker) == 0  # nothing reaches the broker before the relay

    async def scenario() -> tuple[list[int], Worker]:
        relay = Relay(engine, broker, OUTBOX, batch=2, interval=0.05)
        task = asyncio.create_task(relay.run())  # as a worker would embed it
        try:
            result = await receive(broker, codec_envelope, 3)
        finally:
            relay.stop()
            await asyncio.wait_for(task, 5)
        assert relay.relayed == 3
        return result

    received, worker = asyncio.run(scenario())
    assert sorted(received) == sorted(ids)
    assert worker.stats.handled == 3
    assert rows(engine) == 0
    assert stream_length(broker) == 3
    assert Relay(engine, broker, OUTBOX).relay_once() == 0


def test_broker_down_keeps_the_rows_until_it_is_back(
    engine: Engine, outbox: OutboxTransport, broker: RedisStreamsTransport
) -> None:
    add_orders(engine, "a", "b")
    down = RedisStreamsTransport(
        f"redis://127.0.0.1:{free_port()}/0", prefix=broker.prefix, socket_connect_timeout=0.5
    )
    try:
        assert Relay(engine, down, OUTBOX).relay_once() == 0
    finally:
        down.close()
    assert rows(engine) == 2
    with engine.connect() as connection:
        attempts, error = connection.execute(
            select(OUTBOX.c.attempts, OUTBOX.c.last_error).order_by(OUTBOX.c.id).limit(1)
        ).one()
    assert attempts == 1
    assert "could not publish" in error
    assert Relay(engine, broker, OUTBOX).relay_once() == 2
    assert rows(engine) == 0
    assert stream_length(broker) == 2


class _Killed(BaseException):
    """The relay process dying (not an Exception: nothing may catch it)."""


class _DiesAfterPublishing(RedisStreamsTransport):
    def publish(self, stream: str, data: bytes) -> str:
        super().publish(stream, data)
        raise _Killed


def test_relay_killed_after_publishing_causes_no_double_handling(
    engine: Engine,
    outbox: OutboxTransport,
    broker: RedisStreamsTransport,
    codec_envelope: Envelope,
) -> None:
    ids = add_orders(engine, "a", "b")
    dying = _DiesAfterPublishing(broker.url, prefix=broker.prefix)
    with pytest.raises(_Killed):
        Relay(engine, dying, OUTBOX).relay_once()
    dying.close()
    assert rows(engine) == 2  # the delete never committed
    assert Relay(engine, broker, OUTBOX).relay_once() == 2
    assert stream_length(broker) == 3  # "a" reached the broker twice

    received, worker = asyncio.run(receive(broker, codec_envelope, 2))
    assert sorted(received) == sorted(ids)  # each handled once
    assert worker.stats.handled == 2
    assert worker.stats.received == 3


@pytest.mark.parametrize("engine", ["sqlite-file"], indirect=True)  # one is enough
def test_relay_process_killed_before_publishing_loses_nothing(
    engine: Engine, outbox: OutboxTransport, broker: RedisStreamsTransport
) -> None:
    add_orders(engine, "a", "b")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin",
            "relay",
            "--db",
            str(engine.url),
            "--url",
            f"redis://127.0.0.1:{free_port()}/0",  # the broker is down
            "--prefix",
            broker.prefix,
            "--interval",
            "0.05",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def tried() -> bool:
            with engine.connect() as connection:
                return bool(connection.execute(select(func.max(OUTBOX.c.attempts))).scalar())

        wait_for(tried, timeout=20, what="the relay to try publishing")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    assert rows(engine) == 2
    # The broker is back (another relay, the real one): everything goes.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tocsin",
            "relay",
            "--db",
            str(engine.url),
            "--url",
            broker.url,
            "--prefix",
            broker.prefix,
            "--once",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert rows(engine) == 0
    assert stream_length(broker) == 2


def test_plain_signals_need_a_session(
    engine: Engine, broker: RedisStreamsTransport, envelope: Envelope
) -> None:
    transport = OutboxTransport(broker, OUTBOX)
    publish(outbox_order_placed, transport, envelope)
    try:
        with pytest.raises(PublishError, match="writing_to"):
            outbox_order_placed.send(sender=None, order_id=1)
        with Session(engine) as session, writing_to(session):
            outbox_order_placed.send(sender=None, order_id=2)
            session.rollback()
        assert rows(engine) == 0
        with Session(engine) as session, writing_to(session):
            responses = outbox_order_placed.send(sender=None, order_id=3)
            session.commit()
        assert responses[0][1].startswith("outbox:")
        assert rows(engine) == 1
    finally:
        unpublish(outbox_order_placed, transport)


def test_current_session_is_set_during_model_sends(engine: Engine) -> None:
    seen: list[Session | None] = []

    def look(sender: Any, **kwargs: Any) -> None:
        seen.append(current_session())

    post_save.connect(look, sender=OutboxOrder)
    try:
        with Session(engine) as session:
            session.add(OutboxOrder(item="x"))
            session.commit()
            assert seen == [session]
        assert current_session() is None
    finally:
        post_save.disconnect(look, sender=OutboxOrder)
