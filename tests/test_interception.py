"""Muting, capturing, hooks and strictness step into sends without replacing methods.

The public send methods are always the class's own: a subclass that overrides one keeps
its override in every mode, and calling ``Signal.send`` on a strict signal checks it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from tocsin import Hook, Signal, add_hook, remove_hook
from tocsin._hooks import add_signal_hook, remove_signal_hook
from tocsin.testing import capture, mute

SEND_METHODS = ("send", "send_robust", "asend", "asend_robust")


class AuditedSignal(Signal):
    """A subclass that overrides the send methods, as Django apps and libraries do."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit: list[str] = []

    def send(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        self.audit.append("send")
        return super().send(sender, **named)

    def send_robust(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        self.audit.append("send_robust")
        return super().send_robust(sender, **named)

    async def asend(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        self.audit.append("asend")
        return await super().asend(sender, **named)

    async def asend_robust(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        self.audit.append("asend_robust")
        return await super().asend_robust(sender, **named)


def on_order(**kwargs: Any) -> str:
    return "handled"


@contextmanager
def hooked(signal: Signal) -> Iterator[None]:
    hook = Hook()
    add_signal_hook(signal, hook)
    try:
        yield
    finally:
        remove_signal_hook(signal, hook)


@contextmanager
def globally_hooked(signal: Signal) -> Iterator[None]:
    hook = Hook()
    add_hook(hook)
    try:
        yield
    finally:
        remove_hook(hook)


def captured(signal: Signal) -> AbstractContextManager[Any]:
    return capture(signal)


def muted_for_another_sender(signal: Signal) -> AbstractContextManager[Any]:
    return mute(signal, sender="someone else")


MODES: dict[str, Callable[[Signal], AbstractContextManager[Any]]] = {
    "captured": captured,
    "muted for another sender": muted_for_another_sender,
    "hooked": hooked,
    "globally hooked": globally_hooked,
}


def call(signal: Signal, method: str, sender: object, **named: Any) -> Any:
    result = getattr(signal, method)(sender, **named)
    return asyncio.run(result) if method.startswith("a") else result


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", SEND_METHODS)
def test_a_subclass_keeps_its_send_override_in_every_mode(mode: str, method: str) -> None:
    signal = AuditedSignal()
    signal.connect(on_order)

    with MODES[mode](signal):
        assert signal._intercept is not None
        responses = call(signal, method, "shop")

    assert signal.audit == [method]
    assert [response for _, response in responses] == ["handled"]
    assert signal._intercept is None


@pytest.mark.parametrize("method", SEND_METHODS)
def test_a_muted_subclass_runs_its_override_and_calls_no_receiver(method: str) -> None:
    signal = AuditedSignal()
    signal.connect(on_order)

    with mute(signal):
        assert call(signal, method, "shop") == []

    assert signal.audit == [method]


@pytest.mark.parametrize("method", SEND_METHODS)
def test_a_strict_subclass_keeps_its_override_and_is_checked(method: str) -> None:
    signal = AuditedSignal(providing_args=["order_id"], strict=True)
    signal.connect(on_order)

    with pytest.raises(TypeError, match="missing keyword argument"):
        call(signal, method, "shop")
    call(signal, method, "shop", order_id=1)

    assert signal.audit == [method, method]


@pytest.mark.parametrize("method", SEND_METHODS)
def test_calling_the_class_method_on_a_strict_signal_still_checks(method: str) -> None:
    signal = Signal(providing_args=["order_id"], strict=True)
    signal.connect(on_order)
    unbound = getattr(Signal, method)

    def through_the_class(**named: Any) -> Any:
        result = unbound(signal, None, **named)
        return asyncio.run(result) if method.startswith("a") else result

    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'wrong'"):
        through_the_class(order_id=1, wrong=1)
    assert [response for _, response in through_the_class(order_id=1)] == ["handled"]


@pytest.mark.parametrize("mode", MODES)
def test_no_mode_puts_anything_on_the_instance(mode: str) -> None:
    signal = Signal(providing_args=["order_id"], strict=True)
    before = set(vars(signal))

    with MODES[mode](signal):
        assert set(vars(signal)) == before
        assert all(getattr(type(signal), name) is getattr(Signal, name) for name in SEND_METHODS)


@pytest.mark.parametrize("method", SEND_METHODS)
def test_capture_sees_sends_of_a_signal_nobody_receives(method: str) -> None:
    signal = Signal()

    with capture(signal) as sent:
        assert call(signal, method, "shop", order_id=1) == []

    assert [(record.method, record.kwargs) for record in sent] == [(method, {"order_id": 1})]


@pytest.mark.parametrize("method", SEND_METHODS)
def test_strictness_is_checked_even_with_no_receivers(method: str) -> None:
    signal = Signal(providing_args=["order_id"], strict=True)

    with pytest.raises(TypeError, match="missing keyword argument"):
        call(signal, method, "shop")


def test_asend_takes_the_empty_signal_short_cut_as_send_does() -> None:
    signal = Signal()

    assert asyncio.run(signal.asend("shop")) == []
    assert asyncio.run(signal.asend_robust("shop")) == []
    assert signal.send("shop") == []

    # Nothing was looked up for the sender: an empty signal answers at once.
    assert dict(signal.sender_receivers_cache) == {}


def test_strict_can_be_switched_after_creation() -> None:
    signal = Signal(providing_args=["order_id"])
    signal.connect(on_order)
    assert signal.send("shop", wrong=1)  # not strict: anything goes

    signal.strict = True
    assert signal._intercept is not None
    with pytest.raises(TypeError, match="'wrong'"):
        signal.send("shop", order_id=1, wrong=1)

    signal.strict = False
    assert signal._intercept is None
    assert signal.send("shop", wrong=1)


def test_strict_needs_providing_args_when_switched_on_later() -> None:
    signal = Signal()

    with pytest.raises(TypeError, match="needs providing_args"):
        signal.strict = True
    assert signal.strict is False
    assert signal._intercept is None


def test_a_strict_signal_stays_strict_when_a_hook_comes_and_goes() -> None:
    signal = Signal(providing_args=["order_id"], strict=True)

    with hooked(signal), mute(signal), pytest.raises(TypeError, match="missing"):
        signal.send("shop")
    with pytest.raises(TypeError, match="missing"):
        signal.send("shop")
    assert signal._intercept is not None


def test_concurrent_mutes_leave_the_fast_path_in_place_at_the_end() -> None:
    signal = Signal()
    signal.connect(on_order)
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def mute_and_send() -> None:
        try:
            start.wait()
            for _ in range(200):
                with mute(signal):
                    assert signal.send("shop") == []
                signal.send("shop")  # whatever the other threads are doing: no error
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=mute_and_send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert signal._intercept is None
    assert [response for _, response in signal.send("shop")] == ["handled"]


def test_a_captured_signal_has_listeners_so_that_skipped_sends_are_still_made() -> None:
    signal = Signal()
    assert not signal.has_listeners()

    with capture(signal):
        assert signal.has_listeners()
        assert signal.has_listeners("any sender")

    assert not signal.has_listeners()


def test_a_global_hook_does_not_count_as_a_listener() -> None:
    signal = Signal()
    hook = Hook()
    add_hook(hook)
    try:
        assert not signal.has_listeners()
    finally:
        remove_hook(hook)
