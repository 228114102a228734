"""Django's built-in signals, typed: receivers checked by mypy and pyright.

::

    from tocsin import receiver
    from tocsin.contrib.django.signals import post_save, request_finished

    @receiver(post_save, sender=Order)
    def audit(sender: type[Order], instance: Order, created: bool, **kwargs: Any) -> None: ...

    @receiver(post_save)            # rejected: created is a bool, not a str
    def wrong(sender: Any, created: str, **kwargs: Any) -> None: ...

Each name here *is* Django's signal object (``post_save is
django.db.models.signals.post_save``): importing from here changes nothing at run time,
only what type checkers know. Statically each is a tocsin ``TypedSignal`` (the model
signals a ``TypedModelSignal``, with lazy senders: ``sender="shop.Order"``) declared
with the payload Django sends, as tocsin's own typed signals are, so a receiver whose
parameters do not fit the payload, or a send that leaves out an argument, is an error.

The declarations need neither Django's types nor django-stubs: model classes, requests
and users are ``Any`` (a receiver may annotate them with its own model class), so the
checks are the same with django-stubs installed or not. ``request_started`` sends
``environ`` under WSGI and ``scope`` under ASGI, which one payload cannot say: it is
typed ``TypedSignal[Any, ...]``, like tocsin's own request signals.

Run time: once ``"tocsin.contrib.django"`` is in ``INSTALLED_APPS`` these objects are
tocsin signals; without the app, Django's own dispatcher runs them and only the static
checks remain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TextIO, TypeVar

__all__ = [
    "class_prepared",
    "connection_created",
    "got_request_exception",
    "m2m_changed",
    "post_delete",
    "post_init",
    "post_migrate",
    "post_save",
    "pre_delete",
    "pre_init",
    "pre_migrate",
    "pre_save",
    "request_finished",
    "request_started",
    "setting_changed",
    "template_rendered",
    "user_logged_in",
    "user_logged_out",
    "user_login_failed",
]

M2MAction = Literal["pre_add", "post_add", "pre_remove", "post_remove", "pre_clear", "post_clear"]

if TYPE_CHECKING:
    from tocsin._typed import TypedSignal
    from tocsin.signals import TypedModelSignal

    _S = TypeVar("_S")
    _P = ParamSpec("_P")

    def _model(stub: Callable[Concatenate[_S, _P], object]) -> TypedModelSignal[_S, _P]: ...
    def _plain(stub: Callable[Concatenate[_S, _P], object]) -> TypedSignal[_S, _P]: ...

    # -- django.db.models.signals

    @_model
    def pre_init(sender: type[Any], *, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Before a model's ``__init__`` (also for rows loaded from the database)."""

    @_model
    def post_init(sender: type[Any], *, instance: Any) -> None:
        """At the end of a model's ``__init__``."""

    @_model
    def pre_save(
        sender: type[Any],
        *,
        instance: Any,
        raw: bool,
        using: str,
        update_fields: frozenset[str] | None,
    ) -> None:
        """At the start of ``Model.save()``."""

    @_model
    def post_save(
        sender: type[Any],
        *,
        instance: Any,
        created: bool,
        raw: bool,
        using: str,
        update_fields: frozenset[str] | None,
    ) -> None:
        """At the end of ``Model.save()``, inside its transaction."""

    @_model
    def pre_delete(sender: type[Any], *, instance: Any, using: str, origin: Any) -> None:
        """Before each object a delete removes, cascades included."""

    @_model
    def post_delete(sender: type[Any], *, instance: Any, using: str, origin: Any) -> None:
        """After each object a delete removed, cascades included."""

    @_model
    def m2m_changed(
        sender: type[Any],
        *,
        instance: Any,
        action: M2MAction,
        reverse: bool,
        model: type[Any],
        pk_set: set[Any] | None,
        using: str,
    ) -> None:
        """Around changes of a many-to-many relation (sender: the through model)."""

    @_plain
    def class_prepared(sender: type[Any]) -> None:
        """When a model class has been defined."""

    @_plain
    def pre_migrate(
        sender: Any,
        *,
        app_config: Any,
        verbosity: int,
        interactive: bool,
        stdout: TextIO,
        using: str,
        plan: list[tuple[Any, bool]],
        apps: Any,
    ) -> None:
        """Before ``migrate`` runs, once per app with models (sender: its AppConfig)."""

    @_plain
    def post_migrate(
        sender: Any,
        *,
        app_config: Any,
        verbosity: int,
        interactive: bool,
        stdout: TextIO,
        using: str,
        plan: list[tuple[Any, bool]],
        apps: Any,
    ) -> None:
        """After ``migrate`` ran, once per app with models (sender: its AppConfig)."""

    # -- django.core.signals, django.test.signals, django.db.backends.signals

    request_started: TypedSignal[Any, ...]

    @_plain
    def request_finished(sender: type[Any]) -> None:
        """When Django has finished sending a response."""

    @_plain
    def got_request_exception(sender: Any, *, request: Any) -> None:
        """When an exception escapes a view (sender: None or the handler class)."""

    @_plain
    def setting_changed(sender: type[Any], *, setting: str, value: Any, enter: bool) -> None:
        """When a test changes a setting (``override_settings``)."""

    @_plain
    def template_rendered(sender: Any, *, template: Any, context: Any) -> None:
        """When the test runner's instrumented Django templates render."""

    @_plain
    def connection_created(sender: type[Any], *, connection: Any) -> None:
        """When a database connection is opened (sender: the backend's wrapper class)."""

    # -- django.contrib.auth.signals

    @_plain
    def user_logged_in(sender: type[Any], *, request: Any, user: Any) -> None:
        """After a user logged in (sender: the user's class)."""

    @_plain
    def user_logged_out(sender: type[Any] | None, *, request: Any, user: Any) -> None:
        """After a user logged out (user: None when nobody was logged in)."""

    @_plain
    def user_login_failed(sender: str, *, credentials: dict[str, Any], request: Any) -> None:
        """After a failed login (sender: the authenticating module's name)."""

else:
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
    from django.core.signals import got_request_exception, request_finished, request_started
    from django.db.backends.signals import connection_created
    from django.db.models.signals import (
        class_prepared,
        m2m_changed,
        post_delete,
        post_init,
        post_migrate,
        post_save,
        pre_delete,
        pre_init,
        pre_migrate,
        pre_save,
    )
    from django.test.signals import setting_changed, template_rendered
