"""``@after_commit``: receivers that wait for the transaction an integration declares.

These tests use a list as the "transaction": whatever is handed to it runs when the test
says the transaction committed. The SQLAlchemy integration's tests cover real ones.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tocsin import Signal, after_commit, receiver
from tocsin._commit import current_scheduler, deferring_to


class Transaction:
    """A stand-in for a database transaction: it keeps callbacks until commit()."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], Any]] = []

    def __call__(self, callback: Callable[[], Any]) -> None:
        self.callbacks.append(callback)

    def commit(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


def test_without_a_transaction_an_after_commit_receiver_runs_at_once():
    signal = Signal()
    calls: list[dict[str, Any]] = []

    @receiver(signal)
    @after_commit
    def send_welcome_email(sender: object, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    responses = signal.send("users", user="ada")
    assert calls == [{"sender": "users", "signal": signal, "user": "ada"}]
    assert responses == [(send_welcome_email, None)]


def test_inside_a_transaction_it_runs_only_when_the_transaction_commits():
    signal = Signal()
    calls: list[str] = []

    @receiver(signal)
    @after_commit
    def send_welcome_email(user: str, **kwargs: Any) -> None:
        calls.append(user)

    @receiver(signal)
    def count_users(**kwargs: Any) -> str:
        calls.append("counted")
        return "counted"

    transaction = Transaction()
    with deferring_to(transaction):
        responses = signal.send("users", user="ada")
        signal.send("users", user="grace")
    assert calls == ["counted", "counted"]  # the plain receiver ran, the other waits
    assert [response for _, response in responses] == [None, "counted"]

    transaction.commit()
    assert calls == ["counted", "counted", "ada", "grace"]


def test_a_transaction_that_never_commits_never_runs_the_receiver():
    signal = Signal()
    calls: list[str] = []

    @receiver(signal)
    @after_commit
    def notify(**kwargs: Any) -> None:
        calls.append("notified")

    with deferring_to(Transaction()):  # rolled back: its callbacks are simply dropped
        signal.send(None)
    assert calls == []


def test_the_declared_transaction_is_scoped_to_the_block_and_context():
    transaction = Transaction()
    assert current_scheduler() is None
    with deferring_to(transaction):
        assert current_scheduler() is transaction
        assert contextvars.copy_context().run(current_scheduler) is transaction
    assert current_scheduler() is None


def test_the_decorator_keeps_the_receiver_reachable_and_is_idempotent():
    def audit(**kwargs: Any) -> None:
        pass

    wrapped = after_commit(audit)
    assert wrapped.__wrapped__ is audit  # type: ignore[attr-defined]
    assert wrapped.__name__ == "audit"
    assert after_commit(wrapped) is wrapped


def test_an_async_receiver_runs_to_completion_when_no_loop_is_running():
    signal = Signal()
    calls: list[str] = []

    @after_commit
    async def index_document(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        calls.append("indexed")

    signal.connect(index_document)
    transaction = Transaction()
    with deferring_to(transaction):
        signal.send(None)
    assert calls == []
    transaction.commit()
    assert calls == ["indexed"]


def test_an_async_receiver_committed_inside_a_running_loop_becomes_a_task():
    signal = Signal()
    calls: list[str] = []

    @after_commit
    async def index_document(**kwargs: Any) -> None:
        await asyncio.sleep(0)
        calls.append("indexed")

    signal.connect(index_document)

    async def main() -> None:
        transaction = Transaction()
        with deferring_to(transaction):
            await signal.asend(None)
        transaction.commit()
        assert calls == []  # started, not finished: the commit does not block the loop
        for _ in range(5):
            await asyncio.sleep(0)
        assert calls == ["indexed"]

    asyncio.run(main())


def test_a_failing_async_after_commit_receiver_is_logged(caplog: pytest.LogCaptureFixture):
    @after_commit
    async def explode(**kwargs: Any) -> None:
        raise RuntimeError("search index down")

    signal = Signal()
    signal.connect(explode)

    async def main() -> None:
        transaction = Transaction()
        with deferring_to(transaction):
            await signal.asend(None)
        transaction.commit()
        for _ in range(5):
            await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="tocsin.dispatch"):
        asyncio.run(main())
    [record] = caplog.records
    assert "after-commit receiver (search index down)" in record.getMessage()
    assert record.exc_info is not None
