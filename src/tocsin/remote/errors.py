"""What can go wrong with an event: rejections (with their statistics) and broker errors.

A :class:`RejectedEvent` is raised on the receiving side when an incoming message is
refused (its ``reason`` is one of :data:`REASONS`); a :class:`TransportError` when a
broker cannot be reached or refuses an operation, and its subclass :class:`PublishError`
when an event could not be published (so ``except PublishError`` around ``send()``
catches every way a publish can fail at run time).
"""

from __future__ import annotations

import threading
from typing import ClassVar, Final

__all__ = [
    "REASONS",
    "BadSignature",
    "EventTooLarge",
    "EventTooLargeToPublish",
    "ExpiredEvent",
    "MalformedEvent",
    "PublishError",
    "RejectedEvent",
    "RejectionStats",
    "ReplayedEvent",
    "TransportError",
    "UnknownKey",
    "UnknownSignal",
    "UnsignedEvent",
    "UnsupportedVersion",
]

#: Every rejection reason, in the order checks usually fail.
REASONS: Final = (
    "too-large",
    "malformed",
    "unsupported-version",
    "unsigned",
    "unknown-key",
    "bad-signature",
    "unknown-signal",
    "expired",
    "replayed",
)


class RejectedEvent(Exception):
    """An incoming event was refused; ``reason`` says why (one of :data:`REASONS`).

    ``detail`` is a short explanation that never contains the payload; ``event_id`` is
    the event's id when it was known (the signature having been checked).
    """

    reason: ClassVar[str] = "malformed"

    def __init__(self, detail: str, *, event_id: str | None = None) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail
        self.event_id = event_id


class UnsignedEvent(RejectedEvent):
    """The event carries no signature, and this envelope requires one."""

    reason = "unsigned"


class BadSignature(RejectedEvent):
    """The signature does not match the body: forged or altered in transit."""

    reason = "bad-signature"


class UnknownKey(RejectedEvent):
    """The event was signed with a key id this keyring does not hold."""

    reason = "unknown-key"


class ReplayedEvent(RejectedEvent):
    """An event with this id (and attempt) was already accepted within the window."""

    reason = "replayed"


class ExpiredEvent(RejectedEvent):
    """The event's timestamp is older than the replay window, or too far in the future."""

    reason = "expired"


class EventTooLarge(RejectedEvent):
    """The message is larger than the envelope's ``max_bytes``."""

    reason = "too-large"


class UnknownSignal(RejectedEvent):
    """The signal's name is not in the envelope's allow-list."""

    reason = "unknown-signal"


class MalformedEvent(RejectedEvent):
    """The message is not a well-formed envelope, or a value in it cannot be decoded."""

    reason = "malformed"


class UnsupportedVersion(RejectedEvent):
    """The envelope's version is not :data:`WIRE_VERSION`."""

    reason = "unsupported-version"


class RejectionStats:
    """Thread-safe counts of accepted events and of rejections per reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._accepted = 0

    def record(self, reason: str) -> None:
        """Count one rejection for ``reason``."""
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def record_accepted(self) -> None:
        """Count one accepted event."""
        with self._lock:
            self._accepted += 1

    def __getitem__(self, reason: str) -> int:
        """Return the number of rejections for ``reason`` (0 if none)."""
        with self._lock:
            return self._counts.get(reason, 0)

    @property
    def accepted(self) -> int:
        """The number of events accepted."""
        return self._accepted

    @property
    def rejected(self) -> int:
        """The number of events rejected, all reasons together."""
        with self._lock:
            return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        """Return a snapshot: every reason's count (zeros included)."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Set every count back to zero."""
        with self._lock:
            self._counts = dict.fromkeys(REASONS, 0)
            self._accepted = 0

    def __repr__(self) -> str:
        return f"RejectionStats(accepted={self.accepted}, rejected={self.as_dict()})"


# --------------------------------------------------------------------------- brokers


class TransportError(Exception):
    """The broker could not be reached or refused an operation."""


class PublishError(TransportError):
    """An event could not be written to the broker; it was **not** published.

    Raised by a transport's ``publish`` (and so by ``signal.send()`` of a published
    signal) rather than losing the event silently. ``stream`` is where it was going.
    """

    def __init__(self, message: str, *, stream: str) -> None:
        super().__init__(message)
        self.stream = stream


class EventTooLargeToPublish(PublishError, ValueError):
    """The encoded event is larger than the envelope's ``max_bytes``: every worker would
    refuse it, so it is not published. ``size`` and ``max_bytes`` are in bytes.

    A :class:`PublishError` (the event was not published) and, as before, a ``ValueError``.
    """

    def __init__(self, size: int, max_bytes: int, *, stream: str = "") -> None:
        where = f" for stream {stream!r}" if stream else ""
        super().__init__(
            f"encoded event{where} is {size} bytes, over max_bytes={max_bytes}: send less "
            "(an id instead of the object), or raise max_bytes on every envelope",
            stream=stream,
        )
        self.size = size
        self.max_bytes = max_bytes
