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
from any WSGI middleware; ``tocsin.contrib.flask`` bridges Flask's own signal.

The server sees the response it would have seen without the middleware: a response
with a length keeps it (wsgiref adds ``Content-Length`` to a one-item response), and
the server's own ``wsgi.file_wrapper`` is returned as it is, its ``close`` extended, so
the server still sends the file with ``sendfile``. (A file's read errors are then the
server's to report, not ``got_request_exception``'s.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
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
        return self._watch(environ, response)

    def report(self, environ: Environ, error: Exception) -> None:
        """Send ``got_request_exception`` for *error*, unless it was sent already."""
        if environ.get(REPORTED_KEY) is error:
            return
        environ[REPORTED_KEY] = error
        if got_request_exception.has_listeners(None):
            got_request_exception.send_robust(
                sender=None, request=self.request_factory(environ), exception=error
            )

    def _watch(self, environ: Environ, response: Iterable[bytes]) -> Iterable[bytes]:
        """*response*, made to send ``request_finished`` when the server closes it,
        without hiding from the server what it looks for in a response."""
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(response, file_wrapper):
            # Servers test the response's type to take their sendfile path: keep it.
            watched = _FileResponseCloser(self, environ, response)
            try:
                response.close = watched.close  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # a wrapper class with __slots__
                pass
            else:
                return response
        if isinstance(response, Sized):
            return _SizedClosingResponse(self, environ, response)
        return _ClosingResponse(self, environ, response)


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
        _close_then_finish(self.middleware, self.environ, getattr(self.response, "close", None))


class _SizedClosingResponse(_ClosingResponse):
    """A response with a length (a list of chunks): servers read ``len()`` of it."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self.response)  # type: ignore[arg-type]


class _FileResponseCloser:
    """The ``close`` given to a server's own file wrapper, which is returned unchanged."""

    __slots__ = ("close_file", "closed", "environ", "middleware")

    def __init__(
        self, middleware: WSGISignalsMiddleware, environ: Environ, response: object
    ) -> None:
        self.middleware = middleware
        self.environ = environ
        # Read before it is replaced: the wrapper's own close (often the file's).
        self.close_file: Callable[[], object] | None = getattr(response, "close", None)
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        _close_then_finish(self.middleware, self.environ, self.close_file)


def _close_then_finish(
    middleware: WSGISignalsMiddleware, environ: Environ, close: Callable[[], object] | None
) -> None:
    """Close the app's response, then send ``request_finished``; an exception from the
    app's ``close`` is reported first, as Django reports before it finishes."""
    try:
        if close is not None:
            close()
    except Exception as error:
        middleware.report(environ, error)
        raise
    finally:
        request_finished.send_robust(sender=type(middleware))
