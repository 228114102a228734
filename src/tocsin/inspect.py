"""What is connected to what: a stable, public description of signals and receivers.

``describe(signal)`` and ``describe_all()`` return plain dataclasses (``to_dict()`` gives
JSON-ready dicts) naming each live receiver, where it is defined, and how it is
connected. They read ``Signal.connections()``, never the dispatcher's internals.
"""

from __future__ import annotations

import functools
import inspect as _inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tocsin._checks import check_receiver
from tocsin._dispatcher import Connection, Signal
from tocsin._lazy import PendingConnection, registry
from tocsin._registry import dotted_path, known_signals

__all__ = [
    "ReceiverInfo",
    "SignalInfo",
    "check_receiver",
    "describe",
    "describe_all",
    "describe_receiver",
    "receiver_location",
    "receiver_name",
    "sender_label",
    "signal_label",
]


@dataclass(frozen=True)
class ReceiverInfo:
    """One receiver connected to a signal.

    name: ``module.qualname`` (``functools.partial(module.f)`` for a partial, the class
    for a callable object). module/qualname: its parts. kind: ``"function"``,
    ``"method"``, ``"partial"``, ``"callable object"``, ``"class"`` or ``"builtin"``.
    file/line: where it is defined, if known. sender: the sender filter, as text
    (None: any sender). The rest as given to ``connect`` (see ``tocsin.Connection``).
    waiting_for: for a receiver connected to a lazy sender (``sender="Order"``) whose
    class is not registered yet, that name; None for a live connection.
    """

    name: str
    module: str | None
    qualname: str
    kind: str
    file: str | None
    line: int | None
    sender: str | None
    weak: bool
    dispatch_uid: str | None
    priority: int
    is_async: bool
    after_commit: bool
    receiver: Callable[..., Any] = field(repr=False, compare=False)
    sender_object: Any = field(default=None, repr=False, compare=False)
    waiting_for: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """This receiver as a JSON-ready dict (without the receiver and sender objects)."""
        return {
            "name": self.name,
            "module": self.module,
            "qualname": self.qualname,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "sender": self.sender,
            "weak": self.weak,
            "dispatch_uid": self.dispatch_uid,
            "priority": self.priority,
            "is_async": self.is_async,
            "after_commit": self.after_commit,
            "waiting_for": self.waiting_for,
        }


@dataclass(frozen=True)
class SignalInfo:
    """A signal and its live receivers, in dispatch order.

    name: the dotted path if it has one, else its explicit ``name=``, else its repr.
    dotted_path: ``module.attribute`` where it is defined, if it is a module attribute.
    explicit_name: its ``name=``. module: the module it is defined in, if known.
    waiting: receivers connected to a lazy sender not registered yet (``waiting_for``
    names it); they are not in ``receivers``, since a send cannot reach them.
    """

    name: str
    dotted_path: str | None
    explicit_name: str | None
    module: str | None
    doc: str | None
    providing_args: list[str] | None
    receivers: list[ReceiverInfo]
    signal: Signal = field(repr=False, compare=False)
    waiting: list[ReceiverInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """This signal as a JSON-ready dict, receivers included."""
        return {
            "name": self.name,
            "dotted_path": self.dotted_path,
            "explicit_name": self.explicit_name,
            "module": self.module,
            "doc": self.doc,
            "providing_args": self.providing_args,
            "receivers": [receiver.to_dict() for receiver in self.receivers],
            "waiting": [receiver.to_dict() for receiver in self.waiting],
        }


def describe(signal: Signal) -> SignalInfo:
    """Describe *signal* and every receiver live on it now. Returns a ``SignalInfo``."""
    path = dotted_path(signal)
    return SignalInfo(
        name=path or signal.name or repr(signal),
        dotted_path=path,
        explicit_name=signal.name,
        module=path.rpartition(".")[0] if path else None,
        doc=signal.doc,
        providing_args=None if signal.providing_args is None else sorted(signal.providing_args),
        receivers=[describe_receiver(connection) for connection in signal.connections()],
        signal=signal,
        waiting=[_describe_pending(p) for p in registry.pending() if p.signal is signal],
    )


def describe_all(
    signals: Iterable[Signal] | None = None, *, connected_only: bool = False
) -> list[SignalInfo]:
    """Describe *signals* (default: every signal alive in the process), sorted by name.

    ``connected_only`` leaves out signals with no live receiver. Returns a list of
    ``SignalInfo``.
    """
    infos = [describe(signal) for signal in (known_signals() if signals is None else signals)]
    if connected_only:
        infos = [info for info in infos if info.receivers]
    return sorted(infos, key=lambda info: (info.name, id(info.signal)))


def describe_receiver(connection: Connection) -> ReceiverInfo:
    """Describe one connection (an item of ``Signal.connections()``)."""
    receiver = connection.receiver
    module, qualname, kind = _naming(receiver)
    file, line = receiver_location(receiver, exact=True)
    uid = connection.dispatch_uid
    return ReceiverInfo(
        name=_join(module, qualname, kind),
        module=module,
        qualname=qualname,
        kind=kind,
        file=file,
        line=line,
        sender=None if connection.sender is None else sender_label(connection.sender),
        weak=connection.weak,
        dispatch_uid=None if uid is None else (uid if isinstance(uid, str) else repr(uid)),
        priority=connection.priority,
        is_async=connection.is_async,
        after_commit=connection.after_commit,
        receiver=receiver,
        sender_object=connection.sender,
    )


def _describe_pending(pending: PendingConnection) -> ReceiverInfo:
    """Describe a connection waiting for its lazy sender's class to be registered."""
    receiver = pending.receiver
    module, qualname, kind = _naming(receiver)
    file, line = receiver_location(receiver, exact=True)
    uid = pending.dispatch_uid
    try:
        is_async = check_receiver(receiver)
    except Exception:  # it is checked when it connects; a listing only describes it
        is_async = False
    return ReceiverInfo(
        name=_join(module, qualname, kind),
        module=module,
        qualname=qualname,
        kind=kind,
        file=file,
        line=line,
        sender=repr(pending.name),
        weak=pending.weak,
        dispatch_uid=None if uid is None else (uid if isinstance(uid, str) else repr(uid)),
        priority=pending.priority,
        is_async=is_async,
        after_commit=bool(getattr(receiver, "_tocsin_after_commit", False)),
        receiver=receiver,
        sender_object=pending.name,
        waiting_for=pending.name,
    )


def receiver_name(receiver: object) -> str:
    """A readable, qualified name for any receiver: ``module.qualname`` for functions and
    methods, ``functools.partial(module.f)`` for partials, the class for callable
    objects, and the repr when nothing better is known. Never raises."""
    module, qualname, kind = _naming(receiver)
    return _join(module, qualname, kind)


def receiver_location(receiver: object, *, exact: bool = False) -> tuple[str | None, int | None]:
    """Where *receiver*'s code is defined: ``(file, first line)``, either None if unknown
    (builtins). With ``exact``, the file is checked with ``inspect.getsourcefile`` (and a
    class's line found by reading its source); otherwise only code objects are read,
    which is cheap enough to do on every call. Never raises."""
    try:
        target = _code_owner(receiver)
        code = getattr(target, "__code__", None)
        if code is not None:
            file = code.co_filename
            if exact:
                file = _inspect.getsourcefile(code) or file
            return file, code.co_firstlineno
        if isinstance(target, type) and exact:
            file = _inspect.getsourcefile(target)
            line = _inspect.getsourcelines(target)[1] if file else None
            return file, line
    except Exception:  # introspection is best effort: builtins, odd objects
        pass
    return None, None


def signal_label(signal: Signal) -> str:
    """How messages name *signal*: its dotted path, else its ``name=``, else its repr.

    Shared by the testing helpers' messages and the OpenTelemetry spans' attributes,
    which is why it lives here and not in either of them.
    """
    return dotted_path(signal) or signal.name or repr(signal)


def sender_label(sender: object) -> str:
    """The text for a sender filter: a class as ``module.qualname``, else its repr."""
    if isinstance(sender, type):
        return f"{sender.__module__}.{sender.__qualname__}"
    try:
        return repr(sender)
    except Exception:  # a sender whose repr is broken still deserves a label
        return f"<{type(sender).__qualname__} object at {id(sender):#x}>"


def _unwrap(receiver: object) -> object:
    # @after_commit (and any functools.wraps decorator) hides the function written by
    # the user behind a wrapper: name and locate the function itself.
    try:
        return _inspect.unwrap(receiver) if callable(receiver) else receiver
    except ValueError:  # a cycle of __wrapped__
        return receiver


def _code_owner(receiver: object) -> object:
    """The function (or class) whose code runs when *receiver* is called."""
    receiver = _unwrap(receiver)
    for _ in range(10):  # partials of partials, methods of partials...
        if isinstance(receiver, functools.partial):
            receiver = _unwrap(receiver.func)
        elif _inspect.ismethod(receiver):
            receiver = receiver.__func__
        else:
            break
    if _inspect.isfunction(receiver) or isinstance(receiver, type):
        return receiver
    call = _inspect.getattr_static(type(receiver), "__call__", None)
    return call if _inspect.isfunction(call) else receiver


def _naming(receiver: object) -> tuple[str | None, str, str]:
    """(module, qualname, kind) of *receiver*."""
    try:
        target = _unwrap(receiver)
        if isinstance(target, functools.partial):
            module, qualname, _ = _naming(target.func)
            return module, qualname, "partial"
        if _inspect.ismethod(target):
            function = target.__func__
            return function.__module__, function.__qualname__, "method"
        if _inspect.isfunction(target):
            return target.__module__, str(target.__qualname__), "function"
        if isinstance(target, type):
            return target.__module__, target.__qualname__, "class"
        if _inspect.isbuiltin(target) or _inspect.ismethoddescriptor(target):
            name = getattr(target, "__qualname__", None) or getattr(target, "__name__", "?")
            return getattr(target, "__module__", None), str(name), "builtin"
        cls = type(target)
        return cls.__module__, cls.__qualname__, "callable object"
    except Exception:  # naming must never break a listing or a span
        return None, _safe_repr(receiver), "unknown"


def _join(module: str | None, qualname: str, kind: str) -> str:
    name = f"{module}.{qualname}" if module and module != "builtins" else qualname
    return f"functools.partial({name})" if kind == "partial" else name


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object>"
