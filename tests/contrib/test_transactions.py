"""on_commit() and @after_commit receivers on a SQLAlchemy Session (Django's rules).

Every rule runs on PostgreSQL, whose savepoints are real; the basic ones also run on
SQLite (memory and file, with SQLAlchemy's savepoint recipe) through the ``engine``
fixture. Where it matters, a callback checks from a *new* session that the row it is
about is committed: the callback ran after COMMIT, not merely after ``commit()`` began.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    SessionTransaction,
    mapped_column,
    sessionmaker,
)

from tests.contrib.databases import async_engine, drop_schema
from tocsin import Signal, after_commit
from tocsin._commit import deferring_to
from tocsin.contrib.sqlalchemy._transactions import (
    install_transactions,
    on_commit,
    scheduler_for,
    uninstall_transactions,
)

LOGGER = "tocsin.dispatch"


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "tocsin_tx_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(40), unique=True)
    batch: Mapped[str] = mapped_column(String(40), default="")


@pytest.fixture(autouse=True)
def transactions() -> Iterator[None]:
    """tocsin's listeners on every Session, removed afterwards."""
    install_transactions(Session)
    yield
    uninstall_transactions(Session)


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The parametrized engine (SQLite memory, SQLite file, PostgreSQL) with the table."""
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture
def pg(postgres_engine: Engine) -> Engine:
    """PostgreSQL, for the rules that need real savepoints."""
    Base.metadata.create_all(postgres_engine)
    return postgres_engine


def committed_labels(engine: Engine) -> set[str]:
    """The labels a fresh session sees: what is committed."""
    with Session(engine) as fresh:
        return set(fresh.scalars(select(Item.label)))


# -- the basic rules, on every database -------------------------------------------------


def test_runs_after_commit_in_registration_order(db: Engine) -> None:
    seen: list[tuple[str, set[str]]] = []
    with Session(db) as session, session.begin():
        session.add(Item(label="a"))
        session.flush()
        on_commit(lambda: seen.append(("first", committed_labels(db))), session)
        on_commit(lambda: seen.append(("second", committed_labels(db))), session)
        assert seen == []
    assert seen == [("first", {"a"}), ("second", {"a"})]


def test_runs_at_once_outside_a_transaction(db: Engine) -> None:
    seen: list[str] = []
    with Session(db) as session:
        assert not session.in_transaction()
        on_commit(lambda: seen.append("now"), session)
        assert seen == ["now"]


def test_dropped_when_the_transaction_rolls_back(db: Engine) -> None:
    seen: list[str] = []
    with Session(db) as session:
        session.add(Item(label="a"))
        session.flush()
        on_commit(lambda: seen.append("never"), session)
        session.rollback()
        session.commit()  # a later, empty transaction does not run it either
    assert seen == []
    assert committed_labels(db) == set()


def test_dropped_with_its_rolled_back_savepoint_only(db: Engine) -> None:
    seen: list[str] = []
    with Session(db) as session:
        session.add(Item(label="outer"))
        on_commit(lambda: seen.append("outer"), session)
        savepoint = session.begin_nested()
        session.add(Item(label="inner"))
        on_commit(lambda: seen.append("inner"), session)
        savepoint.rollback()
        session.commit()
    assert seen == ["outer"]
    assert committed_labels(db) == {"outer"}


def test_released_savepoint_waits_for_the_outer_commit(db: Engine) -> None:
    seen: list[str] = []
    with Session(db) as session:
        with session.begin_nested():
            session.add(Item(label="inner"))
            on_commit(lambda: seen.append("inner"), session)
        assert seen == []  # the savepoint was released, the transaction is still open
        session.commit()
    assert seen == ["inner"]


def test_nothing_left_after_close(db: Engine) -> None:
    seen: list[str] = []
    session = Session(db)
    session.begin_nested()
    on_commit(lambda: seen.append("never"), session)
    session.close()  # with the transaction open: SQLAlchemy fires no rollback event
    assert session.info == {}
    with session.begin():
        pass
    assert seen == []


def test_a_failing_robust_callback_is_logged_and_the_rest_run(
    db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise ValueError("boom")

    with Session(db) as session, session.begin():
        on_commit(broken, session, robust=True)
        on_commit(lambda: seen.append("after"), session)
    assert seen == ["after"]
    [record] = caplog.records
    assert record.name == LOGGER
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "Error calling test_a_failing_robust_callback_is_logged_and_the_rest_run."
        "<locals>.broken in on_commit() (boom)."
    )
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


def test_a_signal_sent_with_the_sessions_scheduler_defers_after_commit_receivers(
    db: Engine,
) -> None:
    order_placed = Signal(name="order_placed")
    seen: list[tuple[str, object, set[str]]] = []

    @after_commit
    def email_customer(sender: object, order: str, **kwargs: Any) -> None:
        seen.append(("email", order, committed_labels(db)))

    def audit(sender: object, order: str, **kwargs: Any) -> None:
        seen.append(("audit", order, set()))

    order_placed.connect(email_customer)
    order_placed.connect(audit)
    with Session(db) as session, session.begin():
        session.add(Item(label="order-1"))
        session.flush()
        with deferring_to(scheduler_for(session)):
            order_placed.send(sender=None, order="order-1")
        assert seen == [("audit", "order-1", set())]  # only the plain receiver ran
    assert seen[1:] == [("email", "order-1", {"order-1"})]


# -- every rule, on PostgreSQL ----------------------------------------------------------


def test_nested_savepoints_rolled_back_from_the_outside(pg: Engine) -> None:
    seen: list[str] = []
    with Session(pg) as session:
        session.begin()
        on_commit(lambda: seen.append("root"), session)
        outer = session.begin_nested()
        on_commit(lambda: seen.append("outer"), session)
        with session.begin_nested():  # released into "outer"...
            on_commit(lambda: seen.append("inner"), session)
        outer.rollback()  # ...which then rolls back: both go
        with session.begin_nested():
            on_commit(lambda: seen.append("later"), session)
        session.commit()
    assert seen == ["root", "later"]


def test_rolling_back_an_outer_savepoint_closes_the_open_inner_one(pg: Engine) -> None:
    seen: list[str] = []
    with Session(pg) as session:
        outer = session.begin_nested()
        session.begin_nested()
        on_commit(lambda: seen.append("inner"), session)
        outer.rollback()  # the inner savepoint is still open: it is discarded with it
        on_commit(lambda: seen.append("root"), session)
        session.commit()
    assert seen == ["root"]


def test_commit_with_savepoints_open_commits_them_all(pg: Engine) -> None:
    seen: list[str] = []
    with Session(pg) as session:
        session.begin_nested()
        session.add(Item(label="a"))
        session.begin_nested()
        session.add(Item(label="b"))
        on_commit(lambda: seen.append(sorted(committed_labels(pg))[-1]), session)
        session.commit()
    assert seen == ["b"]


@pytest.mark.parametrize("leave", ["with block", "rollback()", "close()"])
def test_a_failed_flush_in_a_savepoint_drops_its_callbacks(pg: Engine, leave: str) -> None:
    """The failed flush rolls the savepoint back; leaving its ``with`` block then only
    closes it, and SQLAlchemy fires no rollback event for that."""
    seen: list[str] = []

    def add_duplicate_in_savepoint(session: Session) -> None:
        with session.begin_nested():
            on_commit(lambda: seen.append("duplicate"), session)
            session.add(Item(label="taken"))
            session.flush()

    with Session(pg) as session:
        session.add(Item(label="taken"))
        on_commit(lambda: seen.append("outer"), session)
        if leave == "with block":
            with pytest.raises(IntegrityError):
                add_duplicate_in_savepoint(session)
        else:
            savepoint = session.begin_nested()
            on_commit(lambda: seen.append("duplicate"), session)
            session.add(Item(label="taken"))
            with pytest.raises(IntegrityError):
                session.flush()
            savepoint.rollback() if leave == "rollback()" else savepoint.close()
        session.commit()
    assert seen == ["outer"]
    assert committed_labels(pg) == {"taken"}


def test_rollback_with_savepoints_open_drops_everything(pg: Engine) -> None:
    seen: list[str] = []
    with Session(pg) as session:
        session.begin()
        on_commit(lambda: seen.append("root"), session)
        with session.begin_nested():
            on_commit(lambda: seen.append("released"), session)
        session.begin_nested()
        on_commit(lambda: seen.append("open"), session)
        session.rollback()
        assert session.info == {}
    assert seen == []


def test_callbacks_registering_callbacks_run_them_at_once(pg: Engine) -> None:
    seen: list[str] = []
    with Session(pg) as session:

        def first() -> None:
            seen.append("first")
            # The transaction has ended: like Django, the new callback runs immediately.
            on_commit(lambda: seen.append("nested"), session)
            seen.append("first done")

        session.begin()
        on_commit(first, session)
        on_commit(lambda: seen.append("second"), session)
        session.commit()
    assert seen == ["first", "nested", "first done", "second"]


def test_a_callback_may_start_a_new_transaction_with_its_own_callbacks(pg: Engine) -> None:
    seen: list[str] = []
    with Session(pg) as session:

        def follow_up() -> None:
            with Session(pg) as other, other.begin():
                other.add(Item(label="follow-up"))
                on_commit(lambda: seen.append("follow-up committed"), other)
                seen.append("follow-up added")

        session.add(Item(label="a"))
        on_commit(follow_up, session)
        session.commit()
    assert seen == ["follow-up added", "follow-up committed"]
    assert committed_labels(pg) == {"a", "follow-up"}


def test_a_failing_callback_that_is_not_robust_raises_out_of_commit(pg: Engine) -> None:
    """Django's robust=False: the error propagates (after COMMIT), later callbacks drop."""
    seen: list[str] = []

    def broken() -> None:
        raise ValueError("boom")

    with Session(pg) as session:
        session.add(Item(label="a"))
        on_commit(lambda: seen.append("before"), session)
        on_commit(broken, session)
        on_commit(lambda: seen.append("dropped"), session)
        with pytest.raises(ValueError, match="boom"):
            session.commit()
        assert seen == ["before"]
        assert committed_labels(pg) == {"a"}
        # The session is not left half-committed: it works, and nothing is left over.
        assert not session.in_transaction()
        session.add(Item(label="b"))
        session.commit()
    assert seen == ["before"]
    assert committed_labels(pg) == {"a", "b"}


def test_robust_and_plain_callbacks_outside_a_transaction(
    pg: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise ValueError("boom")

    with Session(pg) as session:
        on_commit(broken, session, robust=True)
        assert [r.levelno for r in caplog.records] == [logging.ERROR]
        with pytest.raises(ValueError, match="boom"):
            on_commit(broken, session)


def test_after_commit_receivers_are_robust(pg: Engine, caplog: pytest.LogCaptureFixture) -> None:
    saved = Signal(name="saved")
    seen: list[str] = []

    @after_commit
    def broken(sender: object, **kwargs: Any) -> None:
        raise ValueError("boom")

    @after_commit
    def works(sender: object, **kwargs: Any) -> None:
        seen.append("works")

    saved.connect(broken)
    saved.connect(works)
    with Session(pg) as session, session.begin():
        with deferring_to(scheduler_for(session)):
            saved.send(sender=None)
        assert seen == []
    assert seen == ["works"]
    [record] = caplog.records
    assert "broken in on_commit() (boom)" in record.getMessage()
    assert record.exc_info is not None


def test_after_commit_receivers_are_dropped_on_rollback(pg: Engine) -> None:
    saved = Signal(name="saved")
    seen: list[str] = []

    @after_commit
    def notify(sender: object, **kwargs: Any) -> None:
        seen.append("notify")

    saved.connect(notify)
    with Session(pg) as session:
        session.begin()
        with deferring_to(scheduler_for(session)):
            saved.send(sender=None)
        savepoint = session.begin_nested()
        with deferring_to(scheduler_for(session)):
            saved.send(sender=None)
        savepoint.rollback()
        session.rollback()
    assert seen == []


def test_scheduler_for_is_none_outside_a_transaction(pg: Engine) -> None:
    saved = Signal(name="saved")
    seen: list[str] = []

    @after_commit
    def notify(sender: object, **kwargs: Any) -> None:
        seen.append("notify")

    saved.connect(notify)
    with Session(pg) as session:
        assert scheduler_for(session) is None
        with deferring_to(scheduler_for(session)):
            saved.send(sender=None)
        assert seen == ["notify"]
        session.begin()
        assert scheduler_for(session) is not None


# -- installing ---------------------------------------------------------------------------

LISTENED = ["after_transaction_create", "after_commit", "after_transaction_end"]


def listening(target: Any) -> list[bool]:
    from tocsin.contrib.sqlalchemy import _transactions

    return [event.contains(target, name, getattr(_transactions, f"_{name}")) for name in LISTENED]


@pytest.mark.parametrize("kind", ["sessionmaker", "subclass", "instance"])
def test_install_on_other_targets_is_idempotent_and_uninstall_removes_all(
    pg: Engine, kind: str
) -> None:
    uninstall_transactions(Session)
    assert listening(Session) == [False] * 3

    class MySession(Session):
        pass

    target: Any
    make: Callable[[], Session]
    if kind == "sessionmaker":
        target = make = sessionmaker(pg)
    elif kind == "subclass":
        target = MySession
        make = functools.partial(MySession, pg)
    else:
        target = Session(pg)
        make = functools.partial(lambda session: session, target)
    install_transactions(target)
    install_transactions(target)
    assert listening(target) == [True] * 3
    seen: list[str] = []
    with make() as session:
        session.begin_nested()
        on_commit(lambda: seen.append("once"), session)
        session.commit()
    assert seen == ["once"]  # run once, though installed twice
    uninstall_transactions(target)
    uninstall_transactions(target)
    assert listening(target) == [False] * 3


def test_installed_on_a_class_and_its_sessionmaker_runs_callbacks_once(pg: Engine) -> None:
    maker = sessionmaker(pg)
    install_transactions(maker)  # on top of the autouse install on Session
    try:
        seen: list[str] = []
        with maker() as session:
            session.begin()
            on_commit(lambda: seen.append("once"), session)
            with session.begin_nested():
                on_commit(lambda: seen.append("inner"), session)
            savepoint = session.begin_nested()
            on_commit(lambda: seen.append("dropped"), session)
            savepoint.rollback()
            session.commit()
        assert seen == ["once", "inner"]
    finally:
        uninstall_transactions(maker)


def test_on_commit_without_listeners_refuses_rather_than_losing_the_callback(
    pg: Engine,
) -> None:
    uninstall_transactions(Session)
    with Session(pg) as session:
        session.begin()
        with pytest.raises(RuntimeError, match="install_transactions"):
            on_commit(lambda: None, session)
        session.rollback()
        on_commit(lambda: None, session)  # outside a transaction nothing needs them


# -- a random nesting of savepoints against a reference model ---------------------------

# "release" and "rollback" end the innermost savepoint, or open one if none is open.
OPS = st.lists(
    st.sampled_from(["register", "open", "release", "rollback"]), min_size=4, max_size=25
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS, end=st.sampled_from(["commit", "commit", "rollback", "close"]))
def test_random_savepoint_nesting_matches_djangos_rules(
    pg: Engine, ops: list[str], end: str
) -> None:
    batch = uuid.uuid4().hex
    ran: list[int] = []
    registered: list[int] = []
    # The model: one frame of callback ids per open savepoint (frame 0: the transaction).
    frames: list[list[int]] = [[]]
    with Session(pg) as session:
        session.begin()
        savepoints: list[SessionTransaction] = []
        for op in ops:
            if op == "register":
                n = len(registered)
                registered.append(n)
                frames[-1].append(n)
                # Each callback has a row of its own: it must run iff the row commits.
                session.add(Item(label=f"{batch[:30]}-{n}", batch=batch))
                session.flush()
                on_commit(lambda n=n: ran.append(n), session)  # type: ignore[misc]
            elif op == "open" or not savepoints:
                savepoints.append(session.begin_nested())
                frames.append([])
            elif op == "release":
                savepoints.pop().commit()
                done = frames.pop()
                frames[-1].extend(done)
            else:
                savepoints.pop().rollback()
                frames.pop()
        if end == "commit":
            session.commit()  # releases the savepoints still open
        elif end == "rollback":
            session.rollback()
        else:
            session.close()
        assert ran == [] or end == "commit"
    survivors = {n for frame in frames for n in frame} if end == "commit" else set()
    assert ran == [n for n in registered if n in survivors]
    with Session(pg) as fresh:
        rows = fresh.scalars(select(Item.label).where(Item.batch == batch))
        assert {int(label.rsplit("-", 1)[1]) for label in rows} == set(ran)


# -- AsyncSession -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def async_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    engine, schema = async_engine(request.param, tmp_path)

    async def create() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)

    asyncio.run(create())
    yield engine
    asyncio.run(engine.dispose())
    if schema is not None:
        drop_schema(schema)


def test_on_commit_with_an_async_session(async_db: Any) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    seen: list[str] = []

    async def main() -> None:
        async with AsyncSession(async_db) as session:
            async with session.begin():
                session.add(Item(label="a"))
                on_commit(lambda: seen.append("committed"), session)
                async with session.begin_nested():
                    on_commit(lambda: seen.append("released"), session)
                savepoint = await session.begin_nested()
                on_commit(lambda: seen.append("rolled back"), session)
                await savepoint.rollback()
                assert seen == []
            assert seen == ["committed", "released"]

    asyncio.run(main())


def test_async_after_commit_receivers_run_as_tasks_on_the_loop(
    async_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    saved = Signal(name="saved")
    seen: list[str] = []

    @after_commit
    async def notify(sender: object, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        seen.append("notified")

    @after_commit
    async def broken(sender: object, **kwargs: Any) -> None:
        raise ValueError("async boom")

    saved.connect(notify)
    saved.connect(broken)

    async def main() -> None:
        async with AsyncSession(async_db) as session:
            async with session.begin():
                session.add(Item(label="a"))
                with deferring_to(scheduler_for(session)):
                    saved.send(sender=None)
                await asyncio.sleep(0.01)
                assert seen == []
            # Started on this loop at commit; let the tasks finish.
            for _ in range(10):
                await asyncio.sleep(0)
            assert seen == ["notified"]

    asyncio.run(main())
    [record] = caplog.records
    assert record.name == LOGGER
    assert "async boom" in record.getMessage()
    assert record.exc_info is not None


def test_install_on_async_targets(async_db: Any) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    uninstall_transactions(Session)
    maker = async_sessionmaker(async_db)
    seen: list[str] = []

    async def main() -> None:
        async with maker() as session:
            install_transactions(session)  # an AsyncSession instance: its sync_session
            async with session.begin():
                on_commit(lambda: seen.append("instance"), session)
            uninstall_transactions(session)
        install_transactions(AsyncSession)  # its sync_session_class: Session
        async with maker() as session, session.begin():
            on_commit(lambda: seen.append("class"), session)
        uninstall_transactions(AsyncSession)
        install_transactions(maker)
        async with maker() as session, session.begin():
            on_commit(lambda: seen.append("maker"), session)
        uninstall_transactions(maker)

    asyncio.run(main())
    assert seen == ["instance", "class", "maker"]
    assert listening(Session) == [False] * 3


# -- end to end: model signals from tocsin.contrib.sqlalchemy --------------------------


class ShopBase(DeclarativeBase):
    pass


class Order(ShopBase):
    __tablename__ = "tocsin_tx_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40))


def test_post_save_after_commit_receiver_runs_after_commit(db: Engine) -> None:
    from tocsin.contrib import sqlalchemy as tocsin_sa
    from tocsin.signals import post_save

    ShopBase.metadata.create_all(db)
    seen: list[tuple[str, str, bool]] = []

    @after_commit
    def confirm(sender: type, instance: Order, created: bool, **kwargs: Any) -> None:
        seen.append(("confirm", instance.number, created))

    def log(sender: type, instance: Order, created: bool, **kwargs: Any) -> None:
        seen.append(("log", instance.number, created))

    post_save.connect(confirm, sender=Order)
    post_save.connect(log, sender=Order)
    tocsin_sa.install(ShopBase)
    try:
        with Session(db, expire_on_commit=False) as session:
            with session.begin():
                session.add(Order(number="A-1"))
                session.flush()
                assert seen == [("log", "A-1", True)]
            assert seen == [("log", "A-1", True), ("confirm", "A-1", True)]
            seen.clear()
            with session.begin():
                session.add(Order(number="B-2"))
                with session.begin_nested() as savepoint:
                    session.add(Order(number="C-3"))
                    session.flush()
                    savepoint.rollback()
            assert seen == [("log", "B-2", True), ("log", "C-3", True), ("confirm", "B-2", True)]
    finally:
        tocsin_sa.uninstall(ShopBase)
        post_save.disconnect(confirm, sender=Order)
        post_save.disconnect(log, sender=Order)
