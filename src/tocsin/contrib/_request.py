"""The ``request`` given to ``got_request_exception`` when there is no framework request.

Django passes its ``HttpRequest``. A bare ASGI or WSGI app has none, so receivers get a
``RequestView``: the method, path, query string and headers of the request, plus the raw
ASGI ``scope`` or WSGI ``environ`` for anything else. It is read-only and never reads the
body (the app may have consumed it already). The ASGI middleware gives Starlette's
``Request`` instead when Starlette is installed; both middlewares take a
``request_factory`` to choose another.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["RequestView", "asgi_request", "wsgi_request"]


@dataclass(frozen=True, slots=True)
class RequestView:
    """A read-only view of an HTTP request, built from an ASGI scope or a WSGI environ.

    ``headers`` has lower-case names; a header sent several times has its values joined
    with ``", "``. Exactly one of ``scope`` and ``environ`` is set.
    """

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    scope: Mapping[str, Any] | None = field(default=None, repr=False)
    environ: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> RequestView:
        """The view of an ASGI HTTP ``scope``."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            # ASGI header names are lower-case bytes; values are latin-1 by HTTP's rules.
            _add(headers, bytes(raw_name).decode("latin-1").lower(), raw_value.decode("latin-1"))
        return cls(
            method=scope.get("method", "GET"),
            path=scope.get("path", "/"),
            query_string=bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers=MappingProxyType(headers),
            scope=scope,
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> RequestView:
        """The view of a WSGI ``environ``."""
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                _add(headers, key[5:].replace("_", "-").lower(), value)
        # These two are not HTTP_ variables in CGI's naming, but are headers all the same.
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        return cls(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            query_string=environ.get("QUERY_STRING", ""),
            headers=MappingProxyType(headers),
            environ=environ,
        )


def _add(headers: dict[str, str], name: str, value: str) -> None:
    headers[name] = f"{headers[name]}, {value}" if name in headers else value


def asgi_request(scope: MutableMapping[str, Any]) -> object:
    """Starlette's ``Request`` for *scope* when Starlette is installed, else a RequestView."""
    try:
        from starlette.requests import Request
    except ImportError:
        return RequestView.from_scope(scope)
    # Without a receive channel: the body was the app's to read, not the receiver's.
    return Request(scope)


def wsgi_request(environ: Mapping[str, Any]) -> object:
    """A RequestView of *environ*."""
    return RequestView.from_environ(environ)
