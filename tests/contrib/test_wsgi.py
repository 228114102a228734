"""Request signals from a raw WSGI app, under Werkzeug's server and the standard library's,
driven by a real httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpx
import pytest

from tests.contrib.servers import TIMEOUT, Recorder, werkzeug_server, wsgiref_server
from tocsin.contrib._request import RequestView
from tocsin.contrib.wsgi import WSGISignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started

current: ContextVar[str | None] = ContextVar("current", default=None)


def tag(sender: Any, environ: dict[str, Any], **kwargs: Any) -> None:
    current.set(f"{environ['PATH_INFO']}?{environ['QUERY_STRING']}")


class App:
    """A raw WSGI app with the routes the tests use."""

    def __init__(self, together: int = 1) -> None:
        self.gate = threading.Event()
        self.barrier = threading.Barrier(together, timeout=TIMEOUT)
        self.closed = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/boom":
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Type", "text/plain")])
        if path == "/stream":
            return self.stream()
        if path == "/forever":
            return self.forever()
        if path == "/broken":
            return self.broken()
        if path == "/together":
            self.barrier.wait()
            return [(current.get() or "").encode()]
        return [b"hello"]

    def stream(self) -> Iterator[bytes]:
        yield b"first\n"
        self.gate.wait(TIMEOUT)
        yield b"last\n"

    def forever(self) -> Iterator[bytes]:
        try:
            for _ in range(100_000):  # bounded: a write fails long before
                yield b"x" * 65536
        finally:
            self.closed.set()

    def broken(self) -> Iterator[bytes]:
        yield b"first\n"
        raise ValueError("broken stream")


SERVERS: dict[str, Callable[[Any], contextlib.AbstractContextManager[str]]] = {
    "werkzeug": werkzeug_server,
    "wsgiref": wsgiref_server,
}


@pytest.fixture(params=list(SERVERS))
def serve(
    request: pytest.FixtureRequest,
) -> Callable[[Any], contextlib.AbstractContextManager[str]]:
    return SERVERS[request.param]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    request_started.connect(tag, weak=False)
    recorder.connect(request_started, "started")
    recorder.connect(request_finished, "finished", key=current.get)
    recorder.connect(got_request_exception, "exception", key=current.get)
    yield recorder
    recorder.disconnect()
    request_started.disconnect(tag)


def test_normal_response(serve: Any, recorder: Recorder) -> None:
    with serve(WSGISignalsMiddleware(App())) as base:
        assert httpx.get(base + "/hello", timeout=TIMEOUT).text == "hello"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]
    started, finished = recorder.events
    assert started.sender is finished.sender is WSGISignalsMiddleware
    assert started.kwargs["environ"]["PATH_INFO"] == "/hello"
    assert finished.kwargs == {"key": "/hello?"}
    # The server closes the response in the thread that served it.
    assert started.thread == finished.thread


def test_finished_only_after_the_last_chunk(serve: Any, recorder: Recorder) -> None:
    app = App()
    with (
        serve(WSGISignalsMiddleware(app)) as base,
        httpx.Client(base_url=base, timeout=TIMEOUT) as client,
        client.stream("GET", "/stream") as response,
    ):
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"
        assert recorder.names() == ["started"]
        app.gate.set()
        assert b"".join(chunks) == b"last\n"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_client_disconnecting_mid_stream(serve: Any, recorder: Recorder) -> None:
    app = App()
    with serve(WSGISignalsMiddleware(app)) as base:
        with (
            httpx.Client(base_url=base, timeout=TIMEOUT) as client,
            client.stream("GET", "/forever") as response,
        ):
            chunks = response.iter_raw()
            next(chunks)
        # The server's next write fails; it closes the response (PEP 3333).
        assert app.closed.wait(TIMEOUT)
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_unhandled_exception(serve: Any, recorder: Recorder) -> None:
    with serve(WSGISignalsMiddleware(App())) as base:
        assert httpx.get(base + "/boom", timeout=TIMEOUT).status_code == 500
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "exception", "finished"]
    (event,) = recorder.of("exception")
    assert event.sender is None
    assert isinstance(event.kwargs["exception"], RuntimeError)
    view = event.kwargs["request"]
    assert isinstance(view, RequestView)
    assert (view.method, view.path) == ("GET", "/boom")
    assert view.headers["host"].startswith("127.0.0.1:")
    assert view.environ is not None
    assert view.scope is None


def test_exception_while_streaming(serve: Any, recorder: Recorder) -> None:
    with (
        serve(WSGISignalsMiddleware(App())) as base,
        httpx.Client(base_url=base, timeout=TIMEOUT) as client,
    ):
        with contextlib.suppress(httpx.HTTPError), client.stream("GET", "/broken") as response:
            response.read()
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "exception", "finished"]
    assert isinstance(recorder.of("exception")[0].kwargs["exception"], ValueError)


def test_concurrent_requests_are_paired(recorder: Recorder) -> None:
    count = 8
    app = App(together=count)

    async def requests(base: str) -> list[str]:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
            responses = await asyncio.gather(
                *(client.get("/together", params={"n": n}) for n in range(count))
            )
        return [response.text for response in responses]

    with werkzeug_server(WSGISignalsMiddleware(app)) as base:
        expected = [f"/together?n={n}" for n in range(count)]
        # The barrier let them through only once all were in the app at once.
        assert asyncio.run(requests(base)) == expected
        recorder.wait_count("finished", count)
    environs = [event.kwargs["environ"] for event in recorder.of("started")]
    assert len({id(environ) for environ in environs}) == count
    assert sorted(event.kwargs["key"] for event in recorder.of("finished")) == sorted(expected)


def test_async_receivers_and_failing_receivers(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def async_receiver(sender: Any, signal: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        seen.append(signal.name)

    def failing(sender: Any, **kwargs: Any) -> None:
        raise ValueError("receiver failed")

    signals = [request_started, request_finished, got_request_exception]
    for signal in signals:
        signal.connect(async_receiver)
        signal.connect(failing)
    try:
        with werkzeug_server(WSGISignalsMiddleware(App())) as base:
            assert httpx.get(base + "/hello", timeout=TIMEOUT).text == "hello"
            assert httpx.get(base + "/boom", timeout=TIMEOUT).status_code == 500
            recorder.wait_count("finished", 2)
    finally:
        for signal in signals:
            signal.disconnect(async_receiver)
            signal.disconnect(failing)
    assert sorted(seen) == sorted(
        ["request_started", "request_finished"] * 2 + ["got_request_exception"]
    )
    failures = [r for r in caplog.records if r.name == "tocsin.dispatch"]
    assert len(failures) == 5


def test_close_is_idempotent_and_closes_the_inner_response(recorder: Recorder) -> None:
    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body([b"a", b"b"])

    response: Any = WSGISignalsMiddleware(app)({"PATH_INFO": "/", "QUERY_STRING": ""}, _ignore)
    assert b"".join(response) == b"ab"
    assert recorder.names() == ["started"]
    response.close()
    response.close()
    assert closed == [True]
    assert recorder.names() == ["started", "finished"]


def _ignore(*args: Any) -> Any:
    return None
