"""An in-process transport: remote receivers tested without a broker.

:class:`MemoryTransport` keeps streams, groups, pending messages, dead letters and the
idempotency store in plain Python objects, with the semantics of the Redis Streams
transport: every group gets every message once, consumers of a group share them, a
message stays pending until acked, a nack makes it due again after its delay, a pending
message idle for too long can be claimed by another consumer, and the delivery count
grows with each delivery. Nothing leaves the process, and nothing survives it.

Publishing is thread-safe (sends may come from any thread); consuming is for one event
loop at a time, as a worker does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Collection, Sequence

from tocsin.remote.broker import (
    Claim,
    DeadLetter,
    Delivery,
    PublishError,
    Start,
    Transport,
    Watcher,
)

__all__ = ["MemoryTransport"]

# How often a waiting consume() looks again (no cross-thread wakeups needed).
_POLL = 0.005


@dataclasses.dataclass
class _Message:
    id: str
    data: bytes
    only_group: str | None  # a replayed dead letter goes to its own group only


@dataclasses.dataclass
class _Pending:
    message: _Message
    consumer: str
    count: int
    last_seen: float  # when it was last delivered or touched (monotonic)
    due: float | None = None  # set by nack: when it may be delivered again


@dataclasses.dataclass
class _Group:
    next_index: int
    pending: dict[str, _Pending] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Stream:
    messages: list[_Message] = dataclasses.field(default_factory=list)
    groups: dict[str, _Group] = dataclasses.field(default_factory=dict)
    dead: list[DeadLetter] = dataclasses.field(default_factory=list)


class MemoryTransport(Transport):
    """A transport that lives in this process (see the module docstring).

    ``clock`` (monotonic seconds) is for tests that want to move time by hand.
    ``fail_publish`` makes :meth:`publish` raise :class:`PublishError`, to test what
    a broker outage does to a program.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.fail_publish = False
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._ids = itertools.count(1)
        # (group, event id) -> ("1" once handled, or a claim; its expiry).
        self._seen: dict[tuple[str, str], tuple[str, float]] = {}
        # Bumped whenever a message becomes available (published, handed back, replayed):
        # what watchers wait for.
        self.version = 0

    def __repr__(self) -> str:
        return f"<MemoryTransport streams={sorted(self._streams)}>"

    # -- publishing

    def publish(self, stream: str, data: bytes) -> str:
        """Append *data* to *stream*; returns its id. Raises PublishError if told to."""
        return self._append(stream, data, None)

    async def apublish(self, stream: str, data: bytes) -> str:
        """As :meth:`publish` (it never blocks)."""
        return self._append(stream, data, None)

    def _append(self, stream: str, data: bytes, only_group: str | None) -> str:
        if self.fail_publish:
            raise PublishError(
                f"the memory transport is set to fail (stream {stream!r})", stream=stream
            )
        with self._lock:
            message = _Message(f"{next(self._ids)}-0", bytes(data), only_group)
            self._streams.setdefault(stream, _Stream()).messages.append(message)
            self.version += 1
            return message.id

    def messages(self, stream: str) -> list[bytes]:
        """The data of every message in *stream*, oldest first (for tests)."""
        with self._lock:
            return [m.data for m in self._streams.get(stream, _Stream()).messages]

    def pending(self, stream: str, group: str) -> int:
        """How many messages *group* has pending on *stream* (for tests)."""
        with self._lock:
            found = self._streams.get(stream, _Stream()).groups.get(group)
            return len(found.pending) if found else 0

    # -- consuming

    def watcher(self, streams: Sequence[str]) -> Watcher:
        """A watcher that wakes when a message is published, replayed or handed back."""
        return _MemoryWatcher(self, streams)

    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """Create *group* on *stream* unless it exists (see Transport.ensure_group)."""
        with self._lock:
            state = self._streams.setdefault(stream, _Stream())
            if group not in state.groups:
                state.groups[group] = _Group(0 if start == "all" else len(state.messages))

    async def drop_group(self, stream: str, group: str) -> None:
        """Delete *group* and its pending messages."""
        with self._lock:
            self._streams.get(stream, _Stream()).groups.pop(group, None)

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Up to *count* deliveries (due retries first), waiting up to *timeout* s."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._take(streams, group, consumer, count)
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))

    def _take(
        self, streams: Sequence[str], group: str, consumer: str, count: int
    ) -> list[Delivery]:
        now = self.clock()
        found: list[Delivery] = []
        with self._lock:
            for name in streams:
                state = self._streams.get(name)
                if state is None or group not in state.groups:
                    raise KeyError(f"no group {group!r} on stream {name!r}: ensure_group first")
                entry = state.groups[group]
                for pending in entry.pending.values():
                    if len(found) >= count:
                        return found
                    if (
                        pending.consumer in (consumer, "")  # "": handed back, for anyone
                        and pending.due is not None
                        and pending.due <= now
                    ):
                        pending.consumer = consumer
                        pending.due, pending.count, pending.last_seen = (
                            None,
                            pending.count + 1,
                            now,
                        )
                        found.append(self._delivery(name, group, consumer, pending))
                while len(found) < count and entry.next_index < len(state.messages):
                    message = state.messages[entry.next_index]
                    entry.next_index += 1
                    if message.only_group not in (None, group):
                        continue
                    pending = _Pending(message, consumer, 1, now)
                    entry.pending[message.id] = pending
                    found.append(self._delivery(name, group, consumer, pending))
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
        """Take over messages pending with another consumer for over *min_idle* s."""
        now = self.clock()
        found: list[Delivery] = []
        with self._lock:
            for name in streams:
                entry = self._streams.get(name, _Stream()).groups.get(group)
                if entry is None:
                    continue
                for pending in entry.pending.values():
                    if len(found) >= count:
                        return found
                    if now - pending.last_seen >= min_idle and pending.consumer != consumer:
                        pending.consumer, pending.count = consumer, pending.count + 1
                        pending.last_seen, pending.due = now, None
                        found.append(self._delivery(name, group, consumer, pending))
        return found

    def _delivery(self, stream: str, group: str, consumer: str, pending: _Pending) -> Delivery:
        return _MemoryDelivery(self, stream, group, consumer, pending)

    def _settle(self, delivery: _MemoryDelivery) -> _Pending | None:
        """The pending entry of *delivery*, if it is still this consumer's (lock held)."""
        entry = self._streams.get(delivery.stream, _Stream()).groups.get(delivery.group)
        pending = entry.pending.get(delivery.message_id) if entry else None
        return pending if pending is delivery.pending_entry else None

    # -- idempotency

    def _record(self, group: str, event_id: str) -> str | None:
        """What the store holds for the id ("1": handled; a claim), unexpired (lock held)."""
        found = self._seen.get((group, event_id))
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    async def seen(self, group: str, event_id: str) -> bool:
        """Whether *group* recorded *event_id* as handled (and the record has not expired)."""
        with self._lock:
            return self._record(group, event_id) == "1"

    async def remember(self, group: str, event_id: str, ttl: float) -> bool:
        """Record *event_id* as handled by *group* for *ttl* s (replacing a claim); False if
        it already was."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > 10_000:
                # Expired records are dropped now and then, so the store stays bounded.
                self._seen = {key: v for key, v in self._seen.items() if v[1] > now}
            before = self._record(group, event_id)
            self._seen[(group, event_id)] = ("1", now + ttl)
            return before != "1"

    async def claim(
        self, group: str, event_id: str, *, consumer: str, message: str, ttl: float
    ) -> Claim:
        """Claim *event_id* for *consumer* from *message* for *ttl* s (see Transport.claim)."""
        mine = f"c\n{message}\n{consumer}"
        with self._lock:
            held = self._record(group, event_id)
            if held is None or held == mine:
                self._seen[(group, event_id)] = (mine, self.clock() + ttl)
                return "claimed"
            if held == "1":
                return "done"
            return "busy" if held.startswith(f"c\n{message}\n") else "copy"

    async def unclaim(self, group: str, event_id: str, *, consumer: str, message: str) -> None:
        """Drop the claim if it is still *consumer*'s from *message*."""
        with self._lock:
            if self._record(group, event_id) == f"c\n{message}\n{consumer}":
                del self._seen[(group, event_id)]

    # -- dead letters

    async def dead_letters(
        self, stream: str, *, group: str | None = None, count: int = 100
    ) -> list[DeadLetter]:
        """The dead letters of *stream* (of *group*), oldest first."""
        with self._lock:
            letters = self._streams.get(stream, _Stream()).dead
            return [d for d in letters if group is None or d.group == group][:count]

    async def delete_dead_letters(self, stream: str, ids: Sequence[str]) -> int:
        """Remove the dead letters *ids*; returns how many there were."""
        with self._lock:
            state = self._streams.get(stream, _Stream())
            before = len(state.dead)
            state.dead = [d for d in state.dead if d.id not in ids]
            return before - len(state.dead)

    async def add_dead_letter(self, letter: DeadLetter) -> str:
        """Store *letter* under a new id; returns it."""
        with self._lock:
            stored = dataclasses.replace(letter, id=f"{next(self._ids)}-0")
            self._streams.setdefault(letter.stream, _Stream()).dead.append(stored)
            return stored.id

    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """Deliver *data* again to *letter*'s group only and drop *letter*."""
        with self._lock:
            state = self._streams.setdefault(letter.stream, _Stream())
            if not any(d.id == letter.id for d in state.dead):
                raise KeyError(f"no dead letter {letter.id!r} on stream {letter.stream!r}")
            state.dead = [d for d in state.dead if d.id != letter.id]
            message = _Message(f"{next(self._ids)}-0", bytes(data), letter.group)
            state.messages.append(message)
            self.version += 1
            return message.id


class _MemoryWatcher(Watcher):
    def __init__(self, transport: MemoryTransport, streams: Sequence[str]) -> None:
        super().__init__(streams)
        self.transport = transport
        self.seen = transport.version

    async def start(self) -> None:
        self.seen = self.transport.version

    async def wait(self, timeout: float) -> Collection[str]:
        deadline = time.monotonic() + timeout
        while self.transport.version == self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return ()
            await asyncio.sleep(min(_POLL, left))
        self.seen = self.transport.version
        return self.streams


class _MemoryDelivery(Delivery):
    def __init__(
        self,
        transport: MemoryTransport,
        stream: str,
        group: str,
        consumer: str,
        pending: _Pending,
    ) -> None:
        self.transport = transport
        self.stream, self.group, self.consumer = stream, group, consumer
        self.message_id = pending.message.id
        self.data = pending.message.data
        self.attempt = pending.count
        self.pending_entry = pending

    def _entry(self) -> _Group | None:
        return self.transport._streams.get(self.stream, _Stream()).groups.get(self.group)

    async def ack(self) -> None:
        # Like XACK, an ack removes the message whoever holds it now.
        with self.transport._lock:
            entry = self._entry()
            if entry is not None:
                entry.pending.pop(self.message_id, None)

    async def nack(self, delay: float = 0.0) -> None:
        with self.transport._lock:
            pending = self.transport._settle(self)
            if pending is not None and pending.consumer == self.consumer:
                pending.due = self.transport.clock() + delay
                pending.last_seen = self.transport.clock()

    async def dead_letter(self, reason: str) -> None:
        transport = self.transport
        with transport._lock:
            state = transport._streams.setdefault(self.stream, _Stream())
            entry = state.groups.get(self.group)
            if entry is None or entry.pending.pop(self.message_id, None) is None:
                return  # already settled (acked by whoever holds it now)
            state.dead.append(
                DeadLetter(
                    id=f"{next(transport._ids)}-0",
                    stream=self.stream,
                    group=self.group,
                    message_id=self.message_id,
                    data=self.data,
                    attempts=self.attempt,
                    reason=reason,
                    failed_at=time.time(),
                )
            )

    async def touch(self) -> None:
        with self.transport._lock:
            pending = self.transport._settle(self)
            if pending is not None and pending.consumer == self.consumer:
                pending.last_seen = self.transport.clock()

    async def release(self) -> None:
        # Idle "forever": the next claim_stale by any consumer takes it at once.
        with self.transport._lock:
            pending = self.transport._settle(self)
            if pending is not None and pending.consumer == self.consumer:
                pending.last_seen = -float("inf")
                pending.consumer = ""
                pending.due = self.transport.clock()
                self.transport.version += 1
