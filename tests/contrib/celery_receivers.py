"""Signals and remote receivers that the Celery workers of tests/contrib/test_celery.py run.

Each receiver appends ``<tag> <marker> <pid>`` to the file $TOCSIN_TEST_RECORD, so the
test process can see which receiver ran, how often, and in which worker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tocsin import Signal
from tocsin.remote import remote_receiver

order_placed = Signal()
flaky = Signal()
slow = Signal()


def record(tag: str, marker: str) -> None:
    """Append one line to the record file (O_APPEND: lines of several workers never mix),
    with the time, for the latency measurement in benchmarks/celery_latency.py."""
    line = f"{tag} {marker} {os.getpid()} {time.time()!r}\n".encode()
    fd = os.open(os.environ["TOCSIN_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def flag(marker: str, name: str) -> Path:
    """A file the test creates to change a receiver's behaviour for *marker*."""
    return Path(f"{os.environ['TOCSIN_TEST_RECORD']}.{marker}.{name}")


@remote_receiver(order_placed, group="emails")
def send_email(sender: Any, marker: str, **kwargs: Any) -> None:
    record("emails", marker)


@remote_receiver(order_placed, group="audit")
async def write_audit(sender: Any, marker: str, event_id: str, **kwargs: Any) -> None:
    record("audit", marker)


@remote_receiver(flaky, group="flaky-fails")
def fails_until_fixed(sender: Any, marker: str, **kwargs: Any) -> None:
    if not flag(marker, "fixed").exists():
        record("fails", marker)
        raise RuntimeError(f"boom {marker}")
    record("fixed", marker)


@remote_receiver(flaky, group="flaky-ok")
def succeeds(sender: Any, marker: str, **kwargs: Any) -> None:
    record("ok", marker)


@remote_receiver(slow, group="slow")
def waits_for_gate(sender: Any, marker: str, **kwargs: Any) -> None:
    record("start", marker)
    deadline = time.monotonic() + 60
    while not flag(marker, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    record("end", marker)
