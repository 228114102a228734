"""Scheduler finders: how an integration with ambient transactions (Django's atomic())
tells ``@after_commit`` receivers and on-commit publishers where to wait."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

import tocsin
from tocsin._commit import (
    add_scheduler_finder,
    current_scheduler,
    deferring_to,
    remove_scheduler_finder,
)


class Transaction:
    """A stand-in transaction per alias: callbacks wait in a list until commit()."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], Any]] = []

    def schedule(self, callback: Callable[[], Any]) -> None:
        self.pending.append(callback)

    def commit(self) -> None:
        while self.pending:
            self.pending.pop(0)()


@pytest.fixture
def open_transactions() -> Iterator[dict[str, Transaction]]:
    """Aliases with an open transaction, found by a finder from the send's using=."""
    transactions: dict[str, Transaction] = {}

    def find(kwargs: Mapping[str, Any]) -> Any:
        transaction = transactions.get(kwargs.get("using", "default"))
        return None if transaction is None else transaction.schedule

    add_scheduler_finder(find)
    yield transactions
    assert remove_scheduler_finder(find)


def test_a_finder_picks_the_transaction_the_send_names(open_transactions) -> None:
    done: list[str] = []
    saved = tocsin.Signal()

    @tocsin.after_commit
    def receiver(sender: Any, using: str, **kwargs: Any) -> None:
        done.append(using)

    saved.connect(receiver)
    open_transactions["orders"] = Transaction()
    saved.send(None, using="orders")
    saved.send(None, using="users")  # no transaction open there: at once
    assert done == ["users"]
    open_transactions["orders"].commit()
    assert done == ["users", "orders"]


def test_a_declared_transaction_comes_first(open_transactions) -> None:
    open_transactions["default"] = Transaction()
    declared = Transaction()
    with deferring_to(declared.schedule):
        assert current_scheduler({"using": "default"}) == declared.schedule
    assert current_scheduler({}) == open_transactions["default"].schedule


def test_with_no_transaction_anywhere_nothing_is_found() -> None:
    assert current_scheduler({"using": "default"}) is None
    assert current_scheduler() is None


def test_adding_twice_keeps_one_and_removing_says_whether_it_was_there() -> None:
    calls: list[Mapping[str, Any]] = []

    def find(kwargs: Mapping[str, Any]) -> None:
        calls.append(kwargs)

    add_scheduler_finder(find)
    add_scheduler_finder(find)
    current_scheduler({"x": 1})
    assert calls == [{"x": 1}]  # asked once
    assert remove_scheduler_finder(find)
    assert not remove_scheduler_finder(find)
