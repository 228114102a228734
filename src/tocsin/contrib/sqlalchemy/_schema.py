"""pre_migrate / post_migrate around ``MetaData.create_all()``.

``install_schema(metadata, using)`` makes every ``metadata.create_all(bind)`` send
``pre_migrate`` before it creates anything and ``post_migrate`` after, even when every
table already exists (Django sends both even when there is nothing to migrate). Both are
sent from SQLAlchemy's DDL events, inside the DDL transaction; a receiver that raises
makes ``create_all()`` fail and roll back.

Arguments, with Django's names: ``sender`` and ``app_config`` are the MetaData (the
stand-in for an AppConfig), ``verbosity=1``, ``interactive=False``, ``stdout=sys.stdout``,
``using`` = ``using(connection)``, ``plan=None`` (create_all runs no migration steps;
Alembic's helper passes real ones) and ``apps=None``; plus tocsin's ``tables``: the
tables this call creates (before) or created (after), ``[]`` when all existed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection

from tocsin._dispatcher import Signal
from tocsin.signals import post_migrate, pre_migrate

__all__ = ["install_schema", "uninstall_schema"]

# Where install_schema() keeps *using* for the shared listeners: MetaData.info.
_USING_KEY = "_tocsin_using"


def install_schema(metadata: MetaData, using: Callable[[Connection], str]) -> None:
    """Send pre_migrate/post_migrate around every create_all() of *metadata*; returns None.

    *using* maps the DDL connection to the alias passed as ``using``. Installing again
    only replaces *using*.
    """
    metadata.info[_USING_KEY] = using
    for name, listener in _LISTENERS:
        if not event.contains(metadata, name, listener):
            event.listen(metadata, name, listener)


def uninstall_schema(metadata: MetaData) -> None:
    """Remove the listeners install_schema() added; returns None."""
    for name, listener in _LISTENERS:
        if event.contains(metadata, name, listener):
            event.remove(metadata, name, listener)
    metadata.info.pop(_USING_KEY, None)


def _before_create(target: MetaData, connection: Connection, **kw: Any) -> None:
    _send(pre_migrate, target, connection, kw)


def _after_create(target: MetaData, connection: Connection, **kw: Any) -> None:
    _send(post_migrate, target, connection, kw)


def _send(signal: Signal, metadata: MetaData, connection: Connection, kw: dict[str, Any]) -> None:
    using = metadata.info.get(_USING_KEY)
    signal.send(
        sender=metadata,
        app_config=metadata,
        verbosity=1,
        interactive=False,
        stdout=sys.stdout,  # read at send time: the stream may have been replaced
        using=using(connection) if using is not None else "default",
        plan=None,
        apps=None,
        # "tables" is the list create_all() settled on after its existence check.
        tables=list(kw.get("tables", ())),
    )


_LISTENERS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("before_create", _before_create),
    ("after_create", _after_create),
)
