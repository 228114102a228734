"""The wire format for cross-process signals: a signed, versioned JSON envelope.

An event travels as one JSON object (UTF-8, ASCII-only, sorted keys, no spaces)::

    {"body": "<canonical JSON of the event>", "kid": "k1", "sig": "<hex HMAC-SHA256>", "v": 1}

Why it looks like this:

- **The body is a string, signed as bytes.** The HMAC is computed over the exact bytes of
  the body, and checked (in constant time) *before* the body is parsed or any value in it
  is decoded, so a forged message never reaches the codecs. The body repeats ``"v": 1``
  so that the version is covered by the signature too.
- **Never pickle.** Unpickling runs arbitrary code, and anyone who can write to the broker
  would get that power in every worker. Values go through a codec
  (:class:`~tocsin.remote.Codec`) instead: plain JSON for JSON types, and
  ``{"__tocsin__": tag, "v": payload}`` for the others
  (datetimes, decimals, UUIDs, bytes, enums, dataclasses, classes, mapped model instances).
- **Rejections are specific.** :meth:`Envelope.decode` raises a subclass of
  :class:`RejectedEvent` whose ``reason`` is one of :data:`REASONS`, logs it on the
  ``tocsin.remote`` logger at WARNING (never echoing the payload), and counts it in
  :attr:`Envelope.stats`.

HMAC gives integrity and authenticity among the holders of a key, not confidentiality:
use TLS to the broker for that.

The pieces live in their own modules: the event (``_event``), the codec registry
(``_codec``), the keyring (``_keys``), the replay window (``_replay``) and the
rejection errors (``errors``); this module is the policy that puts them together.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Collection
from typing import Any, Final, NoReturn

from tocsin.remote._codec import Codec, default_codecs
from tocsin.remote._event import MAX_ID_LENGTH, Event
from tocsin.remote._keys import Keyring
from tocsin.remote._replay import ReplayCache
from tocsin.remote.errors import (
    BadSignature,
    EventTooLarge,
    EventTooLargeToPublish,
    ExpiredEvent,
    MalformedEvent,
    RejectedEvent,
    RejectionStats,
    ReplayedEvent,
    UnknownKey,
    UnknownSignal,
    UnsignedEvent,
    UnsupportedVersion,
)

__all__ = ["WIRE_VERSION", "Envelope"]

logger = logging.getLogger("tocsin.remote")

#: The envelope format version written by :meth:`Envelope.encode` and the only one accepted.
WIRE_VERSION: Final = 1

_ENVELOPE_KEYS: Final = frozenset({"v", "kid", "sig", "body"})
_BODY_KEYS: Final = frozenset(
    {"v", "id", "signal", "sender", "kwargs", "origin", "created_at", "attempt"}
)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _reject_constant(name: str) -> NoReturn:
    raise ValueError("NaN or Infinity in JSON")


# One decoder made once: json.loads with options would build a new one on every call.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
)


def _loads(text: str) -> Any:
    return _DECODER.decode(text)


# Canonical: sorted keys, no spaces, ASCII only (so str and UTF-8 bytes coincide). One
# encoder made once: json.dumps with options would build a new one on every call.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
_dumps: Final = _ENCODER.encode
# A str as a JSON string, ASCII only: what _dumps writes for one.
_json_str: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii


def _outer(body: str, key_id: str | None, signature: str | None) -> str:
    """``_dumps({"v": 1, "kid": key_id, "sig": signature, "body": body})``, written
    directly (the same bytes: keys in sorted order) rather than by the generic encoder,
    which would walk a dict to write four known fields."""
    kid = "null" if key_id is None else _json_str(key_id)
    sig = "null" if signature is None else _json_str(signature)
    return f'{{"body":{_json_str(body)},"kid":{kid},"sig":{sig},"v":{WIRE_VERSION}}}'


def _is_finite_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


class Envelope:
    """The policy that turns :class:`Event` objects into signed bytes and back.

    ``keyring=None`` with ``require_signature=False`` is the explicit insecure mode for
    local development (no signing, anything accepted); ``keyring=None`` alone is an
    error. With a keyring and ``require_signature=False``, events are signed and
    signatures checked when present, but unsigned ones are accepted (for a migration).

    ``allowed_signals`` (``None``: any) lists the signal names accepted. Events older
    than ``replay_window`` seconds or more than ``max_future`` seconds ahead of
    ``clock()`` are refused; within the window, an (id, attempt) seen before is refused
    as a replay. The seen-ids cache holds at most ``max_seen`` entries; when full it drops
    the oldest and from then on refuses events as old as that one (as expired), so it
    never lets a replay through, and the effective window shrinks under a flood. Size
    the window above the longest backlog a worker may have to drain, since an event that
    waited longer is refused even on its first delivery. ``clock`` (``time.time``) is
    injectable for tests.
    """

    def __init__(
        self,
        keyring: Keyring | None,
        *,
        allowed_signals: Collection[str] | None = None,
        max_bytes: int = 256 * 1024,
        replay_window: float = 300.0,
        codec: Codec | None = None,
        require_signature: bool = True,
        max_future: float = 60.0,
        max_seen: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keyring is None and require_signature:
            raise ValueError(
                "an Envelope without a keyring cannot verify signatures: pass a Keyring, "
                "or require_signature=False to accept unsigned events (insecure)"
            )
        if replay_window <= 0 or max_future < 0 or max_bytes <= 0 or max_seen <= 0:
            raise ValueError("replay_window, max_bytes and max_seen must be positive")
        self.keyring = keyring
        self.allowed_signals = None if allowed_signals is None else frozenset(allowed_signals)
        self.max_bytes = max_bytes
        self.replay_window = replay_window
        self.max_future = max_future
        self.codec = default_codecs() if codec is None else codec
        self.require_signature = require_signature
        self.clock = clock
        self.stats = RejectionStats()
        self._seen = ReplayCache(max_seen)
        if keyring is None:
            logger.warning("tocsin.remote: signatures are disabled (insecure development mode)")

    def with_own_replay_cache(self) -> Envelope:
        """Return a copy with the same policy, keyring, codec and stats, and an empty cache.

        For consumers that legitimately see the same event more than once (one consumer
        group per receiver): each needs its own seen-ids cache, while rejections are still
        counted in one place.
        """
        clone = copy.copy(self)
        clone._seen = ReplayCache(self._seen.max_size)
        return clone

    # -- encoding

    def encode(self, event: Event) -> bytes:
        """Return the event as signed JSON bytes, ready for a broker.

        Raises ``TypeError`` for a value no codec handles and
        :class:`~tocsin.remote.errors.EventTooLargeToPublish` (a ``PublishError`` and a
        ``ValueError``) for an event larger than ``max_bytes`` (every worker would
        refuse it).
        """
        if not isinstance(event.signal, str) or not event.signal:
            raise ValueError("an event needs the signal's name")
        if not isinstance(event.id, str) or not 0 < len(event.id) <= MAX_ID_LENGTH:
            raise ValueError(f"an event id is a str of 1 to {MAX_ID_LENGTH} characters")
        if not isinstance(event.attempt, int) or event.attempt < 1:
            raise ValueError("attempt must be an int >= 1")
        if any(not isinstance(name, str) for name in event.kwargs):
            raise TypeError("keyword argument names must be str")
        body = _dumps(
            {
                "v": WIRE_VERSION,
                "id": event.id,
                "signal": event.signal,
                "sender": self.codec.encode_value(event.sender),
                "kwargs": {k: self.codec.encode_value(v) for k, v in event.kwargs.items()},
                "origin": event.origin,
                "created_at": float(event.created_at),
                "attempt": event.attempt,
            }
        )
        key_id = signature = None
        if self.keyring is not None:
            key_id, signature = self.keyring.sign(body.encode("ascii"))
        data = _outer(body, key_id, signature)
        encoded = data.encode("ascii")
        if len(encoded) > self.max_bytes:
            raise EventTooLargeToPublish(len(encoded), self.max_bytes)
        return encoded

    # -- decoding

    def decode(self, data: bytes, *, redelivered: bool = False) -> Event:
        """Verify ``data`` and return its :class:`Event`; raise a :class:`RejectedEvent`.

        Checks, in order: size, envelope shape and version, signature (before anything
        in the body is parsed), body shape, allow-list, timestamp window, values, and
        replay. Each rejection is counted in ``stats`` and logged at WARNING.

        ``redelivered=True`` says the *broker* reports this message as delivered before
        (Redis Streams' delivery count, JetStream's ``num_delivered``): the replay check
        is skipped for it, since a message this process accepted and did not acknowledge
        is legitimately delivered again. A copy injected into the broker is a new message
        to it, so it is still checked. Transports set ``Event.attempt`` themselves.
        """
        try:
            event = self._decode(data, redelivered)
        except RejectedEvent as exc:
            self.stats.record(exc.reason)
            logger.warning(
                "tocsin.remote: rejected event %s (%s): %s",
                exc.event_id or "<unknown id>",
                exc.reason,
                exc.detail,
            )
            raise
        self.stats.record_accepted()
        return event

    def reissue(
        self, data: bytes, *, created_at: float | None = None, attempt: int | None = None
    ) -> tuple[str, bytes]:
        """Return ``(event id, data)`` re-signed as a new delivery of the same event.

        Checks the signature (and the envelope's shape) as :meth:`decode` does, then
        stamps the body with *created_at* (default now) and *attempt* (default the
        next one) and signs it with the current key. The values are **not** decoded:
        an event whose sender or arguments name classes this process has not imported
        can be reissued (``tocsin deadletter replay`` needs no receivers' modules).
        The window and allow-list are not checked (the event is old by design).
        Raises a :class:`RejectedEvent` saying why not; nothing is counted or logged.
        """
        fields = self._verified_fields(data)
        fields["created_at"] = float(self.clock() if created_at is None else created_at)
        fields["attempt"] = fields["attempt"] + 1 if attempt is None else attempt
        if type(fields["attempt"]) is not int or fields["attempt"] < 1:
            raise ValueError("attempt must be an int >= 1")
        body = _dumps(fields)
        key_id = signature = None
        if self.keyring is not None:
            key_id, signature = self.keyring.sign(body.encode("ascii"))
        return fields["id"], _outer(body, key_id, signature).encode("ascii")

    def _verified_fields(self, data: bytes) -> dict[str, Any]:
        """The body's fields of a well-formed, correctly signed envelope (values still
        encoded); raises a :class:`RejectedEvent` otherwise."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedEvent(f"expected bytes, got {type(data).__name__}")
        if len(data) > self.max_bytes:
            raise EventTooLarge(f"{len(data)} bytes, over max_bytes={self.max_bytes}")
        try:
            outer = _loads(bytes(data).decode("utf-8"))
        except (ValueError, RecursionError):
            raise MalformedEvent("not a JSON envelope") from None
        if not isinstance(outer, dict):
            raise MalformedEvent("not a JSON envelope")
        version = outer.get("v")
        if "v" not in outer or type(version) is not int:
            raise MalformedEvent("no version")
        if version != WIRE_VERSION:
            raise UnsupportedVersion(
                f"version {str(version)[:12]} (this reader knows {WIRE_VERSION})"
            )
        if outer.keys() != _ENVELOPE_KEYS:
            raise MalformedEvent("unexpected envelope fields")
        body, key_id, signature = outer["body"], outer["kid"], outer["sig"]
        if type(body) is not str:
            raise MalformedEvent("the body is not a string")
        try:
            body_bytes = body.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedEvent("the body is not valid text") from None
        self._verify(key_id, signature, body_bytes)

        # From here on the body was written by a key holder (or signatures are off).
        try:
            fields = _loads(body)
        except (ValueError, RecursionError):
            raise MalformedEvent("the body is not JSON") from None
        if not isinstance(fields, dict) or fields.keys() != _BODY_KEYS:
            raise MalformedEvent("unexpected body fields")
        if fields["v"] != WIRE_VERSION or type(fields["v"]) is not int:
            raise UnsupportedVersion("the body's version differs from the envelope's")
        event_id = fields["id"]
        if type(event_id) is not str or not 0 < len(event_id) <= MAX_ID_LENGTH:
            raise MalformedEvent("bad event id")
        if not event_id.isprintable():
            raise MalformedEvent("bad event id")
        if (
            type(fields["signal"]) is not str
            or type(fields["origin"]) is not str
            or not _is_finite_number(fields["created_at"])
            or type(fields["attempt"]) is not int
            or fields["attempt"] < 1
            or not isinstance(fields["kwargs"], dict)
        ):
            raise MalformedEvent("bad body field", event_id=event_id)
        return fields

    def _decode(self, data: bytes, redelivered: bool) -> Event:
        fields = self._verified_fields(data)
        event_id, signal, origin = fields["id"], fields["signal"], fields["origin"]
        created_at, attempt = fields["created_at"], fields["attempt"]
        if self.allowed_signals is not None and signal not in self.allowed_signals:
            raise UnknownSignal("signal not in the allow-list", event_id=event_id)

        now = self.clock()
        if created_at < now - self.replay_window:
            raise ExpiredEvent(
                f"{now - created_at:.1f}s old, over the {self.replay_window:g}s window",
                event_id=event_id,
            )
        if created_at > now + self.max_future:
            raise ExpiredEvent(
                f"timestamp {created_at - now:.1f}s in the future "
                f"(over max_future={self.max_future:g}s)",
                event_id=event_id,
            )

        try:
            sender = self.codec.decode_value(fields["sender"])
            kwargs = {k: self.codec.decode_value(v) for k, v in fields["kwargs"].items()}
        except ValueError as exc:
            raise MalformedEvent(str(exc), event_id=event_id) from exc

        # Recorded only now, once everything else passed: a refused event must not make a
        # later valid delivery of the same id look like a replay.
        verdict = self._seen.add(
            (event_id, attempt), created_at, now - self.replay_window, not redelivered
        )
        if verdict == "replayed":
            raise ReplayedEvent("already accepted within the window", event_id=event_id)
        if verdict == "expired":
            raise ExpiredEvent(
                "older than the replay cache still covers (it is full)", event_id=event_id
            )
        return Event(
            id=event_id,
            signal=signal,
            sender=sender,
            kwargs=kwargs,
            origin=origin,
            created_at=float(created_at),
            attempt=attempt,
        )

    def _verify(self, key_id: Any, signature: Any, body: bytes) -> None:
        if key_id is None and signature is None:
            if self.require_signature:
                raise UnsignedEvent("no signature")
            return
        if type(key_id) is not str or type(signature) is not str:
            raise MalformedEvent("bad key id or signature field")
        if self.keyring is None or key_id not in self.keyring:
            raise UnknownKey(f"key id {key_id[:64]!r} is not in the keyring")
        try:
            valid = self.keyring.verify(key_id, body, signature)
        except KeyError:  # removed since the check above
            raise UnknownKey(f"key id {key_id[:64]!r} is not in the keyring") from None
        if not valid:
            raise BadSignature(f"does not match key {key_id!r}")
