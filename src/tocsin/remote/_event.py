"""The event: one signal sent across processes, as the envelope carries it."""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import time
from typing import Any, Final

__all__ = ["MAX_ID_LENGTH", "Event", "new_event"]

#: The longest event id accepted (ids go into broker keys and log lines).
MAX_ID_LENGTH: Final = 128


@dataclasses.dataclass(frozen=True)
class Event:
    """One signal sent across processes: what was sent, by whom, from where, and when."""

    id: str
    signal: str
    sender: Any
    kwargs: dict[str, Any]
    origin: str
    created_at: float
    attempt: int = 1


def _new_id() -> str:
    """Return a 32-hex-digit id that sorts by creation time (ms), then 80 random bits."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


_origin: tuple[int, str] = (-1, "")


def _default_origin() -> str:
    # Cached per process (a forked child has another pid, so makes its own).
    global _origin
    pid = os.getpid()
    if _origin[0] != pid:
        _origin = (pid, f"{socket.gethostname()}:{pid}")
    return _origin[1]


def new_event(
    signal_name: str, sender: Any, kwargs: dict[str, Any], *, origin: str | None = None
) -> Event:
    """Return a new :class:`Event` with a fresh time-sortable id, stamped now.

    ``origin`` defaults to ``"hostname:pid"``. ``kwargs`` is copied.
    """
    if not isinstance(signal_name, str) or not signal_name:
        raise ValueError("an event needs the signal's name (a non-empty str)")
    return Event(
        id=_new_id(),
        signal=signal_name,
        sender=sender,
        kwargs=dict(kwargs),
        origin=_default_origin() if origin is None else origin,
        created_at=time.time(),
    )
