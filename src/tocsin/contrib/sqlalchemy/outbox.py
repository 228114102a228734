"""The transactional outbox for SQLAlchemy: model signals of a flush go to the outbox.

Import the outbox from here when SQLAlchemy's model signals are published through it::

    from tocsin.contrib.sqlalchemy.outbox import OutboxTransport, Relay, outbox_table

This module registers the Session whose flush is sending model signals as the outbox's
current transaction (:func:`tocsin.remote.outbox.register_session_source`), so that a
``post_save`` published to an :class:`OutboxTransport` is written in that Session's
transaction. Everything else is :mod:`tocsin.remote.outbox`'s, re-exported.
"""

from __future__ import annotations

from tocsin.contrib.sqlalchemy._models import current_session
from tocsin.remote.outbox import (
    DEFAULT_TABLE,
    OutboxTransport,
    Relay,
    outbox_table,
    register_session_source,
    writing_to,
)

__all__ = ["DEFAULT_TABLE", "OutboxTransport", "Relay", "outbox_table", "writing_to"]

register_session_source(current_session)
