"""Request signals and template_rendered from a Flask app, under Werkzeug's server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import flask
import httpx
import pytest

from tests.contrib.servers import TIMEOUT, Recorder, werkzeug_server
from tocsin.contrib import flask as tocsin_flask
from tocsin.contrib.wsgi import WSGISignalsMiddleware
from tocsin.signals import (
    got_request_exception,
    request_finished,
    request_started,
    template_rendered,
)


def make_app(**config: Any) -> tuple[flask.Flask, threading.Event]:
    app = flask.Flask(__name__)
    app.config.update(config)
    gate = threading.Event()

    @app.get("/hello")
    def hello() -> str:
        return flask.render_template_string("hello {{ name }}", name="ada")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/forbidden")
    def forbidden() -> str:
        flask.abort(403)

    @app.get("/stream")
    def stream() -> flask.Response:
        def body() -> Iterator[str]:
            yield "first\n"
            gate.wait(TIMEOUT)
            yield "last\n"

        return flask.Response(flask.stream_with_context(body()))

    @app.get("/stream-template")
    def stream_template() -> flask.Response:
        return flask.Response(
            flask.stream_template_string("{% for i in items %}{{ i }}\n{% endfor %}", items=[1, 2])
        )

    tocsin_flask.install(app)  # the one documented line
    return app, gate


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.connect(request_started, "started")
    recorder.connect(request_finished, "finished")
    recorder.connect(got_request_exception, "exception")
    recorder.connect(template_rendered, "template")
    yield recorder
    recorder.disconnect()


def test_normal_response_and_template(recorder: Recorder) -> None:
    app, _ = make_app()
    with werkzeug_server(app) as base:
        assert httpx.get(base + "/hello", timeout=TIMEOUT).text == "hello ada"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "template", "finished"]
    started, template, _ = recorder.events
    assert started.sender is WSGISignalsMiddleware
    assert started.kwargs["environ"]["PATH_INFO"] == "/hello"
    assert template.sender is template.kwargs["template"]
    assert template.kwargs["context"]["name"] == "ada"


def test_unhandled_exception_is_bridged_once(recorder: Recorder) -> None:
    app, _ = make_app()
    with werkzeug_server(app) as base:
        assert httpx.get(base + "/boom", timeout=TIMEOUT).status_code == 500
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "exception", "finished"]
    (event,) = recorder.of("exception")
    assert event.sender is None
    assert isinstance(event.kwargs["exception"], RuntimeError)
    request = event.kwargs["request"]
    assert isinstance(request, flask.Request)  # the real object, not the proxy
    assert request.path == "/boom"


def test_propagated_exception_is_reported_once(recorder: Recorder) -> None:
    # Flask re-raises to the server, through the WSGI middleware, which must not resend.
    app, _ = make_app(PROPAGATE_EXCEPTIONS=True)
    with werkzeug_server(app) as base:
        assert httpx.get(base + "/boom", timeout=TIMEOUT).status_code == 500
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "exception", "finished"]


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/forbidden", 403)])
def test_errors_flask_handles_send_no_exception(
    path: str, status: int, recorder: Recorder
) -> None:
    app, _ = make_app()
    with werkzeug_server(app) as base:
        assert httpx.get(base + path, timeout=TIMEOUT).status_code == status
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_finished_only_after_the_last_chunk(recorder: Recorder) -> None:
    # Flask's own request_finished would already have been sent at this point.
    app, gate = make_app()
    with (
        werkzeug_server(app) as base,
        httpx.Client(base_url=base, timeout=TIMEOUT) as client,
        client.stream("GET", "/stream") as response,
    ):
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"
        assert recorder.names() == ["started"]
        gate.set()
        assert b"".join(chunks) == b"last\n"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "finished"]


def test_streamed_template_is_reported_after_the_last_chunk(recorder: Recorder) -> None:
    app, _ = make_app()
    with werkzeug_server(app) as base:
        assert httpx.get(base + "/stream-template", timeout=TIMEOUT).text == "1\n2\n"
        recorder.wait_count("finished", 1)
    assert recorder.names() == ["started", "template", "finished"]
    assert recorder.of("template")[0].kwargs["context"]["items"] == [1, 2]


def test_install_twice_and_uninstall(recorder: Recorder) -> None:
    app, _ = make_app()
    middleware = app.wsgi_app
    tocsin_flask.install(app)
    assert app.wsgi_app is middleware
    tocsin_flask.uninstall(app)
    assert not isinstance(app.wsgi_app, WSGISignalsMiddleware)
    assert list(flask.got_request_exception.receivers_for(app)) == []
    assert list(flask.template_rendered.receivers_for(app)) == []
    client = app.test_client()
    assert client.get("/hello").text == "hello ada"
    assert client.get("/boom").status_code == 500
    assert recorder.events == []
    tocsin_flask.uninstall(app)  # harmless
