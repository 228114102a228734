"""The worker: consumes events for remote receivers and calls them.

Receivers are declared with :func:`~tocsin.remote.remote_receiver` (see
:mod:`tocsin.remote.receivers`). The worker calls them as Django calls receivers, with
``signal`` (the local signal, found by the dotted path the event names), ``sender`` and
the keyword arguments sent (decoded by the envelope), plus ``event_id`` (the event's id,
the same in every group and on every redelivery: an idempotency key) and
``event_origin`` (``"host:pid"`` of the publisher; not ``origin``, which Django's
``pre_delete``/``post_delete`` already send).

**Delivery guarantees** of :class:`Worker` (with a transport that has groups):

- *at-least-once*: an event is acknowledged only after its receivers returned. An event
  whose worker died is taken over by another worker once it has been idle for
  ``claim_idle`` seconds (a worker renews its in-flight events every ``claim_idle / 3``
  seconds, so a slow receiver is not mistaken for a dead one);
- *one run per event and group*: before the receivers run, the event id is claimed for
  the group (:meth:`~tocsin.remote.IdempotencyStore.claim`, expiring after
  ``claim_idle``, renewed with the event), so a copy that another worker is handling is
  acknowledged, not run; once handled, the id is remembered per group for
  ``dedupe_ttl`` seconds (default one day; never shorter than the envelope's replay
  window), and a redelivery within that time is acknowledged without running the
  receivers again. A worker that dies *during* a receiver causes it to run again once
  its claim expired: make receivers idempotent, or key their effects on ``event_id``;
- *broker outages*: a settle (remember, then ack) that fails is retried with backoff for
  up to ``settle_timeout`` seconds, so an event handled during an outage is not run again;
- *latency*: a worker running several groups has one
  :class:`~tocsin.remote.broker.Watcher` wait on every stream of its groups and wake
  the group whose stream moved; the groups fetch without blocking, so a lone event
  arrives at once however many groups the worker runs (a worker of one group blocks in
  its own read, one round trip less per event);
- *retries*: a receiver that raises is retried after ``retry_backoff * 2 ** (attempt-1)``
  seconds (capped at ``retry_backoff_max``), until ``max_deliveries`` deliveries; then
  the event goes to the dead-letter store, from where ``tocsin deadletter replay``
  (or :func:`replay_dead_letters`) delivers it again to that group only;
- *rejected events* (forged, altered, expired, unknown signal) never reach a receiver:
  they go to the dead-letter store with the reason, except plain replays of an event
  already accepted, which are dropped;
- *graceful shutdown*: :meth:`Worker.stop` (SIGTERM/SIGINT under ``tocsin worker``) stops
  fetching, waits up to ``shutdown_timeout`` seconds for the events in flight, and hands
  back any still running: the other workers see it at once; none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal as signals
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tocsin.remote._concurrency import Batcher, Slots
from tocsin.remote._retry import RetryPolicy, backoff
from tocsin.remote.broker import Claim, Delivery, Transport, TransportError, Watcher
from tocsin.remote.envelope import Envelope
from tocsin.remote.errors import RejectedEvent, ReplayedEvent
from tocsin.remote.receivers import RemoteReceiver, remote_receivers

if TYPE_CHECKING:
    from tocsin.remote.outbox import Relay

__all__ = ["Worker", "WorkerStats"]

logger = logging.getLogger("tocsin.remote")

# --------------------------------------------------------------------------- the worker


@dataclasses.dataclass
class _Subscription:
    """One group as the worker consumes it."""

    name: str  # the group's name on the broker (per process for broadcast)
    group: str  # the declared name
    broadcast: bool
    streams: list[str]
    receivers: dict[str, list[RemoteReceiver]]  # signal path -> receivers: the allow-list
    envelope: Envelope
    last_claim: float = 0.0
    # Set by the worker's watcher when one of the group's streams has something new.
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@dataclasses.dataclass
class WorkerStats:
    """Counts since the worker started (read them any time; they only grow)."""

    received: int = 0
    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    busy: int = 0
    settle_retries: int = 0
    rejected: int = 0
    reclaimed: int = 0
    released: int = 0


class Worker:
    """Consumes events for remote receivers and calls them (see the module docstring).

    ``transport`` and ``envelope`` as for publishing. ``groups`` limits the worker to
    those groups (default: every group declared). Each group accepts only the signals
    it declares receivers for (within ``envelope.allowed_signals``, if set): an event
    naming another signal is rejected as ``unknown-signal`` and dead-lettered, as under
    ``tocsin worker``. ``retry`` (a :class:`~tocsin.remote.RetryPolicy`) replaces
    ``max_deliveries``, ``retry_backoff`` and ``retry_backoff_max``. An event whose
    receivers returned while the broker was away is settled again and again (with
    backoff) for up to ``settle_timeout`` seconds (default ``claim_idle``) before the
    worker gives up on it (it is then redelivered). ``consumer`` names
    this process to the broker (default ``host:pid:random``). At most ``concurrency``
    events are handled at once; sync receivers run in threads, async ones on the worker's loop.

    ``relays``: outbox :class:`~tocsin.remote.outbox.Relay` objects to run alongside
    (each :meth:`~tocsin.remote.outbox.Relay.run` as a task, stopped when the worker
    stops), so that one process consumes and relays (``tocsin worker --relay-db``).

    Run it with ``await worker.run()`` until :meth:`stop`, or ``worker.start()`` as a
    task of a running app; ``tocsin worker`` runs it with signal handlers.
    """

    def __init__(
        self,
        transport: Transport,
        envelope: Envelope,
        *,
        groups: Iterable[str] | None = None,
        receivers: Iterable[RemoteReceiver] | None = None,
        consumer: str | None = None,
        concurrency: int = 8,
        claim_idle: float = 60.0,
        max_deliveries: int = 5,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 300.0,
        dedupe_ttl: float = 86_400.0,
        shutdown_timeout: float = 30.0,
        poll_timeout: float = 1.0,
        log_every: float = 60.0,
        relays: Iterable[Relay] = (),
        retry: RetryPolicy | None = None,
        settle_timeout: float | None = None,
    ) -> None:
        if concurrency < 1 or max_deliveries < 1 or claim_idle <= 0:
            raise ValueError("concurrency, max_deliveries and claim_idle must be positive")
        self.retry = retry or RetryPolicy(max_deliveries, retry_backoff, retry_backoff_max)
        self.transport = transport
        self.envelope = envelope
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency
        self.claim_idle = claim_idle
        self.dedupe_ttl = max(dedupe_ttl, envelope.replay_window)
        self.shutdown_timeout = shutdown_timeout
        self.settle_timeout = claim_idle if settle_timeout is None else settle_timeout
        self.poll_timeout = poll_timeout
        self.log_every = log_every
        self.stats = WorkerStats()
        self.relays = list(relays)
        declared = list(receivers) if receivers is not None else remote_receivers(groups)
        if groups is not None:
            wanted = set(groups)
            declared = [r for r in declared if r.group in wanted]
        self.subscriptions = self._subscriptions(declared)
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[asyncio.Task[None], Delivery] = {}
        self._slots: Slots | None = None
        self._claims: Batcher[tuple[str, str, str, str], Claim] | None = None
        # What each in-flight event claimed: (group, event id, message), renewed by the
        # heartbeat and dropped when the event is handed back, retried or given up.
        self._claimed: dict[Delivery, tuple[str, str, str]] = {}
        self._settle: Batcher[tuple[Delivery, str], None] | None = None
        self._last_contact = 0.0
        self._broker_down = False
        self._watching = False

    @property
    def max_deliveries(self) -> int:
        """Deliveries of an event before it is dead-lettered (the retry policy's)."""
        return self.retry.max_deliveries

    def __repr__(self) -> str:
        return f"<Worker {self.consumer} groups={[s.group for s in self.subscriptions]}>"

    def _subscriptions(self, declared: list[RemoteReceiver]) -> list[_Subscription]:
        by_group: dict[tuple[str, bool], list[RemoteReceiver]] = {}
        for entry in declared:
            by_group.setdefault((entry.group, entry.broadcast), []).append(entry)
        found = []
        for (group, broadcast), entries in by_group.items():
            receivers: dict[str, list[RemoteReceiver]] = {}
            for entry in entries:
                receivers.setdefault(entry.signal_path, []).append(entry)
            streams = sorted({entry.stream for entry in entries})
            # The group's allow-list: the signals it declares receivers for (within the
            # envelope's own list, if it has one). An event naming any other signal is
            # rejected (unknown-signal), never silently counted as handled.
            envelope = self.envelope.with_own_replay_cache()
            declared_signals = frozenset(receivers)
            if envelope.allowed_signals is not None:
                declared_signals &= envelope.allowed_signals
            envelope.allowed_signals = declared_signals
            found.append(
                _Subscription(
                    # A broadcast group exists for this process only.
                    name=f"{group}@{self.consumer}" if broadcast else group,
                    group=group,
                    broadcast=broadcast,
                    streams=streams,
                    receivers=receivers,
                    envelope=envelope,
                )
            )
        return found

    # -- health

    @property
    def in_flight(self) -> int:
        """How many events are being handled right now."""
        return len(self._in_flight)

    @property
    def healthy(self) -> bool:
        """Whether the worker is running and heard from the broker recently."""
        return (
            self._task is not None
            and not self._task.done()
            and not self._broker_down
            and time.monotonic() - self._last_contact < max(10.0, 5 * self.poll_timeout)
        )

    # -- running

    def start(self) -> asyncio.Task[None]:
        """Run the worker as a task of the running loop; returns the task."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name=repr(self))
        return self._task

    async def stop(self) -> None:
        """Stop gracefully (see the module docstring) and wait until stopped."""
        self.request_stop()
        if self._task is not None and self._task is not asyncio.current_task():
            await self._task

    def request_stop(self) -> None:
        """Ask the worker to stop; safe from any thread and from signal handlers."""
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None:
            return
        if threading.current_thread() is threading.main_thread() and _running(loop):
            stopping.set()
        else:
            loop.call_soon_threadsafe(stopping.set)

    async def run(self, *, handle_signals: bool = False) -> None:
        """Consume until :meth:`stop` is called (or SIGTERM/SIGINT, if *handle_signals*)."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._slots = Slots(self.concurrency)
        self._claims = Batcher(self._claim_many)
        self._settle = Batcher(self._remember_and_ack)
        if self._task is None:
            self._task = asyncio.current_task()
        if not self.subscriptions:
            logger.warning("worker %s: no remote receivers to run", self.consumer)
        if handle_signals:
            for number in (signals.SIGTERM, signals.SIGINT):
                self._loop.add_signal_handler(number, self._on_signal, number)
        logger.info(
            "worker %s started: %d group(s) %s on %r, concurrency %d",
            self.consumer,
            len(self.subscriptions),
            ", ".join(
                f"{s.group}{' (broadcast)' if s.broadcast else ''}" for s in self.subscriptions
            ),
            self.transport,
            self.concurrency,
        )
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._progress_loop(), name="progress"),
        ]
        # One group blocks in its own read (nothing else waits for the slots it holds);
        # several share one watcher and fetch without blocking (see _consume_loop).
        self._watching = len(self.subscriptions) > 1
        if self._watching:
            watcher = self.transport.watcher(
                sorted({stream for s in self.subscriptions for stream in s.streams})
            )
            try:
                await watcher.start()  # before the first fetch: nothing slips in between
            except Exception as error:
                logger.debug("worker %s: watcher: %s (it starts later)", self.consumer, error)
            helpers.append(asyncio.create_task(self._watch_loop(watcher), name="watcher"))
        loops = [
            asyncio.create_task(self._consume_loop(s), name=f"consume {s.group}")
            for s in self.subscriptions
        ]
        relaying = [
            asyncio.create_task(relay.run(), name=f"relay {relay.table.name}")
            for relay in self.relays
        ]
        try:
            await self._stopping.wait()
        finally:
            # Fetching stops first (each loop finishes its current poll), then in-flight
            # events get their grace period. Relays finish the batch they are moving.
            self._stopping.set()
            for subscription in self.subscriptions:
                subscription.wake.set()
            for relay in self.relays:
                relay.stop()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()
            for batcher in (self._claims, self._settle):
                if batcher is not None:
                    await batcher.wait(5)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if relaying:
                _, late = await asyncio.wait(relaying, timeout=max(5.0, self.shutdown_timeout))
                for task in late:
                    task.cancel()
                await asyncio.gather(*relaying, return_exceptions=True)
            for subscription in self.subscriptions:
                if subscription.broadcast:
                    for stream in subscription.streams:
                        with contextlib.suppress(Exception):
                            await self.transport.drop_group(stream, subscription.name)
            with contextlib.suppress(Exception):
                await self.transport.aclose()
            if handle_signals:
                for number in (signals.SIGTERM, signals.SIGINT):
                    self._loop.remove_signal_handler(number)
            logger.info("worker %s stopped: %s", self.consumer, self._summary())

    def _on_signal(self, number: int) -> None:
        assert self._stopping is not None
        if self._stopping.is_set():
            logger.warning(
                "second %s: handing back in-flight events now", signals.Signals(number).name
            )
            self.shutdown_timeout = 0
            for task in list(self._in_flight):
                task.cancel()
            return
        logger.info(
            "%s received: stopping (in flight: %d)", signals.Signals(number).name, self.in_flight
        )
        self._stopping.set()

    async def _drain(self) -> None:
        tasks = list(self._in_flight)
        if tasks:
            logger.info(
                "waiting up to %gs for %d in-flight event(s)", self.shutdown_timeout, len(tasks)
            )
            _, pending = await asyncio.wait(
                tasks, timeout=self.shutdown_timeout or None if self.shutdown_timeout else 0.001
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    def _summary(self) -> str:
        fields = dataclasses.asdict(self.stats)
        fields["in_flight"] = self.in_flight
        return " ".join(f"{key}={value}" for key, value in fields.items())

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(self.log_every)
            logger.info("worker %s: %s", self.consumer, self._summary())

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.claim_idle / 3)
            for delivery in list(self._in_flight.values()):
                try:
                    await delivery.touch()
                except Exception as error:
                    logger.warning("could not renew %r: %s", delivery, error)
            # The claims of the events in flight live as long as their messages do.
            claims = [
                (group, event_id, self.consumer, message)
                for group, event_id, message in list(self._claimed.values())
            ]
            if claims:
                try:
                    await self.transport.claim_many(claims, self.claim_idle)
                except Exception as error:
                    logger.warning("could not renew %d claim(s): %s", len(claims), error)

    async def _consume_loop(self, subscription: _Subscription) -> None:
        assert self._stopping is not None
        assert self._slots is not None
        delays = backoff()
        ready = False
        while not self._stopping.is_set():
            slots = 0
            try:
                if not ready:
                    for stream in subscription.streams:
                        await self.transport.ensure_group(
                            stream,
                            subscription.name,
                            start="new" if subscription.broadcast else "all",
                        )
                    ready = True
                # Reserve capacity before fetching: a fetched event is held pending for
                # this process, so never take more than can run now. Wait for half the
                # slots, not one, so that a busy worker fetches in batches. With several
                # groups the fetch does not block: an idle group holds no slot, it waits
                # for its wake.
                subscription.wake.clear()
                slots = await self._slots.take(max(1, self.concurrency // 2))
                deliveries = await self._fetch(subscription, slots)
                self._contact()
                delays = backoff()
            except TransportError as error:
                self._release_slots(slots)
                delay = next(delays)
                self._broker_down = True
                logger.warning(
                    "worker %s: broker unreachable (%s); retrying in %gs",
                    self.consumer,
                    error,
                    delay,
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            except Exception:
                self._release_slots(slots)
                logger.exception("worker %s: unexpected error while consuming", self.consumer)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                continue
            self._release_slots(slots - len(deliveries))
            for delivery in deliveries:
                if self._stopping.is_set():
                    # Fetched as we were stopping: hand it straight back.
                    self._release_slots(1)
                    await self._release(delivery)
                    continue
                task = asyncio.create_task(self._handle(subscription, delivery))
                self._in_flight[task] = delivery
                task.add_done_callback(self._finished)
            if self._watching and not deliveries:
                # Woken by the watcher (a message on one of the group's streams), or
                # after poll_timeout for what it cannot see (due retries, stale claims).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(subscription.wake.wait(), self.poll_timeout)

    async def _fetch(self, subscription: _Subscription, count: int) -> list[Delivery]:
        found: list[Delivery] = []
        now = time.monotonic()
        if self.transport.supports_groups and (
            now - subscription.last_claim >= min(self.claim_idle / 2, 5.0)
        ):
            subscription.last_claim = now
            found = await self.transport.claim_stale(
                subscription.streams,
                subscription.name,
                self.consumer,
                min_idle=self.claim_idle,
                count=count,
            )
            if found:
                self.stats.reclaimed += len(found)
                logger.info(
                    "worker %s: took over %d stale event(s) of group %r",
                    self.consumer,
                    len(found),
                    subscription.group,
                )
        if len(found) < count:
            found += await self.transport.consume(
                subscription.streams,
                subscription.name,
                self.consumer,
                count=count - len(found),
                # Alone, a group may block in its read while holding the slots; with
                # others, it must not (they would wait for the slots: the watcher
                # wakes it instead).
                timeout=0 if found or self._watching else self.poll_timeout,
            )
        return found

    async def _watch_loop(self, watcher: Watcher) -> None:
        # One waiter for every stream of every group: a lone event wakes its groups at
        # once, however many groups this worker runs (they fetch without blocking).
        delays = backoff()
        everything = set(watcher.streams)
        try:
            while True:
                try:
                    ready = set(await watcher.wait(self.poll_timeout))
                    delays = backoff()
                except Exception as error:
                    # The consume loops report the broker's state; wake them all so
                    # they find out, and try again.
                    logger.debug("worker %s: watcher: %s", self.consumer, error)
                    ready = everything
                    await asyncio.sleep(next(delays))
                for subscription in self.subscriptions:
                    if ready.intersection(subscription.streams):
                        subscription.wake.set()
        finally:
            with contextlib.suppress(Exception):
                await watcher.aclose()

    def _contact(self) -> None:
        self._last_contact = time.monotonic()
        if self._broker_down:
            self._broker_down = False
            logger.info("worker %s: broker reachable again", self.consumer)

    def _release_slots(self, count: int) -> None:
        assert self._slots is not None
        self._slots.give(count)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._release_slots(1)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("worker %s: error settling an event", self.consumer, exc_info=error)

    async def _release(self, delivery: Delivery) -> None:
        await self._unclaim(delivery)
        try:
            await delivery.release()
            self.stats.released += 1
        except Exception as error:
            # Still pending: another worker takes it over after claim_idle.
            logger.warning("could not hand back %r (%s): it will be reclaimed", delivery, error)

    # -- one event

    async def _handle(self, subscription: _Subscription, delivery: Delivery) -> None:
        try:
            await self._handle_one(subscription, delivery)
        finally:
            self._claimed.pop(delivery, None)

    async def _handle_one(self, subscription: _Subscription, delivery: Delivery) -> None:
        self.stats.received += 1
        group = subscription.name
        try:
            event = subscription.envelope.decode(delivery.data, redelivered=delivery.attempt > 1)
        except ReplayedEvent:
            self.stats.rejected += 1
            await delivery.ack()  # a copy of an event already accepted: drop it
            return
        except RejectedEvent as rejected:
            self.stats.rejected += 1
            await self._dead_letter(delivery, f"rejected ({rejected.reason}): {rejected.detail}")
            return
        if self.transport.supports_groups:
            # Claimed group-wide before any receiver runs: a copy of an event another
            # worker is handling (or has handled) never runs the receivers a second time.
            message = f"{delivery.stream}/{delivery.message_id}"
            verdict = await self._claim(group, event.id, message)
            if verdict == "done" or verdict == "copy":
                self.stats.duplicates += 1
                logger.info(
                    "event %s %s by group %r: acknowledged",
                    event.id,
                    "already handled" if verdict == "done" else "being handled from another copy",
                    subscription.group,
                )
                await delivery.ack()
                return
            if verdict == "busy":
                # Redelivered while the consumer that claimed it may still be at work:
                # look again once its claim has been settled or has expired.
                self.stats.busy += 1
                await delivery.nack(self.claim_idle / 2)
                return
            self._claimed[delivery] = (group, event.id, message)
        receivers = [
            r for r in subscription.receivers.get(event.signal, ()) if r.matches(event.sender)
        ]
        if delivery.attempt > self.max_deliveries:
            # Delivered this often without an answer: it kills the workers that take it.
            await self._dead_letter(
                delivery, f"delivered {delivery.attempt} times without being acknowledged"
            )
            return
        try:
            for entry in receivers:
                await entry.call(event)
        except asyncio.CancelledError:
            # Shutdown ran out of patience: hand the event back, never drop it.
            await asyncio.shield(self._release(delivery))
            raise
        except Exception as error:
            self.stats.failed += 1
            if self.retry.gives_up(delivery.attempt):
                logger.error(
                    "event %s failed %d time(s) in group %r: dead-lettered",
                    event.id,
                    delivery.attempt,
                    subscription.group,
                    exc_info=error,
                )
                await self._dead_letter(
                    delivery,
                    f"failed {delivery.attempt} time(s): {type(error).__name__}: {error}",
                )
                return
            delay = self.retry.delay(delivery.attempt)
            logger.warning(
                "event %s failed in group %r (attempt %d/%d): %s; retry in %gs",
                event.id,
                subscription.group,
                delivery.attempt,
                self.max_deliveries,
                error,
                delay,
                exc_info=error,
            )
            self.stats.retried += 1
            await self._unclaim(delivery)  # the retry may go to another worker
            await delivery.nack(delay)
            return
        # Remembered before the ack (in one round trip with the other events settled at
        # the same time): a crash in between leads to a redelivery that is recognised as
        # done, not to running the receivers again.
        await self._settle_handled(delivery, event.id)

    async def _settle_handled(self, delivery: Delivery, event_id: str) -> None:
        # The receivers returned: remember the id, then ack. If the broker is away (an
        # outage), try again (bounded by settle_timeout) rather than leave the event
        # pending, to be taken over and run a second time once the broker is back.
        assert self._settle is not None
        delays = backoff(0.1, 2.0)
        deadline = time.monotonic() + self.settle_timeout
        while True:
            try:
                await self._settle.submit((delivery, event_id))
                break
            except TransportError as error:
                if time.monotonic() >= deadline:
                    logger.error(
                        "event %s: handled, but could not be settled for %gs (%s): it will "
                        "be delivered again",
                        event_id,
                        self.settle_timeout,
                        error,
                    )
                    raise
                self.stats.settle_retries += 1
                delay = min(next(delays), max(0.0, deadline - time.monotonic()))
                logger.warning(
                    "event %s: handled; settling failed (%s), retrying in %.1fs",
                    event_id,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
        self._claimed.pop(delivery, None)  # replaced by the handled mark
        self.stats.handled += 1

    async def _claim(self, group: str, event_id: str, message: str) -> Claim:
        # Batched with the claims of the other events fetched together.
        assert self._claims is not None
        return await self._claims.submit((group, event_id, self.consumer, message))

    async def _claim_many(self, claims: list[tuple[str, str, str, str]]) -> list[Claim]:
        # The claim lasts as long as a silent worker's events take to be taken over.
        return await self.transport.claim_many(claims, self.claim_idle)

    async def _unclaim(self, delivery: Delivery) -> None:
        claimed = self._claimed.pop(delivery, None)
        if claimed is None:
            return
        group, event_id, message = claimed
        try:
            await self.transport.unclaim(group, event_id, consumer=self.consumer, message=message)
        except TransportError as error:
            # It expires by itself after claim_idle.
            logger.warning("could not drop the claim on event %s: %s", event_id, error)

    async def _remember_and_ack(self, handled: list[tuple[Delivery, str]]) -> list[None]:
        await self.transport.remember_and_ack(handled, self.dedupe_ttl)
        return [None] * len(handled)

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        await delivery.dead_letter(reason)
        self.stats.dead_lettered += 1
        # A replay of the letter (a new message, the same event id) must not find it
        # claimed.
        await self._unclaim(delivery)


def _running(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
