"""The switch: every ``django.dispatch.Signal`` in the process becomes a tocsin Signal.

How it works (the README's "Django" section says the same for users):

- Two classes, ``DjangoSignal`` and ``DjangoModelSignal``, are tocsin Signals that also
  subclass Django's ``Signal`` and ``ModelSignal``. tocsin's methods come first in their
  method resolution order and cover every method Django's class defines, so nothing of
  Django's dispatcher runs on them; the Django bases keep ``isinstance`` true for code
  that holds Django's classes (Django's own system checks do).
- ``install()`` finds every Django signal that exists (``gc.get_objects()``: module-level
  signals, class attributes, signals in containers alike), reads its receivers, changes
  the object's class in place to the matching tocsin class, and reconnects the receivers
  in their order, with their ``dispatch_uid``, sender and weak or strong hold. Every
  reference to the signal (``from django.db.models.signals import post_save``) keeps
  pointing at the same object, now a tocsin Signal. A subclass of Django's Signal gets a
  class of its own whose MRO is (the subclass, DjangoSignal, ...): its overrides stay.
- Signals made later become tocsin Signals too: ``django.dispatch.Signal`` and
  ``ModelSignal`` name the tocsin classes, and Django's ``Signal.__init__`` (reached by
  code that kept the old class, or subclassed it before the switch) converts the new
  object as it is made.
- Lazy senders (``post_save.connect(f, sender="app.Model")``) go through Django's
  ``apps.lazy_model_operation`` exactly as in Django, with the shape of pending operation
  that Django's system check reads; the ones queued before the switch are pointed at the
  tocsin signal.
- Also under the switch: ``send_robust`` logs on ``django.dispatch``, sync receivers under
  ``asend`` run through asgiref's thread-sensitive ``sync_to_async``, and entries read
  from ``signal.receivers`` have the installed Django's tuple width.
- ``uninstall()`` undoes all of it: every signal goes back to its Django class, with its
  receivers.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

import django.dispatch
import django.dispatch.dispatcher as django_dispatcher
from django.db.models import signals as model_signals

import django
from tocsin import _async, _dispatcher, _refs, _registry
from tocsin._dispatcher import Signal
from tocsin._refs import NONE_ID, DispatchUid, is_bound_method

__all__ = ["DjangoModelSignal", "DjangoSignal", "install", "installed", "uninstall"]

# Django's own classes and the parts of them the switch replaces, kept to switch back.
_DJANGO_SIGNAL: Any = django_dispatcher.Signal
_DJANGO_MODEL_SIGNAL: Any = model_signals.ModelSignal
if issubclass(_DJANGO_SIGNAL, Signal):  # pragma: no cover - this module imported twice
    raise RuntimeError("tocsin.contrib.django._switch found django.dispatch already switched")
_DJANGO_INIT: Any = _DJANGO_SIGNAL.__init__
_DJANGO_CONNECT = _DJANGO_SIGNAL.connect
_DJANGO_DISCONNECT = _DJANGO_SIGNAL.disconnect
# What a Django signal keeps in its __dict__: dropped when it becomes a tocsin Signal.
_DJANGO_STATE = ("receivers", "lock", "use_caching", "sender_receivers_cache", "_dead_receivers")


class DjangoSignal(Signal, _DJANGO_SIGNAL):  # type: ignore[misc]
    """A tocsin Signal that is also a ``django.dispatch.Signal``: what every Django signal
    is once the switch is on. ``Signal(use_caching=False)`` as in Django; tocsin's own
    keyword arguments (``name``, ``doc``, ``providing_args``, ``strict``) work too."""

    def connect(
        self,
        receiver: Any,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: object = None,
        **options: Any,
    ) -> Any:
        """Connect *receiver* as ``tocsin.Signal.connect`` does; returns *receiver*."""
        if weak and not is_bound_method(receiver):
            # Django makes a weak receiver's reference with weakref.ref, looked up at each
            # connect, and code (Django's own tests) patches it to see that weak= got
            # through. tocsin's weak entries subclass weakref.ref, which that cannot see.
            with contextlib.suppress(TypeError):  # tocsin's connect says it better
                weakref.ref(receiver)
        return super().connect(receiver, sender, weak, dispatch_uid, **options)

    def _flag_dead_receivers(self, reference: object = None) -> None:
        """Django's weak-reference callback; tocsin's own callbacks already did the work."""

    # Django 5.2's name for the same callback.
    _remove_receiver = _flag_dead_receivers


class DjangoModelSignal(DjangoSignal, _DJANGO_MODEL_SIGNAL):  # type: ignore[misc]
    """``ModelSignal`` on tocsin: a sender may be named lazily, ``"app_label.ModelName"``.

    A string sender is resolved through Django's app registry (``apps``, or the default
    one), when the model is registered or at once if it already is, as in Django.
    """

    def connect(
        self,
        receiver: Any,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: object = None,
        apps: Any = None,
        **options: Any,
    ) -> Any:
        """Connect *receiver* for *sender*, which may be ``"app_label.ModelName"``.

        Returns *receiver*."""
        if isinstance(sender, str):
            _lazily(
                self, _lazy_connect, apps, sender, receiver, weak=weak, dispatch_uid=dispatch_uid,
                **options,
            )  # fmt: skip
            return receiver
        return super().connect(receiver, sender, weak, dispatch_uid, **options)

    def disconnect(  # type: ignore[override]
        self,
        receiver: Any = None,
        sender: object = None,
        dispatch_uid: object = None,
        apps: Any = None,
        weak: object = None,
    ) -> bool | None:
        """Disconnect as ``Signal.disconnect``; with a lazy (string) sender the disconnect
        waits for the model like the connect did, and returns None, as in Django."""
        if isinstance(sender, str):
            _lazily(self, _lazy_disconnect, apps, sender, receiver, dispatch_uid=dispatch_uid)
            return None
        return super().disconnect(receiver, sender, dispatch_uid)


def _lazily(
    signal: Signal, method: Callable[..., Any], apps: Any, sender: str, receiver: Any, **kw: Any
) -> None:
    from django.db.models.options import Options
    from django.db.models.utils import make_model_tuple

    operation = partial(types.MethodType(method, signal), receiver, **kw)
    (apps or Options.default_apps).lazy_model_operation(operation, make_model_tuple(sender))


def _lazy_connect(
    self: Any,
    receiver: Any,
    sender: object = None,
    weak: bool = True,
    dispatch_uid: object = None,
    **options: Any,
) -> None:
    # The base connect, as Django's ModelSignal calls super().connect: the model class
    # has been resolved by now.
    DjangoSignal.connect(self, receiver, sender, weak, dispatch_uid, **options)


def _lazy_disconnect(
    self: Any, receiver: Any = None, sender: object = None, dispatch_uid: object = None
) -> None:
    DjangoSignal.disconnect(self, receiver, sender, dispatch_uid)


# Django's system check (core/checks/model_checks.py) recognises a lazy signal connection
# among the pending operations by the (module, name) of the bound method inside the
# partial, and names the receiver from its first argument. These two are that method.
for _function, _name in ((_lazy_connect, "connect"), (_lazy_disconnect, "disconnect")):
    _function.__module__ = "django.dispatch.dispatcher"
    _function.__name__ = _name
    _function.__qualname__ = f"Signal.{_name}"


# -- the classes that signals are switched to and back from --------------------------

_lock = threading.RLock()
_installed = False
_to_tocsin: dict[type, type] = {
    _DJANGO_SIGNAL: DjangoSignal,
    _DJANGO_MODEL_SIGNAL: DjangoModelSignal,
}
_to_django: dict[type, type] = {
    DjangoSignal: _DJANGO_SIGNAL,
    DjangoModelSignal: _DJANGO_MODEL_SIGNAL,
}


def _tocsin_class(cls: type) -> type:
    """The tocsin class for Django signal class *cls* (made once for a subclass)."""
    if issubclass(cls, Signal):
        return cls
    found = _to_tocsin.get(cls)
    if found is None:
        base = DjangoModelSignal if issubclass(cls, _DJANGO_MODEL_SIGNAL) else DjangoSignal
        # The subclass first, so its overrides win; their super() reaches tocsin.
        found = type(
            cls.__name__,
            (cls, base),
            {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
            },
        )
        _to_tocsin[cls] = found
        _to_django[found] = cls
    return found


def _make_id(target: object) -> object:
    # Django's receiver identity, to tell a dispatch_uid from a receiver's own key.
    if hasattr(target, "__func__"):
        return (id(target.__self__), id(target.__func__))  # type: ignore[attr-defined]
    return id(target)


class _Connection:
    """A receiver read from a Django signal's ``receivers``, to connect again."""

    __slots__ = ("dispatch_uid", "receiver", "sender", "sender_key", "weak")

    def __init__(self, entry: tuple[Any, ...]) -> None:
        (receiver_key, self.sender_key), reference, *rest = entry
        self.weak = isinstance(reference, weakref.ReferenceType)
        self.receiver = reference() if self.weak else reference
        self.dispatch_uid = None
        if self.receiver is not None and receiver_key != _make_id(self.receiver):
            self.dispatch_uid = receiver_key
        # Django 6.0 keeps a weak reference to the sender; 5.2 only its id.
        sender_ref = rest[0] if len(rest) == 2 else None
        self.sender: object = None
        if sender_ref is not None:
            self.sender = sender_ref()
            if self.sender is None:
                self.receiver = None  # its sender is dead: Django would not call it

    @property
    def needs_sender(self) -> bool:
        return self.receiver is not None and self.sender is None and self.sender_key != NONE_ID


def _switch(signal: Any, found_senders: dict[int, object], module: str | None) -> None:
    """Turn Django signal *signal* into a tocsin Signal in place, keeping its receivers."""
    state = vars(signal)
    connections = [_Connection(entry) for entry in state.get("receivers", ())]
    use_caching = bool(state.get("use_caching", False))
    for name in _DJANGO_STATE:
        state.pop(name, None)
    signal.__class__ = _tocsin_class(type(signal))
    Signal.__init__(signal, use_caching)
    _registry.register(signal, module)
    for connection in connections:
        if connection.receiver is None:
            continue
        sender = connection.sender
        if connection.needs_sender:
            if connection.sender_key not in found_senders:
                warnings.warn(
                    f"tocsin could not keep {connection.receiver!r} connected to {signal!r}: "
                    f"its sender (id {connection.sender_key:#x}) was not found. Connect it "
                    "after the switch (in AppConfig.ready(), say).",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            sender = found_senders[connection.sender_key]
        try:
            Signal.connect(
                signal, connection.receiver, sender, connection.weak, connection.dispatch_uid
            )
        except (TypeError, ValueError) as error:
            warnings.warn(
                f"tocsin could not keep {connection.receiver!r} connected to {signal!r}: {error}",
                RuntimeWarning,
                stacklevel=2,
            )


def _switch_back(signal: Any) -> None:
    """Turn tocsin signal *signal* back into the Django signal it was, with its receivers."""
    connections = _tocsin_connections(signal)
    use_caching = signal.use_caching
    state = vars(signal)
    for name in [*state]:
        if name in _TOCSIN_STATE:
            del state[name]
    _registry.unregister(signal)
    signal.__class__ = _to_django[type(signal)]
    _DJANGO_INIT(signal, use_caching=use_caching)
    for receiver, sender, weak, dispatch_uid in connections:
        _DJANGO_CONNECT(signal, receiver, sender, weak, dispatch_uid)


def _tocsin_connections(signal: Signal) -> list[tuple[Any, object, bool, object]]:
    """(receiver, sender, weak, dispatch_uid) of each live receiver, in connection order."""
    connections = []
    for entry in signal.receivers:
        receiver, bucket = entry(), entry.bucket
        if receiver is None or not bucket.alive():
            continue
        if bucket.sender_key == NONE_ID:
            sender = None
        else:
            sender = bucket.sender_ref() if bucket.sender_ref is not None else bucket.sender
        uid = entry.key.uid if isinstance(entry.key, DispatchUid) else None
        connections.append((receiver, sender, entry.weak, uid))
    return connections


def _modules_of(signals: list[Any]) -> dict[int, str]:
    """The module that defines each of *signals* at its top level, by id (one pass)."""
    wanted = {id(signal) for signal in signals}
    found: dict[int, str] = {}
    for name, module in list(sys.modules.items()):
        for value in list(getattr(module, "__dict__", {}).values()):
            if id(value) in wanted and id(value) not in found:
                found[id(value)] = name
    return found


# What a tocsin Signal keeps in its __dict__.
_TOCSIN_STATE = frozenset({*vars(Signal()), "__doc__"})


# -- switching on and off --------------------------------------------------------------


def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
    """Django's ``Signal.__init__`` while the switch is on: the new signal is tocsin's."""
    self.__class__ = _tocsin_class(type(self))
    Signal.__init__(self, *args, **kwargs)


_converting_init = __init__
del __init__


def installed() -> bool:
    """Whether tocsin is Django's dispatcher now."""
    return _installed


def install() -> int:
    """Make every Django signal in this process, and every one made later, a tocsin Signal.

    Safe to call again (the app's ``TocsinConfig`` calls it): nothing happens twice.
    Returns how many existing signals were switched by this call.
    """
    global _installed
    with _lock:
        if _installed:
            return 0
        # Signals made from here on are tocsin's; then the existing ones are switched.
        _DJANGO_SIGNAL.__init__ = _converting_init
        django.dispatch.Signal = django_dispatcher.Signal = DjangoSignal
        model_signals.ModelSignal = DjangoModelSignal
        _dispatcher.logger = logging.getLogger("django.dispatch")
        _async.follow_asgiref = True
        _refs.django_tuple_width = 4 if int(django.VERSION[0]) >= 6 else 3
        # type(), not isinstance(): that would read __class__, which lazy objects
        # (Django's settings among them) answer by setting themselves up.
        signals = [
            obj
            for obj in gc.get_objects()
            if issubclass(type(obj), _DJANGO_SIGNAL) and not issubclass(type(obj), Signal)
        ]
        senders = _find_senders(signals)
        modules = _modules_of(signals)
        for signal in signals:
            _switch(signal, senders, modules.get(id(signal)))
        _retarget_pending({_DJANGO_CONNECT: _lazy_connect, _DJANGO_DISCONNECT: _lazy_disconnect})
        _installed = True
        return len(signals)


def uninstall() -> int:
    """Switch back: every signal the switch made a tocsin Signal becomes a Django
    ``Signal`` (or ``ModelSignal``, or its own subclass) again, with its receivers, and
    signals made from now on are Django's. Mute rules and hooks on them are dropped.

    Signals of classes defined *after* the switch by subclassing ``django.dispatch.Signal``
    (then tocsin's class) stay tocsin Signals: they have no Django class to go back to.
    Returns how many signals were switched back.
    """
    global _installed
    with _lock:
        if not _installed:
            return 0
        _DJANGO_SIGNAL.__init__ = _DJANGO_INIT
        django.dispatch.Signal = django_dispatcher.Signal = _DJANGO_SIGNAL
        model_signals.ModelSignal = _DJANGO_MODEL_SIGNAL
        _dispatcher.logger = logging.getLogger("tocsin.dispatch")
        _async.follow_asgiref = False
        _refs.django_tuple_width = 4
        signals = [signal for signal in _registry.known_signals() if type(signal) in _to_django]
        for signal in signals:
            _switch_back(signal)
        _retarget_pending({_lazy_connect: _DJANGO_CONNECT, _lazy_disconnect: _DJANGO_DISCONNECT})
        _installed = False
        return len(signals)


def _find_senders(signals: list[Any]) -> dict[int, object]:
    """The senders that Django knows only by id (5.2 keeps no reference to them; 6.x none
    to a sender that cannot be weakly referenced), found among the live objects."""
    wanted: set[int] = set()
    for signal in signals:
        for entry in vars(signal).get("receivers", ()):
            connection = _Connection(entry)
            if connection.needs_sender:
                wanted.add(connection.sender_key)
    found: dict[int, object] = {}
    if wanted:
        for signal in signals:
            for sender in list(
                getattr(vars(signal).get("sender_receivers_cache"), "keys", list)()
            ):
                if id(sender) in wanted:
                    found[id(sender)] = sender
        objects = gc.get_objects()
        for obj in objects:
            if id(obj) in wanted:
                found[id(obj)] = obj
        if wanted - found.keys():
            # Strings, numbers and other objects the collector does not track are found
            # through what refers to them (a module's globals, a function's constants).
            for obj in gc.get_referents(*objects):
                if id(obj) in wanted:
                    found[id(obj)] = obj
    return found


def _retarget_pending(methods: dict[Callable[..., Any], Callable[..., Any]]) -> None:
    """Point the lazy signal connections queued in Django's app registry at *methods*."""
    from django.apps import apps

    for operations in list(apps._pending_operations.values()):
        for operation in operations:
            function = getattr(operation, "func", None)
            if not (isinstance(function, partial) and isinstance(function.func, types.MethodType)):
                continue
            method = function.func
            replacement = methods.get(method.__func__)
            if replacement is not None and isinstance(method.__self__, _DJANGO_SIGNAL):
                operation.func = partial(
                    types.MethodType(replacement, method.__self__),
                    *function.args,
                    **function.keywords,
                )
