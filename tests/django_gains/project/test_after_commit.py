"""``@tocsin.after_commit`` receivers of Django's own signals, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.test import TestCase

import tocsin
from tests.django_gains.project.conftest import postgres_or_skip, rolled_back
from tests.django_gains.project.shop.models import Order
from tocsin.contrib.django.transactions import (
    install_transactions,
    scheduler_for,
    uninstall_transactions,
)

# Real commits (TransactionTestCase's way: tables flushed after each test), every database.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(params=["default", "pg"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each database of the project; its orders are deleted after the test."""
    name = "default" if request.param == "default" else postgres_or_skip()
    yield name
    Order.objects.using(name).all().delete()


@pytest.fixture
def calls() -> Iterator[list[tuple[str, Any]]]:
    """(what, order number) of each call of the receivers connected here, in order."""
    seen: list[tuple[str, Any]] = []

    def at_once(sender: Any, instance: Order, **kwargs: Any) -> None:
        seen.append(("sent", instance.number))

    @tocsin.after_commit
    def committed(sender: Any, instance: Order, created: bool, using: str, **kwargs: Any) -> None:
        seen.append(("committed", instance.number))

    post_save.connect(at_once, sender=Order, weak=False, dispatch_uid="test-at-once")
    post_save.connect(committed, sender=Order, weak=False, dispatch_uid="test-committed")
    yield seen
    post_save.disconnect(sender=Order, dispatch_uid="test-at-once")
    post_save.disconnect(sender=Order, dispatch_uid="test-committed")


def test_outside_atomic_the_receiver_runs_at_once(alias: str, calls: list[Any]) -> None:
    Order.objects.using(alias).create(number="A1")
    assert calls == [("sent", "A1"), ("committed", "A1")]


def test_inside_atomic_it_runs_after_the_commit(alias: str, calls: list[Any]) -> None:
    with transaction.atomic(using=alias):
        Order.objects.using(alias).create(number="A1")
        Order.objects.using(alias).create(number="A2")
        assert calls == [("sent", "A1"), ("sent", "A2")]
    assert calls[2:] == [("committed", "A1"), ("committed", "A2")]


def test_a_rollback_drops_it(alias: str, calls: list[Any]) -> None:
    with rolled_back(alias):
        Order.objects.using(alias).create(number="A1")
    assert calls == [("sent", "A1")]
    assert not Order.objects.using(alias).exists()


def test_a_rolled_back_savepoint_drops_only_its_own(alias: str, calls: list[Any]) -> None:
    with transaction.atomic(using=alias):
        Order.objects.using(alias).create(number="outer")
        with rolled_back(alias):
            Order.objects.using(alias).create(number="inner")
        with transaction.atomic(using=alias):  # released: waits for the outer commit
            Order.objects.using(alias).create(number="kept")
    committed = [number for what, number in calls if what == "committed"]
    assert committed == ["outer", "kept"]
    assert sorted(Order.objects.using(alias).values_list("number", flat=True)) == [
        "kept",
        "outer",
    ]


def test_the_alias_the_signal_names_decides(calls: list[Any]) -> None:
    pg = postgres_or_skip()
    try:
        # A transaction open on "default" does not hold back a save on "pg".
        with transaction.atomic(using="default"):
            Order.objects.using(pg).create(number="P1")
            assert ("committed", "P1") in calls
        # And one on "pg" holds it back until "pg" commits.
        with transaction.atomic(using=pg):
            with transaction.atomic(using="default"):
                Order.objects.using(pg).create(number="P2")
            assert ("committed", "P2") not in calls
        assert calls[-1] == ("committed", "P2")
    finally:
        Order.objects.using(pg).all().delete()


def test_a_failing_receiver_is_logged_and_the_others_still_run(
    alias: str, calls: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    @tocsin.after_commit
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("mail server down")

    post_save.connect(broken, sender=Order, dispatch_uid="test-broken")
    try:
        with caplog.at_level(logging.ERROR), transaction.atomic(using=alias):
            Order.objects.using(alias).create(number="A1")
            Order.objects.using(alias).create(number="A2")
    finally:
        post_save.disconnect(sender=Order, dispatch_uid="test-broken")
    assert [n for what, n in calls if what == "committed"] == ["A1", "A2"]
    failures = [r for r in caplog.records if "mail server down" in r.getMessage()]
    assert len(failures) == 2
    assert "broken" in failures[0].getMessage()  # Django's line names the receiver


def test_an_async_receiver_runs_after_the_commit(alias: str) -> None:
    seen: list[str] = []

    @tocsin.after_commit
    async def notify(sender: Any, instance: Order, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        seen.append(instance.number)

    post_delete.connect(notify, sender=Order, dispatch_uid="test-async")
    try:
        order = Order.objects.using(alias).create(number="D1")
        with transaction.atomic(using=alias):
            order.delete()
            assert seen == []
    finally:
        post_delete.disconnect(sender=Order, dispatch_uid="test-async")
    assert seen == ["D1"]


def test_a_send_without_using_defers_to_the_default_database() -> None:
    done: list[int] = []

    @tocsin.after_commit
    def handle(sender: Any, order_id: int, **kwargs: Any) -> None:
        done.append(order_id)

    order_paid = tocsin.Signal()
    order_paid.connect(handle)
    with transaction.atomic():
        order_paid.send(None, order_id=7)
        assert done == []
    assert done == [7]
    order_paid.send(None, order_id=8)  # outside atomic(): at once
    assert done == [7, 8]


def test_scheduler_for_reads_no_connection_outside_atomic() -> None:
    assert scheduler_for("default") is None
    assert scheduler_for("no-such-database") is None
    with transaction.atomic():
        assert scheduler_for("no-such-database") is not None  # "default" is in one


def test_uninstalled_the_receiver_runs_inside_the_transaction(calls: list[Any]) -> None:
    assert uninstall_transactions()
    try:
        with transaction.atomic():
            Order.objects.create(number="U1")
            assert calls == [("sent", "U1"), ("committed", "U1")]
    finally:
        install_transactions()
        Order.objects.all().delete()


class CaptureOnCommitTests(TestCase):  # type: ignore[misc]
    """Django's TestCase never commits: captureOnCommitCallbacks shows what would run."""

    databases = "__all__"

    def setUp(self) -> None:
        self.committed: list[str] = []

        @tocsin.after_commit
        def committed(sender: Any, instance: Order, **kwargs: Any) -> None:
            self.committed.append(instance.number)

        self.receiver = committed
        post_save.connect(committed, sender=Order)

    def tearDown(self) -> None:
        post_save.disconnect(self.receiver, sender=Order)

    def test_the_receiver_waits_for_the_captured_commit(self) -> None:
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            Order.objects.create(number="T1")
            assert self.committed == []
        assert len(callbacks) == 1
        assert self.committed == ["T1"]

    def test_not_executed_it_never_runs(self) -> None:
        with self.captureOnCommitCallbacks() as callbacks:
            Order.objects.create(number="T2")
        assert len(callbacks) == 1
        assert self.committed == []
