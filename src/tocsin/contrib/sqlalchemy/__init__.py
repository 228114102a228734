"""Django's model signals from the SQLAlchemy ORM: ``pip install tocsin[sqlalchemy]``.

One call wires a declarative base::

    from tocsin.contrib import sqlalchemy as tocsin_sa

    class Base(DeclarativeBase): ...

    tocsin_sa.install(Base, using={engine: "default", replica: "replica"})

*What is installed on.* The target is a **declarative base**: a ``DeclarativeBase``
subclass or what ``declarative_base()`` returns. Mapper and instance listeners are added
to it with ``propagate=True``, so they cover every class mapped under it, before or after
``install()``. A bare ``registry`` (imperative mapping) has no base class to listen on
and is not accepted. Session listeners go on ``sessions=``: the ``Session`` class (every
session, the default), a Session subclass or a ``sessionmaker``; an ``AsyncSession``
class or ``async_sessionmaker`` means the sync Session class behind it.

*Engines.* ``using`` maps engines (or AsyncEngines) to the alias sent as ``using=``; an
engine not named is ``"default"``. Every engine named is also *watched*: each DBAPI
connection it opens sends ``connection_created``. ``watch(engine, alias)`` does the same
for an engine created later.

The listener set is fixed: connecting a tocsin receiver never adds a SQLAlchemy
listener. ``install()`` twice is harmless; ``uninstall()`` removes every listener.

What sends what:

- ``pre_init`` (args, kwargs) when a mapped object is constructed; ``post_init`` after
  its ``__init__`` and when a row is loaded (not on refresh of expired attributes).
- ``pre_save``/``post_save`` per row during a flush (``created`` True on INSERT, False on
  UPDATE; nothing when only collections changed); ``pre_delete``/``post_delete`` per row,
  ORM cascades included, with ``origin`` the object passed to ``Session.delete()``.
- ``m2m_changed`` around the flush's write to a secondary table (see ``_m2m``).
- ``class_prepared`` when a class is mapped; every class is registered for lazy senders
  (``sender="Article"``).
- Bulk and Core statements send no per-row signals, as Django's ``QuerySet.update()``.

Receivers that must use the Session (add a Profile when a User is created) are not
allowed to during a flush: decorate them with ``@after_flush`` to have the call made
when the flush is over. ``@tocsin.after_commit`` receivers run after the commit.

Async: with AsyncSession the same signals are sent from SQLAlchemy's greenlet; a signal
with async receivers is sent with ``asend`` and awaited there (Django's ``asend``: sync
receivers in a worker thread, then async ones concurrently), so the flush waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from tocsin._lazy import LazySenderWarning
from tocsin.contrib.sqlalchemy._codec import model_codec
from tocsin.contrib.sqlalchemy._models import (
    Installation,
    after_flush,
    alias_of,
    check_senders,
    unwatch,
    watch,
)
from tocsin.contrib.sqlalchemy._transactions import on_commit

__all__ = [
    "LazySenderWarning",
    "after_flush",
    "alias_of",
    "check_senders",
    "install",
    "installed",
    "model_codec",
    "on_commit",
    "uninstall",
    "unwatch",
    "watch",
]

_installations: dict[type, Installation] = {}


def install(
    base: type, *, sessions: Any = Session, using: Mapping[Any, str] | None = None
) -> None:
    """Send Django's model signals for every class mapped under *base*; returns None.

    *sessions*: where session listeners go (default: every Session). *using*: engine ->
    alias; those engines are watched for ``connection_created``. A second call for the
    same base does nothing (``uninstall()`` first to change the options).
    """
    if not isinstance(base, type) or not hasattr(base, "registry"):
        raise TypeError(
            f"install() takes a declarative base (a DeclarativeBase subclass or the result "
            f"of declarative_base()), not {base!r}"
        )
    if base in _installations:
        return
    installation = Installation(base, sessions, using or {})
    _installations[base] = installation
    try:
        installation.install()
    except BaseException:
        del _installations[base]
        installation.uninstall()
        raise


def uninstall(base: type) -> None:
    """Remove every listener ``install(base)`` added and forget its classes' names for lazy
    senders; returns None. Receivers stay connected. Does nothing if *base* is not installed.
    """
    installation = _installations.pop(base, None)
    if installation is not None:
        installation.uninstall()


def installed(base: type) -> bool:
    """Whether ``install(base)`` is in effect."""
    return base in _installations
