"""Request signals from a raw WSGI app, under Werkzeug's server and the standard library's,
driven by a real httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import wsgiref.handlers
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contrib.servers import (
    TIMEOUT,
    Recorder,
    gunicorn_server,
    werkzeug_server,
    wsgiref_server,
)
from tests.contrib.wsgi_apps import BODY, make_app
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


# -- the response the server sees: what it would do for the bare app, it still does -----


@pytest.fixture
def served_file(tmp_path: Path) -> tuple[Path, Path]:
    """A 200 KiB file to serve, and the log its reads (and the signals) are noted in."""
    file = tmp_path / "big.bin"
    file.write_bytes(bytes(range(256)) * 800)
    return file, tmp_path / "log.txt"


def headers_and_body(base: str, path: str) -> tuple[dict[str, str], bytes]:
    response = httpx.get(base + path, timeout=TIMEOUT)
    assert response.status_code == 200
    kept = {"content-length", "transfer-encoding"}
    return {k: v for k, v in response.headers.items() if k in kept}, response.content


def test_wsgiref_frames_a_wrapped_response_as_the_bare_one(
    served_file: tuple[Path, Path], recorder: Recorder
) -> None:
    bare = make_app(*served_file)
    seen: dict[str, tuple[dict[str, str], bytes]] = {}
    for name, app in [("bare", bare), ("wrapped", WSGISignalsMiddleware(bare))]:
        with wsgiref_server(app) as base:
            seen[name] = headers_and_body(base, "/one")
    # wsgiref adds Content-Length to a one-item response only if it can take its len().
    assert seen["bare"] == ({"content-length": str(len(BODY))}, BODY)
    assert seen["wrapped"] == seen["bare"]
    recorder.wait_count("finished", 1)


def test_wsgiref_still_sees_its_file_wrapper(
    served_file: tuple[Path, Path], recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wsgiref's hook for a platform's sendfile: it is asked only for its own wrapper.
    asked: list[bool] = []

    def sendfile(handler: wsgiref.handlers.BaseHandler) -> bool:
        asked.append(handler.result_is_file())
        return False  # then wsgiref iterates the wrapper, as it does by default

    monkeypatch.setattr(wsgiref.handlers.BaseHandler, "sendfile", sendfile)
    file, log = served_file
    with wsgiref_server(WSGISignalsMiddleware(make_app(file, log))) as base:
        _, body = headers_and_body(base, "/file")
        recorder.wait_count("finished", 1)
    assert body == file.read_bytes()
    assert asked == [True]
    assert recorder.names() == ["started", "finished"]


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_gunicorn_sends_a_wrapped_file_with_sendfile(
    worker: str, served_file: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    file, log = served_file
    monkeypatch.setenv("TOCSIN_TEST_FILE", str(file))
    monkeypatch.setenv("TOCSIN_TEST_LOG", str(log))
    seen = {}
    for name in ["bare", "wrapped"]:
        log.write_text("")
        with gunicorn_server(
            f"tests.contrib.wsgi_apps:{name}", file.parent, "--worker-class", worker
        ) as base:
            seen[name] = headers_and_body(base, "/file"), headers_and_body(base, "/one")
            if name == "wrapped":
                wait_for_lines(log, "finished", 2)
        # sendfile() hands the file to the kernel: gunicorn never read() it.
        assert "read" not in log.read_text().split(), name
    assert seen["bare"][0][1] == file.read_bytes()
    assert seen["wrapped"] == seen["bare"]


def wait_for_lines(log: Path, line: str, count: int) -> None:
    deadline = threading.Event()
    for _ in range(int(TIMEOUT / 0.02)):
        if log.read_text().split().count(line) >= count:
            return
        deadline.wait(0.02)
    raise AssertionError(f"{log} has {log.read_text().split()}, not {count} x {line}")


def test_an_exception_from_the_responses_close_is_reported_before_finishing(
    recorder: Recorder,
) -> None:
    class Body(list[bytes]):
        def close(self) -> None:
            raise OSError("could not release the connection")

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body([b"a"])

    response: Any = WSGISignalsMiddleware(app)({"PATH_INFO": "/", "QUERY_STRING": ""}, _ignore)
    assert len(response) == 1
    assert list(response) == [b"a"]
    with pytest.raises(OSError, match="release"):
        response.close()
    assert recorder.names() == ["started", "exception", "finished"]
    assert isinstance(recorder.of("exception")[0].kwargs["exception"], OSError)


def test_a_file_wrapper_that_takes_no_attributes_is_still_served(recorder: Recorder) -> None:
    class SlottedWrapper:
        __slots__ = ("chunks",)

        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks = chunks

        def __iter__(self) -> Iterator[bytes]:
            return iter(self.chunks)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return SlottedWrapper([b"a", b"b"])

    environ = {"PATH_INFO": "/", "QUERY_STRING": "", "wsgi.file_wrapper": SlottedWrapper}
    response: Any = WSGISignalsMiddleware(app)(environ, _ignore)
    assert not isinstance(response, SlottedWrapper)  # wrapped: the only way to see close()
    assert b"".join(response) == b"ab"
    response.close()
    assert recorder.names() == ["started", "finished"]
