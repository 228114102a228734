"""Model signals from the SQLAlchemy ORM: the listeners ``install()`` adds to a declarative base.

One ``_Installation`` per base holds a fixed set of SQLAlchemy listeners (closures kept so
that ``event.remove`` gets the very objects ``event.listen`` got). Connecting a tocsin
receiver never touches SQLAlchemy: the listeners always run and ``Signal.send`` returns at
once when nobody listens.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import InstanceState, Mapper, Session, object_session
from sqlalchemy.orm import attributes as orm_attributes
from sqlalchemy.util.concurrency import await_only, in_greenlet

from tocsin import _commit
from tocsin._dispatcher import Signal
from tocsin._lazy import LazySenderWarning, check_lazy_senders, registry, why_waiting
from tocsin.contrib.sqlalchemy import _m2m
from tocsin.contrib.sqlalchemy._schema import install_schema, uninstall_schema
from tocsin.contrib.sqlalchemy._transactions import (
    install_transactions,
    scheduler_for,
    uninstall_transactions,
)
from tocsin.signals import (
    class_prepared,
    connection_created,
    post_delete,
    post_init,
    post_save,
    pre_delete,
    pre_init,
    pre_save,
)

_F = TypeVar("_F", bound=Callable[..., Any])

DEFAULT_ALIAS = "default"

# Where per-session flush state lives: Session.info survives for the session's lifetime.
_STATE_KEY = "tocsin.flush"
# Marks the __init__ wrappers this module installs (and keeps what they wrap).
_ORIGINAL_INIT = "_tocsin_original_init"


# -- engines and aliases ---------------------------------------------------------------

# Engine -> alias, for ``using``. Weak: an engine that is gone needs no alias.
_aliases: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_connect_listeners: weakref.WeakKeyDictionary[Engine, Callable[..., None]] = (
    weakref.WeakKeyDictionary()
)


def _sync_engine(engine: Any) -> Engine:
    # An AsyncEngine has no events of its own: they live on its sync_engine.
    sync = getattr(engine, "sync_engine", engine)
    if not isinstance(sync, Engine):
        raise TypeError(f"expected an Engine or AsyncEngine, not {engine!r}")
    return sync


def alias_of(engine: Engine) -> str:
    """The alias sent as ``using`` for *engine*: the one it was watched with, or "default"."""
    return _aliases.get(engine, DEFAULT_ALIAS)


def watch(engine: Any, alias: str = DEFAULT_ALIAS) -> None:
    """Give *engine* (an Engine or AsyncEngine) an alias and send ``connection_created``
    for each DBAPI connection it opens from now on; returns None. Watching again only
    changes the alias."""
    sync = _sync_engine(engine)
    _aliases[sync] = alias
    if sync in _connect_listeners:
        return

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        connection_created.send(
            sender=type(sync.dialect), connection=dbapi_connection, using=alias_of(sync)
        )

    _connect_listeners[sync] = on_connect
    event.listen(sync, "connect", on_connect)


def unwatch(engine: Any) -> None:
    """Stop sending ``connection_created`` for *engine* and forget its alias; returns None."""
    sync = _sync_engine(engine)
    _aliases.pop(sync, None)
    listener = _connect_listeners.pop(sync, None)
    if listener is not None and event.contains(sync, "connect", listener):
        event.remove(sync, "connect", listener)


# -- sending ---------------------------------------------------------------------------


def send(signal: Signal, sender: object, **named: Any) -> None:
    """Send *signal* from inside a SQLAlchemy listener; returns None.

    ``Signal.send`` as a rule. Inside the greenlet that runs an AsyncSession's work (on
    the event-loop thread, where ``send`` refuses async receivers) a signal with async
    receivers is sent with ``asend`` instead and awaited there, through SQLAlchemy's
    greenlet bridge, so the flush waits for it and its failure aborts the flush.
    """
    if in_greenlet() and signal.has_async_listeners(sender):
        await_only(signal.asend(sender, **named))
    else:
        signal.send(sender, **named)


def _run(call: Callable[[], Any]) -> None:
    # A coroutine returned by a deferred async receiver is awaited where we are: through
    # the greenlet bridge under AsyncSession, else on a private loop.
    result = call()
    if inspect.isawaitable(result):
        if in_greenlet():
            await_only(result)
        else:
            _commit.run_callback(lambda: result)


# -- per-session flush state and @after_flush ------------------------------------------


@dataclass
class FlushState:
    """What one session's current flush has collected (kept in ``session.info``)."""

    # Calls of @after_flush receivers, delivered in after_flush_postexec.
    queued: list[Callable[[], Any]] = field(default_factory=list)
    # InstanceState -> the object passed to Session.delete() that brought it along.
    origins: dict[InstanceState[Any], object] = field(default_factory=dict)
    # m2m changes found in before_flush, waiting for their secondary-table statement.
    m2m: list[_m2m.Change] = field(default_factory=list)


def flush_state(session: Session) -> FlushState:
    """The flush state of *session*, created on first use."""
    state = session.info.get(_STATE_KEY)
    if state is None:
        state = session.info[_STATE_KEY] = FlushState()
    return state


# The session whose flush is sending signals in this context, if any.
_flushing: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "tocsin_sqlalchemy_flushing", default=None
)


def current_session() -> Session | None:
    """The Session whose model signals are being sent in this context, or None.

    Set while a flush sends ``pre_save``/``post_save``/``pre_delete``/``post_delete``
    (and ``m2m_changed``) and while its ``@after_flush`` receivers run: a receiver can
    write to the same transaction through ``current_session().connection()`` (the
    transactional outbox does). Outside those sends it returns None.
    """
    return _flushing.get()


@contextlib.contextmanager
def sending_for(session: Session | None) -> Iterator[None]:
    """Send model signals for *session*: ``@after_commit`` receivers wait for its commit,
    ``@after_flush`` receivers for the end of its flush."""
    scheduler = scheduler_for(session) if session is not None else None
    token = _flushing.set(session)
    try:
        with _commit.deferring_to(scheduler):
            yield
    finally:
        _flushing.reset(token)


# The session running a flush in this context: the secondary-table statements find their
# pending m2m changes through it. Set in before_flush, cleared when the flush ends.
_flush_session: contextvars.ContextVar[weakref.ref[Session] | None] = contextvars.ContextVar(
    "tocsin_sqlalchemy_flush_session", default=None
)


def current_flush() -> Session | None:
    """The session whose flush is running in this context, if any."""
    ref = _flush_session.get()
    return None if ref is None else ref()


def after_flush(receiver: _F) -> _F:
    """Decorator: run *receiver* once the current flush is over, when the Session may be used.

    A model signal sent during a flush (``pre_save``, ``post_save``, ``pre_delete``,
    ``post_delete``, ``m2m_changed``) reaches the wrapper, which queues the call; it is
    made in ``after_flush_postexec`` of that session, where ``session.add()`` is allowed
    (objects added there are flushed by ``commit()``). Sent outside a flush, the receiver
    runs at once. Returns the wrapper (``__wrapped__`` is *receiver*); it returns None.
    """
    if getattr(receiver, "_tocsin_after_flush", False):
        return receiver

    @functools.wraps(receiver)
    def deferred(**kwargs: Any) -> None:
        call = functools.partial(receiver, **kwargs)
        session = _flushing.get()
        if session is None:
            _run(call)
        else:
            # Keep the transaction the signal was sent in, for nested @after_commit.
            flush_state(session).queued.append(call)

    deferred._tocsin_after_flush = True  # type: ignore[attr-defined]
    return deferred  # type: ignore[return-value]


# -- the installation of one declarative base ---------------------------------------------


def _session_target(sessions: Any) -> Any:
    """Where session events go for *sessions*: AsyncSession targets mean their sync class."""
    sync_session = getattr(sessions, "sync_session", None)
    if isinstance(sync_session, Session):
        return sync_session
    if isinstance(sessions, type) and hasattr(sessions, "sync_session_class"):
        return sessions.sync_session_class
    kw = getattr(sessions, "kw", None)
    if isinstance(kw, dict) and hasattr(getattr(sessions, "class_", None), "sync_session_class"):
        return kw.get("sync_session_class", sessions.class_.sync_session_class)
    return sessions


# Session event target -> how many installations use it (install_transactions is shared).
_session_targets: dict[int, tuple[Any, int]] = {}


class Installation:
    """The listeners of one declarative base; built by ``install()``."""

    def __init__(self, base: type, sessions: Any, using: Mapping[Any, str]) -> None:
        self.base = base
        self.sessions = _session_target(sessions)
        self.engines = [_sync_engine(engine) for engine in using]
        self.using = dict(zip(self.engines, using.values(), strict=True))
        self.m2m = _m2m.M2MTracker(self)
        self.warned: set[int] = set()
        # (target, event name, listener, listen() keywords), in the order added.
        self.listeners: list[tuple[Any, str, Callable[..., Any], dict[str, Any]]] = []
        mapped: dict[str, Any] = {"propagate": True}
        mapper_listeners: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
            ("after_mapper_constructed", self._class_mapped, mapped),
            ("init", self._init, mapped),
            ("load", self._load, {"propagate": True, "restore_load_context": True}),
            ("before_insert", self._before_insert, mapped),
            ("after_insert", self._after_insert, mapped),
            ("before_update", self._before_update, mapped),
            ("after_update", self._after_update, mapped),
            ("before_delete", self._before_delete, mapped),
            ("after_delete", self._after_delete, mapped),
        ]
        for name, listener, options in mapper_listeners:
            self.listeners.append((base, name, listener, options))
        session_listeners: list[tuple[str, Callable[..., Any]]] = [
            ("before_flush", self._before_flush),
            ("after_flush_postexec", self._after_flush_postexec),
            ("after_soft_rollback", self._after_soft_rollback),
        ]
        for name, session_listener in session_listeners:
            self.listeners.append((self.sessions, name, session_listener, {}))
        self.listeners.append((Mapper, "after_configured", self._after_configured, {}))
        self.listeners.append((Engine, "before_execute", self.m2m.before_execute, {}))
        self.listeners.append((Engine, "after_execute", self.m2m.after_execute, {}))

    # -- install / uninstall ----------------------------------------------------------

    def install(self) -> None:
        for engine, alias in self.using.items():
            watch(engine, alias)
        key = id(self.sessions)
        target, count = _session_targets.get(key, (self.sessions, 0))
        if count == 0:
            install_transactions(self.sessions)
        _session_targets[key] = (target, count + 1)
        install_schema(self.base.metadata, self._alias_of_connection)  # type: ignore[attr-defined]
        for target, name, listener, options in self.listeners:
            event.listen(target, name, listener, **options)
        # Classes mapped before install: findable by name, and post_init on construction.
        # class_prepared is not replayed: they were prepared before, not now.
        for mapper in self._mappers():
            self._prepare(mapper.class_)
        if not self._mappers_pending():
            self.m2m.configured()

    def uninstall(self) -> None:
        for target, name, listener, _ in reversed(self.listeners):
            if event.contains(target, name, listener):
                event.remove(target, name, listener)
        self.m2m.uninstall()
        uninstall_schema(self.base.metadata)  # type: ignore[attr-defined]
        key = id(self.sessions)
        target, count = _session_targets.pop(key, (self.sessions, 1))
        if count > 1:
            _session_targets[key] = (target, count - 1)
        else:
            uninstall_transactions(self.sessions)
        for engine in self.engines:
            unwatch(engine)
        for mapper in self._mappers():
            cls = mapper.class_
            wrapper = cls.__dict__.get("__init__")
            if hasattr(wrapper, _ORIGINAL_INIT):
                type.__setattr__(cls, "__init__", getattr(wrapper, _ORIGINAL_INIT))
            registry.forget(cls)

    def _mappers(self) -> list[Mapper[Any]]:
        return sorted(self.base.registry.mappers, key=lambda m: m.class_.__qualname__)  # type: ignore[attr-defined]

    def _mappers_pending(self) -> bool:
        return any(not mapper.configured for mapper in self._mappers())

    def owns(self, cls: type) -> bool:
        """Whether *cls* is mapped under this installation's base."""
        return issubclass(cls, self.base)

    def alias(self, engine: Engine) -> str:
        """The ``using`` alias of *engine*."""
        return self.using.get(engine) or alias_of(engine)

    def _alias_of_connection(self, connection: Connection) -> str:
        return self.alias(connection.engine)

    # -- class_prepared, pre_init, post_init -------------------------------------------

    def _class_mapped(self, mapper: Mapper[Any], cls: type) -> None:
        self._prepare(cls)
        class_prepared.send(sender=cls)

    def _prepare(self, cls: type) -> None:
        # There is no "after __init__" event: wrap the __init__ SQLAlchemy installed on
        # this very class; only the wrapper of the object's own class sends, so a
        # subclass calling super().__init__() sends post_init once.
        original = cls.__dict__.get("__init__")
        if original is not None and not hasattr(original, _ORIGINAL_INIT):

            @functools.wraps(original)
            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                if type(self) is cls:
                    post_init.send(sender=cls, instance=self)

            setattr(__init__, _ORIGINAL_INIT, original)
            type.__setattr__(cls, "__init__", __init__)
        registry.register(cls)

    def _init(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        pre_init.send(sender=type(target), args=args, kwargs=kwargs)

    def _load(self, target: Any, context: Any) -> None:
        send(post_init, type(target), instance=target)

    def _after_configured(self) -> None:
        self.m2m.configured()
        self._warn_unresolved()

    def _warn_unresolved(self) -> None:
        # Once classes are configured, a lazy name still waiting is most likely a typo
        # (or a name that now means several classes): say so, once per connection.
        for pending in registry.pending():
            if id(pending) in self.warned:
                continue
            self.warned.add(id(pending))
            warnings.warn(
                f"{why_waiting(pending, _NO_MAPPED_CLASS)} after the mappers were configured",
                LazySenderWarning,
                stacklevel=2,
            )

    # -- pre_save / post_save ------------------------------------------------------------

    def _model_send(
        self, signal: Signal, connection: Connection, target: Any, **named: Any
    ) -> None:
        session = object_session(target)
        with sending_for(session):
            send(
                signal, type(target), instance=target, using=self.alias(connection.engine), **named
            )

    def _before_insert(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        self._model_send(pre_save, connection, target, raw=False, update_fields=None)

    def _after_insert(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        self._model_send(
            post_save, connection, target, created=True, raw=False, update_fields=None
        )

    @staticmethod
    def _columns_changed(target: Any) -> bool:
        # before/after_update also fire for objects whose collections alone changed
        # (and for attributes set to their current value): Django sends no save then.
        session = object_session(target)
        return session is None or session.is_modified(target, include_collections=False)

    def _before_update(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        if self._columns_changed(target):
            self._model_send(pre_save, connection, target, raw=False, update_fields=None)

    def _after_update(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        if self._columns_changed(target):
            self._model_send(
                post_save, connection, target, created=False, raw=False, update_fields=None
            )

    # -- pre_delete / post_delete --------------------------------------------------------

    def _origin(self, target: Any) -> object:
        session = object_session(target)
        if session is None:
            return None
        return flush_state(session).origins.get(orm_attributes.instance_state(target))

    def _before_delete(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        self._model_send(pre_delete, connection, target, origin=self._origin(target))

    def _after_delete(self, mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        self._model_send(post_delete, connection, target, origin=self._origin(target))

    # -- session events ----------------------------------------------------------------

    def _before_flush(self, session: Session, flush_context: Any, instances: Any) -> None:
        state = flush_state(session)
        # A flush that failed left its state behind: this flush starts afresh.
        self._forget(state)
        self.m2m.in_flight.clear()
        _flush_session.set(weakref.ref(session))
        self._find_origins(session, state)
        state.m2m.extend(self.m2m.changes(session))

    def _find_origins(self, session: Session, state: FlushState) -> None:
        # Session.delete() cascades at once: session.deleted holds the objects passed to
        # it and those they brought along. An object no other deleted object reaches is
        # one the program deleted itself: the origin of the ones it reaches.
        deleted = [
            orm_attributes.instance_state(obj) for obj in session.deleted if self.owns(type(obj))
        ]
        if not deleted:
            return
        reached: dict[InstanceState[Any], InstanceState[Any]] = {}
        for root in deleted:
            for _, _, child, _ in root.mapper.cascade_iterator("delete", root):
                reached.setdefault(child, root)
        for obj_state in deleted:
            root = obj_state
            seen = {root}
            while root in reached and reached[root] not in seen:
                root = reached[root]
                seen.add(root)
            state.origins[obj_state] = root.obj()

    def _after_flush_postexec(self, session: Session, flush_context: Any) -> None:
        state = flush_state(session)
        self._forget(state)
        _flush_session.set(None)
        # Deliver the @after_flush calls: the Session may be used again here.
        with sending_for(session):
            while state.queued:
                _run(state.queued.pop(0))

    def _after_soft_rollback(self, session: Session, previous_transaction: Any) -> None:
        state = session.info.get(_STATE_KEY)
        if state is not None:
            self._forget(state)
            del state.queued[:]
        _flush_session.set(None)

    def _forget(self, state: FlushState) -> None:
        # Several bases may share a session: each forgets only what is its own.
        state.origins = {
            key: origin for key, origin in state.origins.items() if not self.owns(key.class_)
        }
        state.m2m = [change for change in state.m2m if not self.owns(change.owner)]


# What a lazy sender that names no mapped class is said to be missing.
_NO_MAPPED_CLASS = "no mapped class is named {name!r}"


def check_senders() -> None:
    """Raise ``LookupError`` listing every lazy sender name that names no class, or several.

    Call it once every model is mapped (at start-up or in a test). Returns None when all
    lazily connected receivers are connected.
    """
    check_lazy_senders(missing=_NO_MAPPED_CLASS)
