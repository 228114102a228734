"""tocsin.testing: muting, capturing, and the assertion helpers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tocsin import Signal
from tocsin.contrib import sqlalchemy as tocsin_sa
from tocsin.signals import post_save
from tocsin.testing import (
    ANY_SENDER,
    Capture,
    assert_not_sent,
    assert_sent,
    assert_sent_once,
    capture,
    mute,
)

order_placed = Signal(name="order_placed_in_tests")
order_paid = Signal(name="order_paid_in_tests")


class Shop:
    pass


class Calls(list[str]):
    """Receivers that note their name when called; held here, so weak is fine."""

    def receiver(self, name: str, result: Any = None) -> Any:
        def called(sender: Any, **kwargs: Any) -> Any:
            self.append(name)
            return result

        called.__name__ = called.__qualname__ = name
        return called


@pytest.fixture
def calls() -> Iterator[Calls]:
    """Receivers a and b on order_placed (disconnected afterwards)."""
    calls = Calls()
    receivers = [calls.receiver("a", 1), calls.receiver("b", 2)]
    for each in receivers:
        order_placed.connect(each, weak=False)
    calls.receivers = receivers  # type: ignore[attr-defined]
    yield calls
    for each in receivers:
        order_placed.disconnect(each)


# -- mute ------------------------------------------------------------------------------


def test_mute_skips_the_whole_send(calls: Calls) -> None:
    with mute(order_placed):
        assert order_placed.send(sender=Shop) == []
        assert order_placed.send_robust(sender=Shop) == []
    assert calls == []
    assert [response for _, response in order_placed.send(sender=Shop)] == [1, 2]


def test_mute_as_a_decorator(calls: Calls) -> None:
    @mute(order_placed)
    def checkout() -> list[Any]:
        return order_placed.send(sender=Shop)

    assert checkout() == []
    assert checkout() == []  # reusable
    assert calls == []


def test_mute_decorates_async_functions(calls: Calls) -> None:
    @mute(order_placed)
    async def checkout() -> list[Any]:
        return await order_placed.asend(sender=Shop) + await order_placed.asend_robust(sender=Shop)

    assert asyncio.run(checkout()) == []
    assert calls == []


def test_mute_only_one_sender(calls: Calls) -> None:
    other = Shop()
    with mute(order_placed, sender=Shop):
        assert order_placed.send(sender=Shop) == []
        order_placed.send(sender=other)
    assert calls == ["a", "b"]


def test_sender_none_is_a_real_sender_and_the_default_means_any(calls: Calls) -> None:
    with mute(order_placed, sender=None):
        assert order_placed.send(sender=None) == []
        order_placed.send(sender=Shop)
    assert calls == ["a", "b"]
    with mute(order_placed, sender=ANY_SENDER):
        order_placed.send(sender=None)
        order_placed.send(sender=Shop)
    assert calls == ["a", "b"]


def test_mute_only_some_receivers(calls: Calls) -> None:
    a, b = calls.receivers  # type: ignore[attr-defined]
    with mute(order_placed, receivers=[a]):
        responses = order_placed.send(sender=Shop)
    assert responses == [(b, 2)]
    assert calls == ["b"]


def test_mute_several_signals_given_by_object_or_name(calls: Calls) -> None:
    paid = Calls()
    receiver = paid.receiver("paid")
    order_paid.connect(receiver)
    with mute(order_placed, "order_paid_in_tests"):
        order_placed.send(sender=Shop)
        order_paid.send(sender=Shop)
    assert calls == paid == []


def test_mute_names_what_it_cannot_find() -> None:
    with pytest.raises(LookupError, match="No signal is named 'no_such_signal'"):
        mute("no_such_signal")
    with pytest.raises(TypeError, match="needs at least one signal"):
        mute()


def test_receivers_connected_while_muted_stay_and_order_is_kept(calls: Calls) -> None:
    late = calls.receiver("late")
    with mute(order_placed):
        order_placed.connect(late)
        order_placed.send(sender=Shop)
    order_placed.send(sender=Shop)
    assert calls == ["a", "b", "late"]
    order_placed.disconnect(late)


def test_nested_mutes_each_undo_only_their_own(calls: Calls) -> None:
    a, _ = calls.receivers  # type: ignore[attr-defined]
    with mute(order_placed, receivers=[a]):
        with mute(order_placed):
            order_placed.send(sender=Shop)
        assert calls == []
        order_placed.send(sender=Shop)
    assert calls == ["b"]
    with mute(order_placed), mute(order_placed):
        pass
    order_placed.send(sender=Shop)
    assert calls == ["b", "a", "b"]


def test_no_mute_leaves_the_fast_path_in_place() -> None:
    assert order_placed._intercept is None
    with mute(order_placed):
        assert order_placed._intercept is not None
    assert order_placed._intercept is None


def test_muting_in_one_thread_does_not_mute_another(calls: Calls) -> None:
    inside, results = threading.Barrier(2), {}

    def muted() -> None:
        with mute(order_placed):
            inside.wait()
            results["muted"] = order_placed.send(sender=Shop)
            inside.wait()

    def unmuted() -> None:
        inside.wait()
        results["unmuted"] = order_placed.send(sender=Shop)
        inside.wait()

    threads = [threading.Thread(target=muted), threading.Thread(target=unmuted)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["muted"] == []
    assert [response for _, response in results["unmuted"]] == [1, 2]


def test_muting_globally_mutes_every_thread(calls: Calls) -> None:
    results = []
    with mute(order_placed, globally=True):
        thread = threading.Thread(target=lambda: results.append(order_placed.send(sender=Shop)))
        thread.start()
        thread.join()
    assert results == [[]]
    assert calls == []


def test_muting_in_one_task_does_not_mute_another(calls: Calls) -> None:
    async def main() -> tuple[Any, Any]:
        both_in = asyncio.Event()
        started = 0

        async def rendezvous() -> None:
            nonlocal started
            started += 1
            if started == 2:
                both_in.set()
            await both_in.wait()

        @mute(order_placed)
        async def muted() -> Any:
            await rendezvous()
            return await order_placed.asend(sender=Shop)

        async def unmuted() -> Any:
            await rendezvous()
            return await order_placed.asend(sender=Shop)

        return await asyncio.gather(muted(), unmuted())

    muted_responses, unmuted_responses = asyncio.run(main())
    assert muted_responses == []
    assert [response for _, response in unmuted_responses] == [1, 2]


def test_a_decorated_function_running_in_two_threads_at_once(calls: Calls) -> None:
    barrier = threading.Barrier(2)

    @mute(order_placed)
    def muted() -> None:
        barrier.wait()
        order_placed.send(sender=Shop)
        barrier.wait()

    threads = [threading.Thread(target=muted) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == []
    assert order_placed._intercept is None


def test_signal_muted_is_the_single_signal_form(calls: Calls) -> None:
    with order_placed.muted(sender=Shop):
        order_placed.send(sender=Shop)
    assert calls == []


# -- capture -----------------------------------------------------------------------------


def test_capture_records_sender_kwargs_and_responses(calls: Calls) -> None:
    with capture(order_placed) as sent:
        order_placed.send(sender=Shop, order_id=7, total=12.5)
    assert isinstance(sent, Capture)
    [record] = sent
    assert record.sender is Shop
    assert record.kwargs == {"order_id": 7, "total": 12.5}
    assert record.method == "send"
    assert not record.muted
    assert [response for _, response in record.responses or []] == [1, 2]
    assert sent.senders == [Shop]
    assert sent.kwargs == [{"order_id": 7, "total": 12.5}]


def test_capture_records_errors() -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError("out of stock")

    order_placed.connect(broken)
    try:
        with capture(order_placed) as sent, pytest.raises(ValueError, match="out of stock"):
            order_placed.send(sender=Shop)
    finally:
        order_placed.disconnect(broken)
    assert isinstance(sent[0].error, ValueError)
    assert sent[0].responses is None


def test_capture_records_muted_sends_as_muted(calls: Calls) -> None:
    with capture(order_placed) as sent, mute(order_placed):
        order_placed.send(sender=Shop)
    assert sent[0].muted
    assert sent[0].responses == []
    assert calls == []


def test_capture_filters_by_sender(calls: Calls) -> None:
    with capture(order_placed, sender=Shop) as sent:
        order_placed.send(sender=Shop, n=1)
        order_placed.send(sender=None, n=2)
    assert sent.kwargs == [{"n": 1}]


def test_capture_sees_every_method_and_every_thread(calls: Calls) -> None:
    async def send_async() -> None:
        await order_placed.asend(sender=Shop, via="asend")
        await order_placed.asend_robust(sender=Shop, via="asend_robust")

    with capture(order_placed) as sent:
        order_placed.send(sender=Shop, via="send")
        order_placed.send_robust(sender=Shop, via="send_robust")
        asyncio.run(send_async())
        thread = threading.Thread(target=order_placed.send, args=(Shop,), kwargs={"via": "thread"})
        thread.start()
        thread.join()
    assert [record.kwargs["via"] for record in sent] == [
        "send",
        "send_robust",
        "asend",
        "asend_robust",
        "thread",
    ]
    assert [record.method for record in sent][:4] == [
        "send",
        "send_robust",
        "asend",
        "asend_robust",
    ]


def test_capture_of_several_signals(calls: Calls) -> None:
    with capture(order_placed, order_paid) as sent:
        order_placed.send(sender=Shop)
        order_paid.send(sender=Shop, amount=3)
    assert [record.signal for record in sent] == [order_placed, order_paid]
    assert [record.kwargs for record in sent.of(order_paid)] == [{"amount": 3}]
    sent.assert_sent(signal=order_paid, amount=3)


def test_capture_stops_at_the_end_of_the_block(calls: Calls) -> None:
    with capture(order_placed) as sent:
        pass
    order_placed.send(sender=Shop)
    assert sent == []
    assert order_placed._intercept is None


# -- assertions ----------------------------------------------------------------------------


def test_assert_sent_matches_a_subset_of_the_arguments(calls: Calls) -> None:
    with capture(order_placed) as sent:
        order_placed.send(sender=Shop, order_id=7, total=12.5)
    record = assert_sent(sent, sender=Shop, order_id=7)
    assert record.kwargs["total"] == 12.5
    assert_sent(sent, total=ANY)
    assert_sent_once(sent, order_id=7)
    sent.assert_sent_once(sender=Shop)
    assert_not_sent(sent, order_id=8)
    sent.assert_not_sent(sender=None)


def test_assert_sent_explains_what_was_sent_instead(calls: Calls) -> None:
    with capture(order_placed) as sent:
        order_placed.send(sender=Shop, order_id=7)
        order_placed.send(sender=Shop, total=3)
    with pytest.raises(AssertionError) as failure:
        assert_sent(sent, sender=Shop, order_id=8)
    assert str(failure.value) == (
        "Expected tests.test_testing.order_placed to be sent with "
        "sender=tests.test_testing.Shop, order_id=8; it was sent 2 times:\n"
        "  1. tests.test_testing.order_placed.send(sender=tests.test_testing.Shop, order_id=7)\n"
        "       differs: order_id=7, not 8\n"
        "  2. tests.test_testing.order_placed.send(sender=tests.test_testing.Shop, total=3)\n"
        "       differs: order_id was not sent"
    )


def test_assert_sent_on_a_signal_never_sent() -> None:
    with capture(order_paid) as sent:
        pass
    with pytest.raises(
        AssertionError,
        match=r"Expected tests\.test_testing\.order_paid to be sent; it was never sent",
    ):
        assert_sent(sent)
    assert_not_sent(sent)


def test_assert_sent_once_counts_the_matches(calls: Calls) -> None:
    with capture(order_placed) as sent:
        order_placed.send(sender=Shop, order_id=7)
        order_placed.send(sender=Shop, order_id=7)
    with pytest.raises(AssertionError, match=r"once; it was sent 2 times \(2 matching\)"):
        assert_sent_once(sent, order_id=7)


def test_assert_not_sent_shows_the_offending_send(calls: Calls) -> None:
    with capture(order_placed) as sent, mute(order_placed):
        order_placed.send(sender=Shop, order_id=7)
    with pytest.raises(AssertionError, match=r"(?s)not to be sent with order_id=7.*\[muted\]"):
        assert_not_sent(sent, order_id=7)


def test_the_assertions_take_plain_lists_of_records_too(calls: Calls) -> None:
    with capture(order_placed) as sent:
        order_placed.send(sender="shop", order_id=1)
    assert_sent(list(sent), sender="shop", order_id=1)
    with pytest.raises(TypeError, match="records of a capture"):
        assert_sent([order_placed])  # type: ignore[list-item]


# -- the built-in signals sent by an integration ----------------------------------------------


def test_mute_and_capture_post_save_from_sqlalchemy() -> None:
    class Base(DeclarativeBase):
        pass

    tocsin_sa.install(Base)

    class Customer(Base):
        __tablename__ = "customer"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]

    welcomed = []

    def welcome(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        welcomed.append(instance.email)

    post_save.connect(welcome, sender=Customer)
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    try:
        with (
            Session(engine, expire_on_commit=False) as session,
            capture(post_save, sender=Customer) as saved,
        ):
            with mute(post_save, sender=Customer):
                session.add(Customer(email="muted@example.com"))
                session.commit()
            session.add(Customer(email="ada@example.com"))
            session.commit()
    finally:
        post_save.disconnect(welcome, sender=Customer)
        engine.dispose()

    assert welcomed == ["ada@example.com"]
    assert [record.muted for record in saved] == [True, False]
    record = assert_sent(saved, sender=Customer, created=True, using="default")
    assert record.kwargs["instance"].email == "muted@example.com"
    unmuted = [record for record in saved if not record.muted]
    assert_sent_once(unmuted, created=True, instance=ANY, raw=False, update_fields=None)
    assert unmuted[0].kwargs["instance"].email == "ada@example.com"
