"""Cross-process benchmarks against a real Redis: ``python -m benchmarks --remote``.

Each figure is measured against a plain redis-py loop doing the same broker work, in
the same run, so that the ratio says what tocsin costs over Redis itself:

- **publish**: ``signal.send()`` of a published signal (encode, sign, XADD) against a
  loop of XADDs of pre-encoded bytes of the same size, one round trip per event for both
  (same batching: none). Ratio = plain time / tocsin time (1.0: as fast; target >= 0.7).
- **end to end**: N events published, then consumed by a :class:`Worker` (verify, claim
  the event id in the idempotency store, call an async receiver, remember, XACK) against
  a plain loop of XREADGROUP (COUNT = the worker's concurrency) and one XACK per event;
  both timed from the first publish to the last ack. Ratio as above (target >= 0.5).
  Batching: both read up to ``concurrency`` (8) entries per XREADGROUP; the worker then
  claims the batch's ids with one script call and settles it (SET + XACK of every id)
  in another, where the plain loop sends one XACK per entry. A second plain loop, with one
  XACK of the whole batch, is shown too: the like-for-like figure for the acks.
- **latency** p50/p99 from ``send()`` to the remote receiver, events published at a
  fixed rate while a worker runs in another thread.
- **a lone event, many groups**: p50/p99 from publish to receiver of one event at a time
  on an idle broker, to one group of a worker running 1, 12 or 50 groups (one group
  per receiver, each on a stream of its own: the default layout, where receivers are of
  different signals), with the worker's default settings.
- **memory with a slow consumer**: the worker's traced Python memory (tracemalloc peak)
  while it drains a backlog with a slow receiver, for a backlog and one four times as
  long: bounded means the second is not four times the first (the worker fetches no
  more than it can run).

Keys live under a fresh prefix, deleted afterwards. ``--quick`` uses tiny counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tocsin import Signal
from tocsin.remote import (
    Envelope,
    Keyring,
    Worker,
    clear_remote_receivers,
    publish,
    remote_receiver,
    unpublish,
)

REDIS_URL = os.environ.get("TOCSIN_REDIS_URL", "redis://127.0.0.1:6379/0")

# Module attributes: events name signals by dotted path.
bench_event = Signal(name="bench_event")

KEY = Keyring({"bench": b"0123456789abcdef0123456789abcdef"})
PAYLOAD = {"order_id": 12345, "items": ["basil", "mozzarella"], "total": 30.5}


@dataclass
class Settings:
    """Counts for one run."""

    publish_events: int
    e2e_events: int
    latency_rate: float  # events per second
    latency_seconds: float
    memory_backlog: int
    lone_events: int = 200
    group_counts: tuple[int, ...] = (1, 12, 50)
    concurrency: int = 8


FULL = Settings(
    publish_events=5_000,
    e2e_events=3_000,
    latency_rate=500,
    latency_seconds=4,
    memory_backlog=2_000,
)
QUICK = Settings(
    publish_events=300,
    e2e_events=200,
    latency_rate=200,
    latency_seconds=0.5,
    memory_backlog=100,
    lone_events=6,
    group_counts=(1, 12),
)


@dataclass
class Results:
    """What one run measured (times in seconds, memory in bytes)."""

    publish_tocsin: float = 0.0
    publish_plain: float = 0.0
    e2e_tocsin: float = 0.0
    e2e_plain: float = 0.0
    e2e_plain_batched: float = 0.0
    latency_p50: float = 0.0
    latency_p99: float = 0.0
    latency_events: int = 0
    memory_small: int = 0
    memory_large: int = 0
    max_in_flight: int = 0
    # groups in the worker -> p50 / p99 of a lone event's latency
    lone_p50: dict[int, float] = field(default_factory=dict)
    lone_p99: dict[int, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def publish_ratio(self) -> float:
        """Plain loop time over tocsin's: tocsin's share of plain throughput."""
        return self.publish_plain / self.publish_tocsin

    @property
    def e2e_ratio(self) -> float:
        """Plain loop time over tocsin's, end to end."""
        return self.e2e_plain / self.e2e_tocsin

    @property
    def e2e_batched_ratio(self) -> float:
        """The plain loop acking each batch with one XACK, over tocsin's time."""
        return self.e2e_plain_batched / self.e2e_tocsin

    def as_dict(self) -> dict[str, Any]:
        """Every figure, ratios included."""
        data = asdict(self)
        data.update(
            publish_ratio=self.publish_ratio,
            e2e_ratio=self.e2e_ratio,
            e2e_batched_ratio=self.e2e_batched_ratio,
        )
        return data


def redis_reachable(url: str = REDIS_URL) -> bool:
    """Whether Redis answers at *url*."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


def _clean(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _transport(url: str, prefix: str) -> Any:
    from tocsin.remote.redis import RedisStreamsTransport

    return RedisStreamsTransport(url, prefix=prefix, maxlen=None)


# -- publish -------------------------------------------------------------------------------


def bench_publish(url: str, prefix: str, settings: Settings, results: Results) -> None:
    import redis

    envelope = Envelope(KEY)
    transport = _transport(url, prefix)
    publisher = publish(bench_event, transport, envelope)
    sample = publisher.encode(None, PAYLOAD)
    client = redis.Redis.from_url(url)
    key = f"{prefix}plain"
    count = settings.publish_events
    try:
        # Warm both connections, then alternate five rounds and keep the best of each.
        bench_event.send(sender=None, **PAYLOAD)
        client.xadd(key, {"data": sample})
        best_tocsin = best_plain = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(count):
                bench_event.send(sender=None, **PAYLOAD)
            best_tocsin = min(best_tocsin, time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(count):
                client.xadd(key, {"data": sample}, maxlen=None)
            best_plain = min(best_plain, time.perf_counter() - started)
        results.publish_tocsin, results.publish_plain = best_tocsin, best_plain
    finally:
        unpublish(bench_event, transport)
        transport.close()
        client.close()


# -- end to end ----------------------------------------------------------------------------


async def _run_worker_until(
    transport: Any, envelope: Envelope, group: str, done: Callable[[], bool], limit: float
) -> Worker:
    worker = Worker(transport, envelope, groups=[group], concurrency=8, poll_timeout=0.05)
    worker.start()
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    await worker.stop()
    return worker


def bench_e2e(url: str, prefix: str, settings: Settings, results: Results) -> None:

    count = settings.e2e_events
    envelope = Envelope(KEY)
    transport = _transport(url, prefix)
    handled = [0]
    group = f"e2e-{uuid.uuid4().hex[:6]}"

    @remote_receiver(bench_event, group=group)
    async def receive(sender: Any, **kwargs: Any) -> None:
        handled[0] += 1

    publish(bench_event, transport, envelope)
    try:
        asyncio.run(_ensure_group(transport, group))
        started = time.perf_counter()
        for _ in range(count):
            bench_event.send(sender=None, **PAYLOAD)
        asyncio.run(
            _run_worker_until(
                _transport(url, prefix), envelope, group, lambda: handled[0] >= count, 120
            )
        )
        results.e2e_tocsin = time.perf_counter() - started
        if handled[0] != count:
            raise RuntimeError(f"the worker handled {handled[0]} of {count} events")
    finally:
        unpublish(bench_event, transport)
        clear_remote_receivers([group])
        transport.close()

    results.e2e_plain = _plain_e2e(url, f"{prefix}plain-e2e", envelope, settings, False)
    results.e2e_plain_batched = _plain_e2e(url, f"{prefix}plain-e2e-b", envelope, settings, True)


def _plain_e2e(url: str, key: str, envelope: Envelope, settings: Settings, batched: bool) -> float:
    """XADD every event, then XREADGROUP COUNT=concurrency and XACK (per entry, or one
    per batch): the broker work of the end-to-end figure without tocsin."""
    import redis

    count = settings.e2e_events
    client = redis.Redis.from_url(url)
    sample = envelope.encode(_event())
    client.xgroup_create(key, "g", id="0", mkstream=True)
    started = time.perf_counter()
    for _ in range(count):
        client.xadd(key, {"data": sample}, maxlen=None)
    acked = 0
    while acked < count:
        reply: Any = client.xreadgroup("g", "c", {key: ">"}, count=settings.concurrency, block=100)
        for _, entries in reply or []:
            if batched:
                client.xack(key, "g", *(message_id for message_id, _ in entries))
                acked += len(entries)
                continue
            for message_id, _fields in entries:
                client.xack(key, "g", message_id)
                acked += 1
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


async def _ensure_group(transport: Any, group: str) -> None:
    # The async client belongs to this short-lived loop: close it before the loop goes.
    await transport.ensure_group(bench_event_path(), group, start="new")
    await transport.aclose()


def bench_event_path() -> str:
    """The stream events of ``bench_event`` go to (its dotted path)."""
    from tocsin._registry import dotted_path

    return dotted_path(bench_event) or "bench_event"


def _event() -> Any:
    from tocsin.remote import new_event

    return new_event(bench_event_path(), None, PAYLOAD)


# -- latency -------------------------------------------------------------------------------


def bench_latency(url: str, prefix: str, settings: Settings, results: Results) -> None:
    envelope = Envelope(KEY)
    transport = _transport(url, prefix)
    group = f"latency-{uuid.uuid4().hex[:6]}"
    latencies: list[float] = []
    total = int(settings.latency_rate * settings.latency_seconds)
    ready = threading.Event()

    @remote_receiver(bench_event, group=group)
    async def receive(sender: Any, sent_at: float, **kwargs: Any) -> None:
        latencies.append(time.time() - sent_at)

    async def consume() -> None:
        worker_transport = _transport(url, prefix)
        await worker_transport.ensure_group(bench_event_path(), group, start="new")
        ready.set()
        await _run_worker_until(
            worker_transport, envelope, group, lambda: len(latencies) >= total, 60
        )

    thread = threading.Thread(target=asyncio.run, args=(consume(),))
    publish(bench_event, transport, envelope)
    try:
        thread.start()
        ready.wait(10)
        interval = 1.0 / settings.latency_rate
        next_at = time.perf_counter()
        for _ in range(total):
            while time.perf_counter() < next_at:
                pass  # a fixed rate, not a sleep's jitter
            bench_event.send(sender=None, sent_at=time.time(), **PAYLOAD)
            next_at += interval
        thread.join(90)
    finally:
        unpublish(bench_event, transport)
        clear_remote_receivers([group])
        transport.close()
    ordered = sorted(latencies)
    results.latency_events = len(ordered)
    results.latency_p50 = statistics.median(ordered)
    results.latency_p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# -- a lone event, many groups ------------------------------------------------------------


def bench_many_groups(url: str, prefix: str, settings: Settings, results: Results) -> None:
    for groups in settings.group_counts:
        latencies = _lone_events(url, prefix, groups, settings.lone_events)
        results.lone_p50[groups] = statistics.median(latencies)
        results.lone_p99[groups] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def _lone_events(url: str, prefix: str, groups: int, events: int) -> list[float]:
    from tocsin.remote import new_event

    envelope = Envelope(KEY)
    tag = uuid.uuid4().hex[:6]
    names = [f"lone-{tag}-{n}" for n in range(groups)]
    arrived: dict[str, float] = {}
    for name in names:

        async def receive(sender: Any, sent: str, _name: str = name, **kwargs: Any) -> None:
            arrived[sent] = time.perf_counter()

        remote_receiver(bench_event, group=name, stream=name)(receive)
    stop = threading.Event()
    started = threading.Event()

    async def consume() -> None:
        worker = Worker(_transport(url, prefix), envelope, groups=names)
        worker.start()
        await asyncio.sleep(0.5)  # every group created, idle
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.01)
        await worker.stop()

    thread = threading.Thread(target=asyncio.run, args=(consume(),))
    transport = _transport(url, prefix)
    latencies: list[float] = []
    try:
        thread.start()
        started.wait(30)
        path = bench_event_path()
        for number in range(events):
            target = names[(number * 7919) % groups]  # spread over the groups
            key = f"{target}:{number}"
            data = envelope.encode(new_event(path, None, {"sent": key}))
            sent_at = time.perf_counter()
            transport.publish(target, data)
            deadline = sent_at + 30
            while key not in arrived and time.perf_counter() < deadline:
                time.sleep(0.0002)
            if key in arrived:
                latencies.append(arrived[key] - sent_at)
            time.sleep(0.02)  # idle again: every group back to waiting
    finally:
        stop.set()
        thread.join(60)
        clear_remote_receivers(names)
        transport.close()
    return sorted(latencies)


# -- memory with a slow consumer -----------------------------------------------------------


def _drain_backlog(url: str, prefix: str, backlog: int, results: Results) -> int:
    envelope = Envelope(KEY)
    transport = _transport(url, prefix)
    group = f"slow-{uuid.uuid4().hex[:6]}"
    handled = [0]

    @remote_receiver(bench_event, group=group)
    async def slow(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.002)
        handled[0] += 1

    publish(bench_event, transport, envelope)
    try:
        asyncio.run(_ensure_group(transport, group))
        for _ in range(backlog):
            bench_event.send(sender=None, **PAYLOAD)

        async def run() -> int:
            worker = Worker(
                _transport(url, prefix), envelope, groups=[group], concurrency=4, poll_timeout=0.05
            )
            tracemalloc.start()
            tracemalloc.reset_peak()
            worker.start()
            deadline = time.monotonic() + 120
            while handled[0] < backlog and time.monotonic() < deadline:
                results.max_in_flight = max(results.max_in_flight, worker.in_flight)
                await asyncio.sleep(0.005)
            await worker.stop()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak

        return asyncio.run(run())
    finally:
        unpublish(bench_event, transport)
        clear_remote_receivers([group])
        transport.close()


def bench_memory(url: str, prefix: str, settings: Settings, results: Results) -> None:
    results.memory_small = _drain_backlog(url, prefix, settings.memory_backlog, results)
    results.memory_large = _drain_backlog(url, prefix, 4 * settings.memory_backlog, results)


# -- running -------------------------------------------------------------------------------


def run(quick: bool = False, url: str = REDIS_URL) -> Results:
    """Run every remote benchmark against the Redis at *url*; returns the figures."""
    settings = QUICK if quick else FULL
    prefix = f"tocsin-bench:{uuid.uuid4().hex[:8]}:"
    results = Results(settings=asdict(settings))
    try:
        bench_publish(url, prefix, settings, results)
        bench_e2e(url, prefix, settings, results)
        bench_latency(url, prefix, settings, results)
        bench_many_groups(url, prefix, settings, results)
        bench_memory(url, prefix, settings, results)
    finally:
        _clean(url, prefix)
    return results


def markdown(results: Results) -> str:
    """The figures as a markdown table, with the targets."""
    s = results.settings
    batch = s["concurrency"]
    return "\n".join(
        [
            "| measure | batching | tocsin | plain redis-py | ratio (plain/tocsin) | target |",
            "|---|---|---|---|---|---|",
            f"| publish, {s['publish_events']} events | none: one XADD per event "
            f"| {results.publish_tocsin:.3f} s | {results.publish_plain:.3f} s "
            f"| {results.publish_ratio:.2f} | >= 0.7 |",
            f"| end to end, {s['e2e_events']} events | XREADGROUP COUNT {batch}; plain: "
            f"XACK per entry; tocsin: claim script + (SET, XACK) per batch "
            f"| {results.e2e_tocsin:.3f} s | {results.e2e_plain:.3f} s "
            f"| {results.e2e_ratio:.2f} | >= 0.5 |",
            f"| end to end, plain acking per batch | XREADGROUP COUNT {batch}, "
            f"one XACK per batch | {results.e2e_tocsin:.3f} s "
            f"| {results.e2e_plain_batched:.3f} s | {results.e2e_batched_ratio:.2f} | |",
            "",
            f"latency at {s['latency_rate']:g} events/s ({results.latency_events} events): "
            f"p50 {results.latency_p50 * 1000:.2f} ms, p99 {results.latency_p99 * 1000:.2f} ms",
            "",
            f"a lone event ({s['lone_events']} one at a time, idle broker) to one group of a "
            "worker running N groups: "
            + "; ".join(
                f"{n} group(s): p50 {results.lone_p50[n] * 1000:.2f} ms, "
                f"p99 {results.lone_p99[n] * 1000:.2f} ms"
                for n in sorted(results.lone_p50)
            ),
            "",
            f"memory, slow consumer (2 ms per event, concurrency 4): traced peak "
            f"{results.memory_small / 1024:.0f} KiB draining {s['memory_backlog']} events, "
            f"{results.memory_large / 1024:.0f} KiB draining {4 * s['memory_backlog']}; "
            f"at most {results.max_in_flight} in flight (the growth with the backlog is "
            "most likely the envelope's replay cache, bounded by max_seen; not yet measured)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks --remote [--quick]``: print the table; 2 without Redis."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks --remote")
    parser.add_argument("--remote", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", default=REDIS_URL)
    arguments, _ = parser.parse_known_args(argv)
    if not redis_reachable(arguments.url):
        print(f"Redis is not reachable at {arguments.url}: start redis-server", file=sys.stderr)
        return 2
    print(markdown(run(arguments.quick, arguments.url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
