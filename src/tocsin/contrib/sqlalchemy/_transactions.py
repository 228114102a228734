"""After-commit callbacks on a SQLAlchemy Session, with Django's ``on_commit`` semantics.

``install_transactions(Session)`` (or a sessionmaker, a Session subclass, one session)
adds three session listeners; then::

    with Session(engine) as session, session.begin():
        session.add(order)
        session.flush()
        on_commit(functools.partial(send_receipt, order.id), session)
    # send_receipt(order_id) runs here, after COMMIT; never if the block rolled back

The rules, Django's:

- outside a transaction the callback runs at once;
- it runs after the outermost transaction commits, in registration order;
- it is dropped when that transaction rolls back or the session is closed first;
- registered inside a savepoint (``begin_nested()``) that rolls back, it is dropped, while
  callbacks of the enclosing transaction survive; a released savepoint's callbacks wait
  for the outer commit;
- callbacks run after the transaction has ended, so one that registers another callback
  on the same session runs it at once.

``@after_commit`` receivers of signals sent inside ``deferring_to(scheduler_for(session))``
(the model signals do this) are queued the same way, as robust callbacks.

Failures: a ``robust`` callback's exception is logged on ``tocsin.dispatch`` and the
next callback runs. A plain one behaves as in Django: its exception propagates out of
``commit()`` (the data is committed; the session is usable) and the callbacks after it
are dropped. ``@after_commit`` receivers are always robust, so one failing receiver
never stops the others.

Limits: "commit" means the Session's own root transaction committing. A session joined
to an outer Connection transaction (the test-suite pattern) runs callbacks when *it*
commits, even if the outer transaction later rolls back.

An ``AsyncSession`` works too: its events are those of its synchronous session, and an
``async def`` callback is started as a task on the running loop (its failure is logged).
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from tocsin._commit import Scheduler, run_callback

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["install_transactions", "on_commit", "scheduler_for", "uninstall_transactions"]

logger = logging.getLogger("tocsin.dispatch")

# Key of the per-transaction state in Session.info (SessionTransaction has no .info).
_STATE_KEY = "_tocsin_on_commit"


class _Callback(NamedTuple):
    savepoints: frozenset[SessionTransaction]  # the savepoints open when it was registered
    callback: Callable[[], Any]
    robust: bool


class _State:
    """The callbacks waiting for one root transaction of one session."""

    __slots__ = ("callbacks", "committed", "released", "root")

    def __init__(self, root: SessionTransaction) -> None:
        self.root = root
        self.callbacks: collections.deque[_Callback] = collections.deque()
        self.released: set[SessionTransaction] = set()  # savepoints released, still open
        self.committed = False

    def run(self) -> None:
        # Popping one at a time: if a non-robust callback raises, the rest are dropped
        # along with this state, as Django drops them.
        while self.callbacks:
            _, callback, robust = self.callbacks.popleft()
            _call(callback, robust)


# -- the listeners -------------------------------------------------------------------------


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    state = session.info.get(_STATE_KEY)
    # Listeners installed on both a class and its subclass fire twice: keep the first state.
    if state is None or state.root is not transaction:
        session.info[_STATE_KEY] = _State(transaction)


def _after_commit(session: Session) -> None:
    state = session.info.get(_STATE_KEY)
    if state is None:
        return
    # after_commit also fires when a savepoint is released (it is still the innermost
    # one then); only the root's commit lets the callbacks run.
    savepoint = session.get_nested_transaction()
    if savepoint is None:
        state.committed = True
    else:
        state.released.add(savepoint)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    state = session.info.get(_STATE_KEY)
    if state is None:
        return
    if transaction.nested:
        # A savepoint that ends without being released was rolled back, whichever way:
        # rollback(), a failed flush followed by closing its block (which fires no
        # rollback event for it), or the rollback or close() of an enclosing one.
        # Callbacks record every savepoint open at registration, so those of savepoints
        # nested inside it go too.
        # (Released ones stay in the set: with listeners installed on both a class and
        # its sessionmaker this runs twice, and must not drop them the second time.)
        if transaction not in state.released:
            state.callbacks = collections.deque(
                entry for entry in state.callbacks if transaction not in entry.savepoints
            )
        return
    if transaction.parent is not None or state.root is not transaction:
        return  # a flush's subtransaction
    del session.info[_STATE_KEY]
    # Running here rather than in after_commit: the transaction is over (the session is
    # usable and not in_transaction()), and an exception cannot leave the session stuck
    # in its "committed" state. A rollback or close() also ends here: nothing runs.
    if state.committed:
        state.run()


_LISTENERS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("after_transaction_create", _after_transaction_create),
    ("after_commit", _after_commit),
    ("after_transaction_end", _after_transaction_end),
)


def _event_target(target: Any) -> Any:
    """The target that carries session events: async sessions have none of their own."""
    sync_session = getattr(target, "sync_session", None)  # an AsyncSession instance
    if isinstance(sync_session, Session):
        return sync_session
    if isinstance(target, type) and hasattr(target, "sync_session_class"):  # AsyncSession class
        return target.sync_session_class
    kw = getattr(target, "kw", None)  # an async_sessionmaker
    if isinstance(kw, dict) and hasattr(getattr(target, "class_", None), "sync_session_class"):
        return kw.get("sync_session_class", target.class_.sync_session_class)
    return target


def install_transactions(target: Any) -> None:
    """Add the on_commit session listeners to *target*; returns None. Idempotent.

    *target*: the ``Session`` class (every session), a Session subclass, a
    ``sessionmaker``, one session, or their asyncio counterparts (``AsyncSession`` means
    its ``sync_session_class``, by default ``Session`` itself).
    """
    target = _event_target(target)
    for name, listener in _LISTENERS:
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)


def uninstall_transactions(target: Any) -> None:
    """Remove every listener ``install_transactions(target)`` added; returns None.

    Callbacks still waiting in open transactions of affected sessions will not run.
    """
    target = _event_target(target)
    for name, listener in _LISTENERS:
        if event.contains(target, name, listener):
            event.remove(target, name, listener)


# -- the public API ------------------------------------------------------------------------


def _sync(session: Session | AsyncSession) -> Session:
    sync_session = getattr(session, "sync_session", None)
    return sync_session if isinstance(sync_session, Session) else session  # type: ignore[return-value]


def scheduler_for(session: Session | AsyncSession) -> Scheduler | None:
    """The scheduler that defers callbacks to *session*'s commit, or None outside a
    transaction (the callback then runs at once).

    Pass it to ``tocsin._commit.deferring_to()``; callbacks it takes are robust (a failure
    is logged and the next callback still runs).
    """
    sync_session = _sync(session)
    if not sync_session.in_transaction():
        return None
    return functools.partial(_schedule, sync_session)


def _schedule(session: Session, callback: Callable[[], Any]) -> None:
    on_commit(callback, session, robust=True)


def on_commit(
    callback: Callable[[], Any], session: Session | AsyncSession, *, robust: bool = False
) -> None:
    """Run *callback* after *session*'s transaction commits (at once if none is open).

    Returns None. Dropped if the transaction (or the savepoint it was registered in)
    rolls back, or the session is closed first. A ``robust`` callback that raises is
    logged on ``tocsin.dispatch`` and the others still run; a non-robust one, as in
    Django, raises out of ``commit()`` (after COMMIT) and the callbacks queued after it
    are dropped. Callbacks cannot use *session* for SQL of the committed transaction;
    one that needs the database should open a new session.

    Raises RuntimeError when a transaction is open but install_transactions() does not
    cover this session: the callback would otherwise never run.
    """
    sync_session = _sync(session)
    if not sync_session.in_transaction():
        _call(callback, robust)
        return
    state = sync_session.info.get(_STATE_KEY)
    if state is None or state.root is not sync_session.get_transaction():
        raise RuntimeError(
            "on_commit() needs tocsin's transaction listeners on this session: call "
            "install_transactions() on its class, sessionmaker or on the session before "
            "its transaction begins"
        )
    savepoints = []
    transaction = sync_session.get_nested_transaction()
    while transaction is not None:
        if transaction.nested:
            savepoints.append(transaction)
        transaction = transaction.parent
    state.callbacks.append(_Callback(frozenset(savepoints), callback, robust))


def _call(callback: Callable[[], Any], robust: bool) -> None:
    """Run *callback*; if *robust*, log its exception instead of raising it."""
    if not robust:
        run_callback(callback)
        return
    try:
        run_callback(callback)
    except Exception as error:
        logger.error(
            "Error calling %s in on_commit() (%s).", _describe(callback), error, exc_info=True
        )


def _describe(callback: Callable[[], Any]) -> str:
    """A readable name for a callback, looking through partials and run_callback."""
    while isinstance(callback, functools.partial):
        if callback.func is run_callback and callback.args:
            callback = callback.args[0]
        else:
            callback = callback.func
    return getattr(callback, "__qualname__", None) or repr(callback)
