"""Django's request signals for any ASGI app: ``pip install 'tocsin[asgi]'`` (Starlette).

Wrap the application, whatever made it (Starlette, FastAPI, Quart, a bare callable)::

    from tocsin.contrib.asgi import ASGISignalsMiddleware

    app = ASGISignalsMiddleware(app)

or, in Starlette and FastAPI, ``app.add_middleware(ASGISignalsMiddleware)``.

For each HTTP request, with ``sender`` the middleware class (as Django's is its handler
class):

- ``request_started(scope=scope)`` when the request starts (Django waits until the body
  was read; the app reads the body here, so the signal comes first);
- ``request_finished()`` exactly once: after the final part of the response was sent
  (as soon as the app then waits for anything, or returns), or when the client
  disconnects, or when the app returns or raises without finishing;
- ``got_request_exception(sender=None, request=..., exception=...)`` for an exception
  that escapes the app, before ``request_finished`` as in Django, also when the app
  completed a response (a 500) just before raising. Only an exception raised after the
  app waited for something past its complete response (in a background task) or after
  the client left comes after ``request_finished``. ``request`` is Starlette's
  ``Request`` when Starlette is installed, else a ``RequestView``; pass
  ``request_factory`` to choose. A client that went away is not an exception to report.

Lifespan and websocket scopes pass through untouched. Signals are sent with
``asend_robust``: async receivers are awaited on the event loop, sync ones run in a
worker thread, and a failing receiver is logged (``tocsin.dispatch``), never breaking the
response. ContextVars set by ``request_started`` receivers are seen by the app.

*Where it sits matters.* Wrapped around the whole app, it sees exactly what the server
sees. Added with ``add_middleware`` it runs inside Starlette's ``ServerErrorMiddleware``:
for an unhandled exception the 500 is sent after this middleware has finished, so
``request_finished`` comes when the app gives up, before the 500 goes out. Wrapped
around the app, both signals follow the 500. Exceptions turned into responses by
exception handlers (404, ``HTTPException``) are responses, not exceptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tocsin.contrib._request import RequestView, asgi_request
from tocsin.signals import got_request_exception, request_finished, request_started

__all__ = ["ASGIApp", "ASGISignalsMiddleware", "RequestView"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Tasks sending request_finished for a request whose own task was cancelled meanwhile:
# held here so that they finish instead of being garbage collected.
_orphans: set[asyncio.Future[Any]] = set()


class ASGISignalsMiddleware:
    """ASGI middleware sending ``request_started``, ``request_finished`` and
    ``got_request_exception`` for each HTTP request to *app*.

    ``request_factory(scope)`` builds the ``request`` given to ``got_request_exception``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_factory: Callable[[Scope], object] = asgi_request,
    ) -> None:
        self.app = app
        self.request_factory = request_factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        sender = type(self)
        finished = False
        trailers = False
        send_error: BaseException | None = None
        # request_finished for a complete response, sent once the app waits or returns.
        deferred: asyncio.Task[None] | None = None
        # Done when got_request_exception was sent: a deferred request_finished waits.
        reported: asyncio.Future[None] | None = None

        async def finish() -> None:
            nonlocal finished
            if not finished:
                finished = True
                await _send_finished(sender)

        async def finish_after_any_report() -> None:
            if reported is not None:
                await reported
            await finish()

        async def receive_watching() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                await finish()
            return message

        async def send_watching(message: Message) -> None:
            nonlocal trailers, send_error, deferred
            try:
                await send(message)
            except BaseException as error:
                # A server may raise (an OSError, in ASGI 2.4) once the client has gone.
                send_error = error
                await finish()
                raise
            kind = message["type"]
            if kind == "http.response.start":
                trailers = bool(message.get("trailers", False))
            elif not request_finished.has_listeners(sender):
                return  # nothing to send, nor to order: no task per request for nothing
            elif _is_final(kind, message, trailers) and deferred is None:
                # Not sent from here: Starlette's ServerErrorMiddleware sends its 500 and
                # then re-raises, and Django reports the exception before request_finished.
                # The task runs when this request next waits (the report, a background
                # task) or ends; if it is reporting by then, it waits for the report.
                deferred = asyncio.ensure_future(finish_after_any_report())

        try:
            if request_started.has_listeners(sender):
                await request_started.asend_robust(sender=sender, scope=scope)
            await self.app(scope, receive_watching, send_watching)
        except Exception as error:
            if not _caused_by(error, send_error) and got_request_exception.has_listeners(None):
                reported = asyncio.get_running_loop().create_future()
                try:
                    await got_request_exception.asend_robust(
                        sender=None, request=self.request_factory(scope), exception=error
                    )
                finally:
                    reported.set_result(None)
            raise
        finally:
            if deferred is None:
                await finish()
            else:
                await _to_the_end(deferred)


def _is_final(kind: str, message: Message, trailers: bool) -> bool:
    """Whether *message* is the last one of the response."""
    if kind == "http.response.body" or kind == "http.response.zerocopysend":
        return not trailers and not message.get("more_body", False)
    if kind == "http.response.trailers":
        return not message.get("more_trailers", False)
    # The pathsend extension sends the whole body from a file in one message.
    return kind == "http.response.pathsend"


def _caused_by(error: BaseException, cause: BaseException | None) -> bool:
    """Whether *error* is *cause*, or was raised while handling it (a client disconnect
    that the framework turned into its own exception)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while cause is not None and current is not None and id(current) not in seen:
        if current is cause:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


async def _send_finished(sender: type) -> None:
    if not request_finished.has_listeners(sender):
        return
    # Shielded: when the request is cancelled (server shutdown, a cancelled task group),
    # its request_finished is still sent, exactly once.
    await _to_the_end(asyncio.ensure_future(request_finished.asend_robust(sender=sender)))


async def _to_the_end(task: asyncio.Future[Any]) -> None:
    """Wait for *task*; if this request is cancelled meanwhile, let *task* finish anyway."""
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _orphans.add(task)
            task.add_done_callback(_orphans.discard)
        raise
