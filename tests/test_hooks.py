"""The hook API (tocsin.Hook, add_hook, per-signal hooks) and the mute rules under it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tocsin import Hook, ReceiverCall, SendRecord, Signal, add_hook, remove_hook
from tocsin._hooks import add_signal_hook, mute_decision, remove_signal_hook

ping = Signal(name="ping_for_hooks")


class Journal(Hook):
    """A hook that writes down every event it is told of."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.sends: list[SendRecord] = []
        self.calls: list[ReceiverCall] = []

    def send_started(self, record: SendRecord) -> None:
        self.events.append(("send_started", record.method))

    def send_finished(self, record: SendRecord) -> None:
        self.events.append(("send_finished", record.method))
        self.sends.append(record)

    def receiver_started(self, call: ReceiverCall) -> None:
        self.events.append(("receiver_started", call.receiver.__name__))

    def receiver_finished(self, call: ReceiverCall) -> None:
        self.events.append(("receiver_finished", call.receiver.__name__))
        self.calls.append(call)


@pytest.fixture
def journal() -> Iterator[Journal]:
    hook = Journal()
    add_hook(hook)
    yield hook
    remove_hook(hook)


def first(sender: Any, **kwargs: Any) -> str:
    return "first"


def failing(sender: Any, **kwargs: Any) -> None:
    raise ValueError("no")


async def later(sender: Any, **kwargs: Any) -> str:
    await asyncio.sleep(0)
    return "later"


@pytest.fixture
def receivers() -> Iterator[None]:
    ping.connect(first)
    ping.connect(later)
    yield
    ping.disconnect(first)
    ping.disconnect(later)


def test_no_hook_and_no_mute_costs_nothing_on_the_send_path() -> None:
    assert ping._intercept is None
    hook = Journal()
    add_hook(hook)
    try:
        assert ping._intercept is not None
        assert Signal()._intercept is not None  # signals made meanwhile are watched too
    finally:
        remove_hook(hook)
    assert ping._intercept is None


def test_a_global_hook_sees_each_send_and_each_receiver_call(
    journal: Journal, receivers: None
) -> None:
    responses = ping.send(sender="tests", size=3)
    assert [response for _, response in responses] == ["first", "later"]
    assert journal.events == [
        ("send_started", "send"),
        ("receiver_started", "first"),
        ("receiver_finished", "first"),
        ("receiver_started", "later"),
        ("receiver_finished", "later"),
        ("send_finished", "send"),
    ]
    [record] = journal.sends
    assert record.signal is ping
    assert record.sender == "tests"
    assert record.kwargs == {"size": 3}
    assert record.responses == responses
    assert record.error is None
    assert record.duration is not None
    assert isinstance(record.duration, float)  # set once the send finished
    assert [call.response for call in journal.calls] == ["first", "later"]
    assert all(call.send is record for call in journal.calls)


def test_hooks_see_asend_with_async_receivers(journal: Journal, receivers: None) -> None:
    responses = asyncio.run(ping.asend(sender=None))
    assert [response for _, response in responses] == ["first", "later"]
    assert journal.events[0] == ("send_started", "asend")
    assert journal.events[-1] == ("send_finished", "asend")
    assert ("receiver_finished", "later") in journal.events
    assert journal.sends[0].responses == responses


def test_a_robust_failure_is_on_the_call_and_in_the_responses(journal: Journal) -> None:
    ping.connect(failing)
    try:
        with pytest.raises(ValueError, match="no"):
            ping.send(sender=None)
        logging.disable(logging.ERROR)  # send_robust logs the failure: expected here
        try:
            [(_, error)] = ping.send_robust(sender=None)
        finally:
            logging.disable(logging.NOTSET)
    finally:
        ping.disconnect(failing)
    raised, robust = journal.sends
    assert isinstance(raised.error, ValueError)
    assert raised.responses is None
    assert robust.error is None
    assert robust.responses == [(failing, error)]
    assert [type(call.error) for call in journal.calls] == [ValueError, ValueError]


def test_async_robust_failures_reach_the_hooks(journal: Journal) -> None:
    async def failing_async(sender: Any, **kwargs: Any) -> None:
        raise KeyError("async")

    ping.connect(failing_async)
    logging.disable(logging.ERROR)
    try:
        [(_, error)] = asyncio.run(ping.asend_robust(sender=None))
    finally:
        logging.disable(logging.NOTSET)
        ping.disconnect(failing_async)
    assert isinstance(error, KeyError)
    assert journal.calls[0].error is error


def test_a_muted_send_is_reported_without_receiver_calls(
    journal: Journal, receivers: None
) -> None:
    with ping.muted():
        assert ping.send(sender=None) == []
    assert journal.events == [("send_started", "send"), ("send_finished", "send")]
    assert journal.sends[0].muted


def test_a_signal_hook_sees_only_its_signal_and_no_receiver_calls(receivers: None) -> None:
    other = Signal()
    hook = Journal()
    add_signal_hook(ping, hook)
    try:
        assert ping._intercept is not None
        assert other._intercept is None
        ping.send(sender=None)
        other.send(sender=None)
    finally:
        remove_signal_hook(ping, hook)
    assert hook.events == [("send_started", "send"), ("send_finished", "send")]
    assert ping._intercept is None


def test_adding_a_hook_twice_tells_it_once(receivers: None) -> None:
    hook = Journal()
    add_hook(hook)
    add_hook(hook)
    try:
        ping.send(sender=None)
    finally:
        remove_hook(hook)
        remove_hook(hook)  # removing again does nothing
    assert len(hook.sends) == 1


def test_state_lets_a_hook_carry_data_from_start_to_finish(receivers: None) -> None:
    class Timer(Hook):
        def __init__(self) -> None:
            self.pairs: list[tuple[Any, Any]] = []

        def send_started(self, record: SendRecord) -> None:
            record.state[self] = "started"

        def send_finished(self, record: SendRecord) -> None:
            self.pairs.append((record.state.pop(self), record.method))

    timer = Timer()
    add_hook(timer)
    try:
        ping.send(sender=None)
        asyncio.run(ping.asend_robust(sender=None))
    finally:
        remove_hook(timer)
    assert timer.pairs == [("started", "send"), ("started", "asend_robust")]


def test_a_hook_runs_in_the_sending_context() -> None:
    import contextvars

    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")
    seen = []

    class Setter(Hook):
        def send_started(self, record: SendRecord) -> None:
            record.state[self] = current.set("in send")

        def send_finished(self, record: SendRecord) -> None:
            current.reset(record.state.pop(self))

    def look(sender: Any, **kwargs: Any) -> None:
        seen.append(current.get())

    setter = Setter()
    ping.connect(look)
    add_signal_hook(ping, setter)
    try:
        ping.send(sender=None)
        asyncio.run(ping.asend(sender=None))
    finally:
        remove_signal_hook(ping, setter)
        ping.disconnect(look)
    assert seen == ["in send", "in send"]
    assert current.get() == "none"


def test_mute_decision_reports_what_the_rules_say() -> None:
    assert mute_decision(ping, None) is None
    with ping.muted(receivers=[first]):
        skipped = mute_decision(ping, None)
        assert isinstance(skipped, (set, frozenset))
        assert len(skipped) == 1
    with ping.muted(sender="only"):
        assert mute_decision(ping, "other") is None
        assert mute_decision(ping, "only") is not None
