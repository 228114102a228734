"""asend and asend_robust on every supported event loop: asyncio, trio, and anyio on either
of its backends.

The async tests are written once, with anyio's loop-neutral primitives, and run by anyio's
pytest plugin on its asyncio and trio backends; the same functions run again under plain
``trio.run`` and plain ``asyncio.run`` (see the end of the file), where no anyio runner is
involved. Loop-specific behaviour (``task.cancel()``, ``asyncio.timeout``, trio's cancel
scopes and ``trio.from_thread``) has tests of its own. tests/test_async.py holds the
asyncio suite, which this file does not repeat.

Concurrency and cancellation are proven with events and handshakes, never with timings;
timeouts are made to expire by moving their deadline to "now" once the receivers are
waiting, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest
import sniffio
import trio

from tocsin import Signal
from tocsin.testing import capture

pytestmark = pytest.mark.anyio

SAFETY_NET = 10.0  # seconds; only to turn a deadlock into a failure
ASYNC_METHODS = ["asend", "asend_robust"]

AsyncTest = Callable[[], Coroutine[Any, Any, None]]
LOOP_NEUTRAL: list[AsyncTest] = []


def loop_neutral(test: AsyncTest) -> AsyncTest:
    """Mark *test* to run under plain trio.run and asyncio.run as well (see the end)."""
    LOOP_NEUTRAL.append(test)
    return test


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def waits_forever(name: str, log: list[str], started: Callable[[], None]) -> Any:
    """An async receiver that only cancellation can end; it logs being cancelled."""

    async def receiver(**kwargs: Any) -> str:
        started()
        try:
            await anyio.Event().wait()  # never set
        except anyio.get_cancelled_exc_class():
            log.append(f"{name} cancelled")
            raise
        log.append(f"{name} finished")
        return name

    return receiver


class Countdown:
    """Set an event once ``count`` receivers have called ``arrive``."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = anyio.Event()

    def arrive(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.done.set()


# -- order of results, threads, concurrency -----------------------------------------------


@loop_neutral
async def test_sync_group_runs_first_in_one_worker_thread_results_in_documented_order() -> None:
    signal = Signal()
    log: list[str] = []
    threads: list[int] = []

    async def early_async(**kwargs: Any) -> str:
        await anyio.sleep(0)
        log.append("early_async")
        return "early_async"

    def sync_one(**kwargs: Any) -> str:
        threads.append(threading.get_ident())
        log.append("sync_one")
        return "sync_one"

    async def late_async(**kwargs: Any) -> str:
        log.append("late_async")
        return "late_async"

    def sync_two(**kwargs: Any) -> str:
        threads.append(threading.get_ident())
        log.append("sync_two")
        return "sync_two"

    for function in (early_async, sync_one, late_async, sync_two):
        signal.connect(function)
    for method in ASYNC_METHODS:
        log.clear()
        threads.clear()
        responses = await getattr(signal, method)(None)
        assert responses == [
            (sync_one, "sync_one"),
            (sync_two, "sync_two"),
            (early_async, "early_async"),
            (late_async, "late_async"),
        ], method
        assert log[:2] == ["sync_one", "sync_two"]
        assert sorted(log[2:]) == ["early_async", "late_async"]
        assert len(set(threads)) == 1, "the sync receivers run as one group, in one thread"
        assert threading.get_ident() not in threads, "sync receivers must not block the loop"


@loop_neutral
async def test_async_receivers_run_concurrently_results_in_registration_order() -> None:
    """Each receiver waits for the other, so they can only finish if run concurrently;
    the one registered last finishes first, and the results still follow registration."""
    signal = Signal()
    finished: list[str] = []
    slow_started = anyio.Event()
    fast_finished = anyio.Event()

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
    assert await signal.asend(None) == [(slow, "slow"), (fast, "fast")]
    assert finished == ["fast", "slow"]


@loop_neutral
async def test_asend_robust_returns_each_exception_in_its_place() -> None:
    signal = Signal()

    async def async_failing(**kwargs: Any) -> None:
        await anyio.sleep(0)
        raise KeyError("async failure")

    def sync_failing(**kwargs: Any) -> None:
        raise ValueError("sync failure")

    async def async_ok(**kwargs: Any) -> str:
        await anyio.sleep(0)
        return "async ok"

    def sync_ok(**kwargs: Any) -> str:
        return "sync ok"

    for function in (async_failing, sync_failing, async_ok, sync_ok):
        signal.connect(function)
    responses = await signal.asend_robust(None)
    assert [receiver for receiver, _ in responses] == [
        sync_failing,
        sync_ok,
        async_failing,
        async_ok,
    ]
    assert isinstance(responses[0][1], ValueError)
    assert isinstance(responses[2][1], KeyError)
    assert (responses[1][1], responses[3][1]) == ("sync ok", "async ok")


# -- failures ------------------------------------------------------------------------------


@loop_neutral
async def test_one_failure_cancels_running_siblings_and_is_raised_unwrapped() -> None:
    signal = Signal()
    log: list[str] = []
    slow_started = anyio.Event()

    async def failing(**kwargs: Any) -> None:
        await slow_started.wait()
        raise ValueError("async failure")

    signal.connect(waits_forever("slow", log, slow_started.set), weak=False)
    signal.connect(failing)
    with pytest.raises(ValueError, match="async failure") as info:
        await signal.asend(None)
    assert type(info.value) is ValueError
    assert log == ["slow cancelled"]


@loop_neutral
async def test_several_failures_at_once_raise_one_exception_group() -> None:
    signal = Signal()

    async def fails_first(**kwargs: Any) -> None:
        raise ValueError("first")

    async def fails_second(**kwargs: Any) -> None:
        raise KeyError("second")

    signal.connect(fails_first)
    signal.connect(fails_second)
    with pytest.raises(ExceptionGroup) as info:
        await signal.asend(None)
    assert sorted(type(error).__name__ for error in info.value.exceptions) == [
        "KeyError",
        "ValueError",
    ]


# -- the caller's cancellation and timeouts ------------------------------------------------


async def cancel_while_receivers_wait(method: str) -> list[str]:
    """Cancel a send of *method* once both its receivers are waiting; what happened, in order."""
    signal = Signal()
    log: list[str] = []
    everyone = Countdown(2)
    signal.connect(waits_forever("first", log, everyone.arrive), weak=False)
    signal.connect(waits_forever("second", log, everyone.arrive), weak=False)
    scope = anyio.CancelScope()

    async def send() -> None:
        with scope:
            try:
                await getattr(signal, method)(None)
            finally:
                log.append("send ended")

    async with anyio.create_task_group() as group:
        group.start_soon(send)
        await everyone.done.wait()
        scope.cancel()
    for _ in range(5):
        await anyio.sleep(0)  # time for a receiver that outlived the send to finish
    assert scope.cancelled_caught
    return log


@loop_neutral
async def test_the_callers_cancellation_reaches_every_running_receiver() -> None:
    """Nothing outlives the send: every receiver has been cancelled (and has finished
    handling it) before asend raises, and none finishes later."""
    for method in ASYNC_METHODS:
        log = await cancel_while_receivers_wait(method)
        assert sorted(log[:2]) == ["first cancelled", "second cancelled"], method
        assert log[2:] == ["send ended"], method


@loop_neutral
async def test_a_timeout_cancels_the_receivers_move_on_after_and_fail_after() -> None:
    for method, timeout in (("asend", anyio.move_on_after), ("asend_robust", anyio.fail_after)):
        signal = Signal()
        log: list[str] = []
        everyone = Countdown(2)
        signal.connect(waits_forever("first", log, everyone.arrive), weak=False)
        signal.connect(waits_forever("second", log, everyone.arrive), weak=False)

        async def expire(scope: anyio.CancelScope, everyone: Countdown = everyone) -> None:
            # The deadline passes the moment both receivers are waiting: a real timeout,
            # on the loop's clock, without guessing how long the start takes.
            await everyone.done.wait()
            scope.deadline = anyio.current_time()

        outcome = "returned"
        try:
            with timeout(SAFETY_NET) as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(expire, scope)
                    await getattr(signal, method)(None)
        except TimeoutError:
            outcome = "TimeoutError"
        assert scope.cancelled_caught, method
        assert outcome == ("TimeoutError" if timeout is anyio.fail_after else "returned")
        assert sorted(log) == ["first cancelled", "second cancelled"], method


@loop_neutral
async def test_cancellation_during_the_sync_group_waits_for_it_and_starts_no_async_one() -> None:
    """A thread cannot be interrupted: the send waits for the sync group, then the
    cancellation propagates, and no async receiver starts."""
    signal = Signal()
    log: list[str] = []
    sync_started = threading.Event()
    release_sync = threading.Event()

    def blocking(**kwargs: Any) -> None:
        sync_started.set()
        release_sync.wait(SAFETY_NET)
        log.append("sync finished")

    async def async_receiver(**kwargs: Any) -> None:
        log.append("async started")

    signal.connect(async_receiver)
    signal.connect(blocking)
    scope = anyio.CancelScope()

    async def send() -> None:
        with scope:
            try:
                await signal.asend(None)
            finally:
                log.append("send ended")

    async with anyio.create_task_group() as group:
        group.start_soon(send)
        await anyio.to_thread.run_sync(sync_started.wait, SAFETY_NET)
        scope.cancel()
        for _ in range(5):
            await anyio.sleep(0)  # time for a send that does not wait to end early
        log.append("released")
        release_sync.set()
    assert scope.cancelled_caught
    assert log == ["released", "sync finished", "send ended"]


# -- ContextVars ---------------------------------------------------------------------------


@loop_neutral
async def test_context_var_changes_are_shared_in_order_and_copied_back() -> None:
    """The caller sets 1; the sync receiver (connected last) runs first and sees it, the
    two async ones share one context with it and with each other."""
    signal = Signal()
    counter: contextvars.ContextVar[int] = contextvars.ContextVar("counter")
    seen: list[tuple[str, int]] = []
    both_read = Countdown(2)

    def make_async(name: str) -> Any:
        async def increment(**kwargs: Any) -> None:
            await anyio.sleep(0)
            value = counter.get() + 1
            counter.set(value)
            seen.append((name, value))
            both_read.arrive()
            await both_read.done.wait()

        return increment

    def sync_increment(**kwargs: Any) -> None:
        value = counter.get() + 1
        counter.set(value)
        seen.append(("sync", value))

    signal.connect(make_async("a"), weak=False)
    signal.connect(make_async("b"), weak=False)
    signal.connect(sync_increment)
    counter.set(1)
    await signal.asend(None)
    assert seen[0] == ("sync", 2)
    assert sorted(value for _, value in seen[1:]) == [3, 4]
    assert counter.get() == 4


@loop_neutral
async def test_each_send_works_in_a_copy_of_its_own_callers_context() -> None:
    """Two sends at once, from two tasks: each one's receivers see their own caller's
    values, and each caller gets back only its own receivers' changes."""
    signal = Signal()
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who")
    touched: contextvars.ContextVar[str] = contextvars.ContextVar("touched")
    seen: dict[str, str] = {}
    both_inside = Countdown(2)
    after: dict[str, str] = {}

    async def receiver(**kwargs: Any) -> None:
        both_inside.arrive()
        await both_inside.done.wait()  # both sends are running now
        seen[who.get()] = who.get()
        touched.set(f"by {who.get()}'s receiver")

    signal.connect(receiver)

    async def caller(name: str) -> None:
        who.set(name)
        await signal.asend(None)
        after[name] = touched.get()

    async with anyio.create_task_group() as group:
        group.start_soon(caller, "one")
        group.start_soon(caller, "two")
    assert seen == {"one": "one", "two": "two"}
    assert after == {"one": "by one's receiver", "two": "by two's receiver"}
    assert touched.get("untouched") == "untouched"


# -- send() and asend() together -------------------------------------------------------------


@loop_neutral
async def test_send_from_a_worker_thread_runs_async_receivers_on_a_private_loop() -> None:
    """From a loop's worker thread (trio.to_thread, anyio's, asyncio's executor), send()
    runs async receivers itself; and a sync receiver run by asend can send too."""
    outer = Signal()
    inner = Signal()

    async def inner_async(**kwargs: Any) -> str:
        await anyio.sleep(0)
        return "inner"

    def bridge(**kwargs: Any) -> Any:
        return inner.send(None)

    inner.connect(inner_async)
    outer.connect(bridge)
    assert await anyio.to_thread.run_sync(inner.send, None) == [(inner_async, "inner")]
    assert await outer.asend(None) == [(bridge, [(inner_async, "inner")])]


@loop_neutral
async def test_send_with_async_receivers_on_the_loop_thread_refuses_before_any_call() -> None:
    signal = Signal()
    log: list[str] = []

    def sync_receiver(**kwargs: Any) -> None:
        log.append("sync")

    async def async_receiver(**kwargs: Any) -> None:
        log.append("async")

    signal.connect(sync_receiver)
    signal.connect(async_receiver)
    with pytest.raises(RuntimeError, match=r"await signal\.asend\("):
        signal.send(None)
    assert log == []


@loop_neutral
async def test_captured_and_muted_sends_work_on_every_loop() -> None:
    signal = Signal()

    async def async_receiver(value: int, **kwargs: Any) -> int:
        await anyio.sleep(0)
        return value * 2

    def sync_receiver(value: int, **kwargs: Any) -> int:
        return value + 1

    signal.connect(async_receiver)
    signal.connect(sync_receiver)
    with capture(signal) as sent:
        responses = await signal.asend_robust(None, value=5)
    assert responses == [(sync_receiver, 6), (async_receiver, 10)]
    sent.assert_sent_once(None, value=5)
    with signal.muted(receivers=[sync_receiver]):
        assert await signal.asend(None, value=1) == [(async_receiver, 2)]


# -- trio, without anyio ---------------------------------------------------------------------


def test_plain_trio_cancel_scope_and_fail_after_reach_the_receivers() -> None:
    signal = Signal()
    log: list[str] = []
    escaped: list[BaseException] = []

    async def main() -> None:
        everyone = Countdown(2)
        signal.connect(waits_forever("first", log, everyone.arrive), weak=False)
        signal.connect(waits_forever("second", log, everyone.arrive), weak=False)

        async def expire(scope: trio.CancelScope) -> None:
            await everyone.done.wait()
            scope.deadline = trio.current_time()

        with trio.fail_after(SAFETY_NET) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(expire, scope)
                try:
                    await signal.asend(None)
                except BaseException as error:
                    escaped.append(error)
                    raise
                finally:
                    log.append("send ended")

    with pytest.raises(trio.TooSlowError):
        trio.run(main)
    assert sorted(log[:2]) == ["first cancelled", "second cancelled"]
    assert log[2:] == ["send ended"]
    # The caller's Cancelled leaves asend as itself, as from any checkpoint: not in a group.
    assert [type(error) for error in escaped] == [trio.Cancelled]


def test_plain_trio_sync_receivers_run_in_trio_worker_threads() -> None:
    """The sync group runs in a trio.to_thread worker, so it can call back into trio."""
    signal = Signal()

    def calls_back(**kwargs: Any) -> float:
        return trio.from_thread.run_sync(trio.current_time)

    signal.connect(calls_back)

    async def main() -> tuple[float, float]:
        before = trio.current_time()
        [(_, then)] = await signal.asend(None)
        return before, then

    before, then = trio.run(main)
    assert then >= before


def test_trio_guest_mode_on_asyncio_each_side_sends_on_its_own_loop() -> None:
    """trio's guest mode runs trio inside an asyncio loop, in one thread: a send from a
    trio task goes through trio, one from an asyncio task through asyncio."""
    signal = Signal()
    asyncio_done = False

    async def which_loop(**kwargs: Any) -> str:
        return sniffio.current_async_library()

    def sync_receiver(**kwargs: Any) -> str:
        return "sync"

    signal.connect(which_loop)
    signal.connect(sync_receiver)

    async def trio_main() -> Any:
        responses = await signal.asend(None)
        while not asyncio_done:  # keep the guest run alive until asyncio has sent
            await trio.sleep(0.001)
        return responses

    async def asyncio_main() -> tuple[Any, Any]:
        nonlocal asyncio_done
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=finished.set_result,
        )
        await asyncio.sleep(0)
        from_asyncio = await signal.asend(None)
        asyncio_done = True
        return from_asyncio, (await finished).unwrap()

    from_asyncio, from_trio = asyncio.run(asyncio_main())
    assert [response for _, response in from_asyncio] == ["sync", "asyncio"]
    assert [response for _, response in from_trio] == ["sync", "trio"]


# -- asyncio, without anyio --------------------------------------------------------------------


def test_plain_asyncio_task_cancel_waits_for_the_sync_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same rule on asyncio with anyio not even imported (tocsin then never touches it)."""
    monkeypatch.delitem(sys.modules, "anyio")
    signal = Signal()
    log: list[str] = []
    sync_started = threading.Event()
    release_sync = threading.Event()

    def blocking(**kwargs: Any) -> None:
        sync_started.set()
        release_sync.wait(SAFETY_NET)
        log.append("sync finished")

    async def async_receiver(**kwargs: Any) -> None:
        log.append("async started")

    signal.connect(async_receiver)
    signal.connect(blocking)

    async def main() -> None:
        async def send() -> None:
            try:
                await signal.asend(None)
            finally:
                log.append("send ended")

        task = asyncio.create_task(send())
        await asyncio.to_thread(sync_started.wait, SAFETY_NET)
        task.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        log.append("released")
        release_sync.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert log == ["released", "sync finished", "send ended"]


def test_plain_asyncio_timeout_reaches_the_receivers() -> None:
    signal = Signal()
    log: list[str] = []
    started = asyncio.Event()
    signal.connect(waits_forever("only", log, started.set), weak=False)

    async def main() -> str:
        try:
            async with asyncio.timeout(SAFETY_NET) as timeout:

                async def expire() -> None:
                    await started.wait()
                    timeout.reschedule(asyncio.get_running_loop().time())

                expiring = asyncio.create_task(expire())
                await signal.asend(None)
        except TimeoutError:
            return "TimeoutError"
        finally:
            await expiring
        return "returned"

    assert asyncio.run(main()) == "TimeoutError"
    assert log == ["only cancelled"]


# -- which loop --------------------------------------------------------------------------------


def test_asend_outside_asyncio_and_trio_says_where_it_runs() -> None:
    signal = Signal()

    async def receiver(**kwargs: Any) -> None:
        pass

    signal.connect(receiver)
    coroutine = signal.asend(None)
    with pytest.raises(RuntimeError, match=r"under asyncio or trio .*anyio"):
        coroutine.send(None)  # driven by hand: no event loop at all


def test_asyncio_sends_import_neither_trio_nor_anyio() -> None:
    code = """
import asyncio, sys
import tocsin

signal = tocsin.Signal()

async def receiver(**kwargs):
    return "async"

signal.connect(receiver)
signal.connect(lambda **kwargs: "sync", weak=False)
assert asyncio.run(signal.asend(None))[1][1] == "async"
assert signal.send(None)[1][1] == "async"
print(sorted(name for name in sys.modules if name.split(".")[0] in {"trio", "anyio", "sniffio"}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# -- the loop-neutral tests again, on the plain loops --------------------------------------------


@pytest.mark.parametrize("test", LOOP_NEUTRAL, ids=[test.__name__[5:] for test in LOOP_NEUTRAL])
def test_on_plain_trio(test: AsyncTest) -> None:
    trio.run(test)


@pytest.mark.parametrize("test", LOOP_NEUTRAL, ids=[test.__name__[5:] for test in LOOP_NEUTRAL])
def test_on_plain_asyncio(test: AsyncTest) -> None:
    asyncio.run(test())
