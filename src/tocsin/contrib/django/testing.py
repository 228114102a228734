"""``mute_signals`` for Django tests: a TestCase class decorator, a decorator, a block.

::

    from django.db.models.signals import post_save, pre_save
    from tocsin.contrib.django.testing import mute_signals

    @mute_signals(pre_save, post_save)
    class OrderTests(TestCase):
        @classmethod
        def setUpTestData(cls):
            cls.order = OrderFactory()       # no receiver runs, here either

        def test_total(self): ...

        @mute_signals(order_paid)            # on one test
        def test_refund(self): ...

    with mute_signals(post_save, sender=Order):   # around a block
        ...

On a ``TestCase`` (or any ``unittest.TestCase``) class, the muting starts before
``setUpClass`` (so ``setUpTestData`` and the class's fixtures are muted) and ends after
``tearDownClass``; subclasses inherit it. On a factory_boy factory class, it wraps the
factory's object creation, as factory_boy's own ``mute_signals`` does; on a function or
an ``async def``, each call. Moving from factory_boy is one line, the import::

    from factory.django import mute_signals          # before
    from tocsin.contrib.django.testing import mute_signals   # after

Muted sends are skipped whole (they return ``[]``, no receiver runs, the publisher of a
remote signal does not publish), in every thread, as factory_boy's muting (which
disconnects the receivers) is; ``globally=False`` limits it to the current thread or
task. ``sender=`` mutes only the sends of one sender, and ``receivers=`` only some
receivers. Signals must be tocsin signals (every Django signal is, once
``"tocsin.contrib.django"`` is installed); a plain ``django.dispatch.Signal`` is muted
factory_boy's way, by setting its receivers aside, which supports neither option.
"""

from __future__ import annotations

import functools
import inspect
import unittest
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from tocsin._dispatcher import Signal
from tocsin._hooks import Muting
from tocsin.testing import ANY_SENDER, mute

__all__ = ["mute_signals"]

_T = TypeVar("_T")


class mute_signals:
    """Mute *signals* (see the module docstring); a context manager and a decorator of
    ``TestCase`` classes, factory classes, functions and ``async def`` functions."""

    def __init__(
        self,
        *signals: Any,
        sender: object = ANY_SENDER,
        receivers: Collection[Callable[..., Any]] | None = None,
        globally: bool = True,
    ) -> None:
        if not signals:
            raise TypeError("mute_signals() needs at least one signal")
        self.signals = signals
        self._tocsin = [s for s in signals if isinstance(s, Signal)]
        self._plain = [s for s in signals if not isinstance(s, Signal)]
        for plain in self._plain:
            if not hasattr(plain, "receivers") or not hasattr(plain, "sender_receivers_cache"):
                raise TypeError(f"mute_signals() expects signals, not {plain!r}")
        if self._plain and (sender is not ANY_SENDER or receivers is not None):
            raise TypeError(
                "sender= and receivers= need tocsin signals; these are Django's own: "
                f"{self._plain!r} (add 'tocsin.contrib.django' to INSTALLED_APPS)"
            )
        self._muting: Muting | None = (
            mute(*self._tocsin, sender=sender, receivers=receivers, globally=globally)
            if self._tocsin
            else None
        )
        self._saved: list[list[tuple[Any, list[Any]]]] = []

    def __repr__(self) -> str:
        return f"mute_signals({', '.join(map(repr, self.signals))})"

    # -- the block

    def __enter__(self) -> mute_signals:
        saved = []
        for signal in self._plain:
            with signal.lock:
                saved.append((signal, signal.receivers))
                signal.receivers = []
                signal.sender_receivers_cache.clear()
        self._saved.append(saved)
        if self._muting is not None:
            self._muting.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._muting is not None:
            self._muting.__exit__(*exc_info)
        for signal, receivers in reversed(self._saved.pop()):
            with signal.lock:
                # Receivers connected while muted are kept too, after the earlier ones.
                signal.receivers = receivers + signal.receivers
                signal.sender_receivers_cache.clear()

    # -- the decorator

    def __call__(self, target: _T) -> _T:
        if isinstance(target, type):
            if issubclass(target, unittest.TestCase):
                return self._decorate_test_case(target)  # type: ignore[return-value]
            if callable(getattr(target, "_generate", None)):
                return self._decorate_factory(target)  # type: ignore[return-value]
            raise TypeError(
                f"mute_signals() decorates TestCase classes, factory classes and "
                f"functions, not the class {target.__qualname__}"
            )
        if not callable(target):
            raise TypeError(f"mute_signals() decorates classes and functions, not {target!r}")
        function: Callable[..., Any] = target
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def muted_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await function(*args, **kwargs)

            return muted_async  # type: ignore[return-value]

        @functools.wraps(function)
        def muted(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return muted  # type: ignore[return-value]

    def _decorate_test_case(self, cls: type[unittest.TestCase]) -> type[unittest.TestCase]:
        own = cls.__dict__.get("setUpClass")
        muting = self

        def setUpClass(klass: type[unittest.TestCase]) -> None:
            muting.__enter__()
            # Class cleanups run after tearDownClass, and also when setUpClass fails.
            klass.addClassCleanup(muting.__exit__, None, None, None)
            if own is not None:
                own.__func__(klass)
            else:
                super(cls, klass).setUpClass()  # type: ignore[misc]

        cls.setUpClass = classmethod(setUpClass)  # type: ignore[assignment,method-assign]
        return cls

    def _decorate_factory(self, cls: type[Any]) -> type[Any]:
        generate = cls._generate
        muting = self

        def _generate(klass: type[Any], *args: Any, **kwargs: Any) -> Any:
            with muting:
                return generate.__func__(klass, *args, **kwargs)

        cls._generate = classmethod(_generate)
        return cls
