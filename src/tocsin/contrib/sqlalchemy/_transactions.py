"""After-commit callbacks on a SQLAlchemy Session, with Django's on_commit semantics.

(Interface stub: implemented by the transactions work.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from tocsin._commit import Scheduler


def install_transactions(target: Any) -> None:
    """Listen to the session events of *target* (a Session class, sessionmaker or session)."""
    raise NotImplementedError


def uninstall_transactions(target: Any) -> None:
    """Remove every listener install_transactions() added to *target*."""
    raise NotImplementedError


def scheduler_for(session: Session) -> Scheduler | None:
    """The scheduler that defers callbacks to *session*'s commit, or None outside a
    transaction (the callback then runs at once)."""
    raise NotImplementedError


def on_commit(callback: Callable[[], Any], session: Session, *, robust: bool = False) -> None:
    """Run *callback* after *session*'s transaction commits (at once if none is open)."""
    raise NotImplementedError
