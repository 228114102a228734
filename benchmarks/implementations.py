"""One adapter per library under test, and the floor that they are all measured against.

An adapter says how to make a signal, connect and disconnect receivers, and which bound
method sends. Timed loops call the library's own bound methods (``signal.send``,
``signal.connect``, ...) directly, never through an adapter method, so that no adapter
frame is ever part of a measurement.

Each library calls its receivers its own way, so each adapter also makes the receivers:
``receiver(sender, **kwargs)`` for the Django-style libraries and blinker, and
``receiver(sender, toppings, size)`` for psygnal, which passes the emitted arguments
positionally. Every receiver returns its index, so that responses can be checked.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

import blinker
import psygnal
from django.dispatch import Signal as DjangoSignal

import tocsin
from tocsin import _dispatcher

Receiver = Callable[..., Any]
# Per-receiver call counts, filled in by the counting receivers used for verification.
Counts = list[int]


class Unsupported(Exception):
    """An implementation cannot do what a case asks; the message says why, briefly."""


# -- the floor ---------------------------------------------------------------------------

_ANY = id(None)


class FloorSignal:
    """The floor: Django's ``send`` contract in as little pure Python as it takes.

    Receivers are plain functions held strongly, keyed by ``id()`` in one dict per sender,
    so connect and disconnect are O(1) dict operations. ``send`` looks up the list of
    receivers resolved for ``id(sender)`` (rebuilt at the first send after a change) and
    runs one list comprehension over it, collecting ``(receiver, response)`` pairs. No
    weak references, no lock, no async receivers, no checks, no logging.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, dict[int, Receiver]] = {}
        self._resolved: dict[int, list[Receiver]] = {}

    def connect(self, receiver: Receiver, sender: object = None) -> None:
        key = id(sender)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = {}
        bucket[id(receiver)] = receiver
        self._invalidate(key)

    def disconnect(self, receiver: Receiver, sender: object = None) -> bool:
        key = id(sender)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.pop(id(receiver), None) is None:
            return False
        self._invalidate(key)
        return True

    def send(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        receivers = self._resolved.get(id(sender))
        if receivers is None:
            receivers = self._resolve(sender)
        return [
            (receiver, receiver(signal=self, sender=sender, **named)) for receiver in receivers
        ]

    def send_robust(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        receivers = self._resolved.get(id(sender))
        if receivers is None:
            receivers = self._resolve(sender)
        responses = []
        for receiver in receivers:
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as error:
                response = error
            responses.append((receiver, response))
        return responses

    async def asend(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        receivers = self._resolved.get(id(sender))
        if receivers is None:
            receivers = self._resolve(sender)
        results = await asyncio.gather(
            *[receiver(signal=self, sender=sender, **named) for receiver in receivers]
        )
        return list(zip(receivers, results, strict=True))

    def _invalidate(self, key: int) -> None:
        if key == _ANY:
            if self._resolved:
                self._resolved.clear()
        else:
            self._resolved.pop(key, None)

    def _resolve(self, sender: object) -> list[Receiver]:
        anyone = self._buckets.get(_ANY)
        receivers = list(anyone.values()) if anyone else []
        own = None if sender is None else self._buckets.get(id(sender))
        if own:
            receivers += own.values()
        self._resolved[id(sender)] = receivers
        return receivers


# -- receivers ---------------------------------------------------------------------------


def keyword_receiver(index: int, counts: Counts | None = None) -> Receiver:
    """A distinct function ``receiver(sender, **kwargs)``; it counts its calls if asked."""
    if counts is None:

        def receiver(sender: Any, **kwargs: Any) -> int:
            return index

    else:

        def receiver(sender: Any, **kwargs: Any) -> int:
            counts[index] += 1
            return index

    return receiver


def positional_receiver(index: int, counts: Counts | None = None) -> Receiver:
    """A distinct function ``receiver(sender, toppings, size)``, for psygnal."""
    if counts is None:

        def receiver(sender: Any, toppings: Any, size: Any) -> int:
            return index

    else:

        def receiver(sender: Any, toppings: Any, size: Any) -> int:
            counts[index] += 1
            return index

    return receiver


def async_keyword_receiver(
    index: int, counts: Counts | None = None
) -> Callable[..., Coroutine[Any, Any, int]]:
    """A distinct coroutine function ``receiver(sender, **kwargs)``."""
    if counts is None:

        async def receiver(sender: Any, **kwargs: Any) -> int:
            return index

    else:

        async def receiver(sender: Any, **kwargs: Any) -> int:
            counts[index] += 1
            return index

    return receiver


class ReceiverFailed(Exception):
    """What a failing receiver raises."""


def failing_keyword_receiver(index: int, counts: Counts | None = None) -> Receiver:
    """A distinct function ``receiver(sender, **kwargs)`` that always raises."""

    def receiver(sender: Any, **kwargs: Any) -> int:
        if counts is not None:
            counts[index] += 1
        raise ReceiverFailed(index)

    return receiver


class KeywordListener:
    """An object whose bound method ``on_pizza`` is connected as a receiver.

    It refers to nothing but an optional list of counts, so it is in no reference cycle
    and dies by reference counting alone.
    """

    __slots__ = ("__weakref__", "counts")

    def __init__(self, counts: Counts | None = None) -> None:
        self.counts = counts

    def on_pizza(self, sender: Any, **kwargs: Any) -> None:
        if self.counts is not None:
            self.counts[0] += 1


class PositionalListener(KeywordListener):
    """``KeywordListener`` with psygnal's calling convention."""

    __slots__ = ()

    def on_pizza(self, sender: Any, toppings: Any, size: Any) -> None:  # type: ignore[override]
        if self.counts is not None:
            self.counts[0] += 1


# -- adapters ----------------------------------------------------------------------------


class Implementation:
    """How the benchmarks drive one library. Defaults follow Django's API."""

    name: ClassVar[str]
    # The distribution whose version is reported (None: part of this suite).
    distribution: ClassVar[str | None] = None
    # Whether sends take the payload as keywords (send(sender, toppings=..., size=...))
    # rather than positionally (emit(sender, toppings, size)).
    keyword_payload: ClassVar[bool] = True
    # Whether a send returns [(receiver, response), ...].
    returns_responses: ClassVar[bool] = True
    # Whether new_signal(caching=True) means anything.
    has_caching_option: ClassVar[bool] = False
    # Whether bound-method receivers are held weakly by default (the floor holds
    # everything strongly, so case 8 does not connect its dying owners).
    holds_weakly: ClassVar[bool] = True
    listener_class: ClassVar[type[KeywordListener]] = KeywordListener

    def version(self) -> str:
        if self.distribution is None:
            return "-"
        return importlib.metadata.version(self.distribution)

    def new_signal(self, caching: bool = False) -> Any:
        raise NotImplementedError

    def connect(self, signal: Any, receiver: Receiver, sender: object = None) -> None:
        signal.connect(receiver, sender=sender)

    def disconnect(self, signal: Any, receiver: Receiver, sender: object = None) -> None:
        signal.disconnect(receiver, sender=sender)

    def send_method(self, signal: Any) -> Callable[..., Any]:
        return signal.send  # type: ignore[no-any-return]

    def robust_send_method(self, signal: Any) -> Callable[..., Any]:
        return signal.send_robust  # type: ignore[no-any-return]

    def async_send_method(self, signal: Any) -> Callable[..., Coroutine[Any, Any, Any]]:
        return signal.asend  # type: ignore[no-any-return]

    def responders(self, responses: Any) -> list[Receiver]:
        """The receivers named in what a send returned."""
        return [receiver for receiver, _ in responses]

    def receiver(self, index: int, counts: Counts | None = None) -> Receiver:
        return keyword_receiver(index, counts)

    def async_receiver(self, index: int, counts: Counts | None = None) -> Receiver:
        return async_keyword_receiver(index, counts)

    def failing_receiver(self, index: int, counts: Counts | None = None) -> Receiver:
        return failing_keyword_receiver(index, counts)


class Floor(Implementation):
    name = "floor"
    holds_weakly = False

    def new_signal(self, caching: bool = False) -> FloorSignal:
        return FloorSignal()


class Tocsin(Implementation):
    name = "tocsin"
    distribution = "tocsin"
    has_caching_option = True

    def new_signal(self, caching: bool = False) -> tocsin.Signal:
        return tocsin.Signal(use_caching=caching)


class PureSignal(tocsin.Signal):
    """tocsin's Signal with the pure-Python send methods, whichever path is active, so
    that both paths are measured side by side in one process."""

    send = _dispatcher.pure_send
    send_robust = _dispatcher.pure_send_robust


class TocsinPure(Implementation):
    """tocsin on its pure-Python send path (what TOCSIN_NO_EXTENSIONS=1 selects)."""

    name = "tocsin-pure"
    has_caching_option = True

    def new_signal(self, caching: bool = False) -> tocsin.Signal:
        return PureSignal(use_caching=caching)


class Django(Implementation):
    name = "django"
    distribution = "django"
    has_caching_option = True

    def new_signal(self, caching: bool = False) -> Any:
        return DjangoSignal(use_caching=caching)


class Blinker(Implementation):
    name = "blinker"
    distribution = "blinker"

    def new_signal(self, caching: bool = False) -> blinker.Signal:
        return blinker.Signal()

    def connect(self, signal: Any, receiver: Receiver, sender: object = None) -> None:
        signal.connect(receiver, sender=blinker.ANY if sender is None else sender)

    def disconnect(self, signal: Any, receiver: Receiver, sender: object = None) -> None:
        signal.disconnect(receiver, sender=blinker.ANY if sender is None else sender)

    def robust_send_method(self, signal: Any) -> Callable[..., Any]:
        raise Unsupported("no send_robust")

    def async_send_method(self, signal: Any) -> Callable[..., Coroutine[Any, Any, Any]]:
        # Awaits the receivers one after another, not concurrently.
        return signal.send_async  # type: ignore[no-any-return]


class Psygnal(Implementation):
    name = "psygnal"
    distribution = "psygnal"
    keyword_payload = False
    returns_responses = False
    listener_class = PositionalListener

    def new_signal(self, caching: bool = False) -> psygnal.SignalInstance:
        return psygnal.SignalInstance((object, object, object))

    def connect(self, signal: Any, receiver: Receiver, sender: object = None) -> None:
        if sender is not None:
            raise Unsupported("no sender filtering")
        signal.connect(receiver)

    def disconnect(self, signal: Any, receiver: Receiver, sender: object = None) -> None:
        if sender is not None:
            raise Unsupported("no sender filtering")
        signal.disconnect(receiver)

    def send_method(self, signal: Any) -> Callable[..., Any]:
        return signal.emit  # type: ignore[no-any-return]

    def robust_send_method(self, signal: Any) -> Callable[..., Any]:
        raise Unsupported("no send_robust; emit returns None")

    def async_send_method(self, signal: Any) -> Callable[..., Coroutine[Any, Any, Any]]:
        raise Unsupported("no awaitable emit")

    def responders(self, responses: Any) -> list[Receiver]:
        raise Unsupported("emit returns None")

    def receiver(self, index: int, counts: Counts | None = None) -> Receiver:
        return positional_receiver(index, counts)

    def async_receiver(self, index: int, counts: Counts | None = None) -> Receiver:
        raise Unsupported("no awaitable emit")

    def failing_receiver(self, index: int, counts: Counts | None = None) -> Receiver:
        raise Unsupported("no send_robust")


def all_implementations() -> list[Implementation]:
    """The floor first, then tocsin (compiled, then pure Python), then its peers."""
    return [Floor(), Tocsin(), TocsinPure(), Django(), Blinker(), Psygnal()]
