"""Async dispatch (Django 6.1 semantics, without asgiref).

Covers ``asend``/``asend_robust``, async receivers run by ``send``/``send_robust``,
ContextVar propagation, failure handling (cancellation, exception groups, logging) and the
detection of async receivers at connect time.

Concurrency is always proven with handshakes between receivers, never with timings. The
only clock used is ``asyncio.timeout`` as a safety net that turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import logging
import threading
import warnings
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from tocsin import Signal

T = TypeVar("T")

LOGGER_NAME = "tocsin.dispatch"
ROBUST_FORMAT = "Error calling %s in Signal.send_robust() (%s)"
SAFETY_NET = 10.0  # seconds; only to turn a deadlock into a failure

METHODS = ["send", "send_robust", "asend", "asend_robust"]
SYNC_METHODS = ["send", "send_robust"]
ASYNC_METHODS = ["asend", "asend_robust"]


# -- helpers ---------------------------------------------------------------------------


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run *coroutine* on a fresh event loop, failing (not hanging) if it deadlocks."""

    async def guarded() -> T:
        async with asyncio.timeout(SAFETY_NET):
            return await coroutine

    return asyncio.run(guarded())


def dispatch(signal: Signal, method: str, sender: object = None, **named: Any) -> Any:
    """Call any of the four send methods from synchronous code."""
    if method in ASYNC_METHODS:
        return run(getattr(signal, method)(sender, **named))
    return getattr(signal, method)(sender, **named)


def nothing() -> None:
    pass


def dispatch_as_caller(
    signal: Signal, method: str, setup: Callable[[], None] = nothing
) -> tuple[Any, contextvars.Context]:
    """Run *setup* then dispatch, in a fresh caller context (a coroutine for asend*).

    Returns the responses (or the exception raised) and a snapshot of the caller's
    context taken right after the dispatch.
    """
    if method in ASYNC_METHODS:

        async def async_caller() -> tuple[Any, contextvars.Context]:
            setup()
            try:
                outcome: Any = await getattr(signal, method)(None)
            except Exception as error:
                outcome = error
            return outcome, contextvars.copy_context()

        return run(async_caller())

    def sync_caller() -> tuple[Any, contextvars.Context]:
        setup()
        try:
            outcome: Any = getattr(signal, method)(None)
        except Exception as error:
            outcome = error
        return outcome, contextvars.copy_context()

    return contextvars.copy_context().run(sync_caller)


def run_in_thread(function: Callable[[], T]) -> T:
    """Run *function* in a new thread and return its result (or re-raise its error)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("ok", function()))
        except BaseException as error:
            outcome.append(("error", error))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(SAFETY_NET)
    assert not thread.is_alive(), "the thread deadlocked"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


class AsyncCallable:
    """An instance whose class defines ``async def __call__``; not marked in any way."""

    def __init__(self, result: str) -> None:
        self.result = result

    async def __call__(self, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return self.result


class MadeBySignal:
    """A class receiver: calling it makes an instance, which happens to be async-callable."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def __call__(self, **kwargs: Any) -> None:
        pass


class SyncCallable:
    def __call__(self, **kwargs: Any) -> str:
        return "sync instance"


class Handler:
    def __init__(self, result: str = "method") -> None:
        self.result = result

    async def on_signal(self, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return self.result

    def on_signal_sync(self, **kwargs: Any) -> str:
        return self.result


async def async_function(**kwargs: Any) -> str:
    await asyncio.sleep(0)
    return "function"


async def async_tagged(tag: str, **kwargs: Any) -> str:
    await asyncio.sleep(0)
    return tag


# -- asend: basics and the sync group ----------------------------------------------------


@pytest.mark.parametrize("method", ASYNC_METHODS)
def test_asend_without_receivers_returns_an_empty_list(method: str) -> None:
    assert dispatch(Signal(), method) == []


@pytest.mark.parametrize("method", ASYNC_METHODS)
def test_asend_passes_signal_sender_and_named_arguments(method: str) -> None:
    signal = Signal()
    seen: list[tuple[str, dict[str, Any]]] = []

    def sync_receiver(**kwargs: Any) -> None:
        seen.append(("sync", kwargs))

    async def async_receiver(**kwargs: Any) -> None:
        seen.append(("async", kwargs))

    signal.connect(sync_receiver)
    signal.connect(async_receiver)
    sender = object()
    dispatch(signal, method, sender, colour="red")
    expected = {"signal": signal, "sender": sender, "colour": "red"}
    assert seen == [("sync", expected), ("async", expected)]


@pytest.mark.parametrize("method", ASYNC_METHODS)
def test_asend_runs_sync_receivers_in_order_in_one_worker_thread(method: str) -> None:
    signal = Signal()
    calls: list[tuple[str, int]] = []

    def first(**kwargs: Any) -> int:
        calls.append(("first", threading.get_ident()))
        return 1

    def second(**kwargs: Any) -> int:
        calls.append(("second", threading.get_ident()))
        return 2

    def third(**kwargs: Any) -> int:
        calls.append(("third", threading.get_ident()))
        return 3

    for function in (first, second, third):
        signal.connect(function)

    async def caller() -> tuple[int, Any]:
        return threading.get_ident(), await getattr(signal, method)(None)

    loop_thread, responses = run(caller())
    assert responses == [(first, 1), (second, 2), (third, 3)]
    assert [name for name, _ in calls] == ["first", "second", "third"]
    threads = {thread for _, thread in calls}
    assert len(threads) == 1, "the sync receivers must run as one group, in one thread"
    assert loop_thread not in threads, "sync receivers must not block the event loop"


@pytest.mark.parametrize("method", ASYNC_METHODS)
def test_asend_runs_all_sync_receivers_before_any_async_receiver(method: str) -> None:
    signal = Signal()
    log: list[str] = []

    async def early_async(**kwargs: Any) -> str:
        log.append("early_async")
        return "early_async"

    def sync_one(**kwargs: Any) -> str:
        log.append("sync_one")
        return "sync_one"

    async def late_async(**kwargs: Any) -> str:
        log.append("late_async")
        return "late_async"

    def sync_two(**kwargs: Any) -> str:
        log.append("sync_two")
        return "sync_two"

    for function in (early_async, sync_one, late_async, sync_two):
        signal.connect(function)

    responses = dispatch(signal, method)
    assert responses == [
        (sync_one, "sync_one"),
        (sync_two, "sync_two"),
        (early_async, "early_async"),
        (late_async, "late_async"),
    ]
    assert log[:2] == ["sync_one", "sync_two"]
    assert sorted(log[2:]) == ["early_async", "late_async"]


def test_asend_sync_failure_propagates_and_no_async_receiver_starts() -> None:
    signal = Signal()
    log: list[str] = []

    async def async_receiver(**kwargs: Any) -> None:
        log.append("async")

    def failing(**kwargs: Any) -> None:
        log.append("failing")
        raise ValueError("sync failure")

    def after(**kwargs: Any) -> None:
        log.append("after")

    signal.connect(async_receiver)
    signal.connect(failing)
    signal.connect(after)
    with pytest.raises(ValueError, match="sync failure"):
        dispatch(signal, "asend")
    assert log == ["failing"]


# -- async receivers: concurrency and order of results -----------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_async_receivers_run_concurrently_results_in_registration_order(method: str) -> None:
    """Each receiver waits for the other, so they can only finish if run concurrently.

    The receiver registered last finishes first; the results still follow registration.
    """
    signal = Signal()
    finished: list[str] = []
    slow_started = asyncio.Event()
    fast_finished = asyncio.Event()

    async def slow(**kwargs: Any) -> str:
        slow_started.set()
        await fast_finished.wait()
        finished.append("slow")
        return "slow"

    async def fast(**kwargs: Any) -> str:
        await slow_started.wait()
        finished.append("fast")
        fast_finished.set()
        return "fast"

    signal.connect(slow)
    signal.connect(fast)
    responses = dispatch(signal, method)
    assert finished == ["fast", "slow"]
    assert responses == [(slow, "slow"), (fast, "fast")]


@pytest.mark.parametrize("method", METHODS)
def test_many_async_receivers_all_run_concurrently(method: str) -> None:
    """A barrier: no receiver may finish before every one of them has started."""
    signal = Signal()
    count = 6
    started: list[int] = []
    everyone_started = asyncio.Event()
    receivers = []

    def make(index: int) -> Callable[..., Coroutine[Any, Any, int]]:
        async def receiver(**kwargs: Any) -> int:
            started.append(index)
            if len(started) == count:
                everyone_started.set()
            await everyone_started.wait()
            # Finish in reverse order of registration.
            for _ in range(count - index):
                await asyncio.sleep(0)
            return index

        return receiver

    for index in range(count):
        receiver = make(index)
        receivers.append(receiver)
        signal.connect(receiver)
    responses = dispatch(signal, method)
    assert responses == [(receiver, index) for index, receiver in enumerate(receivers)]
    assert sorted(started) == list(range(count))


# -- failures in the non-robust paths ------------------------------------------------------


@pytest.mark.parametrize("method", ["send", "asend"])
def test_async_failure_cancels_running_siblings_and_is_raised_unwrapped(method: str) -> None:
    signal = Signal()
    log: list[str] = []
    slow_started = asyncio.Event()

    async def slow(**kwargs: Any) -> str:
        slow_started.set()
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends this
        except asyncio.CancelledError:
            log.append("slow cancelled")
            raise
        return "unreachable"

    async def failing(**kwargs: Any) -> None:
        await slow_started.wait()
        raise ValueError("async failure")

    signal.connect(slow)
    signal.connect(failing)
    with pytest.raises(ValueError, match="async failure") as info:
        dispatch(signal, method)
    assert type(info.value) is ValueError
    assert log == ["slow cancelled"]


@pytest.mark.parametrize("method", ["send", "asend"])
def test_simultaneous_async_failures_raise_an_exception_group(method: str) -> None:
    signal = Signal()

    async def fails_first(**kwargs: Any) -> None:
        raise ValueError("first")

    async def fails_second(**kwargs: Any) -> None:
        raise KeyError("second")

    signal.connect(fails_first)
    signal.connect(fails_second)
    with pytest.raises(ExceptionGroup) as info:
        dispatch(signal, method)
    assert sorted(type(error).__name__ for error in info.value.exceptions) == [
        "KeyError",
        "ValueError",
    ]


@pytest.mark.parametrize("method", ["send", "asend"])
def test_sync_receivers_still_report_when_an_async_receiver_fails_later(method: str) -> None:
    """The sync group ran (side effects happened) before the async failure surfaced."""
    signal = Signal()
    log: list[str] = []

    def sync_receiver(**kwargs: Any) -> None:
        log.append("sync")

    async def failing(**kwargs: Any) -> None:
        log.append("failing")
        raise ValueError("late failure")

    signal.connect(failing)
    signal.connect(sync_receiver)
    with pytest.raises(ValueError, match="late failure"):
        dispatch(signal, method)
    assert log == ["sync", "failing"]


@pytest.mark.parametrize("method", ["send", "asend"])
def test_receiver_call_failing_leaves_no_coroutine_unawaited(method: str) -> None:
    """A receiver that fails when *called* (here: a missing keyword argument) must not
    leave the coroutines of the other async receivers created but never awaited."""
    signal = Signal()
    log: list[str] = []

    async def fine(**kwargs: Any) -> None:
        log.append("fine")

    async def needs_argument(*, required: int, **kwargs: Any) -> None:
        log.append("needs_argument")

    signal.connect(fine)
    signal.connect(needs_argument)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match="required"):
            dispatch(signal, method)
        gc.collect()
    never_awaited = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert never_awaited == []


# -- the robust paths ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["send_robust", "asend_robust"])
def test_robust_returns_and_logs_every_failure(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    signal = Signal()

    async def async_failing(**kwargs: Any) -> None:
        raise KeyError("async failure")

    def sync_failing(**kwargs: Any) -> None:
        raise ValueError("sync failure")

    async def async_ok(**kwargs: Any) -> str:
        return "async ok"

    def sync_ok(**kwargs: Any) -> str:
        return "sync ok"

    for function in (async_failing, sync_failing, async_ok, sync_ok):
        signal.connect(function)

    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    responses = dispatch(signal, method)

    assert [receiver for receiver, _ in responses] == [
        sync_failing,
        sync_ok,
        async_failing,
        async_ok,
    ]
    sync_error = responses[0][1]
    async_error = responses[2][1]
    assert isinstance(sync_error, ValueError)
    assert isinstance(async_error, KeyError)
    assert sync_error.__traceback__ is not None
    assert async_error.__traceback__ is not None
    assert responses[1][1] == "sync ok"
    assert responses[3][1] == "async ok"

    records = [record for record in caplog.records if record.name == LOGGER_NAME]
    assert len(records) == 2
    for record, receiver, error in (
        (records[0], sync_failing, sync_error),
        (records[1], async_failing, async_error),
    ):
        assert record.levelno == logging.ERROR
        assert record.msg == ROBUST_FORMAT
        assert record.args == (receiver.__qualname__, error)
        assert record.getMessage() == (
            f"Error calling {receiver.__qualname__} in Signal.send_robust() ({error})"
        )
        assert record.exc_info is not None
        assert record.exc_info[1] is error


@pytest.mark.parametrize("method", ["send_robust", "asend_robust"])
def test_robust_failure_cancels_no_sibling(method: str, caplog: pytest.LogCaptureFixture) -> None:
    signal = Signal()
    log: list[str] = []
    failed = asyncio.Event()
    slow_started = asyncio.Event()

    async def slow(**kwargs: Any) -> str:
        slow_started.set()
        try:
            await failed.wait()
            for _ in range(3):
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            log.append("slow cancelled")
            raise
        log.append("slow finished")
        return "slow"

    async def failing(**kwargs: Any) -> None:
        await slow_started.wait()
        failed.set()
        raise ValueError("robust failure")

    signal.connect(slow)
    signal.connect(failing)
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    responses = dispatch(signal, method)
    assert log == ["slow finished"]
    assert responses[0] == (slow, "slow")
    assert responses[1][0] is failing
    assert isinstance(responses[1][1], ValueError)


@pytest.mark.parametrize("method", ["send_robust", "asend_robust"])
def test_robust_sync_failure_does_not_stop_later_receivers(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    signal = Signal()

    def failing(**kwargs: Any) -> None:
        raise ValueError("sync failure")

    def after(**kwargs: Any) -> str:
        return "after"

    async def async_after(**kwargs: Any) -> str:
        return "async after"

    signal.connect(failing)
    signal.connect(after)
    signal.connect(async_after)
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    responses = dispatch(signal, method)
    assert [receiver for receiver, _ in responses] == [failing, after, async_after]
    assert isinstance(responses[0][1], ValueError)
    assert responses[1:] == [(after, "after"), (async_after, "async after")]


@pytest.mark.parametrize("method", ["send_robust", "asend_robust"])
def test_robust_receiver_raising_cancelled_error_leaves_none(method: str) -> None:
    signal = Signal()

    async def before(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return "before"

    async def cancels(**kwargs: Any) -> str:
        raise asyncio.CancelledError

    async def after(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return "after"

    def sync_receiver(**kwargs: Any) -> str:
        return "sync"

    for function in (before, cancels, after, sync_receiver):
        signal.connect(function)

    if method == "asend_robust":

        async def caller() -> Any:
            responses = await signal.asend_robust(None)
            # The caller itself was not cancelled: it can still await.
            await asyncio.sleep(0)
            task = asyncio.current_task()
            assert task is not None
            assert task.cancelling() == 0
            return responses

        responses = run(caller())
    else:
        responses = signal.send_robust(None)
    assert responses == [
        (sync_receiver, "sync"),
        (before, "before"),
        (cancels, None),
        (after, "after"),
    ]


def test_asend_robust_mixed_order_matches_django_example(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connect order async-failing, async, sync gives sync first, then the async ones."""
    signal = Signal()

    async def failing_async(**kwargs: Any) -> None:
        raise ValueError("failing")

    async def async_handler(**kwargs: Any) -> int:
        return 1

    def sync_handler(**kwargs: Any) -> int:
        return 1

    signal.connect(failing_async)
    signal.connect(async_handler)
    signal.connect(sync_handler)
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    responses = dispatch(signal, "asend_robust")
    assert len(responses) == 3
    assert responses[0] == (sync_handler, 1)
    assert responses[1][0] is failing_async
    assert isinstance(responses[1][1], ValueError)
    assert responses[2] == (async_handler, 1)


# -- ContextVars ---------------------------------------------------------------------------


def incrementer(var: contextvars.ContextVar[int], kind: str, seen: list[int]) -> Any:
    if kind == "sync":

        def sync_increment(**kwargs: Any) -> None:
            value = var.get() + 1
            var.set(value)
            seen.append(value)

        return sync_increment

    async def async_increment(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        value = var.get() + 1
        var.set(value)
        seen.append(value)

    return async_increment


RECEIVER_KINDS = {
    "sync-only": ("sync", "sync"),
    # Async connected first: the sync receiver still runs (and increments) first.
    "mixed": ("async", "sync"),
    "async-only": ("async", "async"),
}


@pytest.mark.parametrize("kinds", RECEIVER_KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_context_var_changes_are_shared_and_copied_back(method: str, kinds: str) -> None:
    """The caller sets 1, each receiver increments: they see 2 and 3, the caller 3."""
    signal = Signal()
    var: contextvars.ContextVar[int] = contextvars.ContextVar("counter")
    seen: list[int] = []
    receivers = [incrementer(var, kind, seen) for kind in RECEIVER_KINDS[kinds]]
    for function in receivers:
        signal.connect(function)

    def setup() -> None:
        var.set(1)

    outcome, context = dispatch_as_caller(signal, method, setup)
    assert not isinstance(outcome, Exception), outcome
    assert len(outcome) == 2
    if kinds == "async-only":
        # Interleaved: the order of the side effects is not guaranteed, the values are.
        assert sorted(seen) == [2, 3]
    else:
        assert seen == [2, 3]
    assert context[var] == 3


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("method", METHODS)
def test_context_vars_first_set_in_receivers_reach_the_caller(method: str, kind: str) -> None:
    signal = Signal()
    fresh: contextvars.ContextVar[str] = contextvars.ContextVar("fresh")

    def sync_setter(**kwargs: Any) -> None:
        fresh.set("set by a sync receiver")

    async def async_setter(**kwargs: Any) -> None:
        fresh.set("set by an async receiver")

    receiver: Any = sync_setter if kind == "sync" else async_setter
    signal.connect(receiver)
    outcome, context = dispatch_as_caller(signal, method)
    assert not isinstance(outcome, Exception), outcome
    assert context.get(fresh) == f"set by a{'n' if kind == 'async' else ''} {kind} receiver"


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("method", METHODS)
def test_context_vars_are_copied_back_even_when_a_receiver_raised(
    method: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    signal = Signal()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

    def sync_failing(**kwargs: Any) -> None:
        var.set("changed")
        raise ValueError("receiver failure")

    async def async_failing(**kwargs: Any) -> None:
        var.set("changed")
        raise ValueError("receiver failure")

    receiver: Any = sync_failing if kind == "sync" else async_failing
    signal.connect(receiver)
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)

    def setup() -> None:
        var.set("initial")

    outcome, context = dispatch_as_caller(signal, method, setup)
    if method.endswith("robust"):
        assert isinstance(outcome[0][1], ValueError)
    else:
        assert isinstance(outcome, ValueError)
    assert context[var] == "changed"


@pytest.mark.parametrize("method", ["send", "asend"])
def test_context_vars_copied_back_when_async_siblings_were_cancelled(method: str) -> None:
    signal = Signal()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    slow_started = asyncio.Event()

    async def slow(**kwargs: Any) -> None:
        var.set("set by slow")
        slow_started.set()
        await asyncio.Event().wait()

    async def failing(**kwargs: Any) -> None:
        await slow_started.wait()
        raise ValueError("failure")

    signal.connect(slow)
    signal.connect(failing)
    outcome, context = dispatch_as_caller(signal, method)
    assert isinstance(outcome, ValueError)
    assert context[var] == "set by slow"


# -- send()/send_robust() with async receivers -----------------------------------------------


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_send_runs_async_receivers_after_the_sync_ones(method: str) -> None:
    signal = Signal()
    log: list[str] = []

    async def async_receiver(**kwargs: Any) -> str:
        log.append("async")
        await asyncio.sleep(0)
        return "async"

    def sync_receiver(**kwargs: Any) -> str:
        log.append("sync")
        return "sync"

    signal.connect(async_receiver)
    signal.connect(sync_receiver)
    responses = getattr(signal, method)(None)
    assert responses == [(sync_receiver, "sync"), (async_receiver, "async")]
    assert log == ["sync", "async"]


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_send_with_async_receivers_inside_a_running_loop_raises_before_any_call(
    method: str,
) -> None:
    signal = Signal()
    log: list[str] = []

    def sync_receiver(**kwargs: Any) -> None:
        log.append("sync")

    async def async_receiver(**kwargs: Any) -> None:
        log.append("async")

    signal.connect(sync_receiver)
    signal.connect(async_receiver)
    expected = "asend_robust" if method == "send_robust" else "asend"

    async def caller() -> None:
        with pytest.raises(RuntimeError, match=rf"await signal\.{expected}\(") as info:
            getattr(signal, method)(None)
        assert "event loop" in str(info.value)

    run(caller())
    assert log == [], "no receiver, sync included, may run before the error"


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_send_with_only_sync_receivers_works_inside_a_running_loop(method: str) -> None:
    signal = Signal()

    def sync_receiver(**kwargs: Any) -> str:
        return "sync"

    signal.connect(sync_receiver)

    async def caller() -> Any:
        return getattr(signal, method)(None)

    assert run(caller()) == [(sync_receiver, "sync")]


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_send_leaves_the_threads_set_event_loop_alone(method: str) -> None:
    signal = Signal()

    async def async_receiver(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return "async"

    signal.connect(async_receiver)

    def in_thread() -> tuple[Any, bool, bool, str]:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            responses = getattr(signal, method)(None)
            still_current = asyncio.get_event_loop() is loop
            closed = loop.is_closed()
            usable = loop.run_until_complete(asyncio.sleep(0, "usable"))
            return responses, still_current, closed, usable
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    responses, still_current, closed, usable = run_in_thread(in_thread)
    assert responses == [(async_receiver, "async")]
    assert still_current
    assert not closed
    assert usable == "usable"


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_send_from_a_sync_receiver_run_by_asend_runs_async_receivers(method: str) -> None:
    """asend runs sync receivers in a worker thread, where no loop runs: send() works there."""
    outer = Signal()
    inner = Signal()

    async def inner_async(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return "inner"

    def bridge(**kwargs: Any) -> Any:
        return getattr(inner, method)(None)

    inner.connect(inner_async)
    outer.connect(bridge)
    assert dispatch(outer, "asend") == [(bridge, [(inner_async, "inner")])]


def test_send_runs_async_receivers_repeatedly_on_fresh_loops() -> None:
    signal = Signal()
    loops: list[asyncio.AbstractEventLoop] = []

    async def record_loop(**kwargs: Any) -> None:
        loops.append(asyncio.get_running_loop())

    signal.connect(record_loop)
    for _ in range(3):
        signal.send(None)
    assert len(loops) == 3
    assert all(loop.is_closed() for loop in loops)


# -- async detection at connect time ---------------------------------------------------------


def test_async_receivers_of_every_shape_are_detected_and_awaited() -> None:
    signal = Signal()
    handler = Handler("method")
    partial = functools.partial(async_tagged, "partial")
    instance = AsyncCallable("instance")
    receivers: list[Any] = [async_function, handler.on_signal, partial, instance]
    for function in receivers:
        signal.connect(function)

    assert [entry[3] for entry in signal.receivers] == [True] * 4
    expected = ["function", "method", "partial", "instance"]
    for method in METHODS:
        responses = dispatch(signal, method)
        assert [response for _, response in responses] == expected, method
        assert responses[0][0] is async_function
        assert responses[1][0] == handler.on_signal
        assert responses[2][0] is partial
        assert responses[3][0] is instance


def test_sync_receivers_are_not_mistaken_for_async_ones() -> None:
    signal = Signal()
    handler = Handler("sync method")

    def function(**kwargs: Any) -> str:
        return "function"

    instance = SyncCallable()
    # A class whose *instances* are async callables is itself a sync callable.
    signal.connect(function)
    signal.connect(handler.on_signal_sync)
    signal.connect(instance)
    signal.connect(MadeBySignal)
    assert [entry[3] for entry in signal.receivers] == [False] * 4

    async def caller() -> Any:
        # Sync receivers only: send() works inside a running loop.
        return signal.send(None)

    responses = run(caller())
    assert [response for _, response in responses[:3]] == [
        "function",
        "sync method",
        "sync instance",
    ]
    assert type(responses[3][1]) is MadeBySignal


# -- dead weak async receivers ---------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_dead_weak_async_receivers_are_skipped(method: str) -> None:
    signal = Signal()
    handler = Handler("method")

    async def local(**kwargs: Any) -> str:
        return "local"

    instance = AsyncCallable("instance")

    def survivor(**kwargs: Any) -> str:
        return "survivor"

    async def async_survivor(**kwargs: Any) -> str:
        return "async survivor"

    signal.connect(handler.on_signal)
    signal.connect(local)
    signal.connect(instance)
    signal.connect(survivor)
    signal.connect(async_survivor)
    del handler, local, instance
    gc.collect()
    assert dispatch(signal, method) == [
        (survivor, "survivor"),
        (async_survivor, "async survivor"),
    ]
    assert len(signal.receivers) == 2


def test_strongly_connected_async_method_keeps_its_instance_alive() -> None:
    signal = Signal()
    handler = Handler("kept")
    signal.connect(handler.on_signal, weak=False)
    del handler
    gc.collect()
    assert [response for _, response in dispatch(signal, "asend")] == ["kept"]


# -- re-entrancy from async receivers --------------------------------------------------------


def test_async_receivers_can_connect_disconnect_and_asend_on_the_same_signal() -> None:
    signal = Signal()
    log: list[str] = []
    depth = contextvars.ContextVar("depth", default=0)

    async def late(**kwargs: Any) -> str:
        log.append("late")
        return "late"

    async def reentrant(**kwargs: Any) -> str:
        log.append(f"reentrant@{depth.get()}")
        if depth.get() == 0:
            depth.set(1)
            signal.connect(late)
            assert signal.disconnect(reentrant)
            nested = await signal.asend(None)
            # The nested dispatch sees the changes; this one keeps its snapshot.
            assert nested == [(sync_reconnector, "sync"), (late, "late")]
        return "reentrant"

    def sync_reconnector(**kwargs: Any) -> str:
        # Runs in the worker thread, outside the signal's lock.
        signal.connect(sync_reconnector)
        log.append("sync")
        return "sync"

    signal.connect(reentrant)
    signal.connect(sync_reconnector)
    responses = dispatch(signal, "asend")
    assert responses == [(sync_reconnector, "sync"), (reentrant, "reentrant")]
    assert log == ["sync", "reentrant@0", "sync", "late"]
    assert dispatch(signal, "asend") == [(sync_reconnector, "sync"), (late, "late")]


# -- the private event loop of send() ----------------------------------------------------------


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_send_cancels_the_tasks_its_async_receivers_left_behind(method: str) -> None:
    """Like asyncio.run (and asgiref's async_to_sync), the private loop is not closed
    with tasks still pending: they are cancelled, and their cleanup runs, before send()
    returns. Otherwise asyncio reports "Task was destroyed but it is pending!" later."""
    signal = Signal()
    log: list[str] = []

    async def background() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("background cancelled")
            raise

    async def spawns(**kwargs: Any) -> str:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)  # let the task start
        return "spawned"

    signal.connect(spawns)
    responses = getattr(signal, method)(None)
    seen_on_return = list(log)
    gc.collect()  # a leaked task is destroyed here, not in some later test
    assert responses == [(spawns, "spawned")]
    assert seen_on_return == ["background cancelled"]


# -- the snapshot taken when a dispatch starts -------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_receiver_collected_during_a_dispatch_is_skipped_by_every_method(method: str) -> None:
    """tocsin looks a sync receiver up just before calling it (a deliberate difference
    from Django, which holds every receiver strongly for the whole dispatch): a weakly
    connected receiver whose instance loses its last reference earlier in the same
    dispatch is gone, and is not called. Every method must agree."""
    signal = Signal()
    owner = [Handler("dropped during the dispatch")]

    def drops_the_handler(**kwargs: Any) -> str:
        owner.clear()  # the signal holds the handler weakly: nothing else holds it now
        return "dropped"

    signal.connect(drops_the_handler)
    signal.connect(owner[0].on_signal_sync)
    responses = dispatch(signal, method)
    assert [response for _, response in responses] == ["dropped"]


@pytest.mark.parametrize("method", METHODS)
def test_receiver_disconnected_during_a_dispatch_is_still_called(method: str) -> None:
    """Disconnecting is different from dying: the dispatch works on the receivers it
    started with, so one disconnected by an earlier receiver still runs (as in Django)."""
    signal = Signal()
    handler = Handler("disconnected during the dispatch")

    def disconnects_the_handler(**kwargs: Any) -> str:
        assert signal.disconnect(handler.on_signal_sync)
        return "disconnected"

    signal.connect(disconnects_the_handler)
    signal.connect(handler.on_signal_sync)
    responses = dispatch(signal, method)
    assert [response for _, response in responses] == [
        "disconnected",
        "disconnected during the dispatch",
    ]
