# mypy: disallow-untyped-defs=False, disallow-incomplete-defs=False, disallow-untyped-calls=False
"""Weak references: which receivers and senders a signal keeps alive, and what happens
when they are garbage collected.

By default a signal holds its receivers weakly: connecting never keeps a receiver alive.
A receiver connected for a specific sender also lasts only as long as that sender.
"""

import functools
import gc
import logging
import threading
import warnings
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin import Signal, WeakReceiverWarning


class Store:
    """A typical sender: an ordinary object (hashable, weakly referenceable)."""


def responses(results):
    return [response for _, response in results]


def make_receiver(name="receiver"):
    """A fresh function that only the caller refers to."""

    def on_event(**kwargs):
        return name

    return on_event


class Handler:
    def __init__(self, name="handler"):
        self.name = name

    def on_event(self, **kwargs):
        return self.name

    def __call__(self, **kwargs):
        return f"{self.name} called"


# -- receivers are held weakly by default ------------------------------------------------


def test_a_function_is_held_weakly_and_disconnected_when_it_dies():
    signal = Signal()
    on_event = make_receiver("alive")
    signal.connect(on_event)
    assert responses(signal.send(Store())) == ["alive"]

    del on_event

    assert len(signal.receivers) == 0
    assert signal.send(Store()) == []
    assert signal.has_listeners() is False


def test_a_bound_method_lives_as_long_as_its_instance_not_the_method_object():
    signal = Signal()
    handler = Handler("kitchen")

    signal.connect(handler.on_event)  # the bound-method object dies right away
    gc.collect()
    assert responses(signal.send(Store())) == ["kitchen"]

    del handler

    assert len(signal.receivers) == 0
    assert signal.send(Store()) == []


def test_a_classmethod_lives_as_long_as_its_class():
    signal = Signal()

    class Registry:
        @classmethod
        def on_event(cls, **kwargs):
            return cls.__name__

    signal.connect(Registry.on_event)
    gc.collect()
    assert responses(signal.send(Store())) == ["Registry"]

    del Registry
    gc.collect()  # classes live in reference cycles

    assert len(signal.receivers) == 0
    assert signal.send(Store()) == []


def test_a_callable_object_is_held_weakly():
    signal = Signal()
    handler = Handler("object")
    signal.connect(handler)
    assert responses(signal.send(Store())) == ["object called"]

    del handler

    assert len(signal.receivers) == 0


def test_a_class_receiver_is_held_weakly():
    signal = Signal()

    class AuditRecord:
        def __init__(self, **kwargs):
            pass

    signal.connect(AuditRecord)
    assert len(signal.receivers) == 1

    del AuditRecord
    gc.collect()

    assert len(signal.receivers) == 0


def test_a_temporary_partial_connected_weakly_is_gone_at_once():
    # A classic "my receiver is never called": nothing else refers to the partial.
    signal = Signal()
    on_event = make_receiver()

    signal.connect(functools.partial(on_event))

    assert len(signal.receivers) == 0
    assert signal.send(Store()) == []


def test_a_partial_kept_by_the_caller_stays_connected():
    signal = Signal()
    handler = functools.partial(make_receiver("partial"))

    signal.connect(handler)

    assert responses(signal.send(Store())) == ["partial"]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: make_receiver("strong"), id="function"),
        pytest.param(lambda: functools.partial(make_receiver("strong")), id="partial"),
        pytest.param(lambda: Handler("strong").on_event, id="bound-method"),
        pytest.param(lambda: Handler("strong"), id="callable-object"),
    ],
)
def test_weak_false_keeps_the_receiver_alive(make):
    signal = Signal()

    signal.connect(make(), weak=False)
    gc.collect()

    [response] = responses(signal.send(Store()))
    assert response.startswith("strong")


def test_connecting_never_keeps_a_weak_receiver_alive_even_after_sends():
    signal = Signal(use_caching=True)
    store = Store()
    on_event = make_receiver()
    observer = weakref.ref(on_event)
    signal.connect(on_event)
    signal.connect(on_event, sender=store)
    signal.send(store)  # fills the cache
    signal.has_listeners(store)

    del on_event

    assert observer() is None
    assert signal.receivers == []
    assert signal.send(store) == []


def test_the_list_send_returns_keeps_its_receivers_alive_until_dropped():
    signal = Signal()
    on_event = make_receiver()
    signal.connect(on_event)

    results = signal.send(Store())
    del on_event
    assert len(signal.receivers) == 1  # `results` still refers to the receiver

    del results
    assert len(signal.receivers) == 0


def test_a_receiver_in_a_reference_cycle_goes_after_garbage_collection():
    signal = Signal()

    def make_cyclic_receiver():
        def on_event(**kwargs):
            return on_event  # refers to itself through its closure: a cycle

        return on_event

    on_event = make_cyclic_receiver()
    signal.connect(on_event)
    del on_event
    gc.collect()

    assert len(signal.receivers) == 0


def test_disconnecting_a_dead_receiver_returns_false():
    signal = Signal()
    handler = Handler()
    signal.connect(handler.on_event, dispatch_uid="kitchen")
    del handler

    assert signal.disconnect(dispatch_uid="kitchen") is False


def test_a_new_receiver_at_a_dead_receivers_address_is_connected_normally():
    # The dead entry must not make the newcomer look "already connected".
    signal = Signal()
    first = make_receiver("first")
    signal.connect(first)
    address = id(first)
    del first

    keep = []
    for index in range(1000):
        candidate = make_receiver(f"new {index}")
        signal.connect(candidate)
        keep.append(candidate)
        if id(candidate) == address:
            break

    assert len(signal.receivers) == len(keep)
    assert responses(signal.send(Store())) == [f"new {index}" for index in range(len(keep))]


# -- senders ---------------------------------------------------------------------------


class Sender:
    """A sender type without a __dict__, so freed instances' memory is reused quickly."""

    __slots__ = ("__weakref__",)


def test_connecting_for_a_sender_does_not_keep_it_alive():
    signal = Signal()
    store = Store()
    observer = weakref.ref(store)
    on_event = make_receiver()
    signal.connect(on_event, sender=store, weak=False)

    del store

    assert observer() is None


def test_the_cache_does_not_keep_a_sender_alive():
    signal = Signal(use_caching=True)
    store = Store()
    observer = weakref.ref(store)
    for_anyone = make_receiver()
    signal.connect(for_anyone)
    signal.send(store)
    signal.has_listeners(store)

    del store

    assert observer() is None


@pytest.mark.parametrize("weak", [True, False])
@pytest.mark.parametrize("use_caching", [False, True])
def test_receivers_for_a_sender_go_when_the_sender_is_collected(weak, use_caching):
    signal = Signal(use_caching=use_caching)
    store = Store()
    for_store, for_anyone = make_receiver("store"), make_receiver("anyone")
    signal.connect(for_anyone)
    signal.connect(for_store, sender=store, weak=weak)
    assert responses(signal.send(store)) == ["anyone", "store"]

    del store

    assert len(signal.receivers) == 1
    assert responses(signal.send(Store())) == ["anyone"]


def test_a_strong_receiver_of_a_collected_sender_is_released_at_once():
    # Once its sender is gone, nothing should hold a weak=False receiver any more: the
    # receiver (and whatever it refers to) is freed, and its weak registrations elsewhere
    # go with it.
    signal = Signal()
    store = Store()
    on_event = make_receiver("on_event")
    observer = weakref.ref(on_event)
    signal.connect(on_event)  # weakly, for any sender
    signal.connect(on_event, sender=store, weak=False)  # strongly, for one sender
    del on_event

    del store

    assert observer() is None
    assert signal.receivers == []
    assert signal.send(Store()) == []


@pytest.mark.parametrize("use_caching", [False, True])
def test_a_new_sender_at_a_dead_senders_address_gets_none_of_its_receivers(use_caching):
    signal = Signal(use_caching=use_caching)
    calls = []

    def for_that_sender(sender, **kwargs):
        calls.append(sender)

    sender = Sender()
    signal.connect(for_that_sender, sender=sender, weak=False)
    signal.send(sender)  # fills the cache for that address
    address = id(sender)
    calls.clear()
    del sender

    newcomers = []
    reused = False
    for _ in range(1000):
        newcomer = Sender()
        newcomers.append(newcomer)
        signal.send(newcomer)
        assert signal.has_listeners(newcomer) is False
        if id(newcomer) == address:
            reused = True
            break

    assert calls == []
    if not reused:
        pytest.skip("the allocator did not reuse the address; nothing to check")


def test_many_short_lived_senders_never_receive_each_others_receivers():
    signal = Signal(use_caching=True)
    misrouted = []

    def make_checker(expected_id):
        def check(sender, **kwargs):
            if id(sender) != expected_id:
                misrouted.append(sender)
            return expected_id

        return check

    checkers = []
    for _ in range(500):
        sender = Sender()
        checker = make_checker(id(sender))
        checkers.append(checker)
        signal.connect(checker, sender=sender)
        assert responses(signal.send(sender)) == [id(sender)]
        del sender  # the next Sender() most likely takes this address

    assert misrouted == []
    assert signal.receivers == []


@settings(max_examples=200, deadline=None)
@given(
    connections=st.lists(
        st.tuples(st.integers(0, 3), st.none() | st.integers(0, 2), st.booleans()), max_size=15
    ),
    dying_receivers=st.sets(st.integers(0, 3)),
    dying_senders=st.sets(st.integers(0, 2)),
    use_caching=st.booleans(),
    send_before=st.booleans(),
)
def test_after_deaths_exactly_the_surviving_registrations_remain(
    connections, dying_receivers, dying_senders, use_caching, send_before
):
    signal = Signal(use_caching=use_caching)
    receivers = {index: make_receiver(f"r{index}") for index in range(4)}
    senders = {index: Store() for index in range(3)}
    registered: dict[tuple[int, int | None], bool] = {}  # (receiver, sender) -> weak
    for index, sender_index, weak in connections:
        sender = None if sender_index is None else senders[sender_index]
        signal.connect(receivers[index], sender=sender, weak=weak)
        registered.setdefault((index, sender_index), weak)  # the first registration wins
    if send_before:
        for sender in senders.values():
            signal.send(sender)
    sender = None  # keep no stray reference to a sender that is about to die

    for index in dying_receivers:
        del receivers[index]
    for sender_index in dying_senders:
        del senders[sender_index]
    if any(
        not weak and sender_index in dying_senders
        for (_, sender_index), weak in registered.items()
    ):
        # A strong receiver of a dead sender may need a collection to be freed; that
        # promptness is tested on its own. This property is about what survives.
        gc.collect()

    def sender_alive(sender_index):
        return sender_index is None or sender_index in senders

    # A receiver dropped by the test lives on if a strong registration still holds it.
    held_strongly = {
        index
        for (index, sender_index), weak in registered.items()
        if not weak and sender_alive(sender_index)
    }
    surviving = [
        (index, sender_index)
        for (index, sender_index) in registered
        if sender_alive(sender_index) and (index in receivers or index in held_strongly)
    ]
    assert len(signal.receivers) == len(surviving)
    for sender_index, sender in senders.items():
        assert responses(signal.send(sender)) == [
            f"r{index}"
            for index, registered_for in surviving
            if registered_for in (None, sender_index)
        ]
        assert signal.has_listeners(sender) is any(
            registered_for in (None, sender_index) for _, registered_for in surviving
        )


def test_deaths_while_the_lock_is_held_neither_block_nor_leave_stale_receivers():
    # Garbage collection can run while the signal's lock is held (even by the same
    # thread). The weak-reference callbacks must not wait for it; the signal finishes
    # the clean-up later. Run in a worker so that a regression fails instead of hanging.
    signal = Signal(use_caching=True)
    sender = Sender()
    for_sender, weak_receiver = make_receiver("for sender"), make_receiver("weak")
    signal.connect(for_sender, sender=sender, weak=False)
    signal.connect(weak_receiver)
    signal.send(sender)
    doomed = [sender, weak_receiver]
    del sender, weak_receiver
    newcomers: list[Sender] = []

    def die_under_the_lock():
        with signal.lock:
            doomed.clear()  # the last references: both die here
            newcomers.extend(Sender() for _ in range(100))  # one may reuse the address

    worker = threading.Thread(target=die_under_the_lock, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "a weak-reference callback waited for the lock"

    assert signal.receivers == []
    assert signal.has_listeners() is False
    for newcomer in newcomers:
        assert signal.send(newcomer) == []


# -- diagnostics -----------------------------------------------------------------------


def test_collecting_a_weak_receiver_is_logged_at_debug(caplog):
    signal = Signal(name="pizza_done")
    on_event = make_receiver()
    signal.connect(on_event)

    with caplog.at_level(logging.DEBUG, logger="tocsin.dispatch"):
        signal.send(Store())
        assert caplog.records == []
        del on_event

    [record] = caplog.records
    assert record.name == "tocsin.dispatch"
    assert record.levelno == logging.DEBUG
    assert "pizza_done" in record.getMessage()


def test_a_lambda_connected_weakly_warns_at_connect_time():
    signal = Signal()

    with pytest.warns(WeakReceiverWarning, match="weak=False") as caught:
        signal.connect(lambda **kwargs: None)

    assert issubclass(WeakReceiverWarning, UserWarning)
    assert caught[0].filename == __file__  # points at the caller's line
    assert signal.receivers == []  # and indeed it is already gone


def test_a_lambda_connected_strongly_does_not_warn():
    signal = Signal()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.connect(lambda **kwargs: "kept", weak=False)

    assert responses(signal.send(Store())) == ["kept"]


def test_a_named_function_connected_weakly_does_not_warn():
    signal = Signal()
    on_event = make_receiver()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.connect(on_event)

    assert len(signal.receivers) == 1
