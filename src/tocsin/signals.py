"""Django's built-in signals, with Django's names, senders and keyword arguments.

tocsin defines them; its integrations send them from real emitters: the model signals
from the SQLAlchemy ORM (``tocsin.contrib.sqlalchemy``), the request signals from ASGI
and WSGI apps, ``template_rendered`` from Jinja2. Every receiver also gets ``signal=``.

Model signals accept a lazy sender: the name of a class not defined yet
(``sender="Article"`` or ``sender="blog.models.Article"``); see ``ModelSignal``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tocsin._dispatcher import Signal
from tocsin._lazy import PendingConnection, check_lazy_senders, registry

__all__ = [
    "ModelSignal",
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


# -- model signals (sent by tocsin.contrib.sqlalchemy) -----------------------------------

pre_init = ModelSignal(
    use_caching=True,
    name="pre_init",
    doc="""Sent when a model object is constructed, before its ``__init__`` runs.

sender: the model class. args: the positional arguments (a tuple). kwargs: the keyword
arguments (the real dict). Not sent for rows loaded from the database: SQLAlchemy loads
them without calling ``__init__``.
""",
)

post_init = ModelSignal(
    use_caching=True,
    name="post_init",
    doc="""Sent when a model object has been constructed, or loaded from the database.

sender: the model class. instance: the object.
""",
)

pre_save = ModelSignal(
    use_caching=True,
    name="pre_save",
    doc="""Sent before a model object's row is inserted or updated (during a flush).

sender: the model class. instance: the object. raw: always False. using: the engine's
alias. update_fields: None.
""",
)

post_save = ModelSignal(
    use_caching=True,
    name="post_save",
    doc="""Sent after a model object's row was inserted or updated (during a flush).

sender: the model class. instance: the object. created: True for an INSERT, False for an
UPDATE. raw: always False. using: the engine's alias. update_fields: None. It runs inside
the transaction: use ``@after_commit`` for work that must wait for the commit.
""",
)

pre_delete = ModelSignal(
    use_caching=True,
    name="pre_delete",
    doc="""Sent before a model object's row is deleted, cascades included.

sender: the model class. instance: the object. using: the engine's alias. origin: the
object passed to ``Session.delete()`` when known, else None.
""",
)

post_delete = ModelSignal(
    use_caching=True,
    name="post_delete",
    doc="""Sent after a model object's row was deleted, cascades included.

sender: the model class. instance: the object (no longer in the database). using, origin:
as for ``pre_delete``.
""",
)

m2m_changed = ModelSignal(
    use_caching=True,
    name="m2m_changed",
    doc="""Sent when a many-to-many relationship changes.

sender: the intermediate (secondary) table or class. instance: the object whose
relationship changed. action: "pre_add", "post_add", "pre_remove", "post_remove",
"pre_clear" or "post_clear". reverse: whether the change was made from the reverse side.
model: the class of the objects added or removed. pk_set: their primary keys (None for
clears). using: the engine's alias.
""",
)

class_prepared = Signal(
    name="class_prepared",
    doc="""Sent when a model class has been defined (mapped).

sender: the model class. No other arguments.
""",
)

pre_migrate = Signal(
    name="pre_migrate",
    doc="""Sent before the schema is created or migrated (even with nothing to do).

sender: what is being migrated (a SQLAlchemy ``MetaData``, or the Alembic configuration).
app_config: the same as sender. verbosity, interactive, stdout: as Django's. using: the
engine's alias. plan: the migration steps to apply (None when unknown). apps: None.
""",
)

post_migrate = Signal(
    name="post_migrate",
    doc="""Sent after the schema was created or migrated, even if nothing was done.

sender: what was migrated. Other arguments as for ``pre_migrate``; plan lists the steps
that were applied.
""",
)

# The name Django used for post_migrate before 1.7.
post_syncdb = post_migrate

connection_created = Signal(
    name="connection_created",
    doc="""Sent when a database connection is opened.

sender: the engine's dialect class. connection: the DBAPI connection. using: the
engine's alias.
""",
)

# -- request signals (sent by tocsin.contrib.asgi and tocsin.contrib.wsgi) ----------------

request_started = Signal(
    name="request_started",
    doc="""Sent when an HTTP request starts.

sender: the middleware class. environ (WSGI) or scope (ASGI): the request.
""",
)

request_finished = Signal(
    name="request_finished",
    doc="""Sent once per request: after the response, or when the client left.

sender: the middleware class. No other arguments.
""",
)

got_request_exception = Signal(
    name="got_request_exception",
    doc="""Sent when an exception escapes the application.

sender: None. request: the request. exception: the exception.
""",
)

# -- test signals (sent by tocsin.contrib.jinja2) -----------------------------------------

template_rendered = Signal(
    name="template_rendered",
    doc="""Sent each time a template is rendered.

sender: the template. template: the same template. context: the render context.
""",
)
