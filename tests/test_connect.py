# mypy: disallow-untyped-defs=False, disallow-incomplete-defs=False, disallow-untyped-calls=False
"""Creating signals, connecting and disconnecting receivers, and asking who listens.

Each test is a small usage example: it shows a call and pins down what it does.
"""

import collections
import functools

import pytest

from tocsin import Signal, receiver


class Store:
    """A typical sender: an ordinary object (hashable, weakly referenceable)."""


def responses(results):
    """The responses of ``send``'s ``[(receiver, response), ...]``, in order."""
    return [response for _, response in results]


# -- Signal(...) -----------------------------------------------------------------------


def test_a_new_signal_has_no_receivers_and_django_defaults():
    signal = Signal()

    assert signal.receivers == []
    assert signal.use_caching is False
    assert signal.providing_args is None
    assert signal.strict is False
    assert signal.name is None
    assert signal.doc is None
    assert signal.has_listeners() is False
    assert signal.send(sender=Store()) == []


@pytest.mark.parametrize("make", [lambda: Signal(True), lambda: Signal(use_caching=True)])
def test_use_caching_is_accepted_positionally_or_by_keyword(make):
    assert make().use_caching is True


def test_providing_args_is_kept_as_a_frozenset():
    pizza_done = Signal(providing_args=["toppings", "size"])

    assert pizza_done.providing_args == frozenset({"toppings", "size"})
    assert isinstance(pizza_done.providing_args, frozenset)


def test_name_doc_and_providing_args_describe_the_signal_and_show_in_its_repr():
    pizza_done = Signal(
        name="pizza_done", doc="Sent when a pizza leaves the oven.", providing_args=["size"]
    )

    assert pizza_done.name == "pizza_done"
    assert pizza_done.doc == "Sent when a pizza leaves the oven."
    assert "pizza_done" in repr(pizza_done)
    assert "providing_args=['size']" in repr(pizza_done)


@pytest.mark.parametrize(
    "names", [["toppings", "size"], ("toppings", "size"), {"toppings", "size"}]
)
def test_old_style_positional_providing_args_is_never_taken_for_use_caching(names):
    # Code written for Django < 4.0 passes the argument names first, positionally.
    pizza_done = Signal(names)

    assert pizza_done.providing_args == frozenset({"toppings", "size"})
    assert pizza_done.use_caching is False


def test_only_use_caching_is_positional():
    with pytest.raises(TypeError):
        Signal(False, ["size"])  # type: ignore[call-arg]


def test_providing_args_cannot_be_given_both_positionally_and_by_keyword():
    with pytest.raises(TypeError):
        Signal(["size"], providing_args=["size"])


def test_providing_args_as_a_single_string_is_a_type_error():
    # A string is an iterable of one-letter names: almost certainly a mistake.
    with pytest.raises(TypeError, match="providing_args"):
        Signal(providing_args="size")


def test_providing_args_must_hold_argument_names():
    with pytest.raises(TypeError, match="providing_args"):
        Signal(providing_args=["size", 3])  # type: ignore[list-item]


def test_strict_needs_providing_args():
    with pytest.raises(TypeError, match="providing_args"):
        Signal(strict=True)


def test_strict_is_shown_in_the_repr():
    assert "strict=True" in repr(Signal(providing_args=["size"], strict=True))


# -- connect ---------------------------------------------------------------------------


def test_connect_returns_the_receiver_so_it_works_as_a_decorator():
    pizza_done = Signal()

    @pizza_done.connect
    def count_pizzas(sender, **kwargs):
        return "counted"

    assert callable(count_pizzas)
    assert pizza_done.send(sender=Store()) == [(count_pizzas, "counted")]


def test_connect_accepts_djangos_positional_arguments():
    pizza_done = Signal()
    store = Store()

    def on_pizza(sender, **kwargs):
        return "ok"

    # connect(receiver, sender, weak, dispatch_uid)
    assert pizza_done.connect(on_pizza, store, False, "on-pizza") is on_pizza
    assert pizza_done.send(sender=store) == [(on_pizza, "ok")]
    # disconnect(receiver, sender, dispatch_uid)
    assert pizza_done.disconnect(None, store, "on-pizza") is True


def test_priority_is_keyword_only():
    signal = Signal()

    def on_event(**kwargs):
        pass

    with pytest.raises(TypeError):
        signal.connect(on_event, None, True, None, 5)  # type: ignore[call-arg]


def test_a_receiver_connected_for_a_sender_only_hears_that_sender():
    pizza_done = Signal()
    downtown, airport = Store(), Store()

    def airport_desk(sender, **kwargs):
        return "boxed"

    pizza_done.connect(airport_desk, sender=airport)

    assert pizza_done.send(sender=airport) == [(airport_desk, "boxed")]
    assert pizza_done.send(sender=downtown) == []


def test_connecting_the_same_receiver_twice_registers_it_once():
    signal = Signal()
    calls = []

    def on_event(**kwargs):
        calls.append("called")

    signal.connect(on_event)
    signal.connect(on_event)

    assert len(signal.receivers) == 1
    signal.send(sender=Store())
    assert calls == ["called"]


def test_the_same_receiver_for_any_sender_and_for_one_sender_is_two_registrations():
    signal = Signal()
    store = Store()

    def on_event(**kwargs):
        return "heard"

    signal.connect(on_event)
    signal.connect(on_event, sender=store)

    assert len(signal.receivers) == 2
    assert signal.send(sender=store) == [(on_event, "heard"), (on_event, "heard")]
    assert signal.send(sender=Store()) == [(on_event, "heard")]


def test_first_registration_wins_weak_then_strong_stays_weak():
    signal = Signal()

    def on_event(**kwargs):
        pass

    signal.connect(on_event)  # weak
    signal.connect(on_event, weak=False)  # same key: ignored

    assert len(signal.receivers) == 1
    del on_event  # the weak registration does not keep the function alive
    assert signal.receivers == []


def test_first_registration_wins_strong_then_weak_stays_strong():
    signal = Signal()

    def make_receiver():
        def on_event(**kwargs):
            return "still here"

        return on_event

    on_event = make_receiver()
    signal.connect(on_event, weak=False)
    signal.connect(on_event)  # same key: ignored

    del on_event
    assert responses(signal.send(sender=Store())) == ["still here"]


def test_a_later_receiver_under_a_used_dispatch_uid_is_ignored():
    signal = Signal()

    def first(**kwargs):
        return "first"

    def second(**kwargs):
        return "second"

    signal.connect(first, dispatch_uid="handler")
    signal.connect(second, dispatch_uid="handler")

    assert signal.send(sender=Store()) == [(first, "first")]


def test_dispatch_uid_makes_repeated_connects_of_fresh_closures_idempotent():
    signal = Signal()
    keep = []

    def setup_module_receivers():
        def on_event(**kwargs):
            return "once"

        keep.append(on_event)
        signal.connect(on_event, dispatch_uid="setup")

    for _ in range(3):
        setup_module_receivers()

    assert responses(signal.send(sender=Store())) == ["once"]


def test_the_same_dispatch_uid_with_different_senders_is_separate_registrations():
    signal = Signal()
    downtown, airport = Store(), Store()

    def on_event(sender, **kwargs):
        return sender

    signal.connect(on_event, sender=downtown, dispatch_uid="uid")
    signal.connect(on_event, sender=airport, dispatch_uid="uid")

    assert len(signal.receivers) == 2
    assert responses(signal.send(sender=downtown)) == [downtown]
    assert responses(signal.send(sender=airport)) == [airport]


@pytest.mark.parametrize("falsy_uid", [0, "", None])
def test_a_falsy_dispatch_uid_means_no_uid(falsy_uid):
    signal = Signal()

    def first(**kwargs):
        return "first"

    def second(**kwargs):
        return "second"

    signal.connect(first, dispatch_uid=falsy_uid)
    signal.connect(second, dispatch_uid=falsy_uid)

    assert responses(signal.send(sender=Store())) == ["first", "second"]


def test_an_integer_dispatch_uid_never_collides_with_another_receivers_identity():
    signal = Signal()

    def first(**kwargs):
        return "first"

    def second(**kwargs):
        return "second"

    signal.connect(first)
    signal.connect(second, dispatch_uid=id(first))

    assert responses(signal.send(sender=Store())) == ["first", "second"]


class Kitchen:
    def __init__(self, name="kitchen"):
        self.name = name

    def on_order(self, sender, **kwargs):
        return self.name

    @classmethod
    def on_order_for_class(cls, sender, **kwargs):
        return cls.__name__

    def takes_no_kwargs(self, sender):
        pass


def test_fresh_bound_method_objects_of_one_method_are_the_same_receiver():
    signal = Signal()
    kitchen = Kitchen()

    # Each attribute access makes a new bound-method object.
    assert kitchen.on_order is not kitchen.on_order
    signal.connect(kitchen.on_order)
    signal.connect(kitchen.on_order)

    assert responses(signal.send(sender=Store())) == ["kitchen"]
    assert signal.disconnect(kitchen.on_order) is True
    assert signal.receivers == []


def test_the_same_method_of_two_instances_is_two_receivers():
    signal = Signal()
    first, second = Kitchen("first"), Kitchen("second")

    signal.connect(first.on_order)
    signal.connect(second.on_order)

    assert responses(signal.send(sender=Store())) == ["first", "second"]


def test_a_classmethod_accessed_through_its_class_is_one_receiver():
    signal = Signal()

    signal.connect(Kitchen.on_order_for_class)
    signal.connect(Kitchen.on_order_for_class)

    assert responses(signal.send(sender=Store())) == ["Kitchen"]
    assert signal.disconnect(Kitchen.on_order_for_class) is True


def test_higher_priority_runs_earlier_and_equal_priorities_keep_connection_order():
    signal = Signal()
    store = Store()

    def make(name):
        def on_event(**kwargs):
            return name

        return on_event

    audit, cache_a, cache_b, notify, log = (
        make(n) for n in ("audit", "cache_a", "cache_b", "notify", "log")
    )
    signal.connect(log, priority=-10)
    signal.connect(notify)
    signal.connect(cache_a, priority=5)
    signal.connect(audit, sender=store, priority=100)
    signal.connect(cache_b, priority=5)

    assert responses(signal.send(sender=store)) == ["audit", "cache_a", "cache_b", "notify", "log"]
    assert responses(signal.send(sender=Store())) == ["cache_a", "cache_b", "notify", "log"]


def test_priorities_of_sender_specific_and_any_sender_receivers_interleave():
    signal = Signal()
    store = Store()

    def make(name):
        def on_event(**kwargs):
            return name

        return on_event

    any_low, own_mid, any_high, own_low = (make(n) for n in ("a-1", "o0", "a1", "o-1"))
    signal.connect(any_low, priority=-1)
    signal.connect(own_mid, sender=store)
    signal.connect(any_high, priority=1)
    signal.connect(own_low, sender=store, priority=-1)

    assert responses(signal.send(sender=store)) == ["a1", "o0", "a-1", "o-1"]


@pytest.mark.parametrize("priority", [1.5, "1", None])
def test_a_priority_that_is_not_an_int_is_a_type_error_and_connects_nothing(priority):
    signal = Signal()

    def on_event(**kwargs):
        pass

    with pytest.raises(TypeError, match="priority"):
        signal.connect(on_event, priority=priority)
    assert signal.receivers == []


# -- validation ------------------------------------------------------------------------


def test_a_non_callable_receiver_is_rejected():
    signal = Signal()

    with pytest.raises(TypeError) as raised:
        signal.connect("not a function")  # type: ignore[type-var]
    assert str(raised.value) == "Signal receivers must be callable."


def takes_no_kwargs(sender):
    pass


class CallableWithoutKwargs:
    def __call__(self, sender):
        pass


class ClassWithoutKwargs:
    def __init__(self, sender):
        pass


@pytest.mark.parametrize(
    "bad_receiver",
    [
        pytest.param(takes_no_kwargs, id="function"),
        pytest.param(Kitchen().takes_no_kwargs, id="bound-method"),
        pytest.param(CallableWithoutKwargs(), id="callable-object"),
        pytest.param(ClassWithoutKwargs, id="class"),
        pytest.param(functools.partial(takes_no_kwargs), id="partial"),
        pytest.param(len, id="builtin"),
    ],
)
def test_a_receiver_without_kwargs_is_rejected(bad_receiver):
    signal = Signal()

    with pytest.raises(ValueError, match="keyword arguments") as raised:
        signal.connect(bad_receiver, weak=False)
    assert str(raised.value) == "Signal receivers must accept keyword arguments (**kwargs)."


def test_a_failed_connect_leaves_the_signal_unchanged():
    signal = Signal()
    store = Store()

    def on_event(**kwargs):
        return "ok"

    signal.connect(on_event)
    before = [entry[0] for entry in signal.receivers]

    with pytest.raises(ValueError, match="keyword arguments"):
        signal.connect(takes_no_kwargs, sender=store)
    with pytest.raises(TypeError, match="callable"):
        signal.connect(42)  # type: ignore[type-var]

    assert [entry[0] for entry in signal.receivers] == before
    assert signal.send(sender=store) == [(on_event, "ok")]
    assert signal.has_listeners(store) is True


def test_a_callable_object_is_judged_by_its_call_method():
    signal = Signal()

    class Counter:
        def __init__(self):
            self.count = 0

        def __call__(self, sender, **kwargs):
            self.count += 1
            return self.count

    counter = Counter()
    signal.connect(counter)

    assert signal.send(sender=Store()) == [(counter, 1)]


def test_a_class_is_a_receiver_and_its_instance_is_the_response():
    signal = Signal()

    class AuditRecord:
        def __init__(self, sender, **kwargs):
            self.sender = sender

    signal.connect(AuditRecord)
    store = Store()

    [(called, record)] = signal.send(sender=store)
    assert called is AuditRecord
    assert isinstance(record, AuditRecord)
    assert record.sender is store


def test_a_partial_with_kwargs_is_a_valid_receiver():
    signal = Signal()

    def on_event(prefix, sender, **kwargs):
        return prefix + "!"

    handler = functools.partial(on_event, "hello")
    signal.connect(handler)

    assert signal.send(sender=Store()) == [(handler, "hello!")]


class SlottedHandler:
    """A callable object that cannot be weakly referenced (``__slots__``, no __weakref__)."""

    __slots__ = ()

    def __call__(self, **kwargs):
        return "slotted"


def test_a_receiver_that_cannot_be_weakly_referenced_needs_weak_false():
    signal = Signal()
    handler = SlottedHandler()

    with pytest.raises(TypeError) as raised:
        signal.connect(handler)
    assert "cannot create weak reference to" in str(raised.value)
    assert "weak=False" in str(raised.value)
    assert signal.receivers == []

    signal.connect(handler, weak=False)
    assert signal.send(sender=Store()) == [(handler, "slotted")]


def test_an_unhashable_callable_object_can_be_a_receiver():
    signal = Signal()

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, **kwargs):
            return "unhashable"

    handler = Unhashable()
    signal.connect(handler)

    assert signal.send(sender=Store()) == [(handler, "unhashable")]
    assert signal.disconnect(handler) is True
    assert signal.send(sender=Store()) == []


# -- disconnect ------------------------------------------------------------------------


def test_disconnect_says_whether_it_removed_something():
    signal = Signal()

    def on_event(**kwargs):
        pass

    assert signal.disconnect(on_event) is False
    signal.connect(on_event)
    assert signal.disconnect(on_event) is True
    assert signal.disconnect(on_event) is False
    assert signal.send(sender=Store()) == []


def test_disconnect_must_name_the_sender_given_to_connect():
    signal = Signal()
    store = Store()

    def on_event(**kwargs):
        return "heard"

    signal.connect(on_event, sender=store)

    assert signal.disconnect(on_event) is False  # that is the any-sender registration
    assert signal.disconnect(on_event, sender=Store()) is False
    assert responses(signal.send(sender=store)) == ["heard"]
    assert signal.disconnect(on_event, sender=store) is True
    assert signal.send(sender=store) == []


def test_disconnecting_the_any_sender_registration_keeps_the_sender_specific_one():
    signal = Signal()
    store = Store()

    def on_event(**kwargs):
        return "heard"

    signal.connect(on_event)
    signal.connect(on_event, sender=store)

    assert signal.disconnect(on_event) is True
    assert responses(signal.send(sender=store)) == ["heard"]
    assert signal.send(sender=Store()) == []


def test_a_receiver_connected_with_a_uid_is_disconnected_by_its_uid():
    signal = Signal()

    def on_event(**kwargs):
        pass

    signal.connect(on_event, dispatch_uid="audit")

    assert signal.disconnect(on_event) is False  # the key is the uid, not the function
    assert signal.disconnect(dispatch_uid="audit") is True
    assert signal.receivers == []


def test_a_uid_with_a_sender_is_disconnected_with_both():
    signal = Signal()
    store = Store()

    def on_event(**kwargs):
        pass

    signal.connect(on_event, sender=store, dispatch_uid="audit")

    assert signal.disconnect(dispatch_uid="audit") is False
    assert signal.disconnect(dispatch_uid="audit", sender=store) is True


def test_disconnect_accepts_and_ignores_weak():
    # Django removed disconnect(weak=...) in 2.0; old code still passes it.
    signal = Signal()

    def on_event(**kwargs):
        pass

    signal.connect(on_event, weak=False)
    assert signal.disconnect(on_event, weak=True) is True
    assert signal.disconnect(on_event, weak=False) is False


def test_reconnecting_after_disconnect_moves_the_receiver_to_the_end():
    signal = Signal()

    def first(**kwargs):
        return "first"

    def second(**kwargs):
        return "second"

    signal.connect(first)
    signal.connect(second)
    signal.disconnect(first)
    signal.connect(first)

    assert responses(signal.send(sender=Store())) == ["second", "first"]


# -- has_listeners ---------------------------------------------------------------------


def test_has_listeners_with_a_sender_counts_its_receivers_and_any_sender_ones():
    signal = Signal()
    store, other = Store(), Store()

    def on_event(**kwargs):
        pass

    assert signal.has_listeners(store) is False
    signal.connect(on_event, sender=store)
    assert signal.has_listeners(store) is True
    assert signal.has_listeners(other) is False

    signal.connect(on_event)
    assert signal.has_listeners(other) is True


@pytest.mark.parametrize("use_caching", [False, True])
def test_has_listeners_without_a_sender_asks_about_any_sender_receivers_only(use_caching):
    # Django's meaning: not "is anything connected?" but "would send(None) call anyone?".
    signal = Signal(use_caching=use_caching)
    store = Store()

    def on_event(**kwargs):
        pass

    assert signal.has_listeners() is False
    signal.connect(on_event, sender=store)
    assert signal.has_listeners() is False
    signal.connect(on_event)
    assert signal.has_listeners() is True


def test_has_listeners_follows_disconnect():
    signal = Signal(use_caching=True)
    store = Store()

    def on_event(**kwargs):
        pass

    signal.connect(on_event, sender=store)
    assert signal.has_listeners(store) is True
    signal.disconnect(on_event, sender=store)
    assert signal.has_listeners(store) is False


# -- the receiver decorator -------------------------------------------------------------


def test_receiver_connects_the_function_and_returns_it_unchanged():
    pizza_done = Signal()

    def count_pizzas(sender, **kwargs):
        return "counted"

    decorated = receiver(pizza_done)(count_pizzas)

    assert decorated is count_pizzas
    assert pizza_done.send(sender=Store()) == [(count_pizzas, "counted")]


@pytest.mark.parametrize("container", [list, tuple, collections.deque])
def test_receiver_connects_to_each_signal_of_a_sequence(container):
    pre_save, post_save = Signal(), Signal()

    @receiver(container([pre_save, post_save]))
    def audit(sender, signal, **kwargs):
        return signal

    assert pre_save.send(sender=Store()) == [(audit, pre_save)]
    assert post_save.send(sender=Store()) == [(audit, post_save)]


def test_receiver_forwards_its_keyword_arguments_to_connect():
    signal = Signal()
    store = Store()

    @receiver(signal, sender=store, dispatch_uid="audit", priority=10)
    def audit(**kwargs):
        return "audit"

    @receiver(signal, sender=store)
    def other(**kwargs):
        return "other"

    assert responses(signal.send(sender=store)) == ["audit", "other"]
    assert signal.send(sender=Store()) == []
    assert signal.disconnect(dispatch_uid="audit", sender=store) is True


def test_receiver_with_weak_false_keeps_a_local_function_alive():
    signal = Signal()

    def install():
        @receiver(signal, weak=False)
        def on_event(**kwargs):
            return "alive"

    install()
    assert responses(signal.send(sender=Store())) == ["alive"]


def test_receiver_decorators_stack():
    first, second = Signal(), Signal()

    @receiver(first)
    @receiver(second)
    def on_either(**kwargs):
        return "heard"

    assert responses(first.send(sender=Store())) == ["heard"]
    assert responses(second.send(sender=Store())) == ["heard"]


@pytest.mark.parametrize(
    "not_a_signal",
    [
        pytest.param(lambda signal: {signal}, id="set-of-signals"),
        pytest.param(lambda signal: "post_save", id="string"),
        pytest.param(lambda signal: None, id="None"),
    ],
)
def test_receiver_given_something_other_than_signals_is_a_clear_type_error(not_a_signal):
    signal = Signal()

    with pytest.raises(TypeError, match="Signal"):

        @receiver(not_a_signal(signal))
        def on_event(**kwargs):
            pass

    assert signal.receivers == []


def test_receiver_does_not_take_a_string_for_a_sequence_of_signals():
    with pytest.raises(TypeError, match="not 'post_save'"):
        receiver("post_save")  # type: ignore[arg-type]


def test_receiver_checks_every_signal_before_connecting_any():
    signal = Signal()

    with pytest.raises(TypeError, match="Signal"):

        @receiver([signal, "post_save"])  # type: ignore[list-item]
        def on_event(**kwargs):
            pass

    assert signal.receivers == []
