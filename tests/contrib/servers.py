"""Real HTTP servers for the request-signal tests, on 127.0.0.1 and an ephemeral port.

Each helper is a context manager that starts a server in a thread, yields its base URL,
and stops it (bounded) on exit. Servers are configured to stay quiet and leave global
logging alone: uvicorn gets ``log_config=None``, the WSGI servers a handler that does not
log requests. ``Recorder`` collects signals sent from server threads and waits for them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import wsgiref.simple_server
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any

from tocsin import Signal

TIMEOUT = 5.0


@contextlib.contextmanager
def uvicorn_server(app: Any, *, lifespan: str = "auto") -> Iterator[str]:
    """Run the ASGI *app* under uvicorn; yields ``http://127.0.0.1:<port>``."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,  # type: ignore[arg-type]
        log_config=None,
        log_level="critical",
        access_log=False,
        # The sans-I/O implementation: the legacy one warns about deprecated websockets APIs.
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@contextlib.contextmanager
def werkzeug_server(app: Any) -> Iterator[str]:
    """Run the WSGI *app* under Werkzeug's threaded server; yields its base URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log(self, type: str, message: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    # Errors in the app are logged by the server object itself, not the handler.
    server.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    with _serving(server, server.server_port):
        yield f"http://127.0.0.1:{server.server_port}"


class _ThreadingWSGIServer(ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _QuietWSGIRequestHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def wsgiref_server(app: Any) -> Iterator[str]:
    """Run the WSGI *app* under the standard library's server (threaded); yields its URL."""
    server = wsgiref.simple_server.make_server(
        "127.0.0.1",
        0,
        app,
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietWSGIRequestHandler,
    )
    with _serving(server, server.server_port):
        yield f"http://127.0.0.1:{server.server_port}"


@contextlib.contextmanager
def gunicorn_server(app: str, directory: Path, *options: str) -> Iterator[str]:
    """Run gunicorn on the app *app* (``module:name``, importable from *directory*) in a
    process of its own, one worker; yields its base URL. Skips without gunicorn."""
    import pytest

    pytest.importorskip("gunicorn")
    port = _free_port()
    log = directory / f"gunicorn-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--no-control-socket",
                "--graceful-timeout",
                "1",
                "--chdir",
                str(directory),
                *options,
                app,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    try:
        _wait(lambda: _listening(port) or process.poll() is not None, "gunicorn to start", 30)
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _serving(server: Any, port: int) -> Iterator[None]:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"the server on port {port} did not stop"


def _wait(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class Event:
    """One signal as a receiver saw it."""

    signal: str
    sender: Any
    kwargs: dict[str, Any]
    thread: int = field(default_factory=threading.get_ident)


class Recorder:
    """Sync receivers for some signals, recording each call; ``wait`` blocks (bounded)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.condition = threading.Condition()
        self._connected: list[tuple[Signal, Callable[..., None]]] = []

    def connect(self, signal: Signal, name: str, **extra: Callable[[], Any]) -> None:
        """Record *signal* as *name*; each of *extra* is called to add a value."""

        def record(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal")
            kwargs.update({key: make() for key, make in extra.items()})
            with self.condition:
                self.events.append(Event(name, sender, kwargs))
                self.condition.notify_all()

        signal.connect(record, weak=False)
        self._connected.append((signal, record))

    def disconnect(self) -> None:
        for signal, record in self._connected:
            assert signal.disconnect(record)
        self._connected.clear()

    def names(self) -> list[str]:
        with self.condition:
            return [event.signal for event in self.events]

    def of(self, name: str) -> list[Event]:
        with self.condition:
            return [event for event in self.events if event.signal == name]

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = TIMEOUT) -> None:
        """Wait until *predicate* holds for the list of names recorded so far."""
        with self.condition:
            if not self.condition.wait_for(
                lambda: predicate([event.signal for event in self.events]), timeout
            ):
                raise TimeoutError(f"signals so far: {[e.signal for e in self.events]}")

    def wait_count(self, name: str, count: int, timeout: float = TIMEOUT) -> None:
        """Wait until *name* was recorded *count* times."""
        self.wait(lambda names: names.count(name) >= count, timeout)
