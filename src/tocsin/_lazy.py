"""Senders named before they exist: ``connect(receiver, sender="Article")``.

Model classes are often defined after (or in modules that import) the receivers that
want them. A lazy sender names the class instead: its short name (``"Article"``) or its
dotted path (``"blog.models.Article"``). The connection is made when a class of that
name is registered, at once if it already is.

Integrations register the classes they prepare (the SQLAlchemy integration does it when
a class is mapped). A name that matches several registered classes is ambiguous: it is
refused with an error that lists them, and a deferred connection that becomes ambiguous
later is reported with a warning. Names that never resolve can be listed, and checked at
start-up with ``check_lazy_senders()``.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LazySenderWarning",
    "PendingConnection",
    "SenderRegistry",
    "check_lazy_senders",
    "registry",
]


class LazySenderWarning(UserWarning):
    """A lazily named sender became ambiguous after a receiver was connected to it."""


@dataclass
class PendingConnection:
    """A connection waiting for its sender class to be registered."""

    name: str
    signal: Any
    receiver: Callable[..., Any]
    connect: Callable[[type], None] = field(repr=False)
    dispatch_uid: object = None
    # As given to connect, for listings (``tocsin inspect``): applied when it connects.
    weak: bool = True
    priority: int = 0

    def has_key(self, receiver: object, dispatch_uid: object) -> bool:
        """Whether this is the connection ``disconnect(receiver, name, dispatch_uid)`` means."""
        if dispatch_uid:
            return bool(self.dispatch_uid == dispatch_uid)
        return not self.dispatch_uid and self.receiver is receiver

    def describe(self) -> str:
        receiver = getattr(self.receiver, "__qualname__", None) or repr(self.receiver)
        return f"{receiver} on {self.signal!r} with sender {self.name!r}"


class SenderRegistry:
    """The classes that lazy sender names can refer to, and the connections waiting for them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # name -> weak references to the classes registered under it (short and dotted)
        self._classes: dict[str, list[weakref.ref[type]]] = {}
        self._pending: list[PendingConnection] = []
        # connections already made, by name: to warn if the name becomes ambiguous
        self._resolved: dict[str, list[tuple[PendingConnection, weakref.ref[type]]]] = {}

    @staticmethod
    def names_of(model: type) -> tuple[str, str]:
        """The names a class can be found by: its own name and its dotted path."""
        return model.__name__, f"{model.__module__}.{model.__qualname__}"

    def register(self, cls: type) -> None:
        """Make *cls* findable by its names, and make the connections waiting for it."""
        ready: list[PendingConnection] = []
        with self._lock:
            for name in self.names_of(cls):
                refs = self._classes.setdefault(name, [])
                refs[:] = [ref for ref in refs if ref() is not None and ref() is not cls]
                refs.append(weakref.ref(cls))
                if len(refs) > 1:
                    self._warn_if_connected(name, refs)
            waiting = []
            for pending in self._pending:
                if pending.name in self.names_of(cls) and len(self._live(pending.name)) == 1:
                    ready.append(pending)
                else:
                    waiting.append(pending)
            self._pending = waiting
            for pending in ready:
                self._resolved.setdefault(pending.name, []).append((pending, weakref.ref(cls)))
        for pending in ready:
            pending.connect(cls)

    def resolve(self, name: str) -> type | None:
        """The one class registered under *name*, or None if there is none yet.

        Raises ``LookupError`` if the name is ambiguous.
        """
        with self._lock:
            classes = self._live(name)
        if len(classes) > 1:
            paths = ", ".join(sorted(f"{c.__module__}.{c.__qualname__}" for c in classes))
            raise LookupError(
                f"The lazy sender {name!r} is ambiguous: it names {paths}. "
                "Use the dotted path of the one you mean."
            )
        return classes[0] if classes else None

    def defer(self, pending: PendingConnection) -> None:
        """Connect now if the class is known, else when it is registered."""
        with self._lock:
            cls = self.resolve(pending.name)
            if cls is None:
                self._pending.append(pending)
                return
            self._resolved.setdefault(pending.name, []).append((pending, weakref.ref(cls)))
        pending.connect(cls)

    def cancel(self, name: str, signal: Any, matches: Callable[[PendingConnection], bool]) -> None:
        """Forget the connections to *name* on *signal* that *matches* accepts: those still
        waiting, and the record of those made (they no longer warn about ambiguity)."""
        with self._lock:
            self._pending = [
                p
                for p in self._pending
                if not (p.name == name and p.signal is signal and matches(p))
            ]
            if name in self._resolved:
                self._resolved[name] = [
                    (p, cls)
                    for p, cls in self._resolved[name]
                    if not (p.signal is signal and matches(p))
                ]

    def pending(self) -> list[PendingConnection]:
        """The connections still waiting for a class of their name."""
        with self._lock:
            return list(self._pending)

    def forget(self, cls: type) -> None:
        """Stop finding *cls* by its names (for tests that declare classes repeatedly)."""
        with self._lock:
            for name in self.names_of(cls):
                refs = self._classes.get(name, [])
                refs[:] = [ref for ref in refs if ref() is not None and ref() is not cls]
                self._resolved[name] = [
                    (p, ref)
                    for p, ref in self._resolved.get(name, [])
                    if ref() is not None and ref() is not cls
                ]

    def _live(self, name: str) -> list[type]:
        return [cls for ref in self._classes.get(name, []) if (cls := ref()) is not None]

    def _warn_if_connected(self, name: str, refs: list[weakref.ref[type]]) -> None:
        for pending, _ in self._resolved.get(name, []):
            paths = ", ".join(
                sorted(f"{c.__module__}.{c.__qualname__}" for r in refs if (c := r()))
            )
            warnings.warn(
                f"The lazy sender {name!r} now names several classes ({paths}); "
                f"{pending.describe()} stays connected to the first. "
                "Use a dotted path to say which one you mean.",
                LazySenderWarning,
                stacklevel=4,
            )


registry = SenderRegistry()


def check_lazy_senders(*, missing: str = "no class of that name was registered") -> None:
    """Raise ``LookupError`` listing every receiver whose lazy sender never resolved.

    Call it once the application's classes are all defined (at start-up, or in a test),
    so that a misspelt sender name fails loudly instead of never being called. *missing*
    is what to say of a name that names no class (``{name}`` is replaced by the name).
    """
    waiting = registry.pending()
    if waiting:
        lines = "\n".join(f"  - {why_waiting(pending, missing)}" for pending in waiting)
        raise LookupError(f"{len(waiting)} receiver(s) wait for their sender class:\n{lines}")


def why_waiting(
    pending: PendingConnection, missing: str = "no class of that name was registered"
) -> str:
    """Why *pending* still waits: its name names several classes, or none (*missing*)."""
    try:
        registry.resolve(pending.name)
    except LookupError as ambiguous:
        return f"{pending.describe()}: {ambiguous}"
    return f"{pending.describe()}: {missing.format(name=pending.name)}"
