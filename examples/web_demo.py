"""Request timing and rendered templates from tocsin's request and template signals.

A tiny Starlette app runs under uvicorn on a free port; this script then makes a few
requests to it with httpx and exits. Receivers log each request's duration
(``request_started`` -> ``request_finished``), the templates each one rendered
(``template_rendered``) and the exception of the one that fails
(``got_request_exception``).

    pip install 'tocsin[asgi,jinja2]' uvicorn httpx
    python examples/web_demo.py
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from contextvars import ContextVar
from typing import Any

try:
    import httpx
    import jinja2
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route
except ImportError as missing:
    print(f"This demo needs {missing.name}: pip install starlette uvicorn httpx jinja2")
    sys.exit(0)

from tocsin import receiver
from tocsin.contrib.asgi import ASGISignalsMiddleware
from tocsin.contrib.jinja2 import SignalEnvironment
from tocsin.signals import (
    got_request_exception,
    request_finished,
    request_started,
    template_rendered,
)

# -- the app ------------------------------------------------------------------------------

templates = SignalEnvironment(
    loader=jinja2.DictLoader(
        {
            "page.html": "<h1>{{ title }}</h1>"
            "{% for item in items %}<p>{{ item }}</p>{% endfor %}",
        }
    ),
    enable_async=True,
    autoescape=True,
)


async def home(request: Request) -> Response:
    page = templates.get_template("page.html")
    return HTMLResponse(await page.render_async(title="Menu", items=["basil", "tomato"]))


async def fail(request: Request) -> Response:
    raise RuntimeError("the oven is cold")


app = ASGISignalsMiddleware(Starlette(routes=[Route("/", home), Route("/fail", fail)]))

# -- the receivers --------------------------------------------------------------------------

# Per request: when it started, and what it rendered. request_started's receivers may set
# ContextVars that the app (and request_finished's receivers) then see.
started_at: ContextVar[float] = ContextVar("started_at")
request_path: ContextVar[str] = ContextVar("request_path")
rendered: ContextVar[list[str]] = ContextVar("rendered")
finished = threading.Event()  # lets main() print each request's lines in order


@receiver(request_started)
async def start_timer(sender: Any, scope: dict[str, Any], **kwargs: Any) -> None:
    started_at.set(time.perf_counter())
    request_path.set(f"{scope['method']} {scope['path']}")
    rendered.set([])


@receiver(template_rendered)
async def note_template(sender: Any, template: Any, context: Any, **kwargs: Any) -> None:
    rendered.get([]).append(f"{template.name} with {sorted(context)}")


@receiver(got_request_exception)
async def report(sender: Any, request: Any, exception: BaseException, **kwargs: Any) -> None:
    print(f"  ! {request.method} {request.url.path} raised {exception!r}")


@receiver(request_finished)
async def stop_timer(sender: Any, **kwargs: Any) -> None:
    elapsed = (time.perf_counter() - started_at.get()) * 1000
    templates_used = ", ".join(rendered.get()) or "no template"
    print(f"  {request_path.get()} took {elapsed:.1f} ms, rendered {templates_used}")
    finished.set()


# -- run it ---------------------------------------------------------------------------------


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # log_config=None: uvicorn would log the failing request's traceback; the demo shows
    # it through got_request_exception instead.
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        sys.exit("the server did not start")
    print(f"Serving on {base}")
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            for path in ["/", "/fail", "/missing"]:
                finished.clear()
                response = client.get(path)
                finished.wait(10)  # request_finished may come just after the response
                print(f"GET {path} -> {response.status_code}\n")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


if __name__ == "__main__":
    main()
