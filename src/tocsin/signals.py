"""Django's built-in signals, with Django's names, senders and keyword arguments.

tocsin defines them; its integrations send them from real emitters: the model signals
from the SQLAlchemy ORM (``tocsin.contrib.sqlalchemy``), the request signals from ASGI
and WSGI apps, ``template_rendered`` from Jinja2. Every receiver also gets ``signal=``.

Model signals accept a lazy sender: the name of a class not defined yet
(``sender="Article"`` or ``sender="blog.models.Article"``); see ``ModelSignal``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TextIO, TypeVar, overload

from tocsin._dispatcher import Responses, Signal
from tocsin._lazy import PendingConnection, check_lazy_senders, registry
from tocsin._typed import OPTIONAL, Connector, TypedSignal, signal

if TYPE_CHECKING:
    from tocsin._typed import TakesPayload, TakesPayloadByKeyword

__all__ = [
    "ModelSignal",
    "TypedModelSignal",
    "check_lazy_senders",
    "class_prepared",
    "connection_created",
    "got_request_exception",
    "m2m_changed",
    "post_delete",
    "post_init",
    "post_migrate",
    "post_save",
    "post_syncdb",
    "pre_delete",
    "pre_init",
    "pre_migrate",
    "pre_save",
    "request_finished",
    "request_started",
    "template_rendered",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_S = TypeVar("_S")
_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")


class ModelSignal(Signal):
    """A signal whose sender is a model class, which may be named before it exists.

    ``connect(receiver, sender="Article")`` connects to the class registered under that
    name (its own name, or its dotted path) as soon as it is; at once if it already is.
    A name that matches several classes raises ``LookupError``. ``disconnect`` with a
    name returns ``None``, as Django's does, and also cancels a connection still waiting.
    Any other sender is connected at once, as with a plain ``Signal``.
    """

    def connect(
        self,
        receiver: _F,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: object = None,
        *,
        priority: int = 0,
    ) -> _F:
        if not isinstance(sender, str):
            return super().connect(receiver, sender, weak, dispatch_uid, priority=priority)

        def connect_to(cls: type) -> None:
            Signal.connect(self, receiver, cls, weak, dispatch_uid, priority=priority)

        registry.defer(PendingConnection(sender, self, receiver, connect_to, dispatch_uid))
        return receiver

    def disconnect(  # type: ignore[override]
        self,
        receiver: Callable[..., Any] | None = None,
        sender: object = None,
        dispatch_uid: object = None,
        weak: object = None,
    ) -> bool | None:
        if not isinstance(sender, str):
            return super().disconnect(receiver, sender, dispatch_uid)
        registry.cancel(sender, self, lambda pending: pending.has_key(receiver, dispatch_uid))
        cls = registry.resolve(sender)
        if cls is not None:
            super().disconnect(receiver, cls, dispatch_uid)
        return None


class TypedModelSignal(TypedSignal[_S, _P], ModelSignal):
    """A typed ``ModelSignal``: the declared payload of ``TypedSignal``, the lazy senders
    (``sender="Article"``) of ``ModelSignal``.

    As Django's own tests do, a model signal may also be sent with no payload at all
    (``post_save.send(Article)``), by each of the four send methods; a partial or misspelt
    payload is still rejected.
    """

    if TYPE_CHECKING:

        @overload
        def send(self, sender: _S) -> Responses: ...

        @overload
        def send(self, sender: _S, *args: _P.args, **kwargs: _P.kwargs) -> Responses: ...

        def send(self, sender: _S, *args: Any, **kwargs: Any) -> Responses: ...

        @overload
        def send_robust(self, sender: _S) -> Responses: ...

        @overload
        def send_robust(self, sender: _S, *args: _P.args, **kwargs: _P.kwargs) -> Responses: ...

        def send_robust(self, sender: _S, *args: Any, **kwargs: Any) -> Responses: ...

        @overload
        async def asend(self, sender: _S) -> Responses: ...

        @overload
        async def asend(self, sender: _S, *args: _P.args, **kwargs: _P.kwargs) -> Responses: ...

        async def asend(self, sender: _S, *args: Any, **kwargs: Any) -> Responses: ...

        @overload
        async def asend_robust(self, sender: _S) -> Responses: ...

        @overload
        async def asend_robust(
            self, sender: _S, *args: _P.args, **kwargs: _P.kwargs
        ) -> Responses: ...

        async def asend_robust(self, sender: _S, *args: Any, **kwargs: Any) -> Responses: ...

        def _receiver_decorator(  # type: ignore[override]
            self, sender: _S | str | None, /
        ) -> Connector[_S, _P]: ...

        @overload  # type: ignore[override]
        def connect(
            self,
            receiver: TakesPayloadByKeyword[_Q, _R, _P],
            sender: _S | str | None = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[_Q, _R]: ...

        @overload
        def connect(
            self,
            receiver: TakesPayload[_Q, _R, _S, _P],
            sender: _S | str | None = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[_Q, _R]: ...

        def connect(  # pyright: ignore[reportIncompatibleMethodOverride]
            self,
            receiver: Callable[..., Any],
            sender: Any = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[..., Any]: ...


def _model_signal(stub: Callable[Concatenate[_S, _P], object]) -> TypedModelSignal[_S, _P]:
    return TypedModelSignal(stub, use_caching=True)


# -- model signals (sent by tocsin.contrib.sqlalchemy) -----------------------------------
# Each stub declares the payload: the sender first, then the keyword arguments.


@_model_signal
def pre_init(sender: type[Any], *, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Sent when a model object is constructed, before its ``__init__`` runs.

    sender: the model class. args: the positional arguments (a tuple). kwargs: the keyword
    arguments (the real dict). Not sent for rows loaded from the database: SQLAlchemy loads
    them without calling ``__init__``.
    """


@_model_signal
def post_init(sender: type[Any], *, instance: Any) -> None:
    """Sent when a model object has been constructed, or loaded from the database.

    sender: the model class. instance: the object.
    """


@_model_signal
def pre_save(
    sender: type[Any],
    *,
    instance: Any,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
) -> None:
    """Sent before a model object's row is inserted or updated (during a flush).

    sender: the model class. instance: the object. raw: always False. using: the engine's
    alias. update_fields: None.
    """


@_model_signal
def post_save(
    sender: type[Any],
    *,
    instance: Any,
    created: bool,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
) -> None:
    """Sent after a model object's row was inserted or updated (during a flush).

    sender: the model class. instance: the object. created: True for an INSERT, False for an
    UPDATE. raw: always False. using: the engine's alias. update_fields: None. It runs inside
    the transaction: use ``@after_commit`` for work that must wait for the commit.
    """


@_model_signal
def pre_delete(sender: type[Any], *, instance: Any, using: str, origin: Any) -> None:
    """Sent before a model object's row is deleted, cascades included.

    sender: the model class. instance: the object. using: the engine's alias. origin: the
    object passed to ``Session.delete()`` when known, else None.
    """


@_model_signal
def post_delete(sender: type[Any], *, instance: Any, using: str, origin: Any) -> None:
    """Sent after a model object's row was deleted, cascades included.

    sender: the model class. instance: the object (no longer in the database). using, origin:
    as for ``pre_delete``.
    """


M2MAction = Literal["pre_add", "post_add", "pre_remove", "post_remove", "pre_clear", "post_clear"]


@_model_signal
def m2m_changed(
    sender: Any,
    *,
    instance: Any,
    action: M2MAction,
    reverse: bool,
    model: type[Any],
    pk_set: set[Any] | None,
    using: str,
) -> None:
    """Sent when a many-to-many relationship changes.

    sender: the intermediate (secondary) table or class. instance: the object whose
    relationship changed. action: "pre_add", "post_add", "pre_remove", "post_remove",
    "pre_clear" or "post_clear". reverse: whether the change was made from the reverse side.
    model: the class of the objects added or removed. pk_set: their primary keys (None for
    clears). using: the engine's alias.
    """


@signal
def class_prepared(sender: type[Any]) -> None:
    """Sent when a model class has been defined (mapped).

    sender: the model class. No other arguments.
    """


def _pre_migrate(
    sender: Any,
    *,
    app_config: Any,
    verbosity: int,
    interactive: bool,
    stdout: TextIO,
    using: str,
    plan: list[Any] | None,
    apps: Any,
    tables: list[Any] = OPTIONAL,
) -> None:
    """Sent before the schema is created or migrated (even with nothing to do).

    sender: what is being migrated (a SQLAlchemy ``MetaData``, or the Alembic configuration).
    app_config: the same as sender. verbosity, interactive, stdout: as Django's. using: the
    engine's alias. plan: the migration steps to apply (None when unknown). apps: None.
    tables: the tables ``create_all()`` creates (not sent by Alembic).
    """


pre_migrate: TypedSignal[Any, ...] = TypedSignal(_pre_migrate, name="pre_migrate")


def _post_migrate(
    sender: Any,
    *,
    app_config: Any,
    verbosity: int,
    interactive: bool,
    stdout: TextIO,
    using: str,
    plan: list[Any] | None,
    apps: Any,
    tables: list[Any] = OPTIONAL,
) -> None:
    """Sent after the schema was created or migrated, even if nothing was done.

    sender: what was migrated. Other arguments as for ``pre_migrate``; plan lists the steps
    that were applied.
    """


post_migrate: TypedSignal[Any, ...] = TypedSignal(_post_migrate, name="post_migrate")


# The name Django used for post_migrate before 1.7.
post_syncdb = post_migrate


@signal
def connection_created(sender: type[Any], *, connection: Any, using: str) -> None:
    """Sent when a database connection is opened.

    sender: the engine's dialect class. connection: the DBAPI connection. using: the
    engine's alias.
    """


# -- request signals (sent by tocsin.contrib.asgi and tocsin.contrib.wsgi) ----------------
# Like the migration signals, they declare their payload for run-time use (payload_of,
# strict) but are typed TypedSignal[Any, ...] for checkers: receivers written for one
# server require environ *or* scope, which a ParamSpec cannot say, and code that lists
# several of them together must still see their common methods.


def _request_started(
    sender: type[Any],
    *,
    environ: dict[str, Any] = OPTIONAL,
    scope: MutableMapping[str, Any] = OPTIONAL,
) -> None:
    """Sent when an HTTP request starts.

    sender: the middleware class. environ (WSGI) or scope (ASGI): the request.
    """


request_started: TypedSignal[Any, ...] = TypedSignal(_request_started, name="request_started")


def _request_finished(sender: type[Any]) -> None:
    """Sent once per request: after the response, or when the client left.

    sender: the middleware class. No other arguments.
    """


request_finished: TypedSignal[Any, ...] = TypedSignal(_request_finished, name="request_finished")


def _got_request_exception(sender: None, *, request: Any, exception: Exception) -> None:
    """Sent when an exception escapes the application.

    sender: None. request: the request. exception: the exception.
    """


got_request_exception: TypedSignal[Any, ...] = TypedSignal(
    _got_request_exception, name="got_request_exception"
)


# -- test signals (sent by tocsin.contrib.jinja2) -----------------------------------------


@signal
def template_rendered(sender: Any, *, template: Any, context: dict[str, Any]) -> None:
    """Sent each time a template is rendered.

    sender: the template. template: the same template. context: the render context.
    """
