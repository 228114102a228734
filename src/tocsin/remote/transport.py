"""The transport interface: what a broker must offer for tocsin to deliver events.

A transport moves opaque bytes (signed envelopes, see :mod:`tocsin.remote.envelope`)
between processes. It knows nothing of signals. The model is deliberately small and not
shaped after any one broker, so that Redis Streams, NATS JetStream or an in-memory queue
can all implement it:

- a **stream** is a named, append-only log that publishers write to
  (:meth:`Transport.publish`);
- a **group** reads a stream; every group sees every message once, and the consumers of
  one group share its messages between them (load balancing). A group created for one
  consumer only, and dropped when that consumer stops, gives broadcast;
- each message handed out is a :class:`Delivery`, which stays *pending* until the
  consumer settles it: :meth:`~Delivery.ack` (done), :meth:`~Delivery.nack` (deliver
  again after a delay), or :meth:`~Delivery.dead_letter` (give up: move it to the
  stream's dead-letter store);
- a pending message whose consumer went silent for longer than an idle timeout can be
  taken over by another consumer (:meth:`Transport.claim_stale`): this is how a crashed
  process's work is recovered. :meth:`~Delivery.touch` tells the broker the consumer is
  still at work on a long message;
- an **idempotency store** (:meth:`Transport.seen`, :meth:`Transport.remember`) records
  which event ids a group has handled, so that a redelivered event is not handled twice.

Everything on the consuming side is ``async`` (the worker is an asyncio program, and
some brokers' clients are asyncio-only); publishing has a blocking form (signals are
mostly sent from sync code) and an ``async`` one.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "DeadLetter",
    "Delivery",
    "PublishError",
    "Transport",
    "TransportError",
]

#: Where a new group starts reading: at the oldest retained message, or only at new ones.
Start = Literal["all", "new"]


class TransportError(Exception):
    """The broker could not be reached or refused an operation."""


class PublishError(TransportError):
    """An event could not be written to the broker; it was **not** published.

    Raised by :meth:`Transport.publish` (and so by ``signal.send()`` of a published
    signal) rather than losing the event silently. ``stream`` is where it was going.
    """

    def __init__(self, message: str, *, stream: str) -> None:
        super().__init__(message)
        self.stream = stream


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message that a group gave up on, as kept in the dead-letter store.

    ``id`` identifies it in the store (for :meth:`Transport.republish_dead_letter`),
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
        """Hand the message back for immediate delivery to another consumer (at shutdown)."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.stream}/{self.group} {self.message_id} "
            f"attempt={self.attempt}>"
        )


class Transport(abc.ABC):
    """A broker connection that publishes to streams and consumes them in groups.

    Implementations: :class:`tocsin.remote.memory.MemoryTransport` (in-process, for
    tests), :class:`tocsin.remote.redis.RedisStreamsTransport` (the default for
    production) and :class:`tocsin.remote.redis.RedisPubSubTransport` (at-most-once
    broadcast). Stream and group names are plain strings; a transport may prefix them.
    """

    #: Whether groups share messages and deliveries can be acknowledged (False for
    #: fire-and-forget transports, whose every subscriber gets every message once).
    supports_groups: bool = True

    # -- publishing

    @abc.abstractmethod
    def publish(self, stream: str, data: bytes) -> str:
        """Append *data* to *stream* and return the message id the broker gave it.

        Blocks until the broker has it. Raises :class:`PublishError` if it could not.
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
        one; returns ``[]`` if none came. Raises :class:`TransportError` if the broker
        is unreachable.
        """

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

    # -- idempotency

    @abc.abstractmethod
    async def seen(self, group: str, event_id: str) -> bool:
        """Whether *group* has recorded *event_id* as handled (see :meth:`remember`)."""

    @abc.abstractmethod
    async def remember(self, group: str, event_id: str, ttl: float) -> bool:
        """Record *event_id* as handled by *group* for *ttl* seconds.

        Returns False if it was already recorded (another consumer handled it too).
        """

    # -- batches (optional: the defaults loop over the single-item methods)

    async def seen_many(self, keys: Sequence[tuple[str, str]]) -> list[bool]:
        """:meth:`seen` for many ``(group, event_id)`` pairs at once, in order.

        The default calls :meth:`seen` for each; a transport overrides it to ask the
        broker in one round trip.
        """
        return [await self.seen(group, event_id) for group, event_id in keys]

    async def remember_and_ack(self, handled: Sequence[tuple[Delivery, str]], ttl: float) -> None:
        """Settle deliveries whose receivers returned: for each ``(delivery, event_id)``,
        :meth:`remember` the id for ``delivery.group`` for *ttl* seconds, **then**
        :meth:`~Delivery.ack` the delivery.

        The order matters: a crash in between leaves a pending message whose id is
        already remembered, so its redelivery is acknowledged without running the
        receivers again. The default does exactly that, one item after the other; a
        transport overrides it to do the whole batch in one round trip, keeping every
        remember before its ack. On groupless transports (``supports_groups`` False) it
        only acks.
        """
        for delivery, event_id in handled:
            if self.supports_groups:
                await self.remember(delivery.group, event_id, ttl)
            await delivery.ack()

    # -- dead letters

    @abc.abstractmethod
    async def dead_letters(
        self, stream: str, *, group: str | None = None, count: int = 100
    ) -> list[DeadLetter]:
        """Return up to *count* dead letters of *stream* (of *group* only, if given),
        oldest first."""

    @abc.abstractmethod
    async def delete_dead_letters(self, stream: str, ids: Sequence[str]) -> int:
        """Remove the dead letters *ids*; returns how many were removed."""

    @abc.abstractmethod
    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """Deliver *data* (*letter*'s event, usually re-signed) again to *letter*'s group
        only, and remove *letter* from the store, both or neither. Returns the new
        message id. ``tocsin.remote.worker.replay_dead_letters`` is the tool to use.
        """

    # -- lifecycle

    async def aclose(self) -> None:  # noqa: B027 (optional to override)
        """Release the async connections (the worker calls it when it stops)."""

    def close(self) -> None:  # noqa: B027 (optional to override)
        """Release the blocking connections used by :meth:`publish`."""
