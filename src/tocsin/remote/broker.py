"""What a broker must offer for tocsin to deliver events, as three small roles.

A transport moves opaque bytes (signed envelopes, see :mod:`tocsin.remote.envelope`)
between processes. It knows nothing of signals. The model is deliberately small and not
shaped after any one broker, so that Redis Streams, NATS JetStream or an in-memory queue
can all implement it. It has three roles, each its own interface, so that a wrapper
(the outbox) wraps only what it changes:

- :class:`Broker`: a **stream** is a named, append-only log that publishers write to
  (:meth:`~Broker.publish`); a **group** reads a stream; every group sees every message
  once, and the consumers of one group share its messages between them (load
  balancing). A group created for one consumer only, and dropped when that consumer
  stops, gives broadcast. Each message handed out is a :class:`Delivery`, which stays
  *pending* until the consumer settles it: :meth:`~Delivery.ack` (done),
  :meth:`~Delivery.nack` (deliver again after a delay), or :meth:`~Delivery.dead_letter`
  (give up: move it to the stream's dead-letter store). A pending message whose consumer
  went silent for longer than an idle timeout can be taken over by another consumer
  (:meth:`~Broker.claim_stale`): this is how a crashed process's work is recovered;
  :meth:`~Delivery.touch` tells the broker the consumer is still at work on it;
- :class:`IdempotencyStore`: per group, which event ids are being handled
  (:meth:`~IdempotencyStore.claim`, with an expiry, so that two consumers never run the
  receivers of one event at the same time) and which were handled
  (:meth:`~IdempotencyStore.remember`), so that a redelivered event is not handled twice;
- :class:`DeadLetterStore`: the messages a group gave up on, to list, delete or replay.

:class:`Transport` is all three: what a backend implements and a worker consumes with.
:class:`TransportWrapper` delegates all three to another transport, for wrappers that
change one method (the outbox's ``publish``).

Everything on the consuming side is ``async`` (the worker is an asyncio program, and
some brokers' clients are asyncio-only); publishing has a blocking form (signals are
mostly sent from sync code) and an ``async`` one.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Collection, Sequence
from typing import Final, Literal

from tocsin.remote.errors import PublishError, TransportError

__all__ = [
    "DEAD_LETTER_MAXLEN",
    "Broker",
    "Claim",
    "DeadLetter",
    "DeadLetterStore",
    "Delivery",
    "IdempotencyStore",
    "PublishError",
    "Start",
    "Transport",
    "TransportError",
    "TransportWrapper",
    "Watcher",
]

#: How many dead letters a stream keeps by default (oldest dropped first): anyone who can
#: write to the broker can make events fail, so the store must not grow without bound.
DEAD_LETTER_MAXLEN: Final = 100_000

#: Where a new group starts reading: at the oldest retained message, or only at new ones.
Start = Literal["all", "new"]

#: What :meth:`IdempotencyStore.claim` found for an event id: it is now this consumer's
#: to handle (``"claimed"``); it was handled already (``"done"``); another consumer is
#: handling it from *another* message, so this one is a copy (``"copy"``: acknowledge
#: it, the other message stays pending until handled); or another consumer holds an
#: unexpired claim from this same message, redelivered meanwhile (``"busy"``: try it
#: again later, once that claim is settled or has expired).
Claim = Literal["claimed", "done", "copy", "busy"]


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message that a group gave up on, as kept in the dead-letter store.

    ``id`` identifies it in the store (for :meth:`DeadLetterStore.republish_dead_letter`),
    ``message_id`` is its id in the original stream, ``attempts`` how many times it was
    delivered, ``reason`` why it was given up on, ``failed_at`` when (Unix time).
    """

    id: str
    stream: str
    group: str
    message_id: str
    data: bytes
    attempts: int
    reason: str
    failed_at: float


class Delivery(abc.ABC):
    """One message handed to one consumer of a group; pending until settled.

    ``attempt`` counts deliveries of this message to the group, this one included
    (1 on the first). Settling twice is harmless: only the first call counts.
    """

    stream: str
    group: str
    consumer: str
    message_id: str
    data: bytes
    attempt: int

    @abc.abstractmethod
    async def ack(self) -> None:
        """Mark the message handled: it will not be delivered to this group again."""

    @abc.abstractmethod
    async def nack(self, delay: float = 0.0) -> None:
        """Give the message back: deliver it again (to any consumer) after *delay* seconds."""

    @abc.abstractmethod
    async def dead_letter(self, reason: str) -> None:
        """Give up: copy the message to the dead-letter store with *reason*, then ack it.

        Both happen together or not at all, so a message is never lost in between.
        """

    @abc.abstractmethod
    async def touch(self) -> None:
        """Reset the idle time of the message: its consumer is still working on it."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Hand the message back for immediate delivery to another consumer of the group
        (at shutdown): the other consumers see it at once, not after an idle timeout."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.stream}/{self.group} {self.message_id} "
            f"attempt={self.attempt}>"
        )


class Watcher:
    """Waits for messages on some streams without taking them (:meth:`Broker.watcher`).

    This base class polls: :meth:`wait` sleeps a little and says every stream may have
    something. A transport's own watcher blocks on the broker instead.
    """

    #: How long the polling :meth:`wait` sleeps at most.
    poll: float = 0.05

    def __init__(self, streams: Sequence[str]) -> None:
        self.streams = tuple(streams)

    async def start(self) -> None:
        """Note where the streams are now: messages published from here on are awaited."""

    async def wait(self, timeout: float) -> Collection[str]:
        """Wait up to *timeout* seconds for a message published to one of the streams
        since the previous call; return those streams (empty if none came)."""
        await asyncio.sleep(min(timeout, self.poll))
        return self.streams

    async def aclose(self) -> None:
        """Release what the watcher holds (connections, subscriptions)."""


class Broker(abc.ABC):
    """Publishes to streams and hands their messages out to the consumers of groups."""

    #: Whether groups share messages and deliveries can be acknowledged (False for
    #: fire-and-forget transports, whose every subscriber gets every message once).
    supports_groups: bool = True

    # -- publishing

    @abc.abstractmethod
    def publish(self, stream: str, data: bytes) -> str:
        """Append *data* to *stream* and return the message id the broker gave it.

        Blocks until the broker has it (at most the transport's timeout). Raises
        :class:`PublishError` if it could not.
        """

    async def apublish(self, stream: str, data: bytes) -> str:
        """:meth:`publish` for async code: returns the message id; raises PublishError.

        The default runs :meth:`publish` in a thread; transports with an async client
        override it.
        """
        return await asyncio.to_thread(self.publish, stream, data)

    # -- consuming

    @abc.abstractmethod
    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """Create *group* on *stream* if it does not exist (creating the stream too).

        ``start="all"``: a new group begins at the oldest retained message, so nothing
        published before the first worker started is missed; ``"new"``: only messages
        published from now on (what a broadcast group wants).
        """

    @abc.abstractmethod
    async def drop_group(self, stream: str, group: str) -> None:
        """Delete *group* from *stream*, with its pending messages (broadcast groups)."""

    @abc.abstractmethod
    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Return up to *count* deliveries for *consumer* of *group* from *streams*.

        First the consumer's own messages that are due again (after :meth:`Delivery.nack`),
        then messages never delivered to the group. Waits up to *timeout* seconds for
        one (``0``: does not wait, which is how the worker fetches, woken by its
        :meth:`watcher`); returns ``[]`` if none came. Raises
        :class:`TransportError` if the broker is unreachable.
        """

    def watcher(self, streams: Sequence[str]) -> Watcher:
        """Return a :class:`Watcher` of *streams*: one waiter for a whole worker, so that a
        lone message reaches its groups at once however many groups the worker runs
        (each group then fetches without blocking). The default polls; transports
        override it (Redis: one blocking XREAD over every stream)."""
        return Watcher(streams)

    @abc.abstractmethod
    async def claim_stale(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        min_idle: float,
        count: int,
    ) -> list[Delivery]:
        """Take over up to *count* messages of *group* pending for longer than *min_idle*
        seconds with another consumer (one that crashed, presumably), and return them
        as deliveries to *consumer*, their ``attempt`` counting the earlier deliveries.
        """

    # -- lifecycle

    async def aclose(self) -> None:  # noqa: B027 (optional to override)
        """Release the async connections (the worker calls it when it stops)."""

    def close(self) -> None:  # noqa: B027 (optional to override)
        """Release the blocking connections used by :meth:`publish`."""


class IdempotencyStore(abc.ABC):
    """Per group: which event ids are being handled, and which were handled."""

    @abc.abstractmethod
    async def seen(self, group: str, event_id: str) -> bool:
        """Whether *group* has recorded *event_id* as handled (see :meth:`remember`)."""

    @abc.abstractmethod
    async def remember(self, group: str, event_id: str, ttl: float) -> bool:
        """Record *event_id* as handled by *group* for *ttl* seconds (replacing a claim).

        Returns False if it was already recorded (another consumer handled it too).
        """

    async def seen_many(self, keys: Sequence[tuple[str, str]]) -> list[bool]:
        """:meth:`seen` for many ``(group, event_id)`` pairs at once, in order.

        The default calls :meth:`seen` for each; a transport overrides it to ask the
        broker in one round trip.
        """
        return [await self.seen(group, event_id) for group, event_id in keys]

    async def claim(
        self, group: str, event_id: str, *, consumer: str, message: str, ttl: float
    ) -> Claim:
        """Claim *event_id* for *consumer* of *group*, before running its receivers, so
        that no other consumer runs them meanwhile; *message* names the message that
        carries it (``"stream/message id"``, a task id: any stable string).

        Returns a :data:`Claim`: ``"claimed"`` (it is this consumer's now; the same
        consumer claiming from the same message again renews the expiry), ``"done"``,
        ``"copy"`` or ``"busy"``. A claim expires by itself after *ttl* seconds: tie it
        to the idle timeout after which a silent consumer's message is taken over, so a
        crashed consumer's claim never blocks the one that takes its message over.
        :meth:`remember` replaces the claim with the handled mark.

        The default only asks :meth:`seen` (no exclusion between consumers); every
        transport of tocsin overrides it with an atomic check-and-set.
        """
        return "done" if await self.seen(group, event_id) else "claimed"

    async def claim_many(
        self, claims: Sequence[tuple[str, str, str, str]], ttl: float
    ) -> list[Claim]:
        """:meth:`claim` for many ``(group, event_id, consumer, message)``, in order."""
        return [await self.claim(g, e, consumer=c, message=m, ttl=ttl) for g, e, c, m in claims]

    async def unclaim(  # noqa: B027 (optional to override)
        self, group: str, event_id: str, *, consumer: str, message: str
    ) -> None:
        """Drop *consumer*'s claim on *event_id* from *message* (it was handed back, will
        be retried, or was dead-lettered), so that the event may be taken at once.
        Does nothing if that claim is not held."""

    async def remember_and_ack(self, handled: Sequence[tuple[Delivery, str]], ttl: float) -> None:
        """Settle deliveries whose receivers returned: for each ``(delivery, event_id)``,
        :meth:`remember` the id for ``delivery.group`` for *ttl* seconds, **then**
        :meth:`~Delivery.ack` the delivery.

        The order matters: a crash in between leaves a pending message whose id is
        already remembered, so its redelivery is acknowledged without running the
        receivers again. The default does exactly that, one item after the other; a
        transport overrides it to do the whole batch in one round trip, keeping every
        remember before its ack.
        """
        for delivery, event_id in handled:
            await self.remember(delivery.group, event_id, ttl)
            await delivery.ack()


class DeadLetterStore(abc.ABC):
    """The messages groups gave up on: listed, deleted, or delivered again."""

    @abc.abstractmethod
    async def dead_letters(
        self, stream: str, *, group: str | None = None, count: int = 100
    ) -> list[DeadLetter]:
        """Return up to *count* dead letters of *stream* (of *group* only, if given),
        oldest first."""

    @abc.abstractmethod
    async def delete_dead_letters(self, stream: str, ids: Sequence[str]) -> int:
        """Remove the dead letters *ids*; returns how many were removed."""

    async def add_dead_letter(self, letter: DeadLetter) -> str:
        """Store *letter* (its ``id`` is ignored) and return its id in the store.

        For consumers that settle without a :class:`Delivery` (a task queue's worker
        giving up on an event): what :meth:`Delivery.dead_letter` writes, without the ack.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot store dead letters directly")

    @abc.abstractmethod
    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """Deliver *data* (*letter*'s event, usually re-signed) again to *letter*'s group
        only, and remove *letter* from the store, both or neither. Returns the new
        message id. :func:`tocsin.remote.replay_dead_letters` is the tool to use.
        """


class Transport(Broker, IdempotencyStore, DeadLetterStore):
    """A broker connection with all three roles: what a backend implements.

    Implementations: :class:`tocsin.remote.MemoryTransport` (in-process, for tests),
    :class:`tocsin.remote.redis.RedisStreamsTransport` (the default for production),
    :class:`tocsin.remote.redis.RedisPubSubTransport` (at-most-once broadcast) and
    :class:`tocsin.remote.nats.NatsJetStreamTransport`. Stream and group names are plain
    strings; a transport may prefix them.
    """

    async def remember_and_ack(self, handled: Sequence[tuple[Delivery, str]], ttl: float) -> None:
        """As :meth:`IdempotencyStore.remember_and_ack`; on groupless transports
        (``supports_groups`` False) it only acks."""
        if self.supports_groups:
            await super().remember_and_ack(handled, ttl)
            return
        for delivery, _ in handled:
            await delivery.ack()


class TransportWrapper(Transport):
    """A transport that hands every call to *target*: subclass it and override only what
    the wrapper changes (:class:`tocsin.remote.outbox.OutboxTransport` overrides
    ``publish``)."""

    def __init__(self, target: Transport) -> None:
        self.target = target
        self.supports_groups = target.supports_groups

    def __repr__(self) -> str:
        return f"<{type(self).__name__} -> {self.target!r}>"

    def publish(self, stream: str, data: bytes) -> str:
        """The target's."""
        return self.target.publish(stream, data)

    async def apublish(self, stream: str, data: bytes) -> str:
        """The target's."""
        return await self.target.apublish(stream, data)

    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """The target's."""
        await self.target.ensure_group(stream, group, start=start)

    async def drop_group(self, stream: str, group: str) -> None:
        """The target's."""
        await self.target.drop_group(stream, group)

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """The target's."""
        return await self.target.consume(streams, group, consumer, count=count, timeout=timeout)

    def watcher(self, streams: Sequence[str]) -> Watcher:
        """The target's."""
        return self.target.watcher(streams)

    async def claim_stale(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        min_idle: float,
        count: int,
    ) -> list[Delivery]:
        """The target's."""
        return await self.target.claim_stale(
            streams, group, consumer, min_idle=min_idle, count=count
        )

    async def seen(self, group: str, event_id: str) -> bool:
        """The target's."""
        return await self.target.seen(group, event_id)

    async def remember(self, group: str, event_id: str, ttl: float) -> bool:
        """The target's."""
        return await self.target.remember(group, event_id, ttl)

    async def seen_many(self, keys: Sequence[tuple[str, str]]) -> list[bool]:
        """The target's."""
        return await self.target.seen_many(keys)

    async def claim(
        self, group: str, event_id: str, *, consumer: str, message: str, ttl: float
    ) -> Claim:
        """The target's."""
        return await self.target.claim(
            group, event_id, consumer=consumer, message=message, ttl=ttl
        )

    async def claim_many(
        self, claims: Sequence[tuple[str, str, str, str]], ttl: float
    ) -> list[Claim]:
        """The target's."""
        return await self.target.claim_many(claims, ttl)

    async def unclaim(self, group: str, event_id: str, *, consumer: str, message: str) -> None:
        """The target's."""
        await self.target.unclaim(group, event_id, consumer=consumer, message=message)

    async def remember_and_ack(self, handled: Sequence[tuple[Delivery, str]], ttl: float) -> None:
        """The target's."""
        await self.target.remember_and_ack(handled, ttl)

    async def dead_letters(
        self, stream: str, *, group: str | None = None, count: int = 100
    ) -> list[DeadLetter]:
        """The target's."""
        return await self.target.dead_letters(stream, group=group, count=count)

    async def delete_dead_letters(self, stream: str, ids: Sequence[str]) -> int:
        """The target's."""
        return await self.target.delete_dead_letters(stream, ids)

    async def add_dead_letter(self, letter: DeadLetter) -> str:
        """The target's."""
        return await self.target.add_dead_letter(letter)

    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """The target's."""
        return await self.target.republish_dead_letter(letter, data)

    async def aclose(self) -> None:
        """The target's."""
        await self.target.aclose()

    def close(self) -> None:
        """The target's."""
        self.target.close()
