"""Django's request signals for any WSGI app (the standard library only: no extra).

Wrap the application::

    from tocsin.contrib.wsgi import WSGISignalsMiddleware

    application = WSGISignalsMiddleware(application)

(For Flask, ``tocsin.contrib.flask.install(app)`` does this and more.) For each request,
with ``sender`` the middleware class, as Django's is its handler class:

- ``request_started(environ=environ)`` before the app is called;
- ``request_finished()`` when the server closes the response (PEP 3333 ``close()``),
  that is after the last byte was sent, or when the client disconnected early, exactly
  once; also when the app raises before returning a response;
- ``got_request_exception(sender=None, request=..., exception=...)`` when the app raises,
  while it is called or while its response is iterated. ``request`` is a ``RequestView``
  of the environ; pass ``request_factory`` to choose (``werkzeug.Request``, say).

Signals are sent with ``send_robust``: a failing receiver is logged (``tocsin.dispatch``)
and never breaks the response; async receivers run on a private event loop.

Frameworks that turn exceptions into 500 responses themselves (Flask, Django) hide them
from any WSGI middleware; ``tocsin.contrib.flask`` bridges Flask's own signal. The
response is wrapped to see its ``close()``, which hides a ``wsgi.file_wrapper`` from the
server: file responses lose the sendfile fast path, not their content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tocsin.contrib._request import RequestView, wsgi_request
from tocsin.signals import got_request_exception, request_finished, request_started

__all__ = ["REPORTED_KEY", "RequestView", "WSGISignalsMiddleware"]

# PEP 3333's types, as the standard library spells them.
Environ = WSGIEnvironment
WSGIApp = WSGIApplication

# An integration that already sent got_request_exception for an exception stores it in
# the environ under this key, so that the middleware does not send it again.
REPORTED_KEY = "tocsin.reported_exception"


class WSGISignalsMiddleware:
    """WSGI middleware sending ``request_started``, ``request_finished`` and
    ``got_request_exception`` for each request to *app*.

    ``request_factory(environ)`` builds the ``request`` given to ``got_request_exception``.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        request_factory: Callable[[Environ], object] = wsgi_request,
    ) -> None:
        self.app = app
        self.request_factory = request_factory

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        sender = type(self)
        request_started.send_robust(sender=sender, environ=environ)
        try:
            response = self.app(environ, start_response)
        except Exception as error:
            self.report(environ, error)
            request_finished.send_robust(sender=sender)
            raise
        return _ClosingResponse(self, environ, response)

    def report(self, environ: Environ, error: Exception) -> None:
        """Send ``got_request_exception`` for *error*, unless it was sent already."""
        if environ.get(REPORTED_KEY) is error:
            return
        environ[REPORTED_KEY] = error
        if got_request_exception.has_listeners(None):
            got_request_exception.send_robust(
                sender=None, request=self.request_factory(environ), exception=error
            )


class _ClosingResponse:
    """The app's response, sending ``request_finished`` when the server closes it."""

    __slots__ = ("closed", "environ", "middleware", "response")

    def __init__(
        self, middleware: WSGISignalsMiddleware, environ: Environ, response: Iterable[bytes]
    ) -> None:
        self.middleware = middleware
        self.environ = environ
        self.response = response
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.response
        except Exception as error:
            # A streamed body that fails is the app raising, too.
            self.middleware.report(self.environ, error)
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            close = getattr(self.response, "close", None)
            if close is not None:
                close()
        finally:
            request_finished.send_robust(sender=type(self.middleware))
