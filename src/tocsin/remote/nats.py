"""NATS JetStream transport: at-least-once delivery with server-side redelivery.

``pip install 'tocsin[nats]'`` (nats-server >= 2.9 with JetStream enabled, ``-js``).
The URL carries the connection (``nats://user:password@host:4222``, ``tls://host:4222``);
extra keyword arguments go to ``nats.connect`` (``tls=``, ``user_credentials=``, ...).

How the transport model maps onto JetStream:

- a tocsin **stream** is a JetStream stream ``<prefix>_<id>`` bound to the subjects
  ``<prefix>.s.<id>.>``, where ``<id>`` is the stream's name made safe for NATS (letters,
  digits, ``_`` and ``-``, then a short hash so that two names never collide). Events are
  published on ``<prefix>.s.<id>.all``; a replayed dead letter goes to
  ``<prefix>.s.<id>.g.<group id>``, read only by its group. Streams are created by the
  first publish or ``ensure_group``, with ``max_msgs`` (default 1,000,000, oldest
  discarded) as the retention limit, like Redis' MAXLEN;
- a **group** is a durable pull consumer named after the group (explicit ack,
  ``deliver_policy`` all or new). Every durable sees every message (fan-out); the pull
  subscriptions bound to one durable compete for its messages (load balancing);
- a :class:`Delivery`'s ``attempt`` is JetStream's ``num_delivered``; ``ack`` is an ack,
  ``nack(delay)`` a NAK with that delay (the server redelivers it, to any consumer of the
  group), ``release`` a NAK without delay, ``touch`` an in-progress ack (``+WPI``, which
  restarts the ack-wait timer) and ``dead_letter`` a write to the dead-letter stream
  followed by a TERM (no more redeliveries);
- **claim_stale** has no JetStream command to map to, because JetStream does the job by
  itself: a message not acknowledged within the consumer's ``ack_wait`` is redelivered
  by the server to whichever subscription of the durable pulls next, with its
  ``num_delivered`` raised. So ``ack_wait`` *is* the idle timeout: consumers are created
  with ``ack_wait`` (constructor argument, default 60 s, the worker's default
  ``claim_idle``), ``claim_stale(min_idle=...)`` sets the durable's ``ack_wait`` to
  ``min_idle`` the first time it sees a different value (so the worker's ``claim_idle``
  wins) and returns ``[]``: the stale messages then arrive through :meth:`consume`, as
  deliveries whose ``attempt`` counts the earlier deliveries. The worker's heartbeat
  (``touch`` every ``claim_idle / 3``) keeps a slow receiver's message from being
  redelivered, exactly as with Redis' XAUTOCLAIM;
- the **idempotency store** is the key-value bucket ``<prefix>_seen`` (key
  ``<group id>.<event id>``): a claim (message, consumer, expiry) written by
  compare-and-set on the key's revision before the receivers run, then ``1`` once
  handled. JetStream 2.9 has no per-key
  TTL, so the bucket's TTL (``dedupe_ttl``, default one day) applies to every key; the
  ``ttl`` given to :meth:`remember` is only checked against it (a longer one is logged);
- **dead letters** go to the stream ``<prefix>_dead_<id>`` (one per tocsin stream, at
  most ``dead_letter_max_msgs`` kept, default 100,000, oldest discarded), one JSON
  message each; a dead letter's ``id`` is its sequence number there.

*Publishing* is ``js.publish`` with the header ``Nats-Msg-Id`` set to a hash of the
bytes: a publish retried after a timeout (or an outbox relay that crashed after
publishing and before deleting its row) is dropped by the server as a duplicate within
the stream's ``duplicate_window`` (default 2 minutes). ``publish`` (blocking) runs on a
private event loop thread, as nats-py is asyncio-only; ``apublish`` uses the caller's
loop. A broker that cannot be reached or does not confirm within ``publish_timeout``
raises :class:`~tocsin.remote.PublishError`. Every other timeout is set explicitly too:
connecting (``connect_timeout``), JetStream API calls (``publish_timeout``), pings (10 s,
two missed close the connection), flush and drain.

*Atomicity.* JetStream has no multi-message transactions. ``dead_letter`` writes the
letter (with a ``Nats-Msg-Id`` naming the message and its delivery count) and only then
TERMs the message: a crash in between redelivers it, and dead-lettering it again is
dropped as a duplicate. ``republish_dead_letter`` publishes (deduplicated by the
letter's id) and then deletes the letter, the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from tocsin.remote.broker import (
    DEAD_LETTER_MAXLEN,
    Claim,
    DeadLetter,
    Delivery,
    PublishError,
    Start,
    Transport,
    TransportError,
    Watcher,
)

__all__ = ["DEFAULT_URL", "NatsJetStreamTransport"]

logger = logging.getLogger("tocsin.remote")

DEFAULT_URL = "nats://127.0.0.1:4222"

_T = TypeVar("_T")

# What a NATS operation raises when the server is unreachable or refuses.
_NATS_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_RAW_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
# JetStream's error code for deleting a message that is not in the stream.
_MSG_DELETE_FAILED = 10057
# How long one pull waits when several streams are read in turn.
_SLICE = 0.05


def _ident(name: str) -> str:
    """*name* made safe for stream, consumer and subject tokens, and still unique."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return f"{_SAFE.sub('_', name)[:40]}_{digest}"


def _key_token(event_id: str) -> str:
    # KV keys allow [-/_=.a-zA-Z0-9]; ids of other characters are base64url-encoded.
    if _RAW_KEY.fullmatch(event_id):
        return f"r.{event_id}"
    return "b." + base64.urlsafe_b64encode(event_id.encode("utf-8")).decode().rstrip("=")


@contextlib.contextmanager
def _translated(
    transport: NatsJetStreamTransport, publishing: str | None = None
) -> Iterator[None]:
    """Turn nats-py's errors (and the socket's) into ours: :class:`PublishError` when
    publishing to the stream *publishing*, :class:`TransportError` otherwise."""
    try:
        yield
    except _NATS_ERRORS as error:
        if publishing is not None:
            raise transport._publish_error(publishing, error) from error
        raise TransportError(f"NATS: {type(error).__name__}: {error}") from error


async def _quiet_error_cb(error: Exception) -> None:
    # nats-py logs every failed (re)connect at ERROR by default; the transport reports
    # what matters itself (PublishError, TransportError).
    logger.debug("nats: %s: %s", type(error).__name__, error)


@dataclasses.dataclass
class _Connection:
    """One NATS connection, bound to the event loop it was made in."""

    loop: asyncio.AbstractEventLoop
    client: Client
    js: JetStreamContext
    streams: set[str] = dataclasses.field(default_factory=set)
    subscriptions: dict[tuple[str, str, str], JetStreamContext.PullSubscription] = (
        dataclasses.field(default_factory=dict)
    )
    kv: KeyValue | None = None


class _LoopThread:
    """A private event loop in a daemon thread, for the blocking :meth:`publish`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="tocsin-nats-publish", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class NatsJetStreamTransport(Transport):
    """At-least-once delivery through NATS JetStream (see the module docstring).

    ``prefix`` starts every stream, subject and bucket name (a letter, then letters,
    digits, ``_`` or ``-``). ``ack_wait`` is how long a delivered message may go without
    an ack or a ``touch`` before the server redelivers it (the worker's ``claim_idle``
    replaces it through :meth:`claim_stale`). ``max_msgs`` bounds each stream (oldest
    discarded; None: unbounded); ``dedupe_ttl`` is the idempotency bucket's TTL;
    ``duplicate_window`` the server-side publish dedup window; ``publish_timeout`` how
    long a publish waits for the server's confirmation; ``connect_timeout`` how long a
    connection attempt may take.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "tocsin",
        ack_wait: float = 60.0,
        max_msgs: int | None = 1_000_000,
        dedupe_ttl: float = 86_400.0,
        duplicate_window: float = 120.0,
        publish_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        max_ack_pending: int = 10_000,
        dead_letter_max_msgs: int | None = DEAD_LETTER_MAXLEN,
        **options: Any,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"prefix {prefix!r}: a letter, then up to 31 letters, digits, '_' or '-'"
            )
        if ack_wait <= 0 or publish_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("ack_wait, publish_timeout and connect_timeout must be positive")
        self.url = url
        self.prefix = prefix
        self.ack_wait = ack_wait
        self.max_msgs = max_msgs
        self.dedupe_ttl = dedupe_ttl
        self.duplicate_window = duplicate_window
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.max_ack_pending = max_ack_pending
        self.dead_letter_max_msgs = dead_letter_max_msgs
        self.options = options
        self._async: _Connection | None = None
        self._sync: _Connection | None = None
        self._thread: _LoopThread | None = None
        self._thread_lock = threading.Lock()
        self._groups: dict[tuple[str, str], Start] = {}
        self._ack_waits: dict[tuple[str, str], float] = {}
        self._warned_ttl = False

    def __repr__(self) -> str:
        host = self.url.rpartition("@")[2]  # never show credentials
        return f"<{type(self).__name__} {host} prefix={self.prefix!r}>"

    # -- names

    def stream_name(self, stream: str) -> str:
        """The JetStream stream that holds *stream*."""
        return f"{self.prefix}_{_ident(stream)}"

    def subject(self, stream: str, group: str | None = None) -> str:
        """The subject events of *stream* are published on (*group*'s only, if given)."""
        base = f"{self.prefix}.s.{_ident(stream)}"
        return f"{base}.all" if group is None else f"{base}.g.{_ident(group)}"

    def dead_stream_name(self, stream: str) -> str:
        """The JetStream stream that holds *stream*'s dead letters."""
        return f"{self.prefix}_dead_{_ident(stream)}"

    def consumer_name(self, group: str) -> str:
        """The durable consumer that is *group*."""
        return _ident(group)

    @property
    def bucket(self) -> str:
        """The key-value bucket of the idempotency store."""
        return f"{self.prefix}_seen"

    # -- connections

    async def _connect(self) -> _Connection:
        options: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            # A few quick reconnects, then the client closes and the next operation
            # connects afresh: no operation ever waits minutes for a dead server.
            "max_reconnect_attempts": 2,
            "reconnect_time_wait": 0.5,
            # Every timeout explicit: a server that is up but silent is noticed by the
            # pings (ping_interval x max_outstanding_pings), and no flush, drain or
            # JetStream API call waits longer than its own bound.
            "ping_interval": 10,
            "max_outstanding_pings": 2,
            "flush_timeout": self.publish_timeout,
            "drain_timeout": self.connect_timeout,
            "error_cb": _quiet_error_cb,
        }
        options.update(self.options)
        client = await nats.connect(self.url, **options)
        js = client.jetstream(timeout=self.publish_timeout)
        return _Connection(asyncio.get_running_loop(), client, js)

    async def _conn(self) -> _Connection:
        """The connection for the running loop (the async side), made on first use."""
        loop = asyncio.get_running_loop()
        conn = self._async
        if conn is None or conn.loop is not loop or conn.client.is_closed:
            conn = self._async = await self._connect()
        return conn

    async def _sync_conn(self) -> _Connection:
        """The connection of the publishing thread (runs on that thread's loop)."""
        conn = self._sync
        if conn is None or conn.client.is_closed:
            conn = self._sync = await self._connect()
        return conn

    def _run_sync(self, coroutine: Coroutine[Any, Any, _T], timeout: float) -> _T:
        with self._thread_lock:
            if self._thread is None:
                self._thread = _LoopThread()
            thread = self._thread
        return thread.run(coroutine, timeout)

    async def aclose(self) -> None:
        """Close the connection of the async side."""
        conn, self._async = self._async, None
        if conn is not None and conn.loop is asyncio.get_running_loop():
            try:
                await conn.client.close()
            except _NATS_ERRORS as error:  # closing a broken connection
                logger.debug("nats: closing: %s", error)

    def close(self) -> None:
        """Close the publishing connection and stop its thread."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        conn, self._sync = self._sync, None
        if conn is not None:
            try:
                thread.run(conn.client.close(), self.connect_timeout + 1)
            except Exception as error:  # a broken connection: the thread goes anyway
                logger.debug("nats: closing: %s", error)
        thread.stop()

    # -- streams

    async def _ensure_stream(self, conn: _Connection, stream: str) -> None:
        name = self.stream_name(stream)
        if name in conn.streams:
            return
        config = StreamConfig(
            name=name,
            subjects=[f"{self.prefix}.s.{_ident(stream)}.>"],
            storage=StorageType.FILE,
            max_msgs=self.max_msgs if self.max_msgs is not None else -1,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window,
            description=f"tocsin stream {stream[:200]}",
        )
        await self._add_stream(conn, config)
        conn.streams.add(name)

    async def _ensure_dead_stream(self, conn: _Connection, stream: str) -> None:
        name = self.dead_stream_name(stream)
        if name in conn.streams:
            return
        config = StreamConfig(
            name=name,
            subjects=[f"{self.prefix}.dead.{_ident(stream)}"],
            storage=StorageType.FILE,
            max_msgs=self.dead_letter_max_msgs if self.dead_letter_max_msgs is not None else -1,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window,
            description=f"tocsin dead letters of {stream[:200]}",
        )
        await self._add_stream(conn, config)
        conn.streams.add(name)

    @staticmethod
    async def _add_stream(conn: _Connection, config: StreamConfig) -> None:
        assert config.name is not None
        try:
            await conn.js.stream_info(config.name)
        except nats.js.errors.NotFoundError:
            try:
                await conn.js.add_stream(config)
            except nats.js.errors.BadRequestError:
                # Created by another process in the meantime (same name, any config).
                await conn.js.stream_info(config.name)

    # -- publishing

    async def _publish_on(
        self,
        conn: _Connection,
        stream: str,
        subject: str,
        data: bytes,
        msg_id: str,
    ) -> str:
        await self._ensure_stream(conn, stream)
        headers = {"Nats-Msg-Id": msg_id}
        try:
            ack = await conn.js.publish(
                subject, data, timeout=self.publish_timeout, headers=headers
            )
        except nats.errors.NoRespondersError:
            # The stream was deleted behind our back: create it again, once.
            conn.streams.discard(self.stream_name(stream))
            await self._ensure_stream(conn, stream)
            ack = await conn.js.publish(
                subject, data, timeout=self.publish_timeout, headers=headers
            )
        return str(ack.seq)

    def _publish_error(self, stream: str, error: BaseException) -> PublishError:
        return PublishError(
            f"could not publish to {self.subject(stream)!r} on {self!r}: "
            f"{type(error).__name__}: {error}",
            stream=stream,
        )

    async def _publish_sync_side(self, stream: str, data: bytes) -> str:
        conn = await self._sync_conn()
        msg_id = hashlib.sha256(data).hexdigest()[:32]
        return await self._publish_on(conn, stream, self.subject(stream), data, msg_id)

    def publish(self, stream: str, data: bytes) -> str:
        """Publish to JetStream and wait for its ack; returns the stream sequence number.

        Raises PublishError if the server is unreachable or does not confirm in time.
        """
        timeout = self.connect_timeout + 2 * self.publish_timeout + 1
        try:
            return self._run_sync(self._publish_sync_side(stream, bytes(data)), timeout)
        except (*_NATS_ERRORS, TimeoutError) as error:
            raise self._publish_error(stream, error) from error

    async def apublish(self, stream: str, data: bytes) -> str:
        """:meth:`publish` on the caller's loop; returns the sequence number."""
        data = bytes(data)
        with _translated(self, publishing=stream):
            conn = await self._conn()
            msg_id = hashlib.sha256(data).hexdigest()[:32]
            return await self._publish_on(conn, stream, self.subject(stream), data, msg_id)

    # -- groups

    async def _call(self, operation: Awaitable[_T]) -> _T:
        with _translated(self):
            return await operation

    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """Create the stream and the durable consumer *group* unless they exist."""
        self._groups[(stream, group)] = start
        conn = await self._call(self._conn())
        await self._call(self._ensure_consumer(conn, stream, group, start))

    async def _ensure_consumer(
        self, conn: _Connection, stream: str, group: str, start: Start
    ) -> None:
        await self._ensure_stream(conn, stream)
        name, durable = self.stream_name(stream), self.consumer_name(group)
        try:
            await conn.js.consumer_info(name, durable)
            return
        except nats.js.errors.NotFoundError:
            pass
        config = ConsumerConfig(
            durable_name=durable,
            name=durable,
            deliver_policy=DeliverPolicy.ALL if start == "all" else DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_waits.get((stream, group), self.ack_wait),
            max_deliver=-1,  # the worker decides when to give up (max_deliveries)
            max_ack_pending=self.max_ack_pending,
            filter_subject=f"{self.prefix}.s.{_ident(stream)}.>",
            description=f"tocsin group {group[:200]}",
        )
        try:
            await conn.js.add_consumer(name, config)
        except nats.js.errors.BadRequestError:
            await conn.js.consumer_info(name, durable)  # another process made it first

    async def drop_group(self, stream: str, group: str) -> None:
        """Delete the durable consumer (and so its pending messages)."""
        self._groups.pop((stream, group), None)
        try:
            conn = await self._conn()
            await conn.js.delete_consumer(self.stream_name(stream), self.consumer_name(group))
        except nats.js.errors.NotFoundError:
            pass
        except _NATS_ERRORS as error:
            logger.warning("could not drop group %r of %r: %s", group, stream, error)
        if self._async is not None:
            for key in [k for k in self._async.subscriptions if k[:2] == (stream, group)]:
                subscription = self._async.subscriptions.pop(key)
                try:
                    await subscription.unsubscribe()
                except _NATS_ERRORS as error:
                    logger.debug("nats: unsubscribing: %s", error)

    # -- consuming

    def watcher(self, streams: Sequence[str]) -> Watcher:
        """A plain subscription to the streams' subjects (see :class:`_NatsWatcher`)."""
        return _NatsWatcher(self, streams)

    async def nudge(self, stream: str) -> None:
        """Wake the watchers of *stream* (a message was handed back: NAKed at shutdown)."""
        with _translated(self):
            conn = await self._conn()
            await conn.client.publish(f"{self.prefix}.n.{_ident(stream)}", b"")

    async def _subscription(
        self, conn: _Connection, stream: str, group: str, consumer: str
    ) -> JetStreamContext.PullSubscription:
        key = (stream, group, consumer)
        subscription = conn.subscriptions.get(key)
        if subscription is None:
            await self._ensure_consumer(
                conn, stream, group, self._groups.get((stream, group), "all")
            )
            subscription = await conn.js.pull_subscribe_bind(
                durable=self.consumer_name(group), stream=self.stream_name(stream)
            )
            conn.subscriptions[key] = subscription
        return subscription

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Pull up to *count* messages from the group's durable(s), waiting up to *timeout*.

        Redeliveries (after a NAK's delay, or after ``ack_wait`` without an ack) come
        first: the server hands them out before new messages.
        """
        try:
            with _translated(self):
                return await self._consume(streams, group, consumer, count, timeout)
        except TransportError:
            if self._async is not None:
                # The consumer may be gone (deleted, or the server lost its state): bind
                # again next time, creating it if needed.
                self._async.subscriptions.clear()
                self._async.streams.clear()
            raise

    async def _consume(
        self, streams: Sequence[str], group: str, consumer: str, count: int, timeout: float
    ) -> list[Delivery]:
        conn = await self._conn()
        subscriptions = [
            (stream, await self._subscription(conn, stream, group, consumer)) for stream in streams
        ]
        mine = self.subject("", group).rpartition(".g.")[2]
        deadline = time.monotonic() + timeout
        found: list[Delivery] = []
        while True:
            for stream, subscription in subscriptions:
                if len(found) >= count:
                    break
                left = deadline - time.monotonic()
                wait = max(0.01, left if len(subscriptions) == 1 else min(left, _SLICE))
                try:
                    messages = await subscription.fetch(count - len(found), timeout=wait)
                except TimeoutError:  # nats' TimeoutError included: nothing came
                    continue
                for message in messages:
                    target = message.subject.rpartition(".g.")
                    if target[1] and target[2] != mine:
                        # A dead letter replayed for another group: not ours to handle.
                        await message.ack()
                        continue
                    found.append(_NatsDelivery(self, stream, group, consumer, message))
            if found or time.monotonic() >= deadline:
                return found

    async def claim_stale(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        min_idle: float,
        count: int,
    ) -> list[Delivery]:
        """Make *min_idle* the group's ``ack_wait``; returns ``[]`` (see the module doc).

        JetStream redelivers a message unacknowledged for ``ack_wait`` by itself, through
        :meth:`consume`; there is nothing to claim.
        """
        for stream in streams:
            if self._ack_waits.get((stream, group)) == min_idle:
                continue
            self._ack_waits[(stream, group)] = min_idle
            await self._call(self._set_ack_wait(stream, group, min_idle))
        return []

    async def _set_ack_wait(self, stream: str, group: str, ack_wait: float) -> None:
        conn = await self._conn()
        name, durable = self.stream_name(stream), self.consumer_name(group)
        try:
            info = await conn.js.consumer_info(name, durable)
        except nats.js.errors.NotFoundError:
            return  # created later with this ack_wait
        config = info.config
        if config.ack_wait is not None and abs(config.ack_wait - ack_wait) < 0.001:
            return
        try:
            await conn.js.add_consumer(name, dataclasses.replace(config, ack_wait=ack_wait))
        except nats.js.errors.APIError as error:
            logger.warning(
                "could not set ack_wait=%gs on group %r (%s): it keeps %ss",
                ack_wait,
                group,
                error,
                config.ack_wait,
            )

    # -- idempotency

    async def _kv(self) -> KeyValue:
        conn = await self._conn()
        if conn.kv is None:
            try:
                conn.kv = await conn.js.key_value(self.bucket)
            except nats.js.errors.BucketNotFoundError:
                conn.kv = await conn.js.create_key_value(
                    bucket=self.bucket, ttl=self.dedupe_ttl, history=1
                )
        return conn.kv

    def _seen_key(self, group: str, event_id: str) -> str:
        return f"{_ident(group)}.{_key_token(event_id)}"

    async def _entry(self, kv: KeyValue, key: str) -> tuple[bytes | None, int]:
        """The key's value and revision (``(None, 0)`` when absent or deleted)."""
        try:
            entry = await kv.get(key)
        except nats.js.errors.NotFoundError:  # KeyNotFound and KeyDeleted included
            return None, 0
        return entry.value, entry.revision or 0

    async def seen(self, group: str, event_id: str) -> bool:
        """Whether the bucket holds the handled mark for ``<group id>.<event id>``."""
        with _translated(self):
            value, _ = await self._entry(await self._kv(), self._seen_key(group, event_id))
        return value == b"1"

    async def remember(self, group: str, event_id: str, ttl: float) -> bool:
        """Put the handled mark (replacing a claim; the bucket's TTL applies); False if
        it was there already."""
        if ttl > self.dedupe_ttl and not self._warned_ttl:
            self._warned_ttl = True
            logger.warning(
                "idempotency ttl %gs is longer than the bucket's dedupe_ttl=%gs: "
                "the bucket's applies",
                ttl,
                self.dedupe_ttl,
            )
        key = self._seen_key(group, event_id)
        with _translated(self):
            kv = await self._kv()
            value, _ = await self._entry(kv, key)
            if value == b"1":
                return False
            await kv.put(key, b"1")
        return True

    async def claim(
        self, group: str, event_id: str, *, consumer: str, message: str, ttl: float
    ) -> Claim:
        """Compare-and-set on the key's revision: create it, or replace an expired claim
        (or this consumer's own from *message*). The bucket has one TTL for every key,
        so a claim carries its own expiry (Unix time: the hosts' clocks must agree to
        within a fraction of ``ttl``)."""
        key = self._seen_key(group, event_id)
        prefix = f"c\n{message}\n".encode()
        mine = prefix + consumer.encode()
        with _translated(self):
            kv = await self._kv()
            for _ in range(5):  # lost races retried: each loss means the key changed
                value, revision = await self._entry(kv, key)
                if value == b"1":
                    return "done"
                stamped = mine + f"\n{time.time() + ttl!r}".encode()
                if value is not None:
                    held, _, expires = value.rpartition(b"\n")
                    if held != mine and float(expires or 0) > time.time():
                        return "busy" if held.startswith(prefix) else "copy"
                try:
                    if revision:
                        await kv.update(key, stamped, last=revision)
                    else:
                        await kv.create(key, stamped)
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue
                return "claimed"
        raise TransportError(f"NATS: could not claim {event_id!r}: the key keeps changing")

    async def unclaim(self, group: str, event_id: str, *, consumer: str, message: str) -> None:
        """Delete the key (at its revision) if it still holds this consumer's claim."""
        key = self._seen_key(group, event_id)
        mine = f"c\n{message}\n{consumer}".encode()
        with _translated(self):
            kv = await self._kv()
            value, revision = await self._entry(kv, key)
            if value is not None and value.rpartition(b"\n")[0] == mine:
                with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                    await kv.delete(key, last=revision)

    # -- dead letters

    async def _write_dead_letter(self, delivery: _NatsDelivery, reason: str) -> None:
        letter = DeadLetter(
            id="",
            stream=delivery.stream,
            group=delivery.group,
            message_id=delivery.message_id,
            data=delivery.data,
            attempts=delivery.attempt,
            reason=reason,
            failed_at=time.time(),
        )
        await self._add_letter(letter)

    async def _add_letter(self, letter: DeadLetter) -> str:
        conn = await self._conn()
        await self._ensure_dead_stream(conn, letter.stream)
        record = {
            "group": letter.group,
            "message_id": letter.message_id,
            "attempts": letter.attempts,
            "reason": letter.reason[:2000],
            "failed_at": letter.failed_at,
            "data": base64.b64encode(letter.data).decode("ascii"),
        }
        # Same message and delivery count: the same letter, dropped if written twice.
        msg_id = f"dl:{letter.group}:{letter.message_id}:{letter.attempts}"
        ack = await conn.js.publish(
            f"{self.prefix}.dead.{_ident(letter.stream)}",
            json.dumps(record).encode(),
            timeout=self.publish_timeout,
            headers={"Nats-Msg-Id": hashlib.sha256(msg_id.encode()).hexdigest()[:32]},
        )
        return str(ack.seq)

    async def add_dead_letter(self, letter: DeadLetter) -> str:
        """Write *letter* to the dead-letter stream; returns its sequence number there."""
        with _translated(self):
            return await self._add_letter(letter)

    async def dead_letters(
        self, stream: str, *, group: str | None = None, count: int = 100
    ) -> list[DeadLetter]:
        """The letters of the dead-letter stream, oldest first (read by sequence)."""
        name = self.dead_stream_name(stream)
        conn = await self._call(self._conn())
        with _translated(self):
            try:
                info = await conn.js.stream_info(name)
            except nats.js.errors.NotFoundError:
                return []
        letters: list[DeadLetter] = []
        sequence, last = info.state.first_seq, info.state.last_seq
        while sequence <= last and len(letters) < count:
            with _translated(self):
                try:
                    raw = await conn.js.get_msg(name, seq=sequence)
                except nats.js.errors.NotFoundError:  # deleted: a hole in the sequence
                    raw = None
            if raw is None:
                sequence += 1
                continue
            sequence += 1
            letter = self._letter(stream, raw.seq or sequence - 1, raw.data or b"{}")
            if group is None or letter.group == group:
                letters.append(letter)
        return letters

    @staticmethod
    def _letter(stream: str, sequence: int, payload: bytes) -> DeadLetter:
        record = json.loads(payload)
        return DeadLetter(
            id=str(sequence),
            stream=stream,
            group=str(record.get("group", "")),
            message_id=str(record.get("message_id", "")),
            data=base64.b64decode(record.get("data", "")),
            attempts=int(record.get("attempts", 0)),
            reason=str(record.get("reason", "")),
            failed_at=float(record.get("failed_at", 0.0)),
        )

    async def delete_dead_letters(self, stream: str, ids: Sequence[str]) -> int:
        """Delete the letters by sequence number; returns how many were there."""
        conn = await self._call(self._conn())
        removed = 0
        for letter_id in ids:
            with _translated(self):
                try:
                    removed += bool(
                        await conn.js.delete_msg(self.dead_stream_name(stream), int(letter_id))
                    )
                except (nats.js.errors.NotFoundError, ValueError):
                    continue
                except nats.js.errors.APIError as error:
                    if error.err_code != _MSG_DELETE_FAILED:  # not "no such message"
                        raise
        return removed

    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """Publish *data* on the group's own subject, then delete the letter.

        The publish is deduplicated by the letter's id, so a crash between the two
        steps followed by a second replay does not deliver it twice.
        """
        conn = await self._call(self._conn())
        msg_id = hashlib.sha256(f"replay:{letter.stream}:{letter.id}".encode()).hexdigest()
        with _translated(self, publishing=letter.stream):
            sequence = await self._publish_on(
                conn, letter.stream, self.subject(letter.stream, letter.group), data, msg_id[:32]
            )
        await self.delete_dead_letters(letter.stream, [letter.id])
        return sequence


class _NatsWatcher(Watcher):
    """A plain NATS subscription to the streams' subjects (JetStream publishes are NATS
    messages too) and to their hand-back nudges: one subscriber per worker, taking
    nothing from the durables."""

    def __init__(self, transport: NatsJetStreamTransport, streams: Sequence[str]) -> None:
        super().__init__(streams)
        self.transport = transport
        self._by_token = {_ident(stream): stream for stream in streams}
        self._ready: set[str] = set()
        self._event = asyncio.Event()
        self._conn: _Connection | None = None
        self._subscriptions: list[Any] = []

    async def _on_message(self, message: Msg) -> None:
        # <prefix>.s.<id>.all / .g.<group>, or <prefix>.n.<id>: the id is the third token.
        parts = message.subject.split(".")
        stream = self._by_token.get(parts[2]) if len(parts) > 2 else None
        if stream is not None:
            self._ready.add(stream)
            self._event.set()

    async def start(self) -> None:
        """Subscribe (again, if the connection was replaced)."""
        with _translated(self.transport):
            conn = await self.transport._conn()
            if conn is self._conn:
                return
            self._conn, self._subscriptions = conn, []
            prefix = self.transport.prefix
            for token in self._by_token:
                for subject in (f"{prefix}.s.{token}.>", f"{prefix}.n.{token}"):
                    self._subscriptions.append(
                        await conn.client.subscribe(subject, cb=self._on_message)
                    )

    async def wait(self, timeout: float) -> Collection[str]:
        """Wait for a message or nudge on the streams' subjects, up to *timeout*."""
        await self.start()
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
        ready, self._ready = self._ready, set()
        return ready

    async def aclose(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(*_NATS_ERRORS):
                await subscription.unsubscribe()
        self._subscriptions = []


class _NatsDelivery(Delivery):
    """A JetStream message pulled by one consumer of a durable."""

    def __init__(
        self,
        transport: NatsJetStreamTransport,
        stream: str,
        group: str,
        consumer: str,
        message: Msg,
    ) -> None:
        metadata = message.metadata
        self.transport = transport
        self.stream, self.group, self.consumer = stream, group, consumer
        self.message = message
        self.message_id = str(metadata.sequence.stream)
        self.data = message.data
        self.attempt = metadata.num_delivered or 1
        self._settled = False

    async def _settle(self, action: Callable[[], Awaitable[None]]) -> None:
        # Settling twice is harmless: only the first call reaches the server.
        if self._settled:
            return
        with _translated(self.transport), contextlib.suppress(nats.errors.MsgAlreadyAckdError):
            await action()
        self._settled = True

    async def ack(self) -> None:
        """ACK: done for this group."""
        await self._settle(self.message.ack)

    async def nack(self, delay: float = 0.0) -> None:
        """NAK with *delay*: the server redelivers it then."""
        await self._settle(lambda: self.message.nak(delay=delay if delay > 0 else None))

    async def dead_letter(self, reason: str) -> None:
        """Write the letter to the dead-letter stream, then TERM the message."""
        if self._settled:
            return
        with _translated(self.transport):
            await self.transport._write_dead_letter(self, reason)
        await self._settle(self.message.term)

    async def touch(self) -> None:
        """In-progress ack: restarts the ack-wait timer."""
        if self._settled:
            return
        with _translated(self.transport):
            await self.message.in_progress()

    async def release(self) -> None:
        """NAK without delay, then a nudge: the other workers of the group look at once."""
        await self._settle(self.message.nak)
        await self.transport.nudge(self.stream)
