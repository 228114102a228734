"""Remote receivers run by Celery workers (``pip install 'tocsin[celery]'``).

Teams that already run Celery workers (on RabbitMQ or Redis) can have those workers run
the receivers declared with :func:`~tocsin.remote.remote_receiver`, instead of running
``tocsin worker`` as well::

    # proj/celery.py: the module given to `celery -A proj worker`
    from celery import Celery
    from tocsin.contrib.celery import CeleryTransport
    from tocsin.remote import Envelope, Keyring, publish

    app = Celery("proj", broker="amqp://guest:guest@rabbitmq//")
    envelope = Envelope(Keyring.from_env())
    transport = CeleryTransport(app, store="redis://redis:6379/0")
    transport.install(envelope)          # registers the task "tocsin.deliver"
    publish(order_placed, transport, envelope, on_commit=True)

    import proj.receivers                # the modules that declare @remote_receiver

Each send of a published signal becomes **one Celery message** of the task
``tocsin.deliver`` whose arguments are the stream's name and the signed envelope as a
string, sent with Celery's ``json`` serializer (never pickle: keep ``accept_content`` to
``["json"]``, Celery's default). The worker that takes the message runs, one group after
the other, every group declared for that stream and signal in its process. What is kept
of the :mod:`tocsin.remote` guarantees, and how:

- *signed and allow-listed*: the envelope is verified (signature, shape, window, replay)
  before anything in it is decoded, and only signals that the process declares remote
  receivers for are accepted. A forged, altered or undeclared event is logged and
  dead-lettered with its reason; it never reaches a receiver;
- *idempotent by event id, per group*: before a group runs, its event id is **claimed**
  in the shared store (:meth:`~tocsin.remote.IdempotencyStore.claim`, the message
  being the task id, which Celery keeps across retries and redeliveries; renewed every
  ``claim_ttl / 3`` seconds while the receivers run) and, once they returned,
  **remembered** as handled for ``dedupe_ttl`` seconds. A message whose event a group
  handled is skipped by that group; a *copy* (the same event in another message) is
  skipped while the original is being handled; a *redelivery* of the message being
  handled waits (the task is retried a little later) until the claim is settled, or
  has expired because its worker died (after ``claim_ttl`` seconds). The store must be
  shared by every worker: Redis (a per-process store could not see another worker's
  claim);
- *retries, then dead letters*: when a group's receivers raise, the task is retried by
  Celery (``task.retry``) after :class:`~tocsin.remote.RetryPolicy`'s backoff, for the
  groups still to run only, with the envelope re-signed as the next attempt (so a long
  backoff never makes it expire). Each group's failures are counted on their own (the
  count travels in the retry's arguments; waiting for a claim is not a failure); after
  ``max_deliveries`` failures the group's event goes to the dead-letter store (a Redis
  stream, the same format as the Redis Streams transport's), to be delivered again, to
  that group only, with :func:`tocsin.remote.replay_dead_letters` on this transport;
- *a killed worker loses nothing*: the task is ``acks_late`` and
  ``reject_on_worker_lost``, so the broker hands a message whose worker died to another
  worker. On RabbitMQ that happens as soon as the connection drops. On a Redis broker
  it happens after the ``visibility_timeout`` (one hour by default): size it above the
  longest receiver run *and* the longest retry countdown, since a message held longer
  than that is delivered again to a second worker (the claim then keeps the group from
  running twice at once, and the handled mark from running twice at all);
- *after commit*: ``publish(..., on_commit=True)`` sends the Celery message only once
  the transaction commits, as with every transport.

Not supported: ``broadcast=True`` receivers (a Celery message goes to one worker; use
the Redis Streams or Pub/Sub transport for those), and ordering (Celery gives none).
Unlike ``tocsin worker``, nothing counts the deliveries of a message that *kills* its
worker (a crash in native code, the OOM killer): the broker redelivers it again and
again. Bound that on the broker (RabbitMQ quorum queues' ``delivery-limit``).

Pools: tested with ``solo`` and ``prefork`` (each process starts its own event loop
thread for the store's asyncio client); ``threads`` should work; ``gevent``/``eventlet``
are untested.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import inspect
import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Coroutine, Iterable, Sequence
from typing import Any, Final, TypeVar

from tocsin.remote import (
    DeadLetter,
    Delivery,
    Envelope,
    Event,
    MalformedEvent,
    PublishError,
    RejectedEvent,
    RemoteReceiver,
    ReplayedEvent,
    RetryPolicy,
    TransportError,
    TransportWrapper,
    remote_receivers,
)
from tocsin.remote.broker import Start
from tocsin.remote.redis import RedisStreamsTransport

__all__ = ["DEFAULT_PREFIX", "TASK_NAME", "CeleryTransport"]

logger = logging.getLogger("tocsin.remote")

#: The name of the one task that delivers envelopes.
TASK_NAME: Final = "tocsin.deliver"

#: Where the store's keys start when it is given as a URL: apart from the Redis Streams
#: transport's (``tocsin:``), so that the two paths never share handled marks.
DEFAULT_PREFIX: Final = "tocsin:celery:"

_T = TypeVar("_T")


class CeleryTransport(TransportWrapper):
    """Publishes events as Celery messages; the user's ``celery worker`` runs them.

    ``app`` is the Celery application; ``store`` the Redis idempotency and dead-letter
    store shared by every worker (a URL, whose keys start with :data:`DEFAULT_PREFIX`,
    or a :class:`~tocsin.remote.redis.RedisStreamsTransport`). ``queue`` is the Celery
    queue to send to (default: the app's default routing). Publishing is bounded:
    ``publish_retries`` more attempts to reach the broker, then
    :class:`~tocsin.remote.PublishError`.

    Publish with :func:`tocsin.remote.publish`; in the worker process, call
    :meth:`install` once. The consuming half of the transport interface
    (``consume``...) is Celery's: calling it raises ``TypeError``.
    """

    def __init__(
        self,
        app: Any,
        store: str | RedisStreamsTransport,
        *,
        queue: str | None = None,
        task_name: str = TASK_NAME,
        publish_retries: int = 2,
    ) -> None:
        if isinstance(store, str):
            store = RedisStreamsTransport(store, prefix=DEFAULT_PREFIX)
        if not isinstance(store, RedisStreamsTransport):
            raise TypeError(
                f"store must be a Redis URL or a RedisStreamsTransport, not {store!r}: "
                "claims and handled marks must be shared by every worker"
            )
        super().__init__(store)
        self.app = app
        self.store = store
        self.queue = queue
        self.task_name = task_name
        self.publish_retries = publish_retries

    def __repr__(self) -> str:
        return f"<CeleryTransport {self.app.main or 'celery'!r} store={self.store!r}>"

    # -- publishing: one Celery message per event

    def publish(self, stream: str, data: bytes) -> str:
        """Send *data* as one ``tocsin.deliver`` message for *stream*; return its task id.

        Raises :class:`~tocsin.remote.PublishError` if the broker could not take it.
        """
        return self.send(stream, data)

    async def apublish(self, stream: str, data: bytes) -> str:
        """:meth:`publish` from async code (Celery's client blocks: run in a thread)."""
        return await asyncio.to_thread(self.send, stream, data)

    def send(self, stream: str, data: bytes, *, group: str | None = None) -> str:
        """Send one delivery of *data* for *stream* (to *group* only, if given); return
        the task id. Raises :class:`~tocsin.remote.PublishError`."""
        kwargs = {} if group is None else {"group": group}
        try:
            result = self.app.send_task(
                self.task_name,
                args=(stream, data.decode("utf-8")),
                kwargs=kwargs,
                queue=self.queue,
                serializer="json",
                retry=True,
                retry_policy={
                    "max_retries": self.publish_retries,
                    "interval_start": 0.1,
                    "interval_step": 0.5,
                    "interval_max": 1.0,
                },
            )
        except Exception as error:
            raise PublishError(
                f"could not send {stream!r} to Celery broker "
                f"{self.app.conf.broker_url or '(default)'!r}: {type(error).__name__}: {error}",
                stream=stream,
            ) from error
        return str(result.id)

    # -- consuming is Celery's

    def _not_here(self, what: str) -> TypeError:
        return TypeError(
            f"CeleryTransport cannot {what}: Celery workers consume its messages "
            "(call transport.install(envelope) in the module given to `celery -A`), "
            "not tocsin.remote.Worker"
        )

    async def ensure_group(self, stream: str, group: str, *, start: Start = "all") -> None:
        """Not supported: raises ``TypeError`` (Celery consumes)."""
        raise self._not_here("create consumer groups")

    async def drop_group(self, stream: str, group: str) -> None:
        """Not supported: raises ``TypeError`` (Celery consumes)."""
        raise self._not_here("drop consumer groups")

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        count: int,
        timeout: float,
    ) -> list[Delivery]:
        """Not supported: raises ``TypeError`` (Celery consumes)."""
        raise self._not_here("consume")

    async def wait_for_messages(self, streams: Sequence[str], timeout: float) -> Collection[str]:
        """Not supported: raises ``TypeError`` (Celery consumes)."""
        raise self._not_here("wait for messages")

    async def claim_stale(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        min_idle: float,
        count: int,
    ) -> list[Delivery]:
        """Not supported: raises ``TypeError`` (the broker redelivers, ``acks_late``)."""
        raise self._not_here("claim stale messages")

    # -- the dead-letter store

    async def republish_dead_letter(self, letter: DeadLetter, data: bytes) -> str:
        """Send *data* as a new Celery message for *letter*'s group only, then delete
        *letter*. A crash in between leaves the letter to be replayed again, which is
        harmless: the group skips an event id it handled."""
        new_id = await asyncio.to_thread(
            self.send, letter.stream, data, group=letter.group or None
        )
        await self.store.delete_dead_letters(letter.stream, [letter.id])
        return new_id

    # -- the worker side

    def install(
        self,
        envelope: Envelope,
        *,
        retry: RetryPolicy | None = None,
        groups: Iterable[str] | None = None,
        claim_ttl: float = 60.0,
        dedupe_ttl: float = 86_400.0,
    ) -> Any:
        """Register the task that delivers envelopes on the app; return the task.

        Call it in the module ``celery -A`` imports, and import the modules declaring
        remote receivers there too. *envelope* verifies (and re-signs retries);
        *retry* (default ``RetryPolicy()``: 5 deliveries, 1 s backoff doubling up to
        300 s) says when to retry and when to dead-letter; *groups* limits the groups
        run (default: all declared, except broadcast ones). ``claim_ttl``: how long a
        worker that died holds up its event's redelivery; ``dedupe_ttl``: how long a
        handled event id is remembered (at least the envelope's replay window).
        """
        if claim_ttl <= 0:
            raise ValueError("claim_ttl must be positive (seconds)")
        runner = _Runner(
            self,
            envelope,
            retry or RetryPolicy(),
            None if groups is None else frozenset(groups),
            claim_ttl,
            max(dedupe_ttl, envelope.replay_window),
        )

        def deliver(
            task: Any,
            stream: str,
            data: Any,
            group: str | None = None,
            groups: Any = None,
            failures: Any = None,
        ) -> str:
            # group: a dead letter's replay; groups and failures: what a retry carries
            # (the groups still to run, and how often each failed so far).
            only = [group] if isinstance(group, str) else _names(groups)
            outcome = runner.handle(task.request, stream, data, only, _counts(failures))
            if outcome.retry_data is not None:
                raise task.retry(
                    args=(stream, outcome.retry_data),
                    kwargs={"groups": outcome.groups, "failures": outcome.failures},
                    countdown=outcome.countdown,
                    max_retries=None,
                )
            return outcome.summary

        return self.app.task(
            deliver,
            name=self.task_name,
            bind=True,
            # The message is acknowledged only once the task returned, and handed to
            # another worker if this one dies: at-least-once, as with the Worker.
            acks_late=True,
            reject_on_worker_lost=True,
            serializer="json",
            ignore_result=True,
            # Retries and dead letters are ours (RetryPolicy), not Celery's limit.
            max_retries=None,
        )


@dataclasses.dataclass
class _Outcome:
    summary: str
    retry_data: str | None = None
    countdown: float = 0.0
    groups: list[str] = dataclasses.field(default_factory=list)
    failures: dict[str, int] = dataclasses.field(default_factory=dict)


class _Runner:
    """Handles one message: verify, then per group claim, run, remember; retry or
    dead-letter what failed."""

    def __init__(
        self,
        transport: CeleryTransport,
        envelope: Envelope,
        retry: RetryPolicy,
        groups: frozenset[str] | None,
        claim_ttl: float,
        dedupe_ttl: float,
    ) -> None:
        self.transport = transport
        self.envelope = envelope
        self.retry = retry
        self.groups = groups
        self.claim_ttl = claim_ttl
        self.dedupe_ttl = dedupe_ttl
        self._envelopes: dict[str, Envelope] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._warned_broadcast: set[str] = set()

    # -- the process's event loop (the store's client is asyncio; Celery's pools fork)

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self._submit(coroutine).result()

    def _submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                # A forked child starts its own loop thread; the parent's is not running
                # here (and its connections must not be shared).
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="tocsin-celery", daemon=True
                ).start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    # -- receivers and envelopes

    def _receivers(self, stream: str) -> list[RemoteReceiver]:
        found = []
        for entry in remote_receivers(self.groups):
            if entry.stream != stream:
                continue
            if entry.broadcast:
                if entry.group not in self._warned_broadcast:
                    self._warned_broadcast.add(entry.group)
                    logger.warning(
                        "broadcast group %r is not run by Celery workers (a message goes "
                        "to one worker): use a Redis Streams or Pub/Sub worker for it",
                        entry.group,
                    )
                continue
            found.append(entry)
        return found

    def _envelope(self, stream: str, receivers: list[RemoteReceiver]) -> Envelope:
        envelope = self._envelopes.get(stream)
        if envelope is None:
            envelope = self._envelopes[stream] = self.envelope.with_own_replay_cache()
        # The allow-list: the signals declared on this stream (within the envelope's own).
        declared = frozenset(r.signal_path for r in receivers)
        if self.envelope.allowed_signals is not None:
            declared &= self.envelope.allowed_signals
        envelope.allowed_signals = declared
        return envelope

    # -- one message

    def handle(
        self,
        request: Any,
        stream: str,
        data: Any,
        only: list[str] | None,
        failures: dict[str, int],
    ) -> _Outcome:
        """Run the groups (of *only*, if given) for one message; say whether (and how) to
        retry it. *failures*: how many times each group failed on earlier deliveries."""
        task_id = str(request.id)
        # The message is the task id, which Celery keeps across retries and redeliveries:
        # a redelivery of a message being handled is "busy", a copy sent as another
        # message is a "copy" (see tocsin.remote.Claim).
        # The consumer is this execution thread: under a threads or gevent pool two
        # deliveries of one message in one process must not both get "claimed".
        consumer = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        raw = data.encode("utf-8") if isinstance(data, str) else b""
        receivers = self._receivers(stream)
        envelope = self._envelope(stream, receivers)
        redelivered = bool((request.delivery_info or {}).get("redelivered"))
        try:
            if not isinstance(data, str):
                raise _malformed(data)
            event = envelope.decode(raw, redelivered=redelivered)
        except ReplayedEvent:
            # Accepted by this very process already: it handled it, or is handling it.
            return _Outcome("replayed: dropped")
        except RejectedEvent as rejected:
            self._dead_letter(
                stream,
                only[0] if only and len(only) == 1 else "",
                task_id,
                raw,
                1,
                f"rejected ({rejected.reason}): {rejected.detail}",
            )
            return _Outcome(f"rejected ({rejected.reason})")
        by_group: dict[str, list[RemoteReceiver]] = {}
        for entry in receivers:
            if (
                entry.signal_path == event.signal
                and entry.matches(event.sender)
                and (only is None or entry.group in only)
            ):
                by_group.setdefault(entry.group, []).append(entry)
        failed: dict[str, BaseException] = {}
        busy: list[str] = []
        done: list[str] = []
        store = self.transport.store
        claim = {"consumer": consumer, "message": task_id}
        try:
            for group, entries in by_group.items():
                verdict = self._run(store.claim(group, event.id, ttl=self.claim_ttl, **claim))
                if verdict == "done" or verdict == "copy":
                    # Handled, or being handled from another message (a copy of this
                    # one): that message stays unacknowledged until it is settled.
                    logger.info(
                        "event %s %s by group %r: skipped",
                        event.id,
                        "already handled" if verdict == "done" else "being handled from a copy",
                        group,
                    )
                    done.append(group)
                    continue
                if verdict == "busy":
                    # This very message, redelivered while the worker that claimed it may
                    # still be at work (or died and its claim has not expired yet).
                    busy.append(group)
                    continue
                error = self._run_group(group, entries, event, consumer, task_id)
                if error is None:
                    # Replaces the claim with the handled mark.
                    self._run(store.remember(group, event.id, self.dedupe_ttl))
                    done.append(group)
                else:
                    failed[group] = error
                    self._run(store.unclaim(group, event.id, **claim))
        except TransportError as down:
            # The store is unreachable: try the groups not settled again soon, without
            # counting it as a failure (a group that ran may run again: at-least-once).
            logger.warning("event %s: store unreachable (%s): retrying", event.id, down)
            rest = [group for group in by_group if group not in done]
            return self._again(raw, 1.0, "store unreachable", rest, failures)
        again: dict[str, int] = {}
        for group, failure in failed.items():
            count = failures.get(group, 0) + 1
            if self.retry.gives_up(count):
                logger.error(
                    "event %s failed %d time(s) in group %r: dead-lettered",
                    event.id,
                    count,
                    group,
                    exc_info=failure,
                )
                self._dead_letter(
                    stream,
                    group,
                    task_id,
                    raw,
                    count,
                    f"failed {count} time(s): {type(failure).__name__}: {failure}",
                )
                continue
            again[group] = count
            logger.warning(
                "event %s failed in group %r (attempt %d/%d): %s; retry in %gs",
                event.id,
                group,
                count,
                self.retry.max_deliveries,
                failure,
                self.retry.delay(count),
            )
        if busy:
            # Another worker claimed the event from this very message (redelivered while
            # that worker is still at work, or died and its claim has not expired yet):
            # look again when that claim may be settled or expired.
            logger.info(
                "event %s is being handled by another worker in group(s) %s: looking again",
                event.id,
                ", ".join(repr(group) for group in busy),
            )
        if not again and not busy:
            given_up = f"; dead-lettered: {sorted(failed)}" if failed else ""
            return _Outcome(f"handled: {done}{given_up}")
        delay = max(
            (self.retry.delay(count) for count in again.values()),
            default=min(self.claim_ttl / 2, 5.0),
        )
        return self._again(
            raw,
            delay,
            f"failed: {sorted(again)}; busy: {busy}",
            [*again, *busy],
            {**failures, **again},
        )

    def _again(
        self, raw: bytes, countdown: float, why: str, groups: list[str], failures: dict[str, int]
    ) -> _Outcome:
        # Only the groups still to run, re-signed as the next attempt and stamped now: the
        # retry is a new message that passes the replay check, and a long backoff never
        # makes it expire.
        _, data = self.envelope.reissue(raw)
        return _Outcome(
            why,
            retry_data=data.decode("ascii"),
            countdown=countdown,
            groups=groups,
            failures={group: failures[group] for group in groups if group in failures},
        )

    def _dead_letter(
        self, stream: str, group: str, message_id: str, data: bytes, attempts: int, reason: str
    ) -> None:
        # group "" (an event rejected before any group ran) is replayed to every group.
        letter = DeadLetter(
            id="",
            stream=stream,
            group=group,
            message_id=message_id,
            data=data,
            attempts=attempts,
            reason=reason,
            failed_at=time.time(),
        )
        self._run(self.transport.add_dead_letter(letter))

    def _run_group(
        self, group: str, entries: list[RemoteReceiver], event: Event, consumer: str, message: str
    ) -> BaseException | None:
        heartbeat = self._submit(self._heartbeat(group, event.id, consumer, message))
        try:
            for entry in entries:
                if entry.is_async:
                    self._run(entry.call(event))
                    continue
                # A sync receiver runs in the task's own thread, not in a pool thread as
                # RemoteReceiver.call would: Celery's soft time limits, its task context
                # and per-thread resources (Django closes its DB connections after each
                # task, in that thread) apply to it as to any task.
                named = dict(event.kwargs)
                named.update(
                    signal=entry.signal,
                    sender=event.sender,
                    event_id=event.id,
                    event_origin=event.origin,
                )
                result = entry.receiver(**named)
                if inspect.isawaitable(result):
                    self._run(_awaited(result))
        except Exception as error:
            return error
        finally:
            heartbeat.cancel()
        return None

    async def _heartbeat(self, group: str, event_id: str, consumer: str, message: str) -> None:
        # A slow receiver keeps its claim; a dead worker's expires after claim_ttl.
        while True:
            await asyncio.sleep(self.claim_ttl / 3)
            with contextlib.suppress(TransportError):
                await self.transport.store.claim(
                    group, event_id, consumer=consumer, message=message, ttl=self.claim_ttl
                )


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _names(value: Any) -> list[str] | None:
    # Task arguments are not signed: anything but a list of names means "every group".
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _counts(value: Any) -> dict[str, int]:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if isinstance(k, str) and type(v) is int}
    return {}


def _malformed(data: Any) -> RejectedEvent:
    return MalformedEvent(f"task payload is {type(data).__name__}, not the envelope's str")
