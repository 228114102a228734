"""Django's request signals, and ``template_rendered``, for a Flask app:
``pip install tocsin[flask]``.

One line, after creating the app::

    tocsin.contrib.flask.install(app)

It wraps ``app.wsgi_app`` in ``WSGISignalsMiddleware`` (``request_started`` before
Flask sees the request, ``request_finished`` once the response was sent, see
``tocsin.contrib.wsgi``) and bridges two of Flask's own signals:

- Flask turns an unhandled exception into a 500 itself, so no WSGI middleware ever sees
  it; its ``got_request_exception`` is re-sent as tocsin's
  ``got_request_exception(sender=None, request=flask.request, exception=...)``, once,
  even when Flask re-raises (``PROPAGATE_EXCEPTIONS``, testing). Errors that Flask turns
  into responses (404, ``abort()``, registered error handlers) send nothing, as in Django.
- Flask's ``template_rendered`` (``render_template``, ``stream_template``: after the
  last chunk) is re-sent as tocsin's ``template_rendered(sender=template, template=...,
  context=...)``, unless ``templates=False``. Do not also give the app a tocsin Jinja2
  environment, or each render would be reported twice.

Flask's own ``request_finished`` is not used: Flask sends it before the body is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flask
from jinja2 import Template

from tocsin.contrib.wsgi import REPORTED_KEY, WSGISignalsMiddleware
from tocsin.signals import got_request_exception, template_rendered

__all__ = ["install", "uninstall"]

_EXTENSION = "tocsin"


@dataclass(frozen=True)
class _Installation:
    middleware: WSGISignalsMiddleware
    templates: bool


def install(app: flask.Flask, *, templates: bool = True) -> flask.Flask:
    """Send tocsin's request signals (and ``template_rendered``) for *app*; returns *app*.

    Installing twice is harmless.
    """
    if _EXTENSION in app.extensions:
        return app
    middleware = WSGISignalsMiddleware(app.wsgi_app)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    # Held strongly (blinker's default is weak) and for this app only.
    flask.got_request_exception.connect(_bridge_exception, app, weak=False)
    if templates:
        flask.template_rendered.connect(_bridge_template, app, weak=False)
    app.extensions[_EXTENSION] = _Installation(middleware, templates)
    return app


def uninstall(app: flask.Flask) -> None:
    """Undo ``install(app)``. Returns nothing; does nothing if it was not installed.

    ``app.wsgi_app`` is restored only if nothing wrapped it after ``install``.
    """
    installation = app.extensions.pop(_EXTENSION, None)
    if not isinstance(installation, _Installation):
        return
    flask.got_request_exception.disconnect(_bridge_exception, app)
    if installation.templates:
        flask.template_rendered.disconnect(_bridge_template, app)
    if app.wsgi_app is installation.middleware:
        app.wsgi_app = installation.middleware.app  # type: ignore[method-assign, assignment]


def _bridge_exception(sender: flask.Flask, exception: Exception, **extra: Any) -> None:
    request = flask.request._get_current_object()  # type: ignore[attr-defined]
    # The WSGI middleware sees this exception again if Flask re-raises it: mark it sent.
    request.environ[REPORTED_KEY] = exception
    got_request_exception.send_robust(sender=None, request=request, exception=exception)


def _bridge_template(
    sender: flask.Flask, template: Template, context: dict[str, Any], **extra: Any
) -> None:
    template_rendered.send(sender=template, template=template, context=context)
