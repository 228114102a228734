"""Redis transports: Streams (at-least-once, the default) and Pub/Sub (at-most-once).

``pip install 'tocsin[redis]'``. Both take a URL, which carries everything about the
connection: ``redis://user:password@host:6379/0`` for Redis AUTH (ACL user, or just
``:password@``), ``rediss://...`` for TLS (add ``?ssl_cert_reqs=required&ssl_ca_certs=
/path/ca.pem`` to verify the server against your CA, ``ssl_certfile``/``ssl_keyfile``
for client certificates), ``unix:///path/redis.sock`` for a socket. Extra keyword
arguments go to ``redis.Redis.from_url``. ``timeout`` (default 5 s) bounds connecting and
every reply (``socket_connect_timeout``, ``socket_timeout``): a broker that is down *or*
reachable but not answering makes ``publish`` raise ``PublishError`` within it.

**RedisStreamsTransport** maps the transport model onto Redis Streams (Redis >= 6.2;
7.0 recommended):

- a stream is the key ``<prefix><stream>``; a group is a consumer group (XGROUP CREATE,
  from ``0`` by default so that events published before the first worker started are
  not missed); deliveries come from XREADGROUP and stay in the group's pending entries
  list (PEL) until XACK, so a crash between receiving and acknowledging loses nothing;
- ``claim_stale`` is XAUTOCLAIM: messages idle in another consumer's PEL for longer
  than the idle timeout move to the caller, and their delivery counter goes up;
- ``release`` (the hand-back at shutdown) appends the message again for its group, with
  its delivery count, and acks the old entry, in one transaction: other workers see it
  at once;
- ``nack(delay)`` keeps the message pending and schedules it on this transport; when it
  is due, ``consume`` takes it back with XCLAIM (which counts a delivery). If the
  process dies first, XAUTOCLAIM recovers it like any other pending message;
- ``dead_letter`` appends the message to the stream ``<prefix><stream>:dead`` and acks
  it, in one MULTI/EXEC transaction;
- the idempotency store is the key ``<prefix>seen:<group>:<event id>``: a claim
  (``c``, the message, the consumer) set by a script before the receivers run, expiring
  after the worker's ``claim_idle``, then ``1`` for ``dedupe_ttl`` once handled.

*Trimming.* Every XADD trims the stream with ``MAXLEN ~ maxlen`` (default 1,000,000
entries; ``maxlen=None`` disables trimming). We chose a large approximate MAXLEN over
``MINID`` set to the oldest pending id: computing that id needs an XPENDING per group on
every publish, and a single forgotten group (or a crashed broadcast group) would then
pin the stream forever and grow it without bound. The cost of MAXLEN is that a backlog
longer than ``maxlen`` loses its oldest entries: size it well above the worst consumer
lag (events/s x longest outage). Should it happen anyway, it is not silent: XAUTOCLAIM
reports the ids of pending entries that were trimmed away and the worker logs each at
ERROR. Dead-letter streams are trimmed too, to ``dead_letter_maxlen`` (default 100,000,
:data:`~tocsin.remote.broker.DEAD_LETTER_MAXLEN`; ``None``: never), since anyone who can
write to the broker can make events fail and so grow that stream.

**RedisPubSubTransport** is PUBLISH/SUBSCRIBE: fire and forget. A message reaches the
subscribers connected at that moment and nobody else: nothing is stored, nothing is
acknowledged, a subscriber that is restarting, disconnected or too slow (Redis drops
clients past ``client-output-buffer-limit pubsub``) misses it for good. It is
**at-most-once broadcast**, right only for loss-tolerant work such as cache invalidation.
Every consumer gets every message (groups do not share them); ``nack`` retries inside
the process; dead letters go to the same ``:dead`` stream as with Streams.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry as SyncRetry

from tocsin.remote._url import DEFAULT_URL
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

__all__ = ["DEFAULT_URL", "RedisPubSubTransport", "RedisStreamsTransport"]

logger = logging.getLogger("tocsin.remote")

# Resets a pending message's idle time only if this consumer still holds it, so that a
# slow consumer's heartbeat never steals back a message another consumer reclaimed.
_TOUCH = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""

# Claims event ids before their receivers run. A key holds "1" once handled, or
# "c<LF>message<LF>consumer" while claimed (expiring with the claim). KEYS: the
# idempotency keys; ARGV: the claim TTL in ms, then per key its message and consumer.
_CLAIM = r"""
local out = {}
for i = 1, #KEYS do
  local message, consumer = ARGV[2 * i], ARGV[2 * i + 1]
  local mine = 'c\n' .. message .. '\n' .. consumer
  local held = redis.call('GET', KEYS[i])
  if not held or held == mine then
    redis.call('SET', KEYS[i], mine, 'PX', ARGV[1])
    out[i] = 'claimed'
  elseif held == '1' then
    out[i] = 'done'
  elseif string.sub(held, 1, #message + 3) == 'c\n' .. message .. '\n' then
    out[i] = 'busy'
  else
    out[i] = 'copy'
  end
end
return out
"""

_CLAIM_SHA = hashlib.sha1(_CLAIM.encode()).hexdigest()

# Drops a claim if it is still the caller's. KEYS[1]: the key; ARGV[1]: the claim value.
_UNCLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_UNCLAIM_SHA = hashlib.sha1(_UNCLAIM.encode()).hexdigest()

# Settles a batch of handled messages: remembers every event id (SET PX, replacing the
# claim; a mark already there is kept with its TTL), then acks
# the messages (XACK per stream and group), atomically. KEYS: the idempotency keys, then
# one stream key per (stream, group); ARGV: the TTL in ms, how many idempotency keys,
# then per stream: the group, how many ids, the ids.
_REMEMBER_AND_ACK = """
local n = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('GET', KEYS[i]) ~= '1' then
    redis.call('SET', KEYS[i], '1', 'PX', ARGV[1])
  end
end
local at = 3
for j = n + 1, #KEYS do
  local count = tonumber(ARGV[at + 1])
  redis.call('XACK', KEYS[j], ARGV[at], unpack(ARGV, at + 2, at + 1 + count))
  at = at + 2 + count
end
return n
"""

_REMEMBER_AND_ACK_SHA = hashlib.sha1(_REMEMBER_AND_ACK.encode()).hexdigest()

# Most ids settled by one script call (Lua's unpack has a stack limit).
_SETTLE_BATCH = 500


_VERDICTS: dict[str, Claim] = {
    "claimed": "claimed",
    "done": "done",
    "copy": "copy",
    "busy": "busy",
}


def _claim_verdict(reply: Any) -> Claim:
    verdict = _VERDICTS.get(_text(reply))
    if verdict is not None:
        return verdict
    raise TransportError(f"Redis: unexpected claim reply {_text(reply)[:40]!r}")


def _letter_of(delivery: Delivery, reason: str) -> DeadLetter:
    return DeadLetter(
        id="",
        stream=delivery.stream,
        group=delivery.group,
        message_id=delivery.message_id,
        data=delivery.data,
        attempts=delivery.attempt,
        reason=reason,
        failed_at=time.time(),
    )


class _BusyGroup(Exception):
    """XGROUP CREATE found the group already there: nothing to do."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def _translated(transport: _RedisBase, publishing: str | None = None) -> Iterator[None]:
    """Turn redis-py's errors into ours: :class:`PublishError` when publishing to the
    stream *publishing*, :class:`TransportError` otherwise (the one place that does)."""
    try:
        yield
    except RedisError as error:
        detail = f"{type(error).__name__}: {error}"
        if publishing is not None:
            raise PublishError(
                f"could not publish to {transport.key(publishing)!r} on {transport!r}: {detail}",
                stream=publishing,
            ) from error
        raise TransportError(f"Redis ({transport!r}): {detail}") from error


class _RedisBase(Transport):
    """What both Redis transports share: clients, idempotency store, dead letters."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "tocsin:",
        dead_letter_maxlen: int | None = DEAD_LETTER_MAXLEN,
        timeout: float = 5.0,
        **options: Any,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        self.url = url
        self.prefix = prefix
        self.dead_letter_maxlen = dead_letter_maxlen
        self.timeout = timeout
        # Every timeout explicit, whatever redis-py's defaults (redis-py 5 has no read
        # timeout at all): a broker that is down, or up but not answering (stopped,
        # overloaded, a half-open connection), is an error within `timeout`, never a
        # hang. Blocking reads wait less than that (see _block_ms).
        options.setdefault("socket_connect_timeout", timeout)
        options.setdefault("socket_timeout", timeout)
        options.setdefault("health_check_interval", 30)
        self.options = options
        self._sync: redis.Redis | None = None
        self._async: aioredis.Redis | None = None

    def __repr__(self) -> str:
        # Never show the password of the URL.
        host = self.url.rpartition("@")[2]
        return f"<{type(self).__name__} {host} prefix={self.prefix!r}>"

    def key(self, stream: str) -> str:
        """The Redis key of *stream*."""
        return f"{self.prefix}{stream}"

    def dead_key(self, stream: str) -> str:
        """The Redis key of *stream*'s dead-letter stream."""
        return f"{self.prefix}{stream}:dead"

    @property
    def client(self) -> redis.Redis:
        """The blocking client (created on first use)."""
        if self._sync is None:
            options = dict(self.options)
            # One quick retry on a broken connection (a restarted server closed it),
            # none on a timeout: a silent server would multiply the wait.
            options.setdefault(
                "retry",
                SyncRetry(ExponentialBackoff(cap=0.5, base=0.05), 1, (RedisConnectionError,)),
            )
            self._sync = redis.Redis.from_url(self.url, **options)
        return self._sync

    @property
    def aclient(self) -> aioredis.Redis:
        """The asyncio client (created on first use, in the loop that uses it)."""
        if self._async is None:
            options = dict(self.options)
            options.setdefault(
                "retry",
                AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), 1, (RedisConnectionError,)),
            )
            self._async = aioredis.Redis.from_url(self.url, **options)
        return self._async

    def _block_ms(self, seconds: float) -> int:
        """A blocking read's BLOCK in ms: *seconds*, but shorter than the read timeout,
        so that waiting for messages is never mistaken for a silent server."""
        ceiling = self.options.get("socket_timeout") or self.timeout
        return max(1, int(min(seconds, max(0.05, ceiling * 0.8)) * 1000))

    async def aclose(self) -> None:
        """Close the asyncio client."""
        if self._async is not None:
            client, self._async = self._async, None
            await client.aclose()

    def close(self) -> None:
        """Close the blocking client."""
        if self._sync is not None:
            client, self._sync = self._sync, None
            client.close()

    async def _script(self, script: str, sha: str, keys: list[Any], args: list[Any]) -> Any:
        """Run a Lua script by its SHA, loading it on the server the first time."""
        try:
            return await self.aclient.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.aclient.eval(script, len(keys), *keys, *args)

    # -- idempotency

    def _seen_key(self, group: str, event_id: str) -> str:
        return f"{self.prefix}seen:{group}:{event_id}"

    async def seen(self, group: str, event_id: str) -> bool:
        """Whether the key ``<prefix>seen:<group>:<event id>`` holds the handled mark."""
        with _translated(self):
            return await self.aclient.get(self._seen_key(group, event_id)) == b"1"

    async def remember(self, group: str, event_id: str, ttl: float) -> bool:
        """SET (replacing a claim) with a TTL; returns False (and keeps the mark as it
        is) if it was marked handled already."""
        key = self._seen_key(group, event_id)
        with _translated(self):
            if await self.aclient.get(key) == b"1":
                return False
            await self.aclient.set(key, b"1", px=max(1, int(ttl * 1000)))
        return True

    async def seen_many(self, keys: Sequence[tuple[str, str]]) -> list[bool]:
        """One MGET of every key: a key holding the handled mark was recorded."""
        if not keys:
            return []
        with _translated(self):
            values = await self.aclient.mget([self._seen_key(g, e) for g, e in keys])
        return [value == b"1" for value in values]

    async def claim(
        self, group: str, event_id: str, *, consumer: str, message: str, ttl: float
    ) -> Claim:
        """One script call: check the key and set the claim atomically (see claim_many)."""
        [verdict] = await self.claim_many([(group, event_id, consumer, message)], ttl)
        return verdict

    async def claim_many(
        self, claims: Sequence[tuple[str, str, str, str]], ttl: float
    ) -> list[Claim]:
        """One script call per batch: for each key, GET then SET ... PX if it is free or
        already this consumer's from this message (atomic, so two consumers never both
        get ``"claimed"``)."""
        verdicts: list[Claim] = []
        px = max(1, int(ttl * 1000))
        for start in range(0, len(claims), _SETTLE_BATCH):
            batch = claims[start : start + _SETTLE_BATCH]
            keys = [self._seen_key(group, event_id) for group, event_id, _, _ in batch]
            args: list[Any] = [px]
            for _, _, consumer, message in batch:
                args += [message, consumer]
            with _translated(self):
                reply = await self._script(_CLAIM, _CLAIM_SHA, keys, args)
            verdicts.extend(_claim_verdict(item) for item in reply)
        return verdicts

    async def unclaim(self, group: str, event_id: str, *, consumer: str, message: str) -> None:
        """Delete the key if it still holds this consumer's claim from *message*."""
        with _translated(self):
            await self._script(
                _UNCLAIM,
                _UNCLAIM_SHA,
                [self._seen_key(group, event_id)],
                [f"c\n{message}\n{consumer}"],
            )

    # -- dead letters

    async def dead_letters(
        self, stream: str, *, group: str | None = None, count: int = 100
    ) -> list[DeadLetter]:
        """XRANGE over the dead-letter stream, oldest first."""
        letters: list[DeadLetter] = []
        start = "-"
        while len(letters) < count:
            with _translated(self):
                batch: list[Any] = (
                    await self.aclient.xrange(self.dead_key(stream), start, "+", count=100) or []
                )
            for raw_id, fields in batch:
                letter = self._letter(stream, raw_id, fields)
                if group is None or letter.group == group:
                    letters.append(letter)
            if len(batch) < 100:
                break
            start = "(" + _text(batch[-1][0])
        return letters[:count]

    @staticmethod
    def _letter(stream: str, raw_id: Any, fields: dict[bytes, bytes]) -> DeadLetter:
        return DeadLetter(
            id=_text(raw_id),
            stream=stream,
            group=_text(fields.get(b"group", b"")),
            message_id=_text(fields.get(b"message_id", b"")),
            data=fields.get(b"data", b""),
            attempts=int(fields.get(b"attempts", b"0")),
            reason=_text(fields.get(b"reason", b"")),
            failed_at=float(fields.get(b"failed_at", b"0")),
        )

    async def delete_dead_letters(self, stream: str, ids: Sequence[str]) -> int:
        """XDEL from the dead-letter stream."""
        if not ids:
            return 0
        with _translated(self):
            return int(await self.aclient.xdel(self.dead_key(stream), *ids))

    async def _dead_letter(self, delivery: Delivery, reason: str, ack: bool) -> None:
        with _translated(self):
            await self._write_dead_letter(delivery, reason, ack)

    async def _write_dead_letter(self, delivery: Delivery, reason: str, ack: bool) -> None:
        async with self.aclient.pipeline(transaction=True) as pipe:
            self._add_letter(pipe, _letter_of(delivery, reason))
            if ack:
                pipe.xack(self.key(delivery.stream), delivery.group, delivery.message_id)
            await pipe.execute()

    def _add_letter(self, pipe: Any, letter: DeadLetter) -> None:
        pipe.xadd(
            self.dead_key(letter.stream),
            {
                "data": letter.data,
                "group": letter.group,
                "message_id": letter.message_id,
                "attempts": letter.attempts,
                "reason": letter.reason[:2000],
                "failed_at": repr(letter.failed_at),
            },
            maxlen=self.dead_letter_maxlen,
            approximate=True,
        )

    async def add_dead_letter(self, letter: DeadLetter) -> str:
        """XADD to the dead-letter stream (trimmed as the others); returns the entry id."""
        with _translated(self):
            async with self.aclient.pipeline(transaction=False) as pipe:
                self._add_letter(pipe, letter)
                [entry_id] = await pipe.execute()
        return _text(entry_id)


class RedisStreamsTransport(_RedisBase):
    """At-least-once delivery through Redis Streams and consumer groups.

    ``url``: see the module docstring (AUTH and TLS go in it). ``prefix`` starts every
    key. ``maxlen`` is the approximate length streams are trimmed to on publish (None:
    never trim); see the module docstring for why MAXLEN and how to size it.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "tocsin:",
        maxlen: int | None = 1_000_000,
        dead_letter_maxlen: int | None = DEAD_LETTER_MAXLEN,
        timeout: float = 5.0,
        **options: Any,
    ) -> None:
        super().__init__(
            url, prefix=prefix, dead_letter_maxlen=dead_letter_maxlen, timeout=timeout, **options
        )
        self.maxlen = maxlen
        # (due, stream, group, consumer, message id): nacked messages of this process.
        self._retries: list[tuple[float, str, str, str, str, float]] = []
        self._groups: dict[tuple[str, str], Start] = {}

    # -- publishing

    def publish(self, stream: str, data: bytes) -> str:
        """XADD (with the trimming policy); raises PublishError if Redis is unreachable."""
        with _translated(self, publishing=stream):
            message_id = self.client.xadd(
                self.key(stream), {"data": data}, maxlen=self.maxlen, approximate=True
            )
        return _text(message_id)

    async def apublish(self, stream: str, data: bytes) -> str:
        """XADD from async code; raises PublishError if Redis is unreachable."""
        with _translated(self, publishing=stream):
            message_id = await self.aclient.xadd(
                self.key(stream), {"data": data}, maxlen=self.maxlen, approximate=True
            )
        return _text(message_id)

    # -- groups

    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """XGROUP CREATE ... MKSTREAM, ignoring BUSYGROUP (it exists already)."""
        self._groups[(stream, group)] = start
        with _translated(self), contextlib.suppress(_BusyGroup):
            try:
                await self.aclient.xgroup_create(
                    self.key(stream), group, id="0" if start == "all" else "$", mkstream=True
                )
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
                raise _BusyGroup from None

    async def drop_group(self, stream: str, group: str) -> None:
        """XGROUP DESTROY."""
        self._groups.pop((stream, group), None)
        try:
            await self.aclient.xgroup_destroy(self.key(stream), group)
        except RedisError as error:
            logger.warning("could not drop group %r of %r: %s", group, stream, error)

    # -- consuming

    def watcher(self, streams: Sequence[str]) -> Watcher:
        """One blocking XREAD over *streams* for the whole worker (see the class)."""
        return _StreamsWatcher(self, streams)

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Due retries (XCLAIM), then XREADGROUP ``>`` blocking up to *timeout*."""
        with _translated(self):
            found = await self._due_retries(streams, group, consumer, count)
            if found:
                return found
            block = timeout
            mine = [r for r in self._retries if r[2] == group and r[3] == consumer]
            if mine:
                # Wake up in time for the next retry rather than at the end of the block.
                block = max(0.001, min(block, min(r[0] for r in mine) - time.monotonic()))
            try:
                reply = await self.aclient.xreadgroup(
                    group,
                    consumer,
                    {self.key(s): ">" for s in streams},
                    count=count,
                    block=self._block_ms(block) if block > 0 else None,
                )
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                # The stream or group is gone (a broker restarted without persistence,
                # or someone deleted the key): create it again and read next time.
                logger.warning("group %r vanished from Redis; creating it again", group)
                for stream in streams:
                    await self.ensure_group(stream, group, start=self._start(stream, group))
                return []
            return await self._deliveries(reply, group, consumer, first=True)

    def _start(self, stream: str, group: str) -> Start:
        return self._groups.get((stream, group), "all")

    async def _due_retries(
        self, streams: Sequence[str], group: str, consumer: str, count: int
    ) -> list[Delivery]:
        now = time.monotonic()
        due = [
            r
            for r in self._retries
            if r[0] <= now and r[2] == group and r[3] == consumer and r[1] in streams
        ][:count]
        if not due:
            return []
        for retry in due:
            self._retries.remove(retry)
        heapq.heapify(self._retries)
        found: list[Delivery] = []
        for _, stream, _, _, message_id, delay in due:
            # min-idle = the delay: if another consumer took the message over meanwhile
            # (its idle time was reset then), this claim fails and it stays theirs.
            claimed = await self.aclient.xclaim(
                self.key(stream),
                group,
                consumer,
                max(0, int(delay * 1000) - 50),
                [message_id],
            )
            found += await self._entries(stream, claimed, group, consumer, first=False)
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
        """XAUTOCLAIM over each stream; logs pending ids that trimming deleted."""
        found: list[Delivery] = []
        try:
            with _translated(self):
                await self._autoclaim(streams, group, consumer, min_idle, count, found)
        except TransportError as error:
            if "NOGROUP" in str(error):
                return found
            raise
        return found

    async def _autoclaim(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        min_idle: float,
        count: int,
        found: list[Delivery],
    ) -> None:
        for stream in streams:
            start = "0-0"
            # Bounded: XAUTOCLAIM scans at most 10 x COUNT entries per call.
            for _ in range(10):
                reply = await self.aclient.xautoclaim(
                    self.key(stream),
                    group,
                    consumer,
                    int(min_idle * 1000),
                    start,
                    count=count - len(found),
                )
                start = _text(reply[0])
                for deleted in reply[2] if len(reply) > 2 else ():
                    logger.error(
                        "event %s of stream %r was trimmed before group %r acknowledged "
                        "it: it is lost (raise maxlen above the consumer lag)",
                        _text(deleted),
                        stream,
                        group,
                    )
                found += await self._entries(stream, reply[1], group, consumer, first=False)
                if start == "0-0" or len(found) >= count:
                    break
            if len(found) >= count:
                break

    async def _deliveries(
        self, reply: Any, group: str, consumer: str, *, first: bool
    ) -> list[Delivery]:
        # RESP2 replies are [[stream, entries], ...]; RESP3 ones {stream: [entries]}.
        items = reply.items() if isinstance(reply, dict) else (reply or [])
        found: list[Delivery] = []
        for key, entries in items:
            if isinstance(entries, list) and entries and isinstance(entries[0], list):
                entries = entries[0]  # RESP3 nests the entries one level deeper
            stream = _text(key)[len(self.prefix) :]
            found += await self._entries(stream, entries, group, consumer, first=first)
        return found

    async def _entries(
        self, stream: str, entries: Any, group: str, consumer: str, *, first: bool
    ) -> list[Delivery]:
        found: list[Delivery] = []
        for raw_id, fields in entries or ():
            message_id = _text(raw_id)
            if fields is None:
                continue  # deleted from the stream while pending (trimmed)
            only = fields.get(b"group")
            if only is not None and _text(only) != group:
                # A replayed dead letter meant for another group: not ours to handle.
                await self.aclient.xack(self.key(stream), group, message_id)
                continue
            # A handed-back message carries the deliveries it had before.
            earlier = int(fields.get(b"delivered", b"0") or 0)
            attempt = 1
            if not first:
                pending = await self.aclient.xpending_range(
                    self.key(stream), group, message_id, message_id, 1
                )
                attempt = int(pending[0]["times_delivered"]) if pending else 1
            attempt += earlier
            found.append(
                _StreamDelivery(
                    self, stream, group, consumer, message_id, fields.get(b"data", b""), attempt
                )
            )
        return found

    # -- settling

    async def remember_and_ack(self, handled: Sequence[tuple[Delivery, str]], ttl: float) -> None:
        """One script call: ``SET NX PX`` of every event id, then one XACK per stream
        and group with all their message ids, atomically (so every id is remembered
        before, and together with, its message's acknowledgement)."""
        mine = [(d, e) for d, e in handled if isinstance(d, _StreamDelivery)]
        if len(mine) < len(handled):
            others = [(d, e) for d, e in handled if not isinstance(d, _StreamDelivery)]
            await super().remember_and_ack(others, ttl)
        px = max(1, int(ttl * 1000))
        for start in range(0, len(mine), _SETTLE_BATCH):
            batch = mine[start : start + _SETTLE_BATCH]
            keys = [self._seen_key(d.group, event_id) for d, event_id in batch]
            acks: dict[tuple[str, str], list[str]] = {}
            for delivery, _ in batch:
                acks.setdefault((self.key(delivery.stream), delivery.group), []).append(
                    delivery.message_id
                )
            args: list[Any] = [px, len(keys)]
            for (key, group), message_ids in acks.items():
                keys.append(key)
                args += [group, len(message_ids), *message_ids]
            with _translated(self):
                await self._script(_REMEMBER_AND_ACK, _REMEMBER_AND_ACK_SHA, keys, args)

    # -- dead letters

    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """XADD to the stream, marked for the letter's group only, and XDEL the letter."""
        with _translated(self, publishing=letter.stream):
            async with self.aclient.pipeline(transaction=True) as pipe:
                pipe.xadd(
                    self.key(letter.stream),
                    {"data": data, "group": letter.group},
                    maxlen=self.maxlen,
                    approximate=True,
                )
                pipe.xdel(self.dead_key(letter.stream), letter.id)
                new_id, _ = await pipe.execute()
        return _text(new_id)


class _StreamsWatcher(Watcher):
    """One blocking XREAD (not a group read: it takes nothing) over every stream of a
    worker, from the newest id seen: whatever the number of groups, one connection
    waits, and a new message wakes the groups that read its stream at once."""

    def __init__(self, transport: RedisStreamsTransport, streams: Sequence[str]) -> None:
        super().__init__(streams)
        self.transport = transport
        self._ids: dict[str, str] | None = None

    async def start(self) -> None:
        """Note each stream's newest id (XREVRANGE ... COUNT 1)."""
        transport = self.transport
        ids: dict[str, str] = {}
        with _translated(transport):
            async with transport.aclient.pipeline(transaction=False) as pipe:
                for stream in self.streams:
                    pipe.xrevrange(transport.key(stream), "+", "-", count=1)
                newest = await pipe.execute()
        for stream, entries in zip(self.streams, newest, strict=True):
            ids[transport.key(stream)] = _text(entries[0][0]) if entries else "0-0"
        self._ids = ids

    async def wait(self, timeout: float) -> Collection[str]:
        """XREAD BLOCK up to *timeout* from the ids last seen; the streams that moved."""
        if self._ids is None:
            await self.start()
        assert self._ids is not None
        transport = self.transport
        with _translated(transport):
            reply = await transport.aclient.xread(
                self._ids,  # type: ignore[arg-type]
                count=100,
                block=transport._block_ms(timeout) if timeout > 0 else None,
            )
        ready: set[str] = set()
        items = reply.items() if isinstance(reply, dict) else (reply or [])
        for key, entries in items:
            if isinstance(entries, list) and entries and isinstance(entries[0], list):
                entries = entries[0]  # RESP3 nests the entries one level deeper
            if entries:
                self._ids[_text(key)] = _text(entries[-1][0])
                ready.add(_text(key)[len(transport.prefix) :])
        return ready


class _StreamDelivery(Delivery):
    def __init__(
        self,
        transport: RedisStreamsTransport,
        stream: str,
        group: str,
        consumer: str,
        message_id: str,
        data: bytes,
        attempt: int,
    ) -> None:
        self.transport = transport
        self.stream, self.group, self.consumer = stream, group, consumer
        self.message_id, self.data, self.attempt = message_id, data, attempt

    async def ack(self) -> None:
        with _translated(self.transport):
            await self.transport.aclient.xack(
                self.transport.key(self.stream), self.group, self.message_id
            )

    async def nack(self, delay: float = 0.0) -> None:
        heapq.heappush(
            self.transport._retries,
            (
                time.monotonic() + delay,
                self.stream,
                self.group,
                self.consumer,
                self.message_id,
                delay,
            ),
        )

    async def dead_letter(self, reason: str) -> None:
        await self.transport._dead_letter(self, reason, ack=True)

    async def touch(self) -> None:
        await self._reset_idle(0)

    async def release(self) -> None:
        """Hand back at once: in one transaction, append the message again, for this
        group only and with its delivery count, and ack this copy. The other workers'
        watchers see a new entry and fetch it straight away (an idle-timeout takeover
        would wait for their next XAUTOCLAIM sweep)."""
        transport = self.transport
        with _translated(transport):
            async with transport.aclient.pipeline(transaction=True) as pipe:
                pipe.xadd(
                    transport.key(self.stream),
                    {"data": self.data, "group": self.group, "delivered": self.attempt},
                    maxlen=transport.maxlen,
                    approximate=True,
                )
                pipe.xack(transport.key(self.stream), self.group, self.message_id)
                await pipe.execute()

    async def _reset_idle(self, idle_ms: int) -> None:
        with _translated(self.transport):
            await self.transport.aclient.eval(
                _TOUCH,
                1,
                self.transport.key(self.stream),
                self.group,
                self.consumer,
                self.message_id,
                idle_ms,
            )


class RedisPubSubTransport(_RedisBase):
    """At-most-once broadcast through Redis Pub/Sub (see the module docstring).

    Every consumer subscribed to a channel gets every message published while it is
    connected; nothing else. Groups do not share messages, and there is nothing to
    acknowledge or reclaim.
    """

    supports_groups = False

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "tocsin:",
        dead_letter_maxlen: int | None = DEAD_LETTER_MAXLEN,
        timeout: float = 5.0,
        **options: Any,
    ) -> None:
        super().__init__(
            url, prefix=prefix, dead_letter_maxlen=dead_letter_maxlen, timeout=timeout, **options
        )
        self._subscriptions: dict[tuple[str, str], Any] = {}
        self._retries: dict[tuple[str, str], list[tuple[float, int, Delivery]]] = {}
        self._counter = 0

    def publish(self, stream: str, data: bytes) -> str:
        """PUBLISH; returns how many subscribers got it (as a str). PublishError if down."""
        with _translated(self, publishing=stream):
            return str(self.client.publish(self.key(stream), data))

    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """Nothing to create: subscriptions are made by :meth:`consume`."""

    async def drop_group(self, stream: str, group: str) -> None:
        """Unsubscribe the consumers of *group* from *stream*."""
        for (g, consumer), pubsub in list(self._subscriptions.items()):
            if g == group:
                await pubsub.unsubscribe(self.key(stream))
                await pubsub.aclose()
                del self._subscriptions[(g, consumer)]

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Messages received on the subscription (made on the first call), plus due retries."""
        found: list[Delivery] = []
        retries = self._retries.setdefault((group, consumer), [])
        now = time.monotonic()
        while retries and retries[0][0] <= now and len(found) < count:
            _, _, delivery = heapq.heappop(retries)
            delivery.attempt += 1
            found.append(delivery)
        if found:
            return found
        try:
            pubsub = self._subscriptions.get((group, consumer))
            if pubsub is None:
                pubsub = self.aclient.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(*(self.key(s) for s in streams))
                self._subscriptions[(group, consumer)] = pubsub
            deadline = time.monotonic() + timeout
            while len(found) < count:
                left = deadline - time.monotonic()
                if retries:
                    left = min(left, retries[0][0] - time.monotonic())
                if left <= 0 and found:
                    break
                # Once something came, take only what is already buffered.
                wait = 0.0 if found else max(0.0, left)
                message = await pubsub.get_message(timeout=wait)
                if message is None:
                    if (
                        time.monotonic() >= deadline
                        or found
                        or (retries and retries[0][0] <= time.monotonic())
                    ):
                        break
                    continue
                if message.get("type") != "message":
                    continue
                self._counter += 1
                stream = _text(message["channel"])[len(self.prefix) :]
                found.append(
                    _PubSubDelivery(
                        self, stream, group, consumer, f"pubsub-{self._counter}", message["data"]
                    )
                )
        except RedisError as error:
            self._subscriptions.pop((group, consumer), None)
            with _translated(self):
                raise error
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
        """Always empty: Pub/Sub keeps nothing to reclaim."""
        return []

    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """PUBLISH the letter again (to every subscriber: Pub/Sub cannot target a group)."""
        with _translated(self, publishing=letter.stream):
            await self.aclient.publish(self.key(letter.stream), data)
        await self.delete_dead_letters(letter.stream, [letter.id])
        return letter.message_id

    async def aclose(self) -> None:
        """Unsubscribe everything and close the asyncio client."""
        for pubsub in self._subscriptions.values():
            with contextlib.suppress(RedisError):
                await pubsub.aclose()
        self._subscriptions.clear()
        await super().aclose()


class _PubSubDelivery(Delivery):
    def __init__(
        self,
        transport: RedisPubSubTransport,
        stream: str,
        group: str,
        consumer: str,
        message_id: str,
        data: bytes,
    ) -> None:
        self.transport = transport
        self.stream, self.group, self.consumer = stream, group, consumer
        self.message_id, self.data, self.attempt = message_id, data, 1

    async def ack(self) -> None:
        """Nothing to acknowledge with Pub/Sub."""

    async def nack(self, delay: float = 0.0) -> None:
        # Retried inside this process only: a restart loses it (at-most-once).
        retries = self.transport._retries.setdefault((self.group, self.consumer), [])
        self.transport._counter += 1
        heapq.heappush(retries, (time.monotonic() + delay, self.transport._counter, self))

    async def dead_letter(self, reason: str) -> None:
        await self.transport._dead_letter(self, reason, ack=False)

    async def touch(self) -> None:
        """Nothing to keep alive with Pub/Sub."""

    async def release(self) -> None:
        """Nothing to hand back: Pub/Sub cannot redeliver (at-most-once)."""
