# mypy: disallow-untyped-defs=False, disallow-incomplete-defs=False, disallow-untyped-calls=False
"""Sending: ``send`` and ``send_robust`` (sync receivers), ordering, re-entrancy, and
which receivers a sender reaches.

Async receivers are covered in test_async.py.
"""

import dataclasses
import functools
import logging
import sys
import types
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin import Signal


class Store:
    """A typical sender: an ordinary object (hashable, weakly referenceable)."""


def responses(results):
    """The responses of ``send``'s ``[(receiver, response), ...]``, in order."""
    return [response for _, response in results]


def connected_receiver(entry):
    """The receiver of an entry of ``signal.receivers``, Django's 4-tuple."""
    _, ref_or_receiver, _, _ = entry
    if isinstance(ref_or_receiver, weakref.ref):
        return ref_or_receiver()
    return ref_or_receiver


def named(name):
    """A receiver that answers with *name*."""

    def on_event(**kwargs):
        return name

    on_event.__qualname__ = f"named({name!r})"
    return on_event


# -- send ------------------------------------------------------------------------------


def test_send_returns_each_receiver_with_its_response_in_connection_order():
    pizza_done = Signal()
    store = Store()

    def count_pizzas(sender, size, **kwargs):
        return f"counted a {size}cm pizza"

    def notify_customer(sender, **kwargs):
        return "sms sent"

    pizza_done.connect(count_pizzas)
    pizza_done.connect(notify_customer)

    assert pizza_done.send(sender=store, size=30) == [
        (count_pizzas, "counted a 30cm pizza"),
        (notify_customer, "sms sent"),
    ]


def test_receivers_get_signal_sender_and_the_named_arguments_as_keywords():
    pizza_done = Signal()
    store = Store()
    seen: dict[str, object] = {}

    def on_pizza(*, signal, sender, **kwargs):
        seen.update(signal=signal, sender=sender, **kwargs)

    pizza_done.connect(on_pizza)
    pizza_done.send(store, size=30, toppings=["basil"])

    assert seen == {"signal": pizza_done, "sender": store, "size": 30, "toppings": ["basil"]}


def test_send_with_no_receivers_returns_an_empty_list():
    assert Signal().send(sender=Store()) == []
    assert Signal().send_robust(sender=Store()) == []


def test_send_needs_a_sender():
    signal = Signal()
    signal.connect(named("any"), weak=False)

    with pytest.raises(TypeError):
        signal.send()  # type: ignore[call-arg]
    assert responses(signal.send(None)) == ["any"]


@pytest.mark.parametrize("method", ["send", "send_robust"])
@pytest.mark.parametrize("receiver_count", [1, 2])
@pytest.mark.parametrize("reserved", ["signal", "sender"])
def test_signal_and_sender_cannot_be_sent_as_named_arguments(reserved, receiver_count, method):
    signal = Signal()
    for index in range(receiver_count):
        signal.connect(named(f"r{index}"), weak=False)

    with pytest.raises(TypeError, match="multiple values"):
        getattr(signal, method)(Store(), **{reserved: "clash"})


def test_an_exception_in_send_propagates_at_once_and_later_receivers_do_not_run():
    signal = Signal()
    calls = []

    def first(**kwargs):
        calls.append("first")

    def fails(**kwargs):
        raise LookupError("no such pizza")

    def later(**kwargs):
        calls.append("later")

    signal.connect(first)
    signal.connect(fails)
    signal.connect(later)

    with pytest.raises(LookupError, match="no such pizza"):
        signal.send(sender=Store())
    assert calls == ["first"]


def test_responses_are_returned_unchanged_even_when_falsy():
    signal = Signal()
    nothing, zero, empty = named(None), named(0), named("")
    signal.connect(nothing)
    signal.connect(zero)
    signal.connect(empty)

    assert signal.send(sender=Store()) == [(nothing, None), (zero, 0), (empty, "")]


# -- send_robust -----------------------------------------------------------------------


def test_send_robust_returns_exceptions_as_responses_and_calls_everyone():
    signal = Signal()

    def fails(**kwargs):
        raise ValueError("burnt crust")

    later = named("later")
    signal.connect(fails)
    signal.connect(later)

    [(first_receiver, error), (second_receiver, response)] = signal.send_robust(sender=Store())

    assert first_receiver is fails
    assert isinstance(error, ValueError)
    assert str(error) == "burnt crust"
    assert isinstance(error.__traceback__, types.TracebackType)
    assert (second_receiver, response) == (later, "later")


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_send_robust_lets_base_exceptions_through(error):
    signal = Signal()
    calls = []

    def interrupted(**kwargs):
        raise error

    def later(**kwargs):
        calls.append("later")

    signal.connect(interrupted)
    signal.connect(later)

    with pytest.raises(error):
        signal.send_robust(sender=Store())
    assert calls == []


def test_send_robust_logs_each_failure_at_error_with_the_exception(caplog):
    signal = Signal()

    def fails(**kwargs):
        raise ValueError("burnt crust")

    def also_fails(**kwargs):
        raise KeyError("basil")

    signal.connect(fails)
    signal.connect(named("fine"), weak=False)
    signal.connect(also_fails)

    with caplog.at_level(logging.ERROR, logger="tocsin.dispatch"):
        results = signal.send_robust(sender=Store())

    first_error, second_error = results[0][1], results[2][1]
    assert [record.getMessage() for record in caplog.records] == [
        f"Error calling {fails.__qualname__} in Signal.send_robust() (burnt crust)",
        f"Error calling {also_fails.__qualname__} in Signal.send_robust() ('basil')",
    ]
    for record, error in zip(caplog.records, [first_error, second_error], strict=True):
        assert record.levelno == logging.ERROR
        assert record.name == "tocsin.dispatch"
        assert record.exc_info is not None
        assert record.exc_info[1] is error
        assert record.exc_info[2] is error.__traceback__


def test_send_robust_logs_a_bound_method_by_its_qualified_name(caplog):
    signal = Signal()

    class Oven:
        def on_bake(self, **kwargs):
            raise RuntimeError("too hot")

    oven = Oven()
    signal.connect(oven.on_bake)

    with caplog.at_level(logging.ERROR, logger="tocsin.dispatch"):
        signal.send_robust(sender=Store())

    [record] = caplog.records
    assert record.getMessage() == (
        f"Error calling {Oven.on_bake.__qualname__} in Signal.send_robust() (too hot)"
    )


def test_send_robust_logs_nothing_when_no_receiver_fails(caplog):
    signal = Signal()
    signal.connect(named("fine"), weak=False)

    with caplog.at_level(logging.DEBUG, logger="tocsin.dispatch"):
        assert responses(signal.send_robust(sender=Store())) == ["fine"]
    assert caplog.records == []


def test_fix_send_robust_can_log_a_failing_callable_object(caplog):
    # Django reads receiver.__qualname__, which an instance lacks: the logging call
    # itself raised AttributeError out of send_robust.
    signal = Signal()

    class Failing:
        def __call__(self, **kwargs):
            raise ValueError("broken object")

        def __repr__(self):
            return "<Failing handler>"

    handler = Failing()
    signal.connect(handler)

    with caplog.at_level(logging.ERROR, logger="tocsin.dispatch"):
        [(called, error)] = signal.send_robust(sender=Store())

    assert called is handler
    assert isinstance(error, ValueError)
    [record] = caplog.records
    assert record.getMessage() == (
        "Error calling <Failing handler> in Signal.send_robust() (broken object)"
    )


def test_fix_send_robust_can_log_a_failing_partial(caplog):
    signal = Signal()

    def fails(reason, **kwargs):
        raise ValueError(reason)

    handler = functools.partial(fails, "broken partial")
    signal.connect(handler)

    with caplog.at_level(logging.ERROR, logger="tocsin.dispatch"):
        [(called, error)] = signal.send_robust(sender=Store())

    assert called is handler
    assert isinstance(error, ValueError)
    [record] = caplog.records
    assert record.getMessage() == (
        f"Error calling {handler!r} in Signal.send_robust() (broken partial)"
    )


# -- strict signals --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_strict_signal_rejects_missing_keyword_arguments(method):
    pizza_done = Signal(providing_args=["toppings", "size"], strict=True)
    calls = []
    pizza_done.connect(lambda **kwargs: calls.append(kwargs), weak=False)

    with pytest.raises(TypeError, match="missing") as raised:
        getattr(pizza_done, method)(Store(), size=30)
    assert "'toppings'" in str(raised.value)
    assert calls == []


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_strict_signal_rejects_unexpected_keyword_arguments(method):
    pizza_done = Signal(providing_args=["size"], strict=True)
    calls = []
    pizza_done.connect(lambda **kwargs: calls.append(kwargs), weak=False)

    with pytest.raises(TypeError, match="unexpected") as raised:
        getattr(pizza_done, method)(Store(), size=30, crust="thin")
    assert "'crust'" in str(raised.value)
    assert calls == []


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_strict_signal_sends_exactly_its_providing_args(method):
    pizza_done = Signal(providing_args=["toppings", "size"], strict=True)

    def on_pizza(sender, toppings, size, **kwargs):
        return (toppings, size)

    pizza_done.connect(on_pizza)

    results = getattr(pizza_done, method)(Store(), toppings=["basil"], size=30)
    assert results == [(on_pizza, (["basil"], 30))]


def test_a_strict_signal_with_no_providing_args_takes_no_keyword_arguments():
    tick = Signal(providing_args=[], strict=True)
    tick.connect(named("tock"), weak=False)

    assert responses(tick.send(sender=None)) == ["tock"]
    with pytest.raises(TypeError, match="unexpected"):
        tick.send(sender=None, at=12)


def test_providing_args_without_strict_is_documentation_only():
    pizza_done = Signal(providing_args=["size"])
    pizza_done.connect(named("ok"), weak=False)

    assert responses(pizza_done.send(Store())) == ["ok"]
    assert responses(pizza_done.send(Store(), size=30, crust="thin")) == ["ok"]


# -- re-entrancy: changes during a send --------------------------------------------------


def test_a_receiver_that_disconnects_itself_never_makes_the_next_one_skip():
    signal = Signal()
    calls = []

    def first(**kwargs):
        calls.append("first")

    def once(**kwargs):
        calls.append("once")
        signal.disconnect(once)

    def last(**kwargs):
        calls.append("last")

    for each in (first, once, last):
        signal.connect(each)

    signal.send(sender=Store())
    assert calls == ["first", "once", "last"]

    calls.clear()
    signal.send(sender=Store())
    assert calls == ["first", "last"]


@pytest.mark.parametrize("use_caching", [False, True])
def test_a_receiver_disconnected_mid_send_still_runs_in_that_send(use_caching):
    # The receivers are snapshotted when a send starts, as in Django.
    signal = Signal(use_caching=use_caching)
    calls = []

    def first(**kwargs):
        calls.append("first")
        signal.disconnect(second)

    def second(**kwargs):
        calls.append("second")

    def third(**kwargs):
        calls.append("third")

    for each in (first, second, third):
        signal.connect(each)

    signal.send(sender=Store())
    assert calls == ["first", "second", "third"]

    calls.clear()
    signal.send(sender=Store())
    assert calls == ["first", "third"]


def test_receivers_that_all_disconnect_themselves_all_run_once():
    signal = Signal()
    calls = []

    def make(name):
        def on_event(**kwargs):
            calls.append(name)
            signal.disconnect(on_event)

        return on_event

    handlers = [make("a"), make("b"), make("c")]
    for handler in handlers:
        signal.connect(handler)

    signal.send(sender=Store())
    assert calls == ["a", "b", "c"]
    assert signal.receivers == []
    assert signal.send(sender=Store()) == []


@pytest.mark.parametrize("use_caching", [False, True])
def test_a_receiver_connected_mid_send_is_called_from_the_next_send_on(use_caching):
    signal = Signal(use_caching=use_caching)
    calls = []

    def late(**kwargs):
        calls.append("late")

    def installer(**kwargs):
        calls.append("installer")
        signal.connect(late)

    signal.connect(installer)

    signal.send(sender=Store())
    assert calls == ["installer"]

    calls.clear()
    signal.send(sender=Store())
    assert calls == ["installer", "late"]


def test_send_robust_also_works_on_a_snapshot():
    signal = Signal()
    calls = []

    def first(**kwargs):
        calls.append("first")
        signal.disconnect(second)
        raise ValueError("first failed")

    def second(**kwargs):
        calls.append("second")
        return "second ran"

    signal.connect(first)
    signal.connect(second)

    [(_, error), (_, response)] = signal.send_robust(sender=Store())
    assert isinstance(error, ValueError)
    assert response == "second ran"
    assert calls == ["first", "second"]


def test_no_lock_is_held_while_receivers_run_so_they_may_use_the_signal():
    signal = Signal()
    store = Store()
    seen = []

    def on_event(**kwargs):
        assert not signal.lock.locked()
        signal.connect(named("added"), weak=False)
        seen.append(signal.has_listeners(store))
        return len(signal.receivers)

    signal.connect(on_event)
    assert responses(signal.send(sender=store)) == [2]
    assert seen == [True]


def test_a_receiver_may_send_the_same_signal_again():
    # Nothing guards against recursion: a receiver that re-sends re-enters send().
    signal = Signal()

    def countdown(sender, depth, **kwargs):
        if depth == 0:
            return "liftoff"
        return signal.send(sender, depth=depth - 1)

    signal.connect(countdown)

    assert signal.send(Store(), depth=2) == [(countdown, [(countdown, [(countdown, "liftoff")])])]


# -- senders are matched by identity --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FrozenPoint:
    x: int
    y: int


@dataclasses.dataclass
class Point:  # eq=True and not frozen: unhashable
    x: int
    y: int


EQUAL_BUT_DISTINCT = [
    pytest.param(lambda: ("abc", "".join(["a", "bc"])), id="str"),
    pytest.param(lambda: (10**6, int("1000000")), id="int"),
    pytest.param(lambda: (FrozenPoint(1, 2), FrozenPoint(1, 2)), id="frozen-dataclass"),
    pytest.param(lambda: (Point(1, 2), Point(1, 2)), id="dataclass"),
    pytest.param(lambda: ([1, 2], [1, 2]), id="list"),
    pytest.param(lambda: ((1, "".join("ab")), (1, "".join("ab"))), id="tuple"),
]


@pytest.mark.parametrize("use_caching", [False, True])
@pytest.mark.parametrize("make_pair", EQUAL_BUT_DISTINCT)
def test_fix_equal_but_distinct_senders_never_share_receivers(make_pair, use_caching):
    signal = Signal(use_caching=use_caching)
    first, second = make_pair()
    assert first == second
    assert first is not second

    for_first = named("for first")
    signal.connect(for_first, sender=first)

    assert signal.send(second) == []
    assert signal.send(first) == [(for_first, "for first")]
    assert signal.send(second) == []  # not served from the first sender's cache entry
    assert signal.has_listeners(second) is False
    assert signal.disconnect(for_first, sender=second) is False
    assert signal.send(first) == [(for_first, "for first")]


@pytest.mark.parametrize("use_caching", [False, True])
@pytest.mark.parametrize("make_pair", EQUAL_BUT_DISTINCT)
def test_fix_equal_but_distinct_senders_each_get_their_own_receivers(make_pair, use_caching):
    signal = Signal(use_caching=use_caching)
    first, second = make_pair()
    for_first, for_second, for_anyone = named("first"), named("second"), named("anyone")
    signal.connect(for_anyone)
    signal.connect(for_first, sender=first)
    signal.connect(for_second, sender=second)

    for _ in range(2):  # the second round is served from the cache
        assert responses(signal.send(first)) == ["anyone", "first"]
        assert responses(signal.send(second)) == ["anyone", "second"]
        assert responses(signal.send_robust(first)) == ["anyone", "first"]
        assert responses(signal.send_robust(second)) == ["anyone", "second"]


UNHASHABLE_SENDERS = [
    pytest.param(lambda: [1, 2, 3], id="list"),
    pytest.param(lambda: {"pk": 1}, id="dict"),
    pytest.param(lambda: {1, 2}, id="set"),
]


@pytest.mark.parametrize("use_caching", [False, True])
@pytest.mark.parametrize("make_sender", UNHASHABLE_SENDERS)
def test_fix_unhashable_senders_work(make_sender, use_caching):
    signal = Signal(use_caching=use_caching)
    sender = make_sender()
    for_anyone, for_sender = named("anyone"), named("sender")

    assert signal.send(sender) == []
    signal.connect(for_anyone)
    assert responses(signal.send(sender)) == ["anyone"]
    assert responses(signal.send_robust(sender)) == ["anyone"]

    signal.connect(for_sender, sender=sender)
    assert signal.has_listeners(sender) is True
    assert responses(signal.send(sender)) == ["anyone", "sender"]
    assert responses(signal.send(make_sender())) == ["anyone"]

    assert signal.disconnect(for_sender, sender=sender) is True
    assert responses(signal.send(sender)) == ["anyone"]


UNWEAKREFABLE_SENDERS = [
    pytest.param(object, id="object"),
    pytest.param(lambda: int("123456789123"), id="int"),
    pytest.param(lambda: "".join(["store-", "42"]), id="str"),
    pytest.param(lambda: ("downtown", object()), id="tuple"),
    pytest.param(lambda: b"".join([b"by", b"tes"]), id="bytes"),
]


@pytest.mark.parametrize("use_caching", [False, True])
@pytest.mark.parametrize("make_sender", UNWEAKREFABLE_SENDERS)
def test_senders_that_cannot_be_weakly_referenced_work(make_sender, use_caching):
    signal = Signal(use_caching=use_caching)
    sender = make_sender()
    for_sender = named("sender")

    signal.connect(for_sender, sender=sender)

    assert signal.has_listeners(sender) is True
    assert responses(signal.send(sender)) == ["sender"]
    assert signal.send(make_sender()) == []
    assert signal.disconnect(for_sender, sender=sender) is True
    assert signal.send(sender) == []


@pytest.mark.parametrize("make_sender", UNWEAKREFABLE_SENDERS)
def test_fix_an_unweakrefable_sender_is_held_while_it_has_receivers(make_sender):
    # Django matches such a sender by id() alone, so after it is freed a new object at
    # the same address receives its receivers. Holding it means the id stays taken.
    signal = Signal()
    sender = make_sender()
    for_sender = named("sender")
    before = sys.getrefcount(sender)

    signal.connect(for_sender, sender=sender)
    assert sys.getrefcount(sender) > before

    signal.disconnect(for_sender, sender=sender)
    assert sys.getrefcount(sender) == before


def test_fix_a_dropped_unweakrefable_sender_does_not_pass_its_receivers_on():
    signal = Signal()
    calls = []

    def for_that_sender(sender, **kwargs):
        calls.append(sender)

    signal.connect(for_that_sender, sender=object())  # the caller keeps no reference

    assert len(signal.receivers) == 1
    others = [object() for _ in range(2000)]
    for other in others:
        signal.send(other)
    assert calls == []


@pytest.mark.parametrize("use_caching", [False, True])
def test_fix_has_listeners_without_a_sender_works_on_any_signal(use_caching):
    # Django's caching signals raised TypeError: cannot create weak reference to 'NoneType'.
    signal = Signal(use_caching=use_caching)
    assert signal.has_listeners() is False
    assert signal.send(None) == []
    signal.connect(named("anyone"), weak=False)
    assert signal.has_listeners() is True
    assert responses(signal.send(None)) == ["anyone"]


def test_classes_and_functions_can_be_senders():
    signal = Signal(use_caching=True)

    class Order:
        pass

    def checkout():
        pass

    for_class, for_function = named("class"), named("function")
    signal.connect(for_class, sender=Order)
    signal.connect(for_function, sender=checkout)

    assert responses(signal.send(Order)) == ["class"]
    assert responses(signal.send(checkout)) == ["function"]
    assert signal.send(Order()) == []


# -- ordering --------------------------------------------------------------------------


def test_sender_specific_and_any_sender_receivers_run_in_connection_order():
    signal = Signal()
    store = Store()
    a, b, c, d = named("a"), named("b"), named("c"), named("d")
    signal.connect(a, sender=store)
    signal.connect(b)
    signal.connect(c, sender=store)
    signal.connect(d)

    assert responses(signal.send(store)) == ["a", "b", "c", "d"]
    assert responses(signal.send(Store())) == ["b", "d"]


# -- property: send reaches exactly the right receivers, in the right order ----------------


RECEIVERS = st.integers(0, 4)
SENDERS = st.none() | st.integers(0, 5)
UIDS = st.sampled_from([None, None, "u1", "u2"])

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("connect"), RECEIVERS, SENDERS, st.integers(-2, 2), UIDS, st.booleans()),
        st.tuples(st.just("disconnect"), RECEIVERS, SENDERS, UIDS),
        st.tuples(st.just("send"), SENDERS),
        st.tuples(st.just("send_robust"), SENDERS),
        st.tuples(st.just("has_listeners"), SENDERS),
    ),
    max_size=40,
)


def make_senders():
    """Senders of every kind, including two equal but distinct ones."""
    return [
        Store(),
        Store(),
        FrozenPoint(1, 2),
        FrozenPoint(1, 2),
        object(),
        [1, 2],
    ]


@settings(max_examples=300, deadline=None)
@given(operations=OPERATIONS, use_caching=st.booleans())
def test_send_calls_exactly_the_receivers_for_that_sender_in_priority_then_connection_order(
    operations, use_caching
):
    signal = Signal(use_caching=use_caching)
    receivers = [named(f"r{index}") for index in range(5)]
    senders = make_senders()

    # The model: registrations keyed (receiver or uid, sender), first registration wins.
    model: dict[tuple[object, object], tuple[int, int, int]] = {}  # key -> (r, prio, seq)
    seq = 0

    def key(index, sender_index, uid):
        return (("uid", uid) if uid else ("receiver", index), sender_index)

    def expected_for(sender_index):
        matching = [
            (priority, order, index)
            for (_, registered_for), (index, priority, order) in model.items()
            if registered_for is None or registered_for == sender_index
        ]
        matching.sort(key=lambda item: (-item[0], item[1]))
        return [f"r{index}" for _, _, index in matching]

    def sender_of(sender_index):
        return None if sender_index is None else senders[sender_index]

    for operation in operations:
        kind = operation[0]
        if kind == "connect":
            _, index, sender_index, priority, uid, weak = operation
            returned = signal.connect(
                receivers[index],
                sender=sender_of(sender_index),
                weak=weak,
                dispatch_uid=uid,
                priority=priority,
            )
            assert returned is receivers[index]
            if key(index, sender_index, uid) not in model:
                model[key(index, sender_index, uid)] = (index, priority, seq)
                seq += 1
        elif kind == "disconnect":
            _, index, sender_index, uid = operation
            removed = signal.disconnect(
                receivers[index], sender=sender_of(sender_index), dispatch_uid=uid
            )
            assert removed is (model.pop(key(index, sender_index, uid), None) is not None)
        elif kind == "has_listeners":
            _, sender_index = operation
            assert signal.has_listeners(sender_of(sender_index)) is bool(
                expected_for(sender_index)
            )
        else:
            _, sender_index = operation
            results = getattr(signal, kind)(sender_of(sender_index))
            assert responses(results) == expected_for(sender_index)
            assert [receiver for receiver, _ in results] == [
                receivers[int(name[1:])] for name in expected_for(sender_index)
            ]

    in_connection_order = sorted(model.values(), key=lambda registration: registration[2])
    assert [connected_receiver(entry) for entry in signal.receivers] == [
        receivers[index] for index, _, _ in in_connection_order
    ]
    for sender_index in [None, *range(len(senders))]:
        assert responses(signal.send(sender_of(sender_index))) == expected_for(sender_index)
