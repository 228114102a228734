"""The management commands, run as a project runs them: ``python manage.py ...``.

Each test gets a project database of its own (an SQLite file, migrated by ``manage.py
migrate``); the broker is a real Redis, under a key prefix of the test's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote.helpers import TEST_KEYS, redis_or_skip, wait_for

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(Path(__file__).parent / "project" / "manage.py")]

PLACE_ORDER = """
from django.db import transaction
from tests.django_gains.project.shop.models import Order
from tests.django_gains.project.shop.signals import order_placed
from tocsin.contrib.django.management import _options
from tocsin.contrib.django.outbox import DjangoOutboxTransport
from tocsin.remote import publish

options = {"url": "%(url)s", "prefix": "%(prefix)s"}
outbox = DjangoOutboxTransport(_options.transport(options))
publish(order_placed, outbox, _options.envelope(options))
with transaction.atomic():
    order_placed.send(None, order=Order.objects.create(number="R1"))
with transaction.atomic():
    order_placed.send(None, order=Order.objects.create(number="never"))
    transaction.set_rollback(True)
"""


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """The environment of a migrated project database."""
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TOCSIN_DJANGO_SQLITE=str(tmp_path / "db.sqlite3"),
        TOCSIN_DJANGO_NO_PG="1",
        TOCSIN_KEYS=TEST_KEYS,
        TOCSIN_TEST_RECORD=str(tmp_path / "record.jsonl"),
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage(env, "migrate", "--verbosity", "0")
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*MANAGE, *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    url = redis_or_skip()
    prefix = f"tocsin-test:{uuid.uuid4().hex[:10]}:"
    yield url, prefix
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_outbox_relay_worker_end_to_end(
    project: dict[str, str], redis_prefix: tuple[str, str]
) -> None:
    url, prefix = redis_prefix
    manage(project, "shell", "-c", PLACE_ORDER % {"url": url, "prefix": prefix})

    relayed = manage(project, "tocsin_relay", "--once", "--url", url, "--prefix", prefix)
    assert relayed.stdout.strip() == "1 event(s) relayed, 0 waiting"  # not the rolled back

    worker = subprocess.Popen(
        [*MANAGE, "tocsin_worker", "--url", url, "--prefix", prefix, "--concurrency", "2"],
        env=project,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    record = Path(project["TOCSIN_TEST_RECORD"])
    try:
        wait_for(lambda: record.exists() and record.read_text(), 30, "the worker's receiver")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    [line] = [json.loads(text) for text in record.read_text().splitlines()]
    # Loaded from the project's database by the worker: a model instance, not a reference.
    assert (line["type"], line["number"]) == ("Order", "R1")
    assert "1 receiver(s)" in stderr


def test_a_worker_without_receivers_says_so(project: dict[str, str]) -> None:
    result = subprocess.run(
        [*MANAGE, "tocsin_worker", "--module", "no_such_module", "--url", "memory://"],
        env=project,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "no remote receivers are declared in the installed apps" in result.stderr


def test_the_worker_refuses_to_start_without_keys(project: dict[str, str]) -> None:
    env = {name: value for name, value in project.items() if name != "TOCSIN_KEYS"}
    result = subprocess.run(
        [*MANAGE, "tocsin_worker", "--url", "memory://"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "set TOCSIN_KEYS in the settings or the environment (or --insecure)" in result.stderr
