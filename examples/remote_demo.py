"""Signals across processes: this process publishes, a worker subprocess receives.

Run ``python examples/remote_demo.py`` (needs the ``redis`` extra and a Redis server; it
says how to start one if none answers). It starts ``tocsin worker`` on this very module
in a subprocess, sends three signals here, shows what the worker printed, and stops the
worker. Everything ends by itself within about 30 seconds.
"""

from __future__ import annotations

import base64
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tocsin import Signal
from tocsin.remote import remote_receiver

REDIS_URL = os.environ.get("TOCSIN_REDIS_URL", "redis://127.0.0.1:6379/0")
HERE = Path(__file__).resolve().parent

order_placed = Signal(name="order_placed", doc="An order was placed (demo).")


@remote_receiver(order_placed, group="demo-emails")
def send_confirmation(
    sender: Any, order_id: int, total: str, event_id: str, **kwargs: Any
) -> None:
    """Runs in the worker process, once per event, whichever worker gets it."""
    print(
        f"[worker pid {os.getpid()}] order {order_id} ({total}): event …{event_id[-8:]}",
        flush=True,
    )


def redis_reachable() -> str | None:
    """None if Redis answers, else why not."""
    try:
        import redis
    except ImportError:
        return "the redis client is not installed: pip install 'tocsin[redis]'"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as error:
        return f"no Redis at {REDIS_URL} ({type(error).__name__})"
    return None


def main() -> int:
    """Run the demo; returns the exit status (0 also when no broker is there)."""
    print("== Signals across processes (Redis Streams)")
    problem = redis_reachable()
    if problem:
        print(f"skipped: {problem}.")
        print("Start one with `redis-server` (apt install redis-server, brew install redis)")
        print("or `docker run --rm -p 6379:6379 redis:7`, or set TOCSIN_REDIS_URL.")
        return 0

    # The worker imports this file as the module `remote_demo`: publish through that
    # module's signal so both sides name it the same way (remote_demo.order_placed).
    sys.path.insert(0, str(HERE))
    demo = importlib.import_module("remote_demo")
    from tocsin.remote import Envelope, Keyring, publish
    from tocsin.remote.redis import RedisStreamsTransport

    keys = f"demo:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    prefix = f"tocsin-demo:{uuid.uuid4().hex[:8]}:"
    transport = RedisStreamsTransport(REDIS_URL, prefix=prefix)
    os.environ["TOCSIN_KEYS"] = keys
    publish(demo.order_placed, transport, Envelope(Keyring.from_env()))

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin",
            "worker",
            "remote_demo",
            "--url",
            REDIS_URL,
            "--prefix",
            prefix,
            "--log-level",
            "WARNING",
            "--shutdown-timeout",
            "5",
        ],
        cwd=HERE,
        env=dict(os.environ, TOCSIN_KEYS=keys, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for order_id, total in [(1, "12.50 EUR"), (2, "30.00 EUR"), (3, "7.20 EUR")]:
            print(f"[main pid {os.getpid()}] send order_placed(order_id={order_id})")
            demo.order_placed.send(sender=None, order_id=order_id, total=total)
        # The worker consumes from the start of the stream: events sent before it
        # was up are not missed. Give it a few seconds, then stop it.
        time.sleep(3)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate(timeout=5)
        client = transport.client
        keys_left = list(client.scan_iter(match=f"{prefix}*"))
        if keys_left:
            client.delete(*keys_left)
        transport.close()
    print(output.rstrip() or "(the worker printed nothing)")
    handled = output.count("] order ")
    print(f"the worker handled {handled} of 3 events")
    return 0 if handled == 3 else 1


if __name__ == "__main__":
    sys.exit(main())
