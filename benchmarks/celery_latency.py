"""Latency of the Celery path: publish -> the remote receiver running in a `celery worker`.

Run: ``python -m benchmarks.celery_latency [amqp|redis] [count]``. Starts two solo-pool
workers (as tests/contrib/test_celery.py does), sends *count* events one at a time, each
after the previous one ran, and prints p50/p99 of the time from ``send()`` to the receiver
(both clocks are this machine's). Needs RabbitMQ (for amqp) and Redis.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.contrib import celery_receivers
from tests.contrib.test_celery import AMQP_URL, Cluster
from tests.remote.helpers import REDIS_URL, wait_for

from tocsin.remote import publish


def main() -> None:
    broker = sys.argv[1] if len(sys.argv) > 1 else "amqp"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(AMQP_URL if broker == "amqp" else REDIS_URL, REDIS_URL, Path(tmp))
        try:
            cluster.start("w1")
            cluster.start("w2")
            publish(celery_receivers.order_placed, cluster.transport, cluster.envelope)
            latencies = []
            for _ in range(count):
                mark = uuid.uuid4().hex[:12]
                sent = time.time()
                celery_receivers.order_placed.send(sender=None, marker=mark)
                ran = wait_for(
                    lambda mark=mark: [  # type: ignore[misc]
                        float(line.split()[3])
                        for line in cluster.record.read_text().splitlines()
                        if line.split()[:2] == ["emails", mark]
                    ],
                    30,
                    "the receiver",
                )
                latencies.append(ran[0] - sent)
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            print(f"celery on {broker}: {count} events, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
