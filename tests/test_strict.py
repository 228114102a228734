"""strict=True and strict="types" on typed signals: the stub's declaration, checked at send."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Literal

import pytest

import tocsin
from tocsin import OPTIONAL, Signal, TypedSignal, payload_of, signal
from tocsin.signals import ModelSignal, m2m_changed, post_save, request_started


class PizzaStore:
    pass


def listen(sig: Signal) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs)

    sig.connect(record, weak=False)
    return calls


def declare(strict: Any) -> TypedSignal[type[PizzaStore], ...]:
    @signal(strict=strict)
    def pizza_done(
        sender: type[PizzaStore], *, toppings: list[str], size: int | None = OPTIONAL
    ) -> None:
        """Sent when a pizza is done."""

    return pizza_done


def test_a_typed_signal_is_a_signal_with_the_same_methods():
    pizza_done = declare(False)
    assert isinstance(pizza_done, Signal)
    for name in ("send", "send_robust", "asend", "asend_robust", "connect", "disconnect"):
        assert getattr(type(pizza_done), name) is getattr(Signal, name)
    assert pizza_done._intercept is None  # not strict: the plain send path
    assert pizza_done.name == "pizza_done"
    assert pizza_done.doc == "Sent when a pizza is done."
    assert pizza_done.providing_args == frozenset({"toppings", "size"})


def test_the_declared_payload_is_public():
    pizza_done = declare(False)
    assert dict(pizza_done.payload) == {"toppings": list[str], "size": int | None}
    assert pizza_done.required == frozenset({"toppings"})
    assert pizza_done.sender_type == type[PizzaStore]
    assert payload_of(pizza_done) == pizza_done.payload
    assert dict(payload_of(Signal(providing_args=["b", "a"])) or {}) == {"a": Any, "b": Any}
    assert payload_of(Signal()) is None


def test_without_strict_nothing_is_checked_at_run_time():
    pizza_done = declare(False)
    calls = listen(pizza_done)
    pizza_done.send(PizzaStore(), colour="red")  # type: ignore[arg-type]
    assert calls[0]["colour"] == "red"


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_strict_checks_names_required_and_optional(method):
    pizza_done = declare(True)
    calls = listen(pizza_done)
    send = getattr(pizza_done, method)
    send(PizzaStore, toppings=["basil"])
    send(PizzaStore, toppings=["basil"], size=30)
    assert len(calls) == 2
    with pytest.raises(
        TypeError, match=r"\.send(_robust)?\(\): missing keyword argument\(s\) 'toppings'$"
    ):
        send(PizzaStore, size=30)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'sise'$"):
        send(PizzaStore, toppings=[], sise=30)
    send(PizzaStore, toppings="not a list")  # names only: types are not checked
    assert len(calls) == 3


def test_strict_types_checks_simple_annotations():
    pizza_done = declare("types")
    calls = listen(pizza_done)
    pizza_done.send(PizzaStore, toppings=["basil"], size=None)
    with pytest.raises(
        TypeError,
        match=r"pizza_done.*\.send\(\): keyword argument 'size' must be int \| None, not str$",
    ):
        pizza_done.send(PizzaStore, toppings=[], size="30")
    with pytest.raises(TypeError, match=r"'toppings' must be list\[str\], not tuple$"):
        pizza_done.send(PizzaStore, toppings=("basil",))
    with pytest.raises(TypeError, match=r"sender must be type\[.*PizzaStore\], not PizzaStore$"):
        pizza_done.send(PizzaStore(), toppings=[])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sender must be .*, not the class object$"):
        pizza_done.send(object, toppings=[])  # type: ignore[arg-type]
    assert len(calls) == 1
    assert "strict='types'" in repr(pizza_done)


def test_strict_types_checks_asend_before_anything_runs():
    pizza_done = declare("types")
    calls = listen(pizza_done)
    with pytest.raises(TypeError, match="'size' must be"):
        asyncio.run(pizza_done.asend(PizzaStore, toppings=[], size=1.5))
    with pytest.raises(TypeError, match="missing"):
        asyncio.run(pizza_done.asend_robust(PizzaStore))
    asyncio.run(pizza_done.asend_robust(PizzaStore, toppings=[]))
    assert len(calls) == 1
    # Still coroutine functions, as on a plain signal: strictness replaces no method.
    assert inspect.iscoroutinefunction(pizza_done.asend)
    assert inspect.iscoroutinefunction(pizza_done.asend_robust)


def test_what_cannot_be_checked_is_let_through():
    class Later:  # a name the stub cannot resolve at run time is not checked
        pass

    @signal(strict="types")
    def moved(
        sender: object,
        *,
        where: Literal["in", "out"],
        items: dict[str, int],
        later: Undefined,  # type: ignore[name-defined]  # noqa: F821
        anything: Any,
    ) -> None: ...

    calls = listen(moved)
    moved.send(None, where="in", items={"a": "b"}, later=Later(), anything=object())  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"'where' must be Literal\['in', 'out'\], not str"):
        moved.send(None, where="up", items={}, later=None, anything=None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_an_open_payload_takes_extra_names():
    # mypy refuses a stub with **kwargs after a named sender (pyright accepts it).
    @signal(strict=True)  # type: ignore[arg-type]
    def opened(sender: object, *, required: int, **extra: Any) -> None: ...

    calls = listen(opened)
    opened.send(None, required=1, more=2)
    with pytest.raises(TypeError, match="missing"):
        opened.send(None, more=2)  # type: ignore[call-arg]
    assert calls == [{"signal": opened, "sender": None, "required": 1, "more": 2}]


def test_a_stub_must_say_sender_first_then_keywords():
    with pytest.raises(TypeError, match=r"first parameter .* is the sender"):
        signal(lambda *, size: None)  # type: ignore[arg-type, misc]
    with pytest.raises(TypeError, match="'size' must be keyword-only"):
        signal(lambda sender, size: None)
    with pytest.raises(TypeError, match="'signal' is reserved"):
        signal(lambda sender, *, signal: None)
    with pytest.raises(TypeError, match="strict must be"):
        signal(strict="yes")(lambda sender: None)  # type: ignore[call-overload]


def test_a_typed_signal_is_registered_where_its_stub_is():
    pizza_done = declare(False)
    assert pizza_done in tocsin.known_signals()
    assert tocsin.find_signal("tocsin.signals.post_save") is post_save


def test_built_in_signals_declare_their_payloads():
    assert isinstance(post_save, ModelSignal)
    assert isinstance(post_save, TypedSignal)
    assert post_save.required == {"instance", "created", "raw", "using", "update_fields"}
    assert post_save.payload["created"] is bool
    assert post_save.sender_type == type[Any]
    assert m2m_changed.payload["action"].__args__[0] == "pre_add"
    assert request_started.required == frozenset()
    assert set(request_started.payload) == {"environ", "scope"}
    assert post_save.strict is False
