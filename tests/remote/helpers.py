"""Helpers for the remote tests: finding Redis, running worker processes, waiting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

REDIS_URL = os.environ.get("TOCSIN_REDIS_URL", "redis://127.0.0.1:6379/0")
# id:base64 secret, as $TOCSIN_KEYS carries it to the worker processes.
TEST_KEYS = "test1:dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzISE="
ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def redis_or_skip(url: str = REDIS_URL) -> str:
    """The Redis URL, or skip the test (fail it in CI) if Redis is unreachable."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as error:
        reason = f"Redis is not reachable at {url} ({error.__class__.__name__}: {error})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI requires it (set TOCSIN_REDIS_URL)")
        pytest.skip(f"{reason}; set TOCSIN_REDIS_URL to run these tests")
    return url


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll *condition* until it returns something true; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_worker(
    url: str, prefix: str, record: str, *args: str, module: str = "tests.remote.sample_receivers"
) -> subprocess.Popen[str]:
    """Start ``python -m tocsin worker`` in its own process; receivers record to *record*."""
    env = dict(
        os.environ,
        TOCSIN_KEYS=TEST_KEYS,
        TOCSIN_TEST_REDIS=url,
        TOCSIN_TEST_RECORD=record,
        PYTHONPATH=str(ROOT),
    )
    command = [
        sys.executable,
        "-m",
        "tocsin",
        "worker",
        module,
        "--url",
        url,
        "--prefix",
        prefix,
        "--log-level",
        "INFO",
        *args,
    ]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_cli(
    *args: str, url: str, prefix: str, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tocsin ARGS --url URL --prefix PREFIX`` and return its result."""
    env = dict(os.environ, TOCSIN_KEYS=TEST_KEYS, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args, "--url", url, "--prefix", prefix],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 15) -> str:
    """Stop *process* with *sig*, wait for it, and return what it printed."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=5)
    return output or ""


def records(url: str, key: str) -> list[dict[str, Any]]:
    """What the sample receivers recorded under *key*: dicts of group, order, pid, phase."""
    import json

    import redis

    client = redis.Redis.from_url(url)
    try:
        return [json.loads(item) for item in client.lrange(key, 0, -1)]
    finally:
        client.close()


def redis_pings(url: str) -> bool:
    """Whether a Redis server answers PING at *url* (for waiting on servers we start)."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        client.ping()
        client.close()
        return True
    except redis.RedisError:
        return False


class OwnRedis:
    """A redis-server of the test's own (AOF on, fsync on every write), to stop, pause
    (SIGSTOP: reachable but not answering), resume and restart without touching the
    shared one."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OwnRedis:
        """Start the server (again) on the same port and data directory; wait for PING."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_pings(self.url), what="redis-server to start")
        return self

    def stop(self) -> None:
        """Shut the server down cleanly (the AOF keeps every write)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class Output:
    """Collects what a process prints, line by line, as it prints it (a reader thread)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        import threading

        self.process = process
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        """Whether a line printed so far contains *text*."""
        return any(text in line for line in list(self.lines))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> str:
        """Stop the process with *sig*, wait for it, and return everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._thread.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return "".join(self.lines)
