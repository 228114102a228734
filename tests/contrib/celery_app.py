"""The Celery app the test workers run (``celery -A tests.contrib.celery_app worker``).

Configured from the environment the test sets: the broker, the Redis store, the queue,
the key prefix and the keys. It installs tocsin's delivery task, as a user's app would.
"""

from __future__ import annotations

import os

from celery import Celery

from tests.contrib import celery_receivers  # noqa: F401 (declares the remote receivers)
from tocsin.contrib.celery import CeleryTransport
from tocsin.remote import Envelope, Keyring, RetryPolicy
from tocsin.remote.redis import RedisStreamsTransport

app = Celery("tocsin-test", broker=os.environ["TOCSIN_TEST_BROKER"])
app.conf.update(
    task_default_queue=os.environ["TOCSIN_TEST_QUEUE"],
    broker_transport_options={"global_keyprefix": os.environ["TOCSIN_TEST_PREFIX"]},
)
store = RedisStreamsTransport(
    os.environ["TOCSIN_TEST_STORE"], prefix=os.environ["TOCSIN_TEST_PREFIX"]
)
transport = CeleryTransport(app, store)
task = transport.install(
    Envelope(Keyring.from_env()),
    retry=RetryPolicy(max_deliveries=3, backoff=0.05, backoff_max=0.2),
    # Short, so that a killed worker's claim expires within the test's patience.
    claim_ttl=2.0,
)
