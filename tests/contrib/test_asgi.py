"""Request signals from ASGI apps, under a real uvicorn and a real httpx client.

The same routes are served by a raw ASGI app, a Starlette app and a FastAPI app, the
middleware either wrapped around the whole app or added with ``add_middleware``. A few
edge cases a real server cannot produce on demand (a server whose ``send`` raises, the
pathsend and trailers extensions, cancellation) drive the middleware directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets.sync.client
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.contrib.servers import TIMEOUT, Recorder, gunicorn_server, uvicorn_server
from tocsin.contrib._request import RequestView, asgi_request
from tocsin.contrib.asgi import ASGISignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started

KINDS = ["raw", "starlette", "starlette-add", "fastapi", "fastapi-add"]

# The request a signal belongs to, set by a request_started receiver: request_finished
# and got_request_exception receivers read it back, which pairs them with their start.
current: ContextVar[str | None] = ContextVar("current", default=None)


def tag(sender: Any, scope: dict[str, Any], **kwargs: Any) -> None:
    current.set(f"{scope['path']}?{scope['query_string'].decode()}")


class Routes:
    """What every app serves, and the knobs the tests turn."""

    def __init__(self, together: int = 0) -> None:
        self.gate = threading.Event()  # lets /stream send its last chunk
        self.together = together
        self.arrived = 0
        self.all_here: asyncio.Event | None = None
        self.lifespan: list[str] = []
        self.seen: dict[str, Any] = {}

    async def meet(self) -> None:
        """Wait until ``together`` requests are being served at once."""
        if self.all_here is None:
            self.all_here = asyncio.Event()
        self.arrived += 1
        if self.arrived >= self.together:
            self.all_here.set()
        await asyncio.wait_for(self.all_here.wait(), TIMEOUT)

    # -- Starlette / FastAPI endpoints ------------------------------------------------

    async def hello(self, request: Request) -> Response:
        self.seen["app_thread"] = threading.get_ident()
        self.seen["current"] = current.get()
        return PlainTextResponse("hello")

    async def boom(self, request: Request) -> Response:
        raise RuntimeError("boom")

    async def forbidden(self, request: Request) -> Response:
        raise HTTPException(403)

    async def stream(self, request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            await anyio.to_thread.run_sync(self.gate.wait, TIMEOUT)
            yield b"last\n"

        return StreamingResponse(body())

    async def forever(self, request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            await anyio.sleep(TIMEOUT)  # cancelled when the client leaves
            yield b"too late\n"

        return StreamingResponse(body())

    async def together_(self, request: Request) -> Response:
        await self.meet()
        return PlainTextResponse(current.get() or "")

    async def echo(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    @contextlib.asynccontextmanager
    async def lifespan_(self, app: object) -> AsyncIterator[None]:
        self.lifespan.append("startup")
        yield
        self.lifespan.append("shutdown")

    def starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hello", self.hello),
                Route("/boom", self.boom),
                Route("/forbidden", self.forbidden),
                Route("/stream", self.stream),
                Route("/forever", self.forever),
                Route("/together", self.together_),
                WebSocketRoute("/ws", self.echo),
            ],
            lifespan=self.lifespan_,
        )

    def fastapi(self) -> FastAPI:
        app = FastAPI(lifespan=self.lifespan_)
        for path, endpoint in [
            ("/hello", self.hello),
            ("/boom", self.boom),
            ("/forbidden", self.forbidden),
            ("/stream", self.stream),
            ("/forever", self.forever),
            ("/together", self.together_),
        ]:
            app.add_api_route(path, endpoint)
        app.add_api_websocket_route("/ws", self.echo)
        return app

    # -- the same, as a raw ASGI app --------------------------------------------------

    async def raw(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]
                self.lifespan.append(kind)
                await send({"type": f"{message['type']}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": message["text"]})
            await send({"type": "websocket.close", "code": 1000})
            return

        async def start(status: int = 200) -> None:
            await send({"type": "http.response.start", "status": status, "headers": []})

        path = scope["path"]
        if path == "/hello":
            self.seen["app_thread"] = threading.get_ident()
            self.seen["current"] = current.get()
            await start()
            await send({"type": "http.response.body", "body": b"hello"})
        elif path == "/boom":
            raise RuntimeError("boom")
        elif path == "/stream":
            await start()
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            await asyncio.to_thread(self.gate.wait, TIMEOUT)
            await send({"type": "http.response.body", "body": b"last\n"})
        elif path == "/forever":
            await start()
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass
        elif path == "/together":
            await self.meet()
            await start()
            await send({"type": "http.response.body", "body": (current.get() or "").encode()})
        else:
            await start(404)
            await send({"type": "http.response.body", "body": b"not found"})

    def app(self, kind: str) -> Any:
        if kind == "raw":
            return ASGISignalsMiddleware(self.raw)
        framework = self.starlette() if kind.startswith("starlette") else self.fastapi()
        if kind.endswith("-add"):
            framework.add_middleware(ASGISignalsMiddleware)
            return framework
        return ASGISignalsMiddleware(framework)


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


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, timeout=TIMEOUT)


def test_normal_response(kind: str, recorder: Recorder) -> None:
    routes = Routes()
    with uvicorn_server(routes.app(kind)) as base:
        assert get(base, "/hello").text == "hello"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]
    started, finished = recorder.events
    assert started.sender is ASGISignalsMiddleware
    assert finished.sender is ASGISignalsMiddleware
    assert started.kwargs["scope"]["type"] == "http"
    assert started.kwargs["scope"]["path"] == "/hello"
    assert finished.kwargs == {"key": "/hello?"}
    # What a request_started receiver sets in a ContextVar, the app sees.
    assert routes.seen["current"] == "/hello?"


def test_finished_only_after_the_last_chunk(kind: str, recorder: Recorder) -> None:
    routes = Routes()
    with (
        uvicorn_server(routes.app(kind)) as base,
        httpx.Client(base_url=base, timeout=TIMEOUT) as client,
        client.stream("GET", "/stream") as response,
    ):
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"
        # The app is held at the gate: the response is not over, nor is the request.
        assert recorder.names() == ["started"]
        routes.gate.set()
        assert b"".join(chunks) == b"last\n"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_client_disconnecting_mid_stream(kind: str, recorder: Recorder) -> None:
    routes = Routes()
    with uvicorn_server(routes.app(kind)) as base:
        with (
            httpx.Client(base_url=base, timeout=TIMEOUT) as client,
            client.stream("GET", "/forever") as response,
        ):
            chunks = response.iter_raw()  # held: dropping it would close the response
            assert next(chunks) == b"first\n"
            assert recorder.names() == ["started"]
        # Leaving the blocks closed the connection: the server tells the app.
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_unhandled_exception(kind: str, recorder: Recorder) -> None:
    routes = Routes()
    with uvicorn_server(routes.app(kind)) as base:
        assert get(base, "/boom").status_code == 500
        recorder.wait(lambda names: len(names) == 3)
    # Django's order in every placement: wrapped around Starlette, the 500 (sent by its
    # ServerErrorMiddleware, inside) is complete before Starlette re-raises, and
    # request_finished waits for the exception's report.
    assert recorder.names() == ["started", "exception", "finished"]
    (exception,) = recorder.of("exception")
    assert exception.sender is None
    assert exception.kwargs["key"] == "/boom?"
    assert isinstance(exception.kwargs["exception"], RuntimeError)
    request = exception.kwargs["request"]
    assert isinstance(request, Request)  # Starlette is installed
    assert request.method == "GET"
    assert request.url.path == "/boom"


@pytest.mark.parametrize("kind", ["starlette", "starlette-add", "fastapi", "fastapi-add"])
@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/forbidden", 403)])
def test_exceptions_handled_by_the_framework_are_responses(
    kind: str, path: str, status: int, recorder: Recorder
) -> None:
    with uvicorn_server(Routes().app(kind)) as base:
        assert get(base, path).status_code == status
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_lifespan_and_websocket_pass_through(kind: str, recorder: Recorder) -> None:
    routes = Routes()
    with uvicorn_server(routes.app(kind), lifespan="on") as base:
        assert routes.lifespan == ["startup"]
        with websockets.sync.client.connect(
            base.replace("http", "ws") + "/ws", open_timeout=TIMEOUT, close_timeout=TIMEOUT
        ) as websocket:
            websocket.send("ping")
            assert websocket.recv(timeout=TIMEOUT) == "ping"
    assert routes.lifespan == ["startup", "shutdown"]
    assert recorder.events == []


def test_concurrent_requests_are_paired(kind: str, recorder: Recorder) -> None:
    count = 8
    routes = Routes(together=count)

    async def requests(base: str) -> list[str]:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
            responses = await asyncio.gather(
                *(client.get("/together", params={"n": n}) for n in range(count))
            )
        return [response.text for response in responses]

    with uvicorn_server(routes.app(kind)) as base:
        # All of them were in the app at once; each saw its own request_started.
        expected = [f"/together?n={n}" for n in range(count)]
        assert asyncio.run(requests(base)) == expected
        recorder.wait_count("finished", count)
    started = [event.kwargs["scope"] for event in recorder.of("started")]
    assert len({id(scope) for scope in started}) == count
    finished = [event.kwargs["key"] for event in recorder.of("finished")]
    assert sorted(finished) == sorted(expected)


def test_async_and_sync_receivers(kind: str, recorder: Recorder) -> None:
    routes = Routes()
    threads: dict[str, int] = {}

    async def async_started(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        threads["async started"] = threading.get_ident()

    async def async_finished(sender: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        threads["async finished"] = threading.get_ident()

    request_started.connect(async_started)
    request_finished.connect(async_finished)
    try:
        with uvicorn_server(routes.app(kind)) as base:
            assert get(base, "/hello").text == "hello"
            recorder.wait_count("finished", 1)
    finally:
        request_started.disconnect(async_started)
        request_finished.disconnect(async_finished)
    loop_thread = routes.seen["app_thread"]
    # Async receivers run on the event loop; sync ones in a worker thread.
    assert threads == {"async started": loop_thread, "async finished": loop_thread}
    assert all(event.thread != loop_thread for event in recorder.events)


def test_a_blocking_sync_receiver_does_not_block_the_loop(kind: str) -> None:
    blocked = threading.Event()
    other_started = threading.Event()
    outcome: list[bool] = []

    def receiver(sender: Any, scope: dict[str, Any], **kwargs: Any) -> None:
        if scope["path"] == "/slow":
            blocked.set()
            outcome.append(other_started.wait(TIMEOUT))
        else:
            other_started.set()

    request_started.connect(receiver)
    try:
        with uvicorn_server(Routes().app(kind)) as base:
            slow = threading.Thread(target=get, args=(base, "/slow"))
            slow.start()
            try:
                assert blocked.wait(TIMEOUT)
                # The server still serves others while /slow's receiver is blocked.
                assert get(base, "/hello").text == "hello"
            finally:
                slow.join(TIMEOUT)
    finally:
        request_started.disconnect(receiver)
    assert outcome == [True]


def test_failing_receivers_never_break_a_response(
    kind: str, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(sender: Any, **kwargs: Any) -> None:
        raise ValueError("receiver failed")

    async def failing_async(sender: Any, **kwargs: Any) -> None:
        raise ValueError("async receiver failed")

    signals = [request_started, request_finished, got_request_exception]
    for signal in signals:
        signal.connect(failing)
        signal.connect(failing_async)
    try:
        with (
            caplog.at_level(logging.ERROR, "tocsin.dispatch"),
            uvicorn_server(Routes().app(kind)) as base,
        ):
            assert get(base, "/hello").text == "hello"
            assert get(base, "/boom").status_code == 500
            recorder.wait_count("finished", 2)
            recorder.wait_count("exception", 1)
    finally:
        for signal in signals:
            signal.disconnect(failing)
            signal.disconnect(failing_async)
    failures = [r for r in caplog.records if r.name == "tocsin.dispatch"]
    # Two receivers failed for each of 2 starts, 2 finishes and 1 exception.
    assert len(failures) == 10


# -- the middleware driven directly: what a real server cannot produce on demand --------


def http_scope(path: str = "/x") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"a=1",
        "headers": [(b"x-one", b"1"), (b"x-one", b"2"), (b"content-type", b"text/plain")],
    }


class Server:
    """A fake server: ``receive`` and ``send`` that record, optionally failing."""

    def __init__(self, fail_send_after: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_send_after = fail_send_after

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Any) -> None:
        if self.fail_send_after is not None and len(self.sent) >= self.fail_send_after:
            raise OSError("client gone")  # what an ASGI 2.4 server may do
        self.sent.append(message)


def start_message(**extra: Any) -> dict[str, Any]:
    return {"type": "http.response.start", "status": 200, "headers": [], **extra}


def test_websocket_scope_passes_through_untouched(recorder: Recorder) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send])

    server = Server()
    scope = {"type": "websocket", "path": "/ws"}
    asyncio.run(ASGISignalsMiddleware(app)(scope, server.receive, server.send))
    assert seen == [scope, server.receive, server.send]
    assert recorder.events == []


def test_a_send_failing_after_disconnect_finishes_without_an_exception(
    recorder: Recorder,
) -> None:
    class ClientLeft(Exception):
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start_message())
        try:
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        except OSError:
            raise ClientLeft from None  # as Starlette turns it into ClientDisconnect

    with pytest.raises(ClientLeft):
        asyncio.run(ASGISignalsMiddleware(app)(http_scope(), *_io(Server(fail_send_after=1))))
    assert recorder.names() == ["started", "finished"]


def test_pathsend_and_trailers_end_a_response(recorder: Recorder) -> None:
    marks: list[list[str]] = []

    async def pathsend(scope: Any, receive: Any, send: Any) -> None:
        await send(start_message())
        await send({"type": "http.response.pathsend", "path": "/tmp/file"})
        # Sent while the app still runs, as soon as it waits for something.
        await asyncio.to_thread(recorder.wait_count, "finished", 1)
        marks.append(recorder.names())

    async def trailers(scope: Any, receive: Any, send: Any) -> None:
        await send(start_message(trailers=True))
        await send({"type": "http.response.body", "body": b"x"})
        await asyncio.sleep(0.05)  # room for a request_finished that would come too early
        marks.append(recorder.names())
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})
        await asyncio.to_thread(recorder.wait_count, "finished", 2)
        marks.append(recorder.names())

    asyncio.run(ASGISignalsMiddleware(pathsend)(http_scope(), *_io(Server())))
    asyncio.run(ASGISignalsMiddleware(trailers)(http_scope(), *_io(Server())))
    assert marks == [
        ["started", "finished"],
        ["started", "finished", "started"],  # the body is not the end: trailers follow
        ["started", "finished", "started", "finished"],
    ]


def test_an_exception_right_after_a_complete_response_is_reported_first(
    recorder: Recorder,
) -> None:
    """What Starlette's ServerErrorMiddleware does: send the 500, then re-raise."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start_message(status=500))
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise RuntimeError("boom")

    server = Server()
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(ASGISignalsMiddleware(app)(http_scope(), *_io(server)))
    assert [message["type"] for message in server.sent] == [
        "http.response.start",
        "http.response.body",
    ]
    assert recorder.names() == ["started", "exception", "finished"]


def test_work_after_the_response_does_not_hold_request_finished(recorder: Recorder) -> None:
    """A background task (Starlette's BackgroundTasks) runs after the last byte: the
    request is finished for Django's signal before the app returns, in order with an
    exception the background work raises later."""
    finished = threading.Event()
    request_finished.connect(
        lambda sender, **kwargs: finished.set(), weak=False, dispatch_uid="bg"
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start_message())
        await send({"type": "http.response.body", "body": b"done"})
        # Blocks until request_finished was sent: held until the app returns, it would not be.
        assert await asyncio.to_thread(finished.wait, TIMEOUT)
        raise ValueError("the background task failed")

    try:
        with pytest.raises(ValueError, match="background"):
            asyncio.run(ASGISignalsMiddleware(app)(http_scope(), *_io(Server())))
    finally:
        request_finished.disconnect(dispatch_uid="bg")
    assert recorder.names() == ["started", "finished", "exception"]


def test_a_cancelled_request_is_finished_once_without_an_exception(recorder: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start_message())
        await asyncio.sleep(TIMEOUT)

    async def main() -> None:
        task = asyncio.create_task(ASGISignalsMiddleware(app)(http_scope(), *_io(Server())))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_request_factory_and_request_view(recorder: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("k")

    middleware = ASGISignalsMiddleware(app, request_factory=RequestView.from_scope)
    with pytest.raises(KeyError):
        asyncio.run(middleware(http_scope("/view"), *_io(Server())))
    (event,) = recorder.of("exception")
    view = event.kwargs["request"]
    assert isinstance(view, RequestView)
    assert (view.method, view.path, view.query_string) == ("POST", "/view", "a=1")
    assert dict(view.headers) == {"x-one": "1, 2", "content-type": "text/plain"}
    assert view.scope is not None
    assert view.scope["path"] == "/view"
    assert view.environ is None
    with pytest.raises(TypeError):
        view.headers["x"] = "y"  # type: ignore[index]


def test_request_view_without_starlette(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "starlette.requests", None)
    assert isinstance(asgi_request(http_scope()), RequestView)


def _io(server: Server) -> tuple[Any, Any]:
    return server.receive, server.send


def test_the_order_under_gunicorns_asgi_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "signals.log"
    log.write_text("")
    monkeypatch.setenv("TOCSIN_TEST_LOG", str(log))
    with gunicorn_server(
        "tests.contrib.asgi_apps:app", tmp_path, "--worker-class", "asgi"
    ) as base:
        assert get(base, "/boom").status_code == 500
        for _ in range(int(TIMEOUT / 0.02)):
            if "finished" in log.read_text().split():
                break
            threading.Event().wait(0.02)
    assert log.read_text().split() == ["started", "exception", "finished"]
