"""The benchmark cases. Each one checks, then times, every implementation.

Before anything is timed, every implementation runs the case once with *counting*
receivers, built by the same code as the timed setup: the case fails for an
implementation (its cell reads "WRONG: ...") unless exactly the right receivers ran,
once each, and (where the library returns them) the responses name those receivers.
The timed setup's own responses are checked the same way. An implementation that cannot
do a case at all is reported "n/a" with the reason.

Every send carries a sender and two keyword arguments (psygnal, which has no keywords,
emits the same three values positionally).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import random
import statistics
import timeit
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from benchmarks.implementations import (
    Counts,
    Implementation,
    Receiver,
    ReceiverFailed,
    Unsupported,
)
from benchmarks.report import Cell, Row, Target
from benchmarks.timing import Sampler, Settings, Timing, measure, paused_gc, rounds

TOPPINGS = ("basil", "mozzarella")
SIZE = 30

# The loggers on which Django and tocsin report a receiver's failure in send_robust.
ROBUST_LOGGERS = ("django.dispatch", "tocsin.dispatch")


class PizzaStore:
    """A sender: a plain object, matched by identity, weakly referenceable."""


SENDER = PizzaStore()


class WrongAnswer(Exception):
    """An implementation called the wrong receivers, or reported the wrong responses."""


# Sets up one implementation for a case (checking it on the way) and returns its sampler.
# Whatever must stay alive while it is measured (weakly held receivers) goes in `keep`.
Prepare = Callable[[Implementation, list[object]], Sampler]


# -- checking ----------------------------------------------------------------------------


def check(
    impl: Implementation,
    receivers: Sequence[Receiver],
    expected: Sequence[int],
    responses: Sequence[Any] | None,
    counts: Counts | None = None,
) -> None:
    """Raise WrongAnswer unless receiver *i* ran ``expected[i]`` times, and said so.

    *counts* are the calls the receivers counted (when they were made to count); each
    of *responses* is one send's return value, whose pairs must name receiver *i* with
    its response *i* (receivers return their index; failing ones raise it).
    """
    if counts is not None and list(counts) != list(expected):
        raise WrongAnswer(f"{describe(counts)} (expected {describe(expected)})")
    if not impl.returns_responses or responses is None:
        return
    seen: Counter[int] = Counter()
    for response in responses:
        for receiver, result in response:
            index = result.args[0] if isinstance(result, ReceiverFailed) else result
            if receivers[index] is not receiver:
                raise WrongAnswer(f"a response pairs {result!r} with the wrong receiver")
            seen[index] += 1
    wanted = Counter({index: times for index, times in enumerate(expected) if times})
    if seen != wanted:
        raise WrongAnswer(
            f"responses name {describe_counter(seen)}, expected {describe(expected)}"
        )


def describe(counts: Sequence[int]) -> str:
    called = sum(1 for times in counts if times)
    return f"{sum(counts)} calls to {called} of {len(counts)} receivers"


def describe_counter(seen: Counter[int]) -> str:
    return f"{sum(seen.values())} calls to {len(seen)} receivers"


# -- sending -----------------------------------------------------------------------------


def send_once(impl: Implementation, send: Callable[..., Any], sender: object) -> Any:
    if impl.keyword_payload:
        return send(sender, toppings=TOPPINGS, size=SIZE)
    return send(sender, TOPPINGS, SIZE)


def send_sampler(impl: Implementation, send: Callable[..., Any], sender: object) -> Sampler:
    """A timeit-style loop of ``send`` calls: nothing else in the timed loop."""
    toppings, size = TOPPINGS, SIZE
    if impl.keyword_payload:

        def sample(number: int) -> int:
            loop = itertools.repeat(None, number)
            start = perf_counter_ns()
            for _ in loop:
                send(sender, toppings=toppings, size=size)
            return perf_counter_ns() - start

    else:

        def sample(number: int) -> int:
            loop = itertools.repeat(None, number)
            start = perf_counter_ns()
            for _ in loop:
                send(sender, toppings, size)
            return perf_counter_ns() - start

    return sample


def time_one_send(
    impl: Implementation, send: Callable[..., Any], sender: object
) -> tuple[int, Any]:
    """The duration of one single send, and what it returned."""
    toppings, size = TOPPINGS, SIZE
    if impl.keyword_payload:
        start = perf_counter_ns()
        response = send(sender, toppings=toppings, size=size)
        return perf_counter_ns() - start, response
    start = perf_counter_ns()
    response = send(sender, toppings, size)
    return perf_counter_ns() - start, response


# -- running a row -----------------------------------------------------------------------


def timed_row(
    case: str,
    impls: list[Implementation],
    settings: Settings,
    prepare: Prepare,
    target: Target | None = None,
    note: str | None = None,
    number: int | None = None,
    ops_per_call: int = 1,
) -> Row:
    """Prepare (and check) every implementation, then measure them all together."""
    cells: dict[str, Cell] = {}
    samplers: dict[str, Sampler] = {}
    keep: list[object] = []
    for impl in impls:
        try:
            samplers[impl.name] = prepare(impl, keep)
        except Unsupported as error:
            cells[impl.name] = Cell(reason=f"n/a: {error}")
        except WrongAnswer as error:
            cells[impl.name] = Cell(reason=f"WRONG: {error}", failed=True)
    timings = measure(samplers, settings, number=number, ops_per_call=ops_per_call)
    for name, timing in timings.items():
        cells[name] = cell_of(timing)
    keep.clear()
    gc.collect()
    return Row(case, "ns", {impl.name: cells[impl.name] for impl in impls}, target, note)


def cell_of(timing: Timing) -> Cell:
    return Cell(value=timing.per_op_ns, samples=timing.samples_ns, number=timing.number)


# -- 1 and 2: receivers for any sender ----------------------------------------------------


def connect_any(impl: Implementation, signal: Any, receivers: Sequence[Receiver]) -> None:
    for receiver in receivers:
        impl.connect(signal, receiver)


def prepare_send(count: int, failing: int | None = None, robust: bool = False) -> Prepare:
    """``count`` receivers for any sender (receiver *failing* raises); plain or robust send."""

    def build(impl: Implementation, counts: Counts | None) -> tuple[Any, list[Receiver]]:
        signal = impl.new_signal()
        receivers = [
            impl.failing_receiver(index, counts)
            if index == failing
            else impl.receiver(index, counts)
            for index in range(count)
        ]
        connect_any(impl, signal, receivers)
        return signal, receivers

    def method(impl: Implementation, signal: Any) -> Callable[..., Any]:
        return impl.robust_send_method(signal) if robust else impl.send_method(signal)

    def prepare(impl: Implementation, keep: list[object]) -> Sampler:
        counts = [0] * count
        signal, receivers = build(impl, counts)
        response = send_once(impl, method(impl, signal), SENDER)
        check(impl, receivers, [1] * count, [response], counts)

        signal, receivers = build(impl, None)
        send = method(impl, signal)
        check(impl, receivers, [1] * count, [send_once(impl, send, SENDER)])
        keep.append(receivers)
        return send_sampler(impl, send, SENDER)

    return prepare


def case_no_receivers(impls: list[Implementation], settings: Settings) -> list[Row]:
    return [
        timed_row(
            "1. send, 0 receivers",
            impls,
            settings,
            prepare_send(0),
            Target("<= 0.9x", 0.9, compiled=0.25),
        )
    ]


def case_any_sender(impls: list[Implementation], settings: Settings) -> list[Row]:
    targets = {
        1: Target("<= 1.2x", 1.2, compiled=0.55),
        10: Target("<= 1.1x", 1.1, compiled=0.6),
        100: Target("<= 1.05x", 1.05, compiled=0.6),
    }
    return [
        timed_row(
            f"2. send, {count} receiver{'s' * (count > 1)}",
            impls,
            settings,
            prepare_send(count),
            target,
        )
        for count, target in targets.items()
    ]


# -- 3: sender filtering -----------------------------------------------------------------

FILTERED_SENDERS = 1000


def prepare_filtered(caching: bool) -> Prepare:
    """One receiver per sender, each sender its own object; send from one in the middle."""
    chosen = FILTERED_SENDERS // 2

    def build(
        impl: Implementation, counts: Counts | None
    ) -> tuple[Any, list[Receiver], list[PizzaStore]]:
        signal = impl.new_signal(caching=caching)
        senders = [PizzaStore() for _ in range(FILTERED_SENDERS)]
        receivers = [impl.receiver(index, counts) for index in range(FILTERED_SENDERS)]
        for receiver, sender in zip(receivers, senders, strict=True):
            impl.connect(signal, receiver, sender=sender)
        return signal, receivers, senders

    expected = [int(index == chosen) for index in range(FILTERED_SENDERS)]

    def prepare(impl: Implementation, keep: list[object]) -> Sampler:
        counts = [0] * FILTERED_SENDERS
        signal, receivers, senders = build(impl, counts)
        response = send_once(impl, impl.send_method(signal), senders[chosen])
        check(impl, receivers, expected, [response], counts)

        signal, receivers, senders = build(impl, None)
        send = impl.send_method(signal)
        check(impl, receivers, expected, [send_once(impl, send, senders[chosen])])
        keep.append((receivers, senders))
        return send_sampler(impl, send, senders[chosen])

    return prepare


def case_sender_filtering(impls: list[Implementation], settings: Settings) -> list[Row]:
    return [
        timed_row(
            f"3. sender filtering, {FILTERED_SENDERS} senders, use_caching={caching}",
            impls,
            settings,
            prepare_filtered(caching),
            Target("<= 1.0x", 1.0, compiled=0.55),
            note=(
                "the floor, blinker and psygnal have no use_caching option: "
                "this row measures them as configured in the row above"
            )
            if caching
            else None,
        )
        for caching in (False, True)
    ]


# -- 4: send_robust ----------------------------------------------------------------------


@contextmanager
def silenced(names: Sequence[str]) -> Iterator[None]:
    """Give each logger a NullHandler and stop it propagating; undo that afterwards."""
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        handler = logging.NullHandler()
        saved.append((logger, handler, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handler, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate


def silenced_log_cost_ns() -> float:
    """What one ``logger.error(..., exc_info=error)`` costs on a silenced logger."""
    logger = logging.getLogger("benchmarks.silenced")
    with silenced([logger.name]):
        try:
            raise ReceiverFailed(0)
        except ReceiverFailed as caught:
            error = caught
        timer = timeit.Timer(
            lambda: logger.error("Error calling %s (%s)", "f", error, exc_info=error)
        )
        number, _ = timer.autorange()
        return min(timer.repeat(3, number)) / number * 1e9


def case_send_robust(impls: list[Implementation], settings: Settings) -> list[Row]:
    with silenced(ROBUST_LOGGERS):
        return [
            timed_row(
                "4. send_robust, 10 receivers, none raising",
                impls,
                settings,
                prepare_send(10, robust=True),
                Target("<= 1.15x", 1.15, compiled=0.6),
            ),
            timed_row(
                "4. send_robust, 10 receivers, 1 raising",
                impls,
                settings,
                prepare_send(10, failing=3, robust=True),
                note=(
                    "Django and tocsin log each failure at ERROR (on django.dispatch, "
                    "tocsin.dispatch); both loggers get a NullHandler and propagate=False, "
                    "so a record is still made but nothing is formatted or written. The "
                    "floor's try/except loop does not log: one such silenced "
                    f"logger.error(..., exc_info=...) costs {silenced_log_cost_ns():.0f} ns "
                    "here"
                ),
            ),
        ]


# -- 5: connect and disconnect -----------------------------------------------------------


def prepare_churn(count: int) -> Prepare:
    """Connect ``count`` distinct receivers, then disconnect them all in a shuffled order."""
    order = list(range(count))
    random.Random(5).shuffle(order)

    def prepare(impl: Implementation, keep: list[object]) -> Sampler:
        counts = [0] * count
        receivers = [impl.receiver(index, counts) for index in range(count)]
        signal = impl.new_signal()
        for receiver in receivers:
            signal.connect(receiver)
        response = send_once(impl, impl.send_method(signal), SENDER)
        check(impl, receivers, [1] * count, [response], counts)
        for index in order:
            signal.disconnect(receivers[index])
        response = send_once(impl, impl.send_method(signal), SENDER)
        check(impl, receivers, [0] * count, [response])
        check(impl, receivers, [1] * count, None, counts)  # no new calls

        receivers = [impl.receiver(index) for index in range(count)]
        shuffled = [receivers[index] for index in order]

        def sample(number: int) -> int:
            elapsed = 0
            for _ in range(number):
                signal = impl.new_signal()
                connect, disconnect = signal.connect, signal.disconnect
                start = perf_counter_ns()
                for receiver in receivers:
                    connect(receiver)
                for receiver in shuffled:
                    disconnect(receiver)
                elapsed += perf_counter_ns() - start
            return elapsed

        return sample

    return prepare


def case_connect_disconnect(impls: list[Implementation], settings: Settings) -> list[Row]:
    count = settings.churn_receivers
    return [
        timed_row(
            f"5. connect + disconnect {count:,} receivers",
            impls,
            settings,
            prepare_churn(count),
            Target("<= 5x", 5.0),
            note=(
                "total time for all connects then all disconnects (in a shuffled order), "
                "any sender, default (weak where the library holds weakly) references; "
                "an implementation whose one sample takes over "
                f"{settings.slow_sample_ns / 1e9:g} s gets only {settings.slow_repeats} "
                "sample(s)"
            ),
            number=1,
        )
    ]


# -- 6: memory ---------------------------------------------------------------------------


def retained_bytes(impl: Implementation, count: int) -> tuple[float, float]:
    """Bytes per receiver retained by ``count`` connects, and after one send also."""
    receivers = [impl.receiver(index) for index in range(count)]
    # Warm up: whatever a first connect or send allocates once is not per receiver.
    warm = impl.new_signal()
    impl.connect(warm, receivers[0])
    send_once(impl, impl.send_method(warm), SENDER)
    del warm

    signal = impl.new_signal()
    send = impl.send_method(signal)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        connect_any(impl, signal, receivers)
        connected = tracemalloc.get_traced_memory()[0] - base
        send_once(impl, send, SENDER)
        sent = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return connected / count, sent / count


def case_memory(impls: list[Implementation], settings: Settings) -> list[Row]:
    count = settings.memory_receivers
    connected: dict[str, list[float]] = {impl.name: [] for impl in impls}
    sent: dict[str, list[float]] = {impl.name: [] for impl in impls}
    cells: dict[str, Cell] = {}
    for impl in impls:  # check first, with counting receivers
        counts = [0] * count
        signal = impl.new_signal()
        receivers = [impl.receiver(index, counts) for index in range(count)]
        connect_any(impl, signal, receivers)
        try:
            check(
                impl,
                receivers,
                [1] * count,
                [send_once(impl, impl.send_method(signal), SENDER)],
                counts,
            )
        except WrongAnswer as error:
            cells[impl.name] = Cell(reason=f"WRONG: {error}", failed=True)
    names = [impl.name for impl in impls if impl.name not in cells]
    by_name = {impl.name: impl for impl in impls}
    for order in rounds(names, settings.memory_repeats):
        for name in order:
            after_connect, after_send = retained_bytes(by_name[name], count)
            connected[name].append(after_connect)
            sent[name].append(after_send)

    def row(case: str, figures: dict[str, list[float]], note: str) -> Row:
        row_cells = {
            impl.name: cells.get(impl.name)
            or Cell(value=statistics.median(figures[impl.name]), samples=figures[impl.name])
            for impl in impls
        }
        return Row(case, "bytes", row_cells, Target("<= 200 B", 200, "absolute"), note)

    return [
        row(
            f"6. bytes per weak receiver, {count:,} connected",
            connected,
            "tracemalloc: bytes allocated by the connects and still held, over the receiver "
            "count; the receivers themselves exist beforehand; the floor stores them in a "
            "dict (strongly); psygnal holds plain functions strongly by default",
        ),
        row(
            f"6. bytes per weak receiver, {count:,} connected, after one send",
            sent,
            "as above, measured again after one send (tocsin and the floor resolve "
            "their per-sender receiver lists lazily, at the first send)",
        ),
    ]


# -- 7: asend ----------------------------------------------------------------------------


def prepare_asend(count: int) -> Prepare:
    def build(impl: Implementation, counts: Counts | None) -> tuple[Any, list[Receiver]]:
        signal = impl.new_signal()
        receivers = [impl.async_receiver(index, counts) for index in range(count)]
        impl.async_send_method(signal)  # raises Unsupported first, if it must
        connect_any(impl, signal, receivers)
        return signal, receivers

    def prepare(impl: Implementation, keep: list[object]) -> Sampler:
        counts = [0] * count
        signal, receivers = build(impl, counts)
        response = asyncio.run(
            impl.async_send_method(signal)(SENDER, toppings=TOPPINGS, size=SIZE)
        )
        check(impl, receivers, [1] * count, [response], counts)

        signal, receivers = build(impl, None)
        asend = impl.async_send_method(signal)
        check(
            impl,
            receivers,
            [1] * count,
            [asyncio.run(asend(SENDER, toppings=TOPPINGS, size=SIZE))],
        )
        keep.append(receivers)
        return async_sampler(asend, SENDER)

    return prepare


def async_sampler(asend: Callable[..., Any], sender: object) -> Sampler:
    """Time ``number`` awaited sends inside one running event loop."""
    toppings, size = TOPPINGS, SIZE

    async def batch(number: int) -> int:
        loop = itertools.repeat(None, number)
        start = perf_counter_ns()
        for _ in loop:
            await asend(sender, toppings=toppings, size=size)
        return perf_counter_ns() - start

    def sample(number: int) -> int:
        return asyncio.run(batch(number))

    return sample


def case_asend(impls: list[Implementation], settings: Settings) -> list[Row]:
    return [
        timed_row(
            "7. asend, 10 async receivers",
            impls,
            settings,
            prepare_asend(10),
            Target("<= 1.1x", 1.1),
            note=(
                "timed inside a running loop; the floor is asyncio.gather over the 10 "
                "coroutine calls, zipped into pairs; blinker's send_async awaits the "
                "receivers one after another (no tasks, not concurrent)"
            ),
        )
    ]


# -- 8: receivers dying ------------------------------------------------------------------

DYING = 1000


@dataclass
class DeathSetup:
    signal: Any
    live: Receiver
    owners: list[Any]


def death_setup(
    impl: Implementation, counts: Counts | None = None, owner_counts: Counts | None = None
) -> DeathSetup:
    """One live receiver, and DYING bound methods whose owners only a list holds.

    The floor holds receivers strongly, so its owners are not connected: its "deaths"
    are the plain deaths of objects that nobody references weakly.
    """
    signal = impl.new_signal()
    live = impl.receiver(0, counts)
    impl.connect(signal, live)
    owners = [impl.listener_class(owner_counts) for _ in range(DYING)]
    if impl.holds_weakly:
        for owner in owners:
            impl.connect(signal, owner.on_pizza)
    return DeathSetup(signal, live, owners)


def check_deaths(impl: Implementation) -> None:
    counts, owner_counts = [0], [0]
    setup = death_setup(impl, counts, owner_counts)
    send = impl.send_method(setup.signal)
    response = send_once(impl, send, SENDER)
    methods = DYING if impl.holds_weakly else 0
    if counts != [1] or owner_counts != [methods]:
        raise WrongAnswer(
            f"before the deaths: {counts[0] + owner_counts[0]} calls, expected {1 + methods}"
        )
    if impl.returns_responses and len(impl.responders(response)) != 1 + methods:
        raise WrongAnswer("before the deaths: wrong number of responses")
    del response  # it holds bound methods, and so their owners
    setup.owners.clear()
    response = send_once(impl, send, SENDER)
    if counts != [2] or owner_counts != [methods]:
        raise WrongAnswer("after the deaths: the wrong receivers ran")
    if impl.returns_responses:
        check(impl, [setup.live], [1], [response])


def case_deaths(impls: list[Implementation], settings: Settings) -> list[Row]:
    deaths: dict[str, list[float]] = {}
    first_send: dict[str, list[float]] = {}
    cells: dict[str, Cell] = {}
    for impl in impls:
        try:
            check_deaths(impl)
            deaths[impl.name], first_send[impl.name] = [], []
        except WrongAnswer as error:
            cells[impl.name] = Cell(reason=f"WRONG: {error}", failed=True)
    by_name = {impl.name: impl for impl in impls}
    for order in rounds(list(deaths), settings.fresh_repeats):
        for name in order:
            impl = by_name[name]
            setup = death_setup(impl)
            send = impl.send_method(setup.signal)
            send_once(impl, send, SENDER)  # every cache warm, as in a running program
            gc.collect()
            with paused_gc():
                start = perf_counter_ns()
                setup.owners.clear()
                died = perf_counter_ns() - start
                elapsed, response = time_one_send(impl, send, SENDER)
            if impl.returns_responses and len(response) != 1:
                cells[name] = Cell(reason="WRONG: dead receivers answered", failed=True)
            deaths[name].append(died)
            first_send[name].append(elapsed)

    def row(case: str, figures: dict[str, list[float]], target: Target, note: str) -> Row:
        row_cells = {
            impl.name: cells.get(impl.name)
            or Cell(
                value=statistics.median(figures[impl.name]), samples=figures[impl.name], number=1
            )
            for impl in impls
        }
        return Row(case, "ns", row_cells, target, note)

    return [
        row(
            f"8. {DYING} weak bound-method receivers' owners die",
            deaths,
            Target("<= Django's", 1.0, "django"),
            "the time to drop the last references to the owners (all the library's weakref "
            "callbacks run then); the floor drops as many objects that nobody references "
            f"weakly; fresh setup per sample, median of {settings.fresh_repeats}",
        ),
        row(
            "8. then the first send (1 live receiver)",
            first_send,
            Target("<= 3x", 3.0),
            "one send timed on its own, right after the deaths (timer overhead and cold "
            "caches included alike); the floor's sends from its 1-receiver list, which "
            "nothing invalidated",
        ),
    ]


# -- 9: a mixed, realistic load ----------------------------------------------------------

MIXED_SIGNALS, MIXED_SENDERS, MIXED_RECEIVERS, MIXED_SENDS = 20, 50, 200, 1000
MIXED_ANY_SENDER = 0.25


@dataclass(frozen=True)
class MixedPlan:
    # For receiver i: the signal it is connected to, and its sender (None: any sender).
    connections: list[tuple[int, int | None]]
    # The sends, in order: (signal, sender).
    sends: list[tuple[int, int]]

    def expected(self) -> list[int]:
        per_send = Counter(self.sends)
        return [
            sum(
                times
                for (signal, sender), times in per_send.items()
                if signal == wanted and who in (None, sender)
            )
            for wanted, who in self.connections
        ]


def mixed_plan(seed: int = 9) -> MixedPlan:
    rng = random.Random(seed)
    connections = [
        (
            rng.randrange(MIXED_SIGNALS),
            None if rng.random() < MIXED_ANY_SENDER else rng.randrange(MIXED_SENDERS),
        )
        for _ in range(MIXED_RECEIVERS)
    ]
    sends = [
        (rng.randrange(MIXED_SIGNALS), rng.randrange(MIXED_SENDERS)) for _ in range(MIXED_SENDS)
    ]
    return MixedPlan(connections, sends)


def prepare_mixed(plan: MixedPlan, caching: bool) -> Prepare:
    expected = plan.expected()

    def build(
        impl: Implementation, counts: Counts | None
    ) -> tuple[list[Receiver], list[tuple[Callable[..., Any], PizzaStore]], list[object]]:
        signals = [impl.new_signal(caching=caching) for _ in range(MIXED_SIGNALS)]
        senders = [PizzaStore() for _ in range(MIXED_SENDERS)]
        receivers = [impl.receiver(index, counts) for index in range(MIXED_RECEIVERS)]
        for receiver, (signal, sender) in zip(receivers, plan.connections, strict=True):
            impl.connect(
                signals[signal], receiver, sender=None if sender is None else senders[sender]
            )
        sends = [
            (impl.send_method(signals[signal]), senders[sender]) for signal, sender in plan.sends
        ]
        return receivers, sends, [signals, senders]

    def run(impl: Implementation, sends: list[tuple[Callable[..., Any], PizzaStore]]) -> list[Any]:
        return [send_once(impl, send, sender) for send, sender in sends]

    def prepare(impl: Implementation, keep: list[object]) -> Sampler:
        counts = [0] * MIXED_RECEIVERS
        receivers, sends, _ = build(impl, counts)
        check(impl, receivers, expected, run(impl, sends), counts)

        receivers, sends, owners = build(impl, None)
        check(impl, receivers, expected, run(impl, sends))
        keep.append((receivers, owners))
        toppings, size = TOPPINGS, SIZE

        def sample(number: int) -> int:
            loop = itertools.repeat(None, number)
            start = perf_counter_ns()
            for _ in loop:
                for send, sender in sends:
                    send(sender, toppings=toppings, size=size)
            return perf_counter_ns() - start

        return sample

    return prepare


def case_mixed(impls: list[Implementation], settings: Settings) -> list[Row]:
    plan = mixed_plan()
    return [
        timed_row(
            f"9. mixed: {MIXED_SIGNALS} signals, {MIXED_RECEIVERS} receivers, "
            f"{MIXED_SENDERS} senders, use_caching={caching}",
            impls,
            settings,
            prepare_mixed(plan, caching),
            note=(
                f"per send, over a seeded sequence of {MIXED_SENDS} sends from random "
                f"senders; {MIXED_ANY_SENDER:.0%} of the receivers are for any sender; the "
                "floor sends from per-sender lists it resolved beforehand"
            )
            if not caching
            else None,
            ops_per_call=MIXED_SENDS,
        )
        for caching in (False, True)
    ]


# -- all of them ---------------------------------------------------------------------------

Case = Callable[[list[Implementation], Settings], list[Row]]

CASES: dict[int, Case] = {
    1: case_no_receivers,
    2: case_any_sender,
    3: case_sender_filtering,
    4: case_send_robust,
    5: case_connect_disconnect,
    6: case_memory,
    7: case_asend,
    8: case_deaths,
    9: case_mixed,
}
