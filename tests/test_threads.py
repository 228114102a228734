"""Thread safety, re-entrancy and garbage collection at awkward moments.

Everything here is bounded by iteration counts, never by the clock: the only timeouts are
``join(timeout=...)`` safety nets that turn a deadlock into a failure instead of a hang.

Sends are ordered against connects and disconnects with tickets drawn from one shared
``itertools.count`` (atomic in CPython). A send draws a ticket before it starts and one
after it returned; a receiver's owner draws one after connect returned, one before it
calls disconnect and one after disconnect returned. A send that ran entirely while the
receiver was connected must call it; one that started after disconnect returned must not.
A send that overlaps the connect or the disconnect may go either way (it works on the
snapshot it took when it started).
"""

from __future__ import annotations

import functools
import gc
import itertools
import random
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tocsin import Signal

THREADS = 8
ROUNDS = 400
PRIVATE = -1  # the target recorded for sends from a sender private to one thread
JOIN_TIMEOUT = 60.0  # seconds; a safety net against deadlocks, not an assertion on speed


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as possible, to make unlucky interleavings likely."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.fixture
def frequent_gc() -> Iterator[None]:
    """Let the garbage collector run very often: inside the signal's lock, too."""
    previous = gc.get_threshold()
    gc.set_threshold(20, 5, 50)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.collect()


@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    """Only explicit gc.collect() calls collect cycles, so tests choose the moment."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def run_threads(*targets: Callable[[], None]) -> None:
    """Run each target in its own thread; fail on deadlock or on any thread's exception."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as error:
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(target), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"deadlocked threads: {stuck}"
    if errors:
        raise errors[0]


class Sender:
    """A sender that can be weakly referenced."""


class Cyclic:
    """An object in a reference cycle: only the garbage collector can free it."""

    def __init__(self, calls: list[int] | None = None) -> None:
        self.me = self
        self.calls = calls if calls is not None else []

    def on_signal(self, ticket: int = -1, **kwargs: Any) -> None:
        self.calls.append(ticket)


class Holder:
    """A receiver's instance, freed by reference counting as soon as it is dropped."""

    def __init__(self, calls: list[int]) -> None:
        self.calls = calls

    def on_signal(self, ticket: int = -1, **kwargs: Any) -> None:
        self.calls.append(ticket)


class CollectingUid:
    """A dispatch_uid whose hash runs the garbage collector.

    The signal hashes the uid while it holds its lock, so the weak-reference callbacks of
    whatever that collection frees run in a thread that holds the lock.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.collections = 0

    def __hash__(self) -> int:
        self.collections += 1
        gc.collect()
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CollectingUid) and other.name == self.name


@dataclass
class Lifetime:
    """What one thread saw of one receiver it connected and later disconnected (or killed)."""

    target: int | None  # the sender index it was connected for, None for any sender
    connected: int  # ticket drawn after connect returned
    leaving: int  # ticket drawn just before disconnect (or the drop of the instance)
    # Ticket drawn after disconnect returned; None for a dropped instance, which another
    # thread's send in progress may keep alive (and so callable) a little longer.
    left: int | None
    calls: list[int]  # tickets of the sends that called it


# -- many threads at once -------------------------------------------------------------------


def test_concurrent_connect_disconnect_send_and_drop(fast_switching: None) -> None:
    signal = Signal()
    tickets = itertools.count()
    senders = [Sender(), Sender()]
    stable_calls: list[int] = []

    def stable(ticket: int, **kwargs: Any) -> None:
        stable_calls.append(ticket)

    signal.connect(stable)
    # Per thread: (ticket drawn at the start, ticket drawn at the end, sender index).
    sends: list[list[tuple[int, int, int]]] = [[] for _ in range(THREADS)]
    lifetimes: list[Lifetime] = []
    private_failures: list[str] = []
    barrier = threading.Barrier(THREADS)

    def worker(number: int) -> None:
        rng = random.Random(number)
        my_sends = sends[number]

        def send() -> None:
            target = rng.randrange(len(senders))
            ticket = next(tickets)
            if rng.random() < 0.5:
                signal.send(senders[target], ticket=ticket)
            else:
                for _, response in signal.send_robust(senders[target], ticket=ticket):
                    assert not isinstance(response, Exception), response
            my_sends.append((ticket, next(tickets), target))

        def connect_send_disconnect() -> None:
            calls: list[int] = []

            def transient(ticket: int, **kwargs: Any) -> None:
                calls.append(ticket)

            target = rng.choice([None, 0, 1])
            sender = None if target is None else senders[target]
            signal.connect(transient, sender=sender, weak=rng.random() < 0.5)
            connected = next(tickets)
            for _ in range(rng.randrange(3)):
                send()
            leaving = next(tickets)
            assert signal.disconnect(transient, sender=sender)
            left = next(tickets)
            lifetimes.append(Lifetime(target, connected, leaving, left, calls))

        def weak_receiver_dies() -> None:
            calls: list[int] = []
            holder: Holder | None = Holder(calls)
            target = rng.choice([None, 0, 1])
            assert holder is not None
            signal.connect(holder.on_signal, sender=None if target is None else senders[target])
            connected = next(tickets)
            for _ in range(rng.randrange(3)):
                send()
            leaving = next(tickets)
            holder = None  # usually dies here; its weak-reference callback runs then
            lifetimes.append(Lifetime(target, connected, leaving, None, calls))

        def private_sender_comes_and_goes() -> None:
            # A sender only this thread knows: its receivers are exactly the ones
            # connected here, plus whatever is connected for any sender.
            sender = Sender()
            received: list[str] = []

            def first(**kwargs: Any) -> None:
                received.append("first")

            def second(**kwargs: Any) -> None:
                received.append("second")

            signal.connect(first, sender=sender)
            signal.connect(second, sender=sender, weak=False)
            ticket = next(tickets)
            signal.send(sender, ticket=ticket)
            my_sends.append((ticket, next(tickets), PRIVATE))
            if received != ["first", "second"]:
                private_failures.append(f"thread {number}: {received}")
            if rng.random() < 0.5:
                assert signal.disconnect(first, sender=sender)
            del sender  # dies: its receivers (the strong one too) go with it

        operations = [send, connect_send_disconnect, weak_receiver_dies]
        operations.append(private_sender_comes_and_goes)
        barrier.wait()
        for _ in range(ROUNDS):
            rng.choice(operations)()

    run_threads(*(functools.partial(worker, number) for number in range(THREADS)))

    assert private_failures == []
    all_sends = [send for thread_sends in sends for send in thread_sends]
    total_sends = sum(len(thread_sends) for thread_sends in sends)
    assert total_sends > 0
    # The stable receiver was called exactly once by every send, whatever the thread.
    assert len(stable_calls) == total_sends
    assert sorted(stable_calls) == sorted(start for start, _, _ in all_sends)

    assert len(lifetimes) > 0
    for lifetime in lifetimes:
        matching = [
            (start, end)
            for start, end, target in all_sends
            if lifetime.target is None or target == lifetime.target
        ]
        must = {
            start
            for start, end in matching
            if lifetime.connected < start and end < lifetime.leaving
        }
        may = {start for start, _ in matching if lifetime.left is None or start < lifetime.left}
        called = set(lifetime.calls)
        assert len(called) == len(lifetime.calls), f"called twice by one send: {lifetime}"
        assert must <= called, f"missed sends {sorted(must - called)}: {lifetime}"
        assert called <= may, f"called after it left {sorted(called - may)}: {lifetime}"

    gc.collect()
    assert [entry[1]() for entry in signal.receivers] == [stable]


def test_concurrent_connects_of_the_same_key_keep_one_entry(fast_switching: None) -> None:
    """Racing connects under one key: exactly one registration, called once per send."""
    signal = Signal()
    calls: list[str] = []

    def shared(**kwargs: Any) -> None:
        calls.append("shared")

    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        barrier.wait()
        for _ in range(ROUNDS):
            signal.connect(shared)
            signal.connect(shared, dispatch_uid="uid")
            signal.connect(shared, sender=Sender)

    run_threads(*([worker] * THREADS))
    assert len(signal.receivers) == 3
    signal.send(None)
    assert calls == ["shared", "shared"]
    calls.clear()
    signal.send(Sender)
    assert calls == ["shared", "shared", "shared"]


def test_concurrent_disconnects_succeed_exactly_once(fast_switching: None) -> None:
    signal = Signal()
    receivers = []
    for _ in range(200):

        def receiver(**kwargs: Any) -> None:
            pass

        receivers.append(receiver)
        signal.connect(receiver)
    successes: list[int] = []
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        barrier.wait()
        for index, receiver in enumerate(receivers):
            if signal.disconnect(receiver):
                successes.append(index)

    run_threads(*([worker] * THREADS))
    assert sorted(successes) == list(range(len(receivers)))
    assert signal.receivers == []
    assert signal.send(None) == []


# -- re-entrancy ----------------------------------------------------------------------------


def test_receivers_that_change_and_send_on_their_own_signal_do_not_deadlock() -> None:
    signal = Signal()
    counts = {"reentrant": 0, "late": 0}

    def late(**kwargs: Any) -> None:
        counts["late"] += 1

    def reentrant(depth: int, **kwargs: Any) -> int:
        counts["reentrant"] += 1
        if depth < 3:
            signal.connect(late)
            assert signal.disconnect(late)
            signal.connect(late)  # connected again: called by the nested sends
            assert signal.has_listeners()
            assert len(signal.receivers) == 2
            signal.send(None, depth=depth + 1)
            signal.send_robust(None, depth=depth + 1)
        return depth

    signal.connect(reentrant)
    results: list[Any] = []

    def send() -> None:
        results.append(signal.send(None, depth=0))

    run_threads(send)
    assert results == [[(reentrant, 0)]], "late was connected during the dispatch"
    # Depth d runs 2**d times; every nested send (2 + 4 + 8 of them) also calls late.
    assert counts == {"reentrant": 1 + 2 + 4 + 8, "late": 2 + 4 + 8}


def test_changes_made_during_a_dispatch_apply_from_the_next_one() -> None:
    signal = Signal()
    log: list[str] = []

    def newcomer(**kwargs: Any) -> None:
        log.append("newcomer")

    def first(**kwargs: Any) -> None:
        log.append("first")
        signal.disconnect(second)
        signal.connect(newcomer)

    def second(**kwargs: Any) -> None:
        log.append("second")

    signal.connect(first)
    signal.connect(second)

    def send() -> None:
        signal.send(None)

    run_threads(send)
    assert log == ["first", "second"]
    log.clear()
    run_threads(send)
    assert log == ["first", "newcomer"]


def test_receivers_in_other_threads_may_use_the_signal_while_a_send_runs() -> None:
    """A receiver that waits for another thread to connect, disconnect and send on the
    same signal: the lock is not held while receivers run, so nothing blocks."""
    signal = Signal()
    done: list[str] = []

    def helper(**kwargs: Any) -> None:
        done.append("helper")

    def other_thread() -> None:
        signal.connect(helper, sender=Sender)
        signal.send(Sender, nested=True)
        assert signal.disconnect(helper, sender=Sender)

    def waits_for_another_thread(nested: bool = False, **kwargs: Any) -> None:
        if not nested:
            run_threads(other_thread)
            done.append("outer")

    def send() -> None:
        signal.send(None)

    signal.connect(waits_for_another_thread)
    run_threads(send)
    assert done == ["helper", "outer"]


# -- garbage collection at awkward moments -------------------------------------------------


def record_call(ticket: int = -1, **kwargs: Any) -> None:
    """A module-level receiver: it never dies."""


def make_cyclic_garbage(
    signal: Signal, count: int, cascade: bool = False
) -> tuple[int, list[int]]:
    """Connect weak methods of objects in cycles, and receivers of senders in cycles.

    Returns how many entries were connected and the list their calls would go to. Once
    this returns nothing outside the cycles refers to them, so each dies only when the
    garbage collector runs. With *cascade*, some of them are also held by strong entries
    of cyclic senders: they become garbage only once those senders were collected.
    """
    calls: list[int] = []
    connected = 0
    for index in range(count):
        cyclic = Cyclic(calls)
        sender = Cyclic()
        signal.connect(cyclic.on_signal)
        signal.connect(cyclic.on_signal, sender=sender)
        signal.connect(record_call, sender=sender, weak=index % 2 == 0)
        connected += 3
        if cascade:
            signal.connect(Cyclic(calls).on_signal, sender=sender, weak=False)
            connected += 1
    return connected, calls


def test_collection_inside_the_lock_defers_the_cleanup(no_automatic_gc: None) -> None:
    signal = Signal()
    live_calls: list[int] = []
    live = Holder(live_calls)
    signal.connect(live.on_signal)
    connected, garbage_calls = make_cyclic_garbage(signal, 20)
    assert len(signal.receivers) == connected + 1

    def keep(**kwargs: Any) -> None:
        pass

    uid = CollectingUid("collects")

    def connect_while_collecting() -> None:
        signal.connect(keep, dispatch_uid=uid)

    run_threads(connect_while_collecting)
    assert uid.collections > 0
    # The callbacks could not take the lock; the cleanup happened at the next chance.
    assert len(signal.receivers) == 2
    signal.send(None, ticket=1)
    assert live_calls == [1]
    assert garbage_calls == []

    # Once more with the garbage created first and collected during a disconnect.
    make_cyclic_garbage(signal, 20)

    def disconnect_while_collecting() -> None:
        assert signal.disconnect(dispatch_uid=uid)

    run_threads(disconnect_while_collecting)
    assert len(signal.receivers) == 1
    assert signal.send(None, ticket=2) == [(live.on_signal, None)]


def test_collection_inside_a_receiver_does_not_deadlock(no_automatic_gc: None) -> None:
    signal = Signal()
    live_calls: list[int] = []
    live = Holder(live_calls)

    def collector(**kwargs: Any) -> None:
        gc.collect()

    signal.connect(collector)
    signal.connect(live.on_signal)
    make_cyclic_garbage(signal, 20)

    def send() -> None:
        signal.send(None, ticket=1)

    def send_robust() -> None:
        signal.send_robust(None, ticket=2)

    run_threads(send)
    run_threads(send_robust)
    assert live_calls == [1, 2]
    assert len(signal.receivers) == 2


def test_collection_in_one_thread_while_others_connect_and_send(
    fast_switching: None, frequent_gc: None
) -> None:
    """Cycles are freed by automatic and explicit collections in every thread, often
    while another (or the same) thread holds the signal's lock."""
    signal = Signal()
    stable_calls: list[int] = []
    stable = Holder(stable_calls)
    signal.connect(stable.on_signal)
    tickets = itertools.count()
    sends: list[int] = []
    barrier = threading.Barrier(4)

    def make_garbage() -> None:
        barrier.wait()
        for round_number in range(ROUNDS // 2):
            make_cyclic_garbage(signal, 3, cascade=True)
            if round_number % 10 == 0:
                gc.collect()

    def connect_with_collecting_uid() -> None:
        barrier.wait()
        uid = CollectingUid("racer")
        for _ in range(ROUNDS // 10):
            cyclic = Cyclic()
            signal.connect(cyclic.on_signal, dispatch_uid=uid)
            signal.disconnect(dispatch_uid=uid)

    def send() -> None:
        barrier.wait()
        for _ in range(ROUNDS):
            ticket = next(tickets)
            sends.append(ticket)
            signal.send(None, ticket=ticket)

    run_threads(make_garbage, connect_with_collecting_uid, send, send)
    gc.collect()
    gc.collect()  # what the senders collected first held strongly
    assert sorted(stable_calls) == sorted(sends)
    assert [entry[1]() for entry in signal.receivers] == [stable.on_signal]
