"""The transactional outbox: events written in the data's own transaction, relayed later.

Publishing straight to a broker from a database program has a gap: the transaction
commits, then the process dies before the event reaches the broker (or the broker is
down), and the event is lost although the data changed. The outbox closes it::

    from tocsin.remote import Envelope, Keyring, publish
    from tocsin.contrib.sqlalchemy.outbox import OutboxTransport, Relay, outbox_table
    from tocsin.remote.redis import RedisStreamsTransport

    broker = RedisStreamsTransport("redis://redis.internal:6379/0")
    outbox = outbox_table(Base.metadata)               # the table tocsin_outbox
    transport = OutboxTransport(broker, outbox)
    publish(post_save, transport, envelope, sender=Order)  # no on_commit: see below

    with Session(engine) as session:
        session.add(Order(...))
        session.commit()      # the order row and its event row commit together

    Relay(engine, broker, outbox).run_forever()        # or `tocsin relay`, or a task

- :class:`OutboxTransport` is a transport whose :meth:`~OutboxTransport.publish` inserts
  the encoded event into the outbox table **through the connection of the current
  transaction**: the Session whose model signals are being sent
  (``tocsin.contrib.sqlalchemy.outbox`` registers it, with
  :func:`register_session_source`), or the session bound with :func:`writing_to` around
  any other send. A rollback (of the transaction, or of the
  savepoint the event was written in) removes the event with the data. Everything else
  (consuming, dead letters, idempotency) is delegated to the real transport, so the same
  object can be given to a :class:`~tocsin.remote.worker.Worker`. Publish with
  ``on_commit=False`` (the default): the write must happen inside the transaction.
- :class:`Relay` moves committed rows to the real transport, oldest first, in batches:
  it selects a batch (``FOR UPDATE SKIP LOCKED`` where the database has it, so that
  several relays share the work on PostgreSQL), publishes each row, then deletes the
  published rows and commits. It stops a batch at the first failure, so a broker outage
  leaves the rows in place (with the error and attempt count recorded) to be relayed
  once the broker is back.

*Guarantees.* At-least-once: a row is deleted only after the broker confirmed it, in the
same database transaction as the delete, so a relay killed at any point loses nothing.
A relay killed *after* publishing and *before* committing the delete publishes those
rows again: the broker receives a duplicate with the same event id, which the worker
recognises (its idempotency store) and acknowledges without running the receivers; the
NATS transport even drops it server-side (``Nats-Msg-Id``). Order: rows are relayed in
insertion (id) order; one relay preserves it per stream, but transactions that commit
out of id order, several relays at once, or retries reorder events, as do consumers
sharing a group. The relay holds its database transaction while it publishes one batch:
keep ``batch`` modest.

SQLAlchemy is imported when used, not when this module is imported (``tocsin relay``
is registered with the command line, which must load without it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import logging
import os
import signal as signals
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tocsin.remote.broker import PublishError, Transport, TransportWrapper

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_TABLE",
    "OutboxTransport",
    "Relay",
    "outbox_table",
    "register_session_source",
    "writing_to",
]

logger = logging.getLogger("tocsin.remote")

#: The outbox table's default name.
DEFAULT_TABLE = "tocsin_outbox"

_bound: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "tocsin_outbox_session", default=None
)


def outbox_table(metadata: MetaData, name: str = DEFAULT_TABLE, **options: Any) -> Table:
    """Define the outbox table on *metadata* (or return it if already there).

    Columns: ``id`` (autoincrement: the relay order), ``stream``, ``data`` (the signed
    event bytes), ``created_at`` (Unix time), ``attempts`` and ``last_error`` (relay
    failures). ``create_all()`` creates it; with Alembic, add it to a migration.
    *options* go to ``Table`` (``schema=``, ...). Returns the ``Table``.
    """
    from sqlalchemy import BigInteger, Column, Float, Integer, LargeBinary, String, Table, Text

    key = f"{options['schema']}.{name}" if options.get("schema") else name
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        name,
        metadata,
        # BIGINT on servers, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("stream", String(255), nullable=False),
        Column("data", LargeBinary, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        **options,
    )


@contextlib.contextmanager
def writing_to(session: Session | Any) -> Iterator[None]:
    """Make :class:`OutboxTransport` write to *session*'s transaction within the block.

    For sends that are not model signals of a flush (a plain ``order_placed.send()``
    next to ``session.add(order)``). *session* may be an ``AsyncSession`` only from
    code running in its greenlet (``run_sync``); with a plain sync Session, anywhere.
    """
    sync_session = getattr(session, "sync_session", session)
    token = _bound.set(sync_session)
    try:
        yield
    finally:
        _bound.reset(token)


# Where the current transaction's Session comes from besides writing_to(): an ORM
# integration registers its own (tocsin.contrib.sqlalchemy.outbox registers the Session
# whose flush is sending model signals). The outbox imports no integration itself.
_session_sources: list[Callable[[], Session | None]] = []


def register_session_source(source: Callable[[], Session | None]) -> None:
    """Make :class:`OutboxTransport` also ask *source* for the current Session.

    *source* returns the Session (or None) whose transaction a publish happening now
    belongs to. Registering the same source twice is harmless. Integrations call it.
    """
    if source not in _session_sources:
        _session_sources.append(source)


def _current_session() -> Session | None:
    session = _bound.get()
    if session is not None:
        return session
    for source in _session_sources:
        session = source()
        if session is not None:
            return session
    return None


class OutboxTransport(TransportWrapper):
    """Publishes into the outbox table of the current transaction; the rest is *target*'s.

    *target* is the real transport (where the relay will publish, and what workers
    consume); *table* the outbox table (see :func:`outbox_table`). The current
    transaction is the Session bound by :func:`writing_to`, else what *session*
    returns (a callable), else what an integration registered (import
    ``tocsin.contrib.sqlalchemy.outbox`` for the Session of a flush). Returns from
    :meth:`publish` the outbox row id as ``"outbox:<id>"``.
    """

    def __init__(
        self,
        target: Transport,
        table: Table,
        *,
        session: Callable[[], Session | None] | None = None,
    ) -> None:
        super().__init__(target)
        self.table = table
        self.session = session

    def __repr__(self) -> str:
        return f"<OutboxTransport {self.table.name} -> {self.target!r}>"

    def publish(self, stream: str, data: bytes) -> str:
        """Insert the event into the outbox in the current transaction; returns its row id.

        Raises PublishError when no session is current (see the module docstring), so
        that a send outside a transaction is never silently dropped.
        """
        session = _bound.get()
        if session is None and self.session is not None:
            session = self.session()
        if session is None:
            session = _current_session()
        if session is None:
            raise PublishError(
                f"no SQLAlchemy session to write the outbox event to (stream {stream!r}): "
                "send model signals from a Session flush (with tocsin.contrib.sqlalchemy."
                "outbox imported), wrap the send in tocsin.remote.outbox.writing_to("
                "session), or give OutboxTransport(session=...)",
                stream=stream,
            )
        from sqlalchemy import insert

        # The session's own connection: the row commits or rolls back with the data.
        # (Core on the connection, not Session.add(): this runs inside a flush.)
        result = session.connection().execute(
            insert(self.table).values(
                stream=stream, data=bytes(data), created_at=time.time(), attempts=0
            )
        )
        key = result.inserted_primary_key
        return f"outbox:{key[0] if key else '?'}"

    async def apublish(self, stream: str, data: bytes) -> str:
        """As :meth:`publish`, which does not block on any broker."""
        return self.publish(stream, data)


class RelayLoop:
    """The polling loop every outbox relay shares (this module's, and the Django one).

    A subclass gives ``relay_once()``: publish one batch of committed rows, delete them,
    and return how many. ``batch`` rows per transaction; ``interval`` seconds between
    polls when idle.
    """

    def __init__(self, *, batch: int, interval: float) -> None:
        if batch < 1 or interval <= 0:
            raise ValueError("batch and interval must be positive")
        self.batch = batch
        self.interval = interval
        #: Rows relayed since this relay was made.
        self.relayed = 0
        self._stop = threading.Event()

    def relay_once(self) -> int:
        """Relay one batch; returns how many rows were published (and deleted)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask :meth:`run_forever` / :meth:`run` to stop after the current batch."""
        self._stop.set()

    def run_forever(self, *, once: bool = False) -> int:
        """Relay until :meth:`stop` (or, with *once*, until the outbox is empty or the
        broker refuses); returns the rows relayed. A database error is logged and
        retried after ``interval``."""
        self._stop.clear()
        total = 0
        while not self._stop.is_set():
            try:
                moved = self.relay_once()
            except Exception:
                # The database is down (or the table missing): say so, retry later.
                logger.exception("outbox relay: could not read the outbox")
                moved = 0
                if once:
                    break
            total += moved
            if moved < self.batch:
                if once:
                    break
                self._stop.wait(self.interval)
        return total

    async def run(self) -> None:
        """Relay as a task of the running loop until :meth:`stop` or cancellation.

        Batches run in a thread (the database and ``publish`` block), so the loop (a
        worker's, say) keeps running. ``asyncio.create_task(relay.run())`` embeds it.
        """
        self._stop.clear()
        try:
            while not self._stop.is_set():
                try:
                    moved = await asyncio.to_thread(self.relay_once)
                except Exception:
                    logger.exception("outbox relay: could not read the outbox")
                    moved = 0
                if moved < self.batch:
                    await asyncio.to_thread(self._stop.wait, self.interval)
        finally:
            self._stop.set()


class Relay(RelayLoop):
    """Moves committed outbox rows to *target*, oldest first (see the module docstring).

    *engine*: a SQLAlchemy ``Engine`` (an ``AsyncEngine``'s ``sync_engine`` for async
    programs); *table*: the outbox table (default ``tocsin_outbox`` on a new MetaData).
    ``batch`` rows per transaction; ``interval`` seconds between polls when idle.
    """

    def __init__(
        self,
        engine: Engine | Any,
        target: Transport,
        table: Table | None = None,
        *,
        batch: int = 100,
        interval: float = 0.5,
    ) -> None:
        super().__init__(batch=batch, interval=interval)
        if table is None:
            from sqlalchemy import MetaData

            table = outbox_table(MetaData())
        self.engine = getattr(engine, "sync_engine", engine)
        self.target = target
        self.table = table

    def __repr__(self) -> str:
        return f"<Relay {self.table.name} on {self.engine.url!r} -> {self.target!r}>"

    def relay_once(self) -> int:
        """Relay one batch; returns how many rows were published (and deleted).

        Stops at the first row the broker refuses: that row and the ones after it stay
        (its ``attempts`` and ``last_error`` updated), to be relayed next time.
        """
        from sqlalchemy import delete, select, update

        table = self.table
        published: list[Any] = []
        with self.engine.begin() as connection:
            query = select(table.c.id, table.c.stream, table.c.data).order_by(table.c.id)
            query = query.limit(self.batch)
            if connection.dialect.name != "sqlite":  # SQLite locks the whole file anyway
                query = query.with_for_update(skip_locked=True)
            rows = connection.execute(query).all()
            for row_id, stream, data in rows:
                try:
                    self.target.publish(stream, bytes(data))
                except PublishError as error:
                    logger.warning(
                        "outbox relay: row %s (stream %r) not published: %s; %d row(s) waiting",
                        row_id,
                        stream,
                        error,
                        len(rows) - len(published),
                    )
                    connection.execute(
                        update(table)
                        .where(table.c.id == row_id)
                        .values(attempts=table.c.attempts + 1, last_error=str(error)[:2000])
                    )
                    break
                published.append(row_id)
            if published:
                # Deleted in the transaction that read them: a crash before this commit
                # republishes them (at-least-once), never loses them.
                connection.execute(delete(table).where(table.c.id.in_(published)))
        self.relayed += len(published)
        return len(published)

    def pending(self) -> int:
        """How many rows wait in the outbox."""
        from sqlalchemy import func, select

        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(self.table)).scalar_one()
            )


# --------------------------------------------------------------------------- tocsin relay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tocsin relay``."""
    parser.add_argument(
        "--db",
        default=os.environ.get("TOCSIN_DATABASE_URL"),
        help="SQLAlchemy database URL of the outbox (default $TOCSIN_DATABASE_URL)",
    )
    parser.add_argument("--table", default=DEFAULT_TABLE, help="default %(default)s")
    parser.add_argument("--schema", default=None, help="the table's schema, if any")
    parser.add_argument(
        "--url",
        default=os.environ.get("TOCSIN_BROKER_URL", "redis://127.0.0.1:6379/0"),
        help="broker URL (default $TOCSIN_BROKER_URL or %(default)s); nats:// for NATS",
    )
    parser.add_argument(
        "--prefix", default=None, help="key/subject prefix (default: the transport's)"
    )
    parser.add_argument("--batch", type=int, default=100, help="default %(default)s")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between polls when idle"
    )
    parser.add_argument("--once", action="store_true", help="relay what is there now, then exit")
    parser.add_argument("--log-level", default="INFO", help="default %(default)s")


def run(args: argparse.Namespace) -> int:
    """Run ``tocsin relay`` until SIGTERM/SIGINT (or once); returns the exit status."""
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.db:
        print("tocsin relay: give --db or set $TOCSIN_DATABASE_URL", file=sys.stderr)
        return 2
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(args.db)
    table = outbox_table(MetaData(), args.table, schema=args.schema)
    from tocsin.remote._url import transport_from_url

    target = transport_from_url(args.url, prefix=args.prefix)
    relay = Relay(engine, target, table, batch=args.batch, interval=args.interval)
    if not args.once:
        for number in (signals.SIGTERM, signals.SIGINT):
            signals.signal(number, lambda *_: relay.stop())
    logger.info("outbox relay started: %r", relay)
    try:
        moved = relay.run_forever(once=args.once)
    finally:
        target.close()
        engine.dispose()
    logger.info("outbox relay stopped: %d row(s) relayed", moved)
    return 0
