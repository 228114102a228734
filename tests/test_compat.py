# mypy: disallow-untyped-defs=False, disallow-incomplete-defs=False, disallow-untyped-calls=False
"""Compatibility with code written against Django's internals.

Third-party code reads and assigns ``signal.receivers`` (factory_boy's ``mute_signals``,
pytest fixtures that silence signals), clears ``signal.sender_receivers_cache`` and uses
``signal.lock``. These tests show those idioms working on tocsin signals.
"""

import contextlib
import threading
import weakref

import pytest

import tocsin
from tocsin import Signal


class Store:
    """A typical sender: an ordinary object (hashable, weakly referenceable)."""


def responses(results):
    return [response for _, response in results]


def named(name):
    def on_event(**kwargs):
        return name

    return on_event


@contextlib.contextmanager
def muted(*signals):
    """Silence *signals* the way Django test helpers do: swap out their receivers."""
    saved = {signal: signal.receivers for signal in signals}
    for signal in signals:
        signal.receivers = []
    try:
        yield
    finally:
        for signal, receivers in saved.items():
            signal.receivers = receivers
            signal.sender_receivers_cache.clear()


@contextlib.contextmanager
def muted_keeping_new_receivers(*signals):
    """As ``muted``, but receivers connected while muted stay connected afterwards
    (the newer factory_boy idiom: ``signal.receivers = saved + signal.receivers``)."""
    saved = {signal: signal.receivers for signal in signals}
    for signal in signals:
        signal.receivers = []
    try:
        yield
    finally:
        for signal, receivers in saved.items():
            signal.receivers = receivers + signal.receivers
            signal.sender_receivers_cache.clear()


def test_the_package_exports_signal_receiver_and_the_warning():
    assert {"Signal", "receiver", "WeakReceiverWarning"} <= set(tocsin.__all__)
    assert issubclass(tocsin.WeakReceiverWarning, UserWarning)


def test_signals_are_hashable_and_compared_by_identity():
    pre_save, post_save = Signal(), Signal()

    assert pre_save != post_save
    assert pre_save == pre_save
    assert {pre_save: "pre", post_save: "post"}[post_save] == "post"


def test_use_caching_is_kept_as_an_attribute():
    assert Signal(use_caching=True).use_caching is True
    assert Signal().use_caching is False


def test_lock_is_a_plain_non_reentrant_threading_lock():
    signal = Signal()

    assert isinstance(signal.lock, type(threading.Lock()))
    with signal.lock:
        assert signal.lock.acquire(blocking=False) is False
    assert signal.lock.acquire(blocking=False) is True
    signal.lock.release()


# -- signal.lock, as Django code holds it -------------------------------------------------
# Code written for Django takes ``signal.lock`` around its swaps of ``signal.receivers``
# and its clearing of ``sender_receivers_cache``. Each test runs in a worker thread joined
# with a timeout, so that a deadlock fails the test instead of hanging the suite.

JOIN_TIMEOUT = 30.0  # seconds: a safety net against deadlocks, not a measure of speed


def in_a_thread(function):
    """Run *function* in a worker thread; re-raise what it raised; fail if it hangs."""
    outcome = []

    def run():
        try:
            outcome.append(("returned", function()))
        except BaseException as error:
            outcome.append(("raised", error))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=JOIN_TIMEOUT)
    assert not worker.is_alive(), "deadlock: the worker never finished"
    [(how, value)] = outcome
    if how == "raised":
        raise value
    return value


@contextlib.contextmanager
def maybe_locked(signal, locked):
    if locked:
        with signal.lock:
            yield
    else:
        yield


def test_the_documented_django_swap_under_the_lock_works():
    signal = Signal(use_caching=True)
    store = Store()
    a, b = named("a"), named("b")
    signal.connect(a)
    signal.connect(b, sender=store, weak=False)
    assert responses(signal.send(store)) == ["a", "b"]

    def swap_out_and_back():
        with signal.lock:
            saved = signal.receivers[:]
            signal.receivers = []
        silenced = signal.send(store)
        with signal.lock:
            signal.receivers = saved
            signal.sender_receivers_cache.clear()
        return silenced

    assert in_a_thread(swap_out_and_back) == []
    assert responses(signal.send(store)) == ["a", "b"]
    assert signal.disconnect(b, sender=store) is True


@pytest.mark.parametrize("locked", [False, True], ids=["outside the lock", "inside the lock"])
def test_reading_and_slicing_receivers(locked):
    signal = Signal()
    first, second = named("first"), named("second")
    signal.connect(first)
    signal.connect(second, weak=False)

    def read():
        with maybe_locked(signal, locked):
            return signal.receivers, signal.receivers[:], signal.receivers[1:]

    whole, copy, tail = in_a_thread(read)
    assert [entry[0][0] for entry in whole] == [id(first), id(second)]
    assert copy == whole
    assert copy is not whole
    assert tail == whole[1:]


@pytest.mark.parametrize("locked", [False, True], ids=["outside the lock", "inside the lock"])
def test_entry_one_is_the_weak_reference_or_the_receiver(locked):
    signal = Signal()
    weakly, strongly = named("weakly"), named("strongly")

    class Kitchen:
        def on_order(self, **kwargs):
            return "cooked"

    kitchen = Kitchen()
    signal.connect(weakly)
    signal.connect(strongly, weak=False)
    signal.connect(kitchen.on_order)

    def refs():
        with maybe_locked(signal, locked):
            return [entry[1] for entry in signal.receivers]

    weak_ref, strong, method_ref = in_a_thread(refs)
    assert isinstance(weak_ref, weakref.ref)
    assert weak_ref() is weakly
    assert strong is strongly
    assert isinstance(method_ref, weakref.ref)
    assert method_ref() == kitchen.on_order  # a fresh bound method each time, as WeakMethod


@pytest.mark.parametrize("locked", [False, True], ids=["outside the lock", "inside the lock"])
def test_assigning_receivers(locked):
    signal = Signal()
    keep, drop = named("keep"), named("drop")
    signal.connect(keep)
    signal.connect(drop)

    def assign():
        with maybe_locked(signal, locked):
            signal.receivers = [entry for entry in signal.receivers if entry[1]() is keep]

    in_a_thread(assign)
    assert responses(signal.send(Store())) == ["keep"]


@pytest.mark.parametrize("locked", [False, True], ids=["outside the lock", "inside the lock"])
def test_adding_to_receivers_in_place(locked):
    signal = Signal()
    old, new = named("old"), named("new")
    signal.connect(old)
    saved = signal.receivers[:]
    signal.receivers = []
    signal.connect(new)

    def extend():
        with maybe_locked(signal, locked):
            signal.receivers += saved

    in_a_thread(extend)
    assert responses(signal.send(Store())) == ["new", "old"]


@pytest.mark.parametrize("locked", [False, True], ids=["outside the lock", "inside the lock"])
def test_clearing_the_cache(locked):
    signal = Signal()
    store = Store()
    signal.connect(named("anyone"), weak=False)
    signal.send(store)
    assert signal.sender_receivers_cache

    def clear():
        with maybe_locked(signal, locked):
            signal.sender_receivers_cache.clear()

    in_a_thread(clear)
    assert dict(signal.sender_receivers_cache) == {}
    assert responses(signal.send(store)) == ["anyone"]


def test_sending_and_muting_inside_the_lock_do_not_deadlock():
    # Resolving a new sender and muting take only the signal's private mutex.
    from tocsin.testing import mute

    signal = Signal()
    signal.connect(named("anyone"), weak=False)

    def send_under_the_lock():
        with signal.lock:
            first = responses(signal.send(Store()))  # a sender never seen: a cache miss
            with mute(signal):
                silenced = signal.send(Store())
            return first, silenced, signal.has_listeners(Store())

    assert in_a_thread(send_under_the_lock) == (["anyone"], [], True)


def test_connect_and_disconnect_wait_while_django_code_holds_the_lock():
    signal = Signal()
    latecomer = named("latecomer")
    released = threading.Event()
    connected = []

    def connect():
        signal.connect(latecomer)
        connected.append(released.is_set())

    with signal.lock:
        saved = signal.receivers[:]
        signal.receivers = []
        worker = threading.Thread(target=connect, daemon=True)
        worker.start()
        worker.join(timeout=0.2)  # it cannot finish while the lock is held
        assert signal.receivers == []
        signal.receivers = saved
        released.set()
    worker.join(timeout=JOIN_TIMEOUT)

    assert connected == [True]
    assert responses(signal.send(Store())) == ["latecomer"]


def test_deaths_while_the_private_mutex_is_held_are_finished_later():
    # The collector can run in the middle of the signal's own bookkeeping: its
    # callbacks must neither wait for the mutex nor be lost.
    signal = Signal()
    doomed, survivor = named("doomed"), named("survivor")
    signal.connect(doomed)
    signal.connect(survivor)
    signal.send(Store())

    def die_under_the_mutex():
        nonlocal doomed
        with signal._mutex:
            doomed = None

    in_a_thread(die_under_the_mutex)
    assert responses(signal.send(Store())) == ["survivor"]
    assert len(signal.receivers) == 1


def test_django_swaps_connects_sends_and_deaths_from_many_threads():
    signal = Signal(use_caching=True)
    store = Store()
    permanent = [named(f"permanent {n}") for n in range(3)]
    for receiver in permanent:
        signal.connect(receiver, weak=False)
    rounds = 200
    start = threading.Barrier(6)
    failures = []

    def swapper():
        # The whole swap under the lock, as Django test helpers do it: nobody can
        # connect meanwhile, so the muted signal is silent.
        for _ in range(rounds):
            with signal.lock:
                saved = signal.receivers[:]
                signal.receivers = []
                if signal.send(store) != []:
                    raise AssertionError("a muted signal answered")
                signal.receivers = saved
                signal.sender_receivers_cache.clear()

    def connector(number):
        own_sender = Store()
        for turn in range(rounds):
            receiver = named(f"{number}:{turn}")
            signal.connect(receiver, sender=own_sender)
            got = responses(signal.send(own_sender))
            # Its own receiver, unless a swapper had it swapped out at that moment.
            if f"{number}:{turn}" not in got and len(got) != 0:
                raise AssertionError(f"lost a receiver: {got}")
            signal.disconnect(receiver, sender=own_sender)
            del receiver  # weak: a death too, if disconnect lost a race with a swap

    def sender():
        for _ in range(rounds):
            got = responses(signal.send(store))
            if got not in ([], [f"permanent {n}" for n in range(3)]):
                raise AssertionError(f"half a swap was seen: {got}")

    def run(target, *args):
        def body():
            try:
                start.wait()
                target(*args)
            except BaseException as error:
                failures.append(error)

        return threading.Thread(target=body, daemon=True)

    threads = [run(swapper), run(swapper), run(connector, 1), run(connector, 2)]
    threads += [run(sender), run(sender)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads), "deadlock"
    assert failures == []
    assert responses(signal.send(store)) == [f"permanent {n}" for n in range(3)]
    assert [entry[1] for entry in signal.receivers] == permanent


# -- signal.receivers ------------------------------------------------------------------


def test_receivers_is_a_list_in_connection_order():
    signal = Signal()
    store = Store()
    first, second, third = named("first"), named("second"), named("third")
    signal.connect(first)
    signal.connect(second, sender=store, priority=10)  # priority does not change this order
    signal.connect(third, weak=False)

    receivers = signal.receivers

    assert isinstance(receivers, list)
    assert [entry[0][0] for entry in receivers] == [id(first), id(second), id(third)]


def test_each_entry_unpacks_like_djangos_four_tuple():
    signal = Signal()
    store = Store()

    def on_event(**kwargs):
        pass

    signal.connect(on_event, sender=store)

    [entry] = signal.receivers
    (receiver_key, sender_key), ref, sender_ref, is_async = entry

    assert len(entry) == 4
    assert receiver_key == id(on_event)
    assert sender_key == id(store)
    assert isinstance(ref, weakref.ref)
    assert ref() is on_event
    assert isinstance(sender_ref, weakref.ref)
    assert sender_ref() is store
    assert is_async is False
    assert entry[0] == (receiver_key, sender_key)
    assert entry[3] is False


def test_an_any_sender_strong_entry_holds_the_receiver_itself_and_no_sender_ref():
    signal = Signal()

    def on_event(**kwargs):
        pass

    signal.connect(on_event, weak=False)

    (_, sender_key), ref, sender_ref, _ = signal.receivers[0]
    assert sender_key == id(None)
    assert ref is on_event
    assert sender_ref is None


def test_a_bound_method_entry_is_keyed_by_instance_and_function():
    signal = Signal()

    class Kitchen:
        def on_order(self, **kwargs):
            return "cooking"

    kitchen = Kitchen()
    signal.connect(kitchen.on_order)

    (receiver_key, _), ref, _, _ = signal.receivers[0]
    assert receiver_key == (id(kitchen), id(Kitchen.on_order))
    assert ref() == kitchen.on_order


def test_an_unweakrefable_sender_has_no_sender_ref():
    signal = Signal()
    sender = object()
    signal.connect(named("x"), sender=sender, weak=False)

    (_, sender_key), _, sender_ref, _ = signal.receivers[0]
    assert sender_key == id(sender)
    assert sender_ref is None


def test_an_async_receivers_entry_is_flagged_async():
    signal = Signal()

    async def on_event(**kwargs):
        pass

    def on_event_sync(**kwargs):
        pass

    signal.connect(on_event)
    signal.connect(on_event_sync)

    assert [entry[3] for entry in signal.receivers] == [True, False]


# -- muting by assigning signal.receivers ------------------------------------------------


@pytest.mark.parametrize("use_caching", [False, True])
def test_assigning_an_empty_list_disconnects_everything(use_caching):
    signal = Signal(use_caching=use_caching)
    store = Store()
    for_anyone, for_store = named("anyone"), named("store")
    signal.connect(for_anyone)
    signal.connect(for_store, sender=store, weak=False)
    assert responses(signal.send(store)) == ["anyone", "store"]  # fills the cache

    signal.receivers = []

    assert signal.receivers == []
    assert signal.send(store) == []
    assert signal.send_robust(store) == []
    assert signal.has_listeners(store) is False
    assert signal.has_listeners() is False


def test_assigning_an_empty_list_releases_strong_receivers_at_once():
    # As with Django's list of tuples: nothing else refers to them, so they are freed.
    signal = Signal()
    store = Store()
    for_anyone, for_store = named("anyone"), named("store")
    observers = [weakref.ref(for_anyone), weakref.ref(for_store)]
    signal.connect(for_anyone, weak=False)
    signal.connect(for_store, sender=store, weak=False)
    del for_anyone, for_store

    signal.receivers = []

    assert [observer() for observer in observers] == [None, None]


@pytest.mark.parametrize("use_caching", [False, True])
def test_saving_and_restoring_receivers_mutes_a_signal_for_a_while(use_caching):
    post_save = Signal(use_caching=use_caching)
    store = Store()
    a, b, c, d = named("a"), named("b"), named("c"), named("d")
    post_save.connect(a)
    post_save.connect(b, sender=store)
    post_save.connect(c, weak=False)
    post_save.connect(d, sender=store, priority=5)
    assert responses(post_save.send(store)) == ["d", "a", "b", "c"]

    with muted(post_save):
        assert post_save.send(store) == []
        assert post_save.has_listeners(store) is False

    assert [entry[0][0] for entry in post_save.receivers] == [id(a), id(b), id(c), id(d)]
    assert responses(post_save.send(store)) == ["d", "a", "b", "c"]
    assert responses(post_save.send(Store())) == ["a", "c"]
    assert post_save.disconnect(b, sender=store) is True
    assert responses(post_save.send(store)) == ["d", "a", "c"]


def test_muting_several_signals_at_once():
    pre_save, post_save = Signal(), Signal()
    before, after = named("before"), named("after")
    pre_save.connect(before)
    post_save.connect(after)

    with muted(pre_save, post_save):
        assert pre_save.send(Store()) == []
        assert post_save.send(Store()) == []

    assert responses(pre_save.send(Store())) == ["before"]
    assert responses(post_save.send(Store())) == ["after"]


def test_a_receiver_connected_while_muted_is_dropped_by_a_plain_restore():
    signal = Signal()
    old, new = named("old"), named("new")
    signal.connect(old)

    with muted(signal):
        signal.connect(new)
        assert responses(signal.send(Store())) == ["new"]

    assert responses(signal.send(Store())) == ["old"]


def test_restoring_saved_plus_current_receivers_keeps_those_connected_while_muted():
    signal = Signal()
    old, new = named("old"), named("new")
    signal.connect(old)

    with muted_keeping_new_receivers(signal):
        signal.connect(new)
        assert responses(signal.send(Store())) == ["new"]

    assert responses(signal.send(Store())) == ["old", "new"]
    assert len(signal.receivers) == 2


def test_restoring_saved_plus_current_keeps_sender_specific_receivers_connected_while_muted():
    signal = Signal(use_caching=True)
    store = Store()
    old, new = named("old"), named("new")
    signal.connect(old, sender=store)

    with muted_keeping_new_receivers(signal):
        signal.connect(new, sender=store)

    assert responses(signal.send(store)) == ["old", "new"]
    assert signal.disconnect(new, sender=store) is True
    assert signal.disconnect(old, sender=store) is True


def test_restoring_saved_plus_current_keeps_one_registration_per_key():
    signal = Signal()
    handler = named("handler")
    signal.connect(handler)

    with muted_keeping_new_receivers(signal):
        signal.connect(handler)  # connected again while muted: the same key

    assert responses(signal.send(Store())) == ["handler"]
    assert len(signal.receivers) == 1


def test_a_receiver_that_dies_while_muted_is_not_restored():
    signal = Signal()
    survivor, doomed = named("survivor"), named("doomed")
    signal.connect(survivor)
    signal.connect(doomed)

    with muted(signal):
        del doomed

    assert responses(signal.send(Store())) == ["survivor"]
    assert len(signal.receivers) == 1


def test_receivers_of_a_sender_that_dies_while_muted_are_not_restored():
    signal = Signal()
    store = Store()
    for_store, for_anyone = named("store"), named("anyone")
    signal.connect(for_store, sender=store, weak=False)
    signal.connect(for_anyone)

    with muted(signal):
        del store

    assert [entry[0][0] for entry in signal.receivers] == [id(for_anyone)]
    assert responses(signal.send(Store())) == ["anyone"]


def test_assigning_receivers_in_another_order_changes_the_dispatch_order():
    # In Django the list *is* the dispatch order; code that reorders it expects that.
    signal = Signal()
    store = Store()
    a, b, c = named("a"), named("b"), named("c")
    signal.connect(a)
    signal.connect(b, sender=store)
    signal.connect(c)

    signal.receivers = signal.receivers[::-1]

    assert [entry[0][0] for entry in signal.receivers] == [id(c), id(b), id(a)]
    assert responses(signal.send(store)) == ["c", "b", "a"]


def test_receivers_can_only_be_set_to_entries_read_from_the_same_signal():
    signal, other = Signal(), Signal()
    on_event = named("x")
    other.connect(on_event)

    with pytest.raises(TypeError):
        signal.receivers = other.receivers
    with pytest.raises(TypeError):
        signal.receivers = [((id(on_event), id(None)), on_event, None, False)]  # type: ignore[list-item]
    assert signal.receivers == []


# -- sender_receivers_cache ---------------------------------------------------------------


@pytest.mark.parametrize("use_caching", [False, True])
def test_clearing_the_cache_is_harmless(use_caching):
    signal = Signal(use_caching=use_caching)
    store = Store()
    for_anyone, for_store = named("anyone"), named("store")
    signal.connect(for_anyone)
    signal.connect(for_store, sender=store)

    signal.sender_receivers_cache.clear()
    assert responses(signal.send(store)) == ["anyone", "store"]
    signal.sender_receivers_cache.clear()
    assert responses(signal.send(store)) == ["anyone", "store"]
    assert signal.has_listeners(Store()) is True
    signal.sender_receivers_cache.clear()
    assert responses(signal.send(Store())) == ["anyone"]
