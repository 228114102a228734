"""The wire format for cross-process signals: a signed, versioned JSON envelope.

An event travels as one JSON object (UTF-8, ASCII-only, sorted keys, no spaces)::

    {"body": "<canonical JSON of the event>", "kid": "k1", "sig": "<hex HMAC-SHA256>", "v": 1}

Why it looks like this:

- **The body is a string, signed as bytes.** The HMAC is computed over the exact bytes of
  the body, and checked (in constant time) *before* the body is parsed or any value in it
  is decoded, so a forged message never reaches the codecs. The body repeats ``"v": 1``
  so that the version is covered by the signature too.
- **Never pickle.** Unpickling runs arbitrary code, and anyone who can write to the broker
  would get that power in every worker. Values go through a :class:`Codec` instead: plain
  JSON for JSON types, and ``{"__tocsin__": tag, "v": payload}`` for the others
  (datetimes, decimals, UUIDs, bytes, enums, dataclasses, classes, mapped model instances).
- **Rejections are specific.** :meth:`Envelope.decode` raises a subclass of
  :class:`RejectedEvent` whose ``reason`` is one of :data:`REASONS`, logs it on the
  ``tocsin.remote`` logger at WARNING (never echoing the payload), and counts it in
  :attr:`Envelope.stats`.

HMAC gives integrity and authenticity among the holders of a key, not confidentiality:
use TLS to the broker for that.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import datetime as dt
import enum
import hashlib
import heapq
import hmac
import importlib
import json
import logging
import math
import os
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "REASONS",
    "WIRE_VERSION",
    "BadSignature",
    "Codec",
    "Envelope",
    "Event",
    "EventTooLarge",
    "ExpiredEvent",
    "Keyring",
    "MalformedEvent",
    "RejectedEvent",
    "RejectionStats",
    "ReplayedEvent",
    "UnknownKey",
    "UnknownSignal",
    "UnsignedEvent",
    "UnsupportedVersion",
    "class_path",
    "default_codecs",
    "model_codec",
    "new_event",
]

logger = logging.getLogger("tocsin.remote")

#: The envelope format version written by :meth:`Envelope.encode` and the only one accepted.
WIRE_VERSION: Final = 1

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

# The key marking a tagged (non-JSON) value: {"__tocsin__": tag, "v": payload}.
_TAG: Final = "__tocsin__"
# Tags the codec handles itself; custom codecs may not take them.
_CORE_TAGS: Final = frozenset({"dict", "tuple", "set", "frozenset", "float", "class"})
_ENVELOPE_KEYS: Final = frozenset({"v", "kid", "sig", "body"})
_BODY_KEYS: Final = frozenset(
    {"v", "id", "signal", "sender", "kwargs", "origin", "created_at", "attempt"}
)
_MAX_ID_LENGTH: Final = 128


# --------------------------------------------------------------------------- events


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


# --------------------------------------------------------------------------- rejections


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


# --------------------------------------------------------------------------- codecs

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class _Entry:
    tag: str
    type: type | None
    predicate: Callable[[Any], bool] | None
    encode: Encoder
    decode: Decoder

    def matches(self, value: Any) -> bool:
        if self.type is not None:
            return isinstance(value, self.type)
        assert self.predicate is not None
        return bool(self.predicate(value))


class Codec:
    """A registry turning Python values into JSON-able data and back, without pickle.

    JSON types pass through (non-finite floats, tuples, sets, dicts with non-str keys are
    tagged); classes travel as ``"module:Qualname"``; other types need a codec registered
    with :meth:`register_codec` (:func:`default_codecs` registers the common ones).

    Decoding a class (a sender, an enum, a dataclass, a model) looks it up in a module
    that is **already imported**; a module that is not is imported only if it is named in
    ``import_modules`` (names or package prefixes). Importing runs the module's top-level
    code, so this keeps a message from making a worker import whatever it names, even a
    correctly signed one from a compromised key holder.
    """

    def __init__(self, *, import_modules: Collection[str] = (), max_depth: int = 64) -> None:
        self.import_modules = tuple(import_modules)
        self.max_depth = max_depth
        self._entries: list[_Entry] = []
        self._by_tag: dict[str, _Entry] = {}
        self._by_type: dict[type, _Entry] = {}

    def register_codec(
        self,
        type_or_predicate: type | Callable[[Any], bool],
        encode: Encoder,
        decode: Decoder,
        tag: str,
    ) -> None:
        """Register how values of a type (or matching a predicate) cross the wire.

        ``encode(value)`` returns a payload that is itself encoded by this codec, so it
        may contain datetimes, decimals, and so on; ``decode(payload)`` receives the
        payload already decoded and returns the value. ``tag`` names the codec on the
        wire and must be unique. Later registrations are tried first.
        """
        if not isinstance(tag, str) or not tag or tag in _CORE_TAGS:
            raise ValueError(f"invalid or reserved codec tag: {tag!r}")
        if tag in self._by_tag:
            raise ValueError(f"a codec is already registered with the tag {tag!r}")
        if isinstance(type_or_predicate, type):
            entry = _Entry(tag, type_or_predicate, None, encode, decode)
            self._by_type[type_or_predicate] = entry
        elif callable(type_or_predicate):
            entry = _Entry(tag, None, type_or_predicate, encode, decode)
        else:
            raise TypeError("register_codec() needs a type or a predicate")
        self._entries.append(entry)
        self._by_tag[tag] = entry

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags of the registered codecs, in registration order."""
        return tuple(entry.tag for entry in self._entries)

    # -- encoding

    def encode_value(self, value: Any) -> Any:
        """Return ``value`` as JSON-able data (dicts, lists, str, int, float, bool, None).

        Raises ``TypeError`` for a value no codec handles (or nested too deeply).
        """
        return self._encode(value, 0)

    def _encode(self, value: Any, depth: int) -> Any:
        if depth > self.max_depth:
            raise TypeError("value nested too deeply (or cyclic) to encode")
        cls = type(value)
        if value is None or cls is str or cls is bool or cls is int:
            return value
        if cls is float:
            if math.isfinite(value):
                return value
            return {_TAG: "float", "v": repr(value)}  # "nan", "inf", "-inf"
        depth += 1
        if cls is list:
            return [self._encode(item, depth) for item in value]
        if cls is dict:
            if _TAG not in value and all(type(key) is str for key in value):
                return {key: self._encode(item, depth) for key, item in value.items()}
            pairs = [[self._encode(k, depth), self._encode(v, depth)] for k, v in value.items()]
            return {_TAG: "dict", "v": pairs}
        if cls is tuple:
            return {_TAG: "tuple", "v": [self._encode(item, depth) for item in value]}
        if cls is set or cls is frozenset:
            items = [self._encode(item, depth) for item in value]
            return {_TAG: cls.__name__, "v": items}
        entry = self._find(value)
        if entry is not None:
            return {_TAG: entry.tag, "v": self._encode(entry.encode(value), depth)}
        if isinstance(value, type):
            return {_TAG: "class", "v": class_path(value)}
        raise TypeError(f"no codec for values of type {cls.__module__}.{cls.__qualname__}")

    def _find(self, value: Any) -> _Entry | None:
        entry = self._by_type.get(type(value))
        if entry is not None:
            return entry
        for entry in reversed(self._entries):
            if entry.matches(value):
                return entry
        return None

    # -- decoding

    def decode_value(self, data: Any) -> Any:
        """Return the Python value that :meth:`encode_value` turned into ``data``.

        Raises ``ValueError`` (whose message never contains the data) when it cannot.
        """
        return self._decode(data, 0)

    def _decode(self, data: Any, depth: int) -> Any:
        if depth > self.max_depth:
            raise ValueError("value nested too deeply to decode")
        cls = type(data)
        if data is None or cls is str or cls is bool or cls is int or cls is float:
            return data
        depth += 1
        if cls is list:
            return [self._decode(item, depth) for item in data]
        if cls is not dict:
            raise ValueError(f"unexpected {cls.__name__} in encoded data")
        if _TAG not in data:
            return {key: self._decode(item, depth) for key, item in data.items()}
        tag = data[_TAG]
        if len(data) != 2 or "v" not in data or type(tag) is not str:
            raise ValueError("badly tagged value")
        payload = data["v"]
        if tag in _CORE_TAGS:
            return self._decode_core(tag, payload, depth)
        entry = self._by_tag.get(tag)
        if entry is None:
            raise ValueError(f"no codec for the tag {tag[:40]!r}")
        decoded = self._decode(payload, depth)
        try:
            return entry.decode(decoded)
        except Exception as exc:
            # Not the exception's text: it may quote the payload (e.g. an enum's value).
            raise ValueError(f"cannot decode a {tag!r} value ({type(exc).__name__})") from exc

    def _decode_core(self, tag: str, payload: Any, depth: int) -> Any:
        if tag == "float":
            if payload not in ("nan", "inf", "-inf"):
                raise ValueError("bad non-finite float")
            return float(payload)
        if tag == "class":
            if type(payload) is not str:
                raise ValueError("bad class path")
            return self.resolve_class(payload)
        if type(payload) is not list:
            raise ValueError(f"bad {tag!r} value")
        items = [self._decode(item, depth) for item in payload]
        try:
            if tag == "tuple":
                return tuple(items)
            if tag == "set":
                return set(items)
            if tag == "frozenset":
                return frozenset(items)
            return dict(items)  # "dict": a list of [key, value] pairs
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad {tag!r} value ({type(exc).__name__})") from exc

    def resolve_class(self, path: str) -> type:
        """Return the class named by ``"module:Qualname"`` (see the class docstring).

        Looks names up in the module's and classes' ``__dict__`` (no ``getattr``, so no
        module ``__getattr__`` or descriptor runs). Raises ``ValueError`` when the path is
        invalid, the module is neither imported nor importable, or the object is not a
        class.
        """
        module_name, sep, qualname = path.partition(":")
        parts = qualname.split(".")
        if not sep or not all(p.isidentifier() for p in [*module_name.split("."), *parts]):
            raise ValueError("bad class path")
        if any(p.startswith("__") for p in parts):
            raise ValueError("bad class path (dunder name)")
        module = sys.modules.get(module_name)
        if module is None:
            if not self._may_import(module_name):
                raise ValueError(
                    f"class from module {module_name[:80]!r}, which is not imported "
                    "and not in import_modules"
                )
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise ValueError(f"cannot import {module_name[:80]!r}") from exc
        obj: Any = module
        for part in parts:
            namespace = getattr(obj, "__dict__", {})
            if part not in namespace:
                raise ValueError(f"no class {path[:120]!r}")
            obj = namespace[part]
        if not isinstance(obj, type):
            raise ValueError(f"{path[:120]!r} is not a class")
        return obj

    def _may_import(self, module_name: str) -> bool:
        return any(
            module_name == allowed or module_name.startswith(allowed + ".")
            for allowed in self.import_modules
        )


def class_path(cls: type) -> str:
    """Return ``"module:Qualname"`` for a class; ``TypeError`` if it cannot be resolved."""
    qualname = cls.__qualname__
    if "<locals>" in qualname or not cls.__module__ or cls.__module__ == "__main__":
        # A worker cannot find a local class, or the publisher's __main__.
        raise TypeError(f"class {qualname} cannot be named across processes")
    return f"{cls.__module__}:{qualname}"


def _encode_bytes(value: bytes | bytearray) -> str:
    return base64.b64encode(value).decode("ascii")


def _decode_bytes(payload: str) -> bytes:
    return base64.b64decode(payload, validate=True)


def _encode_datetime(value: dt.datetime) -> Any:
    # isoformat() keeps microseconds and the UTC offset (not a zone's name); fold, which
    # it drops, matters for naive wall-clock times in a repeated hour.
    return [value.isoformat(), value.fold] if value.fold else value.isoformat()


def _decode_datetime(payload: Any) -> dt.datetime:
    if isinstance(payload, list):
        text, fold = payload
        return dt.datetime.fromisoformat(text).replace(fold=fold)
    return dt.datetime.fromisoformat(payload)


def _encode_time(value: dt.time) -> Any:
    return [value.isoformat(), value.fold] if value.fold else value.isoformat()


def _decode_time(payload: Any) -> dt.time:
    if isinstance(payload, list):
        text, fold = payload
        return dt.time.fromisoformat(text).replace(fold=fold)
    return dt.time.fromisoformat(payload)


def _encode_timedelta(value: dt.timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _decode_timedelta(payload: list[int]) -> dt.timedelta:
    days, seconds, microseconds = payload
    return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_str_payload(parse: Callable[[str], Any]) -> Decoder:
    def decode(payload: Any) -> Any:
        if type(payload) is not str:
            raise TypeError("expected a string")
        return parse(payload)

    return decode


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def default_codecs(*, import_modules: Collection[str] = ()) -> Codec:
    """Return a new :class:`Codec` with the common types registered.

    datetime, date, time, timedelta, Decimal, UUID, bytes, bytearray, enum members
    (class and value) and dataclass instances (class and ``init`` fields, rebuilt by
    calling the class). ``import_modules`` is passed to :class:`Codec`.
    """
    codec = Codec(import_modules=import_modules)

    def encode_enum(value: enum.Enum) -> dict[str, Any]:
        return {"cls": class_path(type(value)), "value": value.value}

    def decode_enum(payload: dict[str, Any]) -> enum.Enum:
        cls = codec.resolve_class(payload["cls"])
        if not issubclass(cls, enum.Enum):
            raise TypeError("not an enum")
        return cls(payload["value"])

    def encode_dataclass(value: Any) -> dict[str, Any]:
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        return {"cls": class_path(type(value)), "fields": fields}

    def decode_dataclass(payload: dict[str, Any]) -> Any:
        cls = codec.resolve_class(payload["cls"])
        if not dataclasses.is_dataclass(cls):
            raise TypeError("not a dataclass")
        fields = payload["fields"]
        if not isinstance(fields, dict):
            raise TypeError("bad fields")
        return cls(**fields)

    register = codec.register_codec
    register(dt.datetime, _encode_datetime, _decode_datetime, "datetime")
    register(dt.date, dt.date.isoformat, _decode_str_payload(dt.date.fromisoformat), "date")
    register(dt.time, _encode_time, _decode_time, "time")
    register(dt.timedelta, _encode_timedelta, _decode_timedelta, "timedelta")
    register(Decimal, str, _decode_str_payload(Decimal), "decimal")
    register(uuid.UUID, str, _decode_str_payload(uuid.UUID), "uuid")
    register(bytes, _encode_bytes, _decode_str_payload(_decode_bytes), "bytes")
    register(
        bytearray,
        _encode_bytes,
        _decode_str_payload(lambda text: bytearray(_decode_bytes(text))),
        "bytearray",
    )
    register(enum.Enum, encode_enum, decode_enum, "enum")
    register(_is_dataclass_instance, encode_dataclass, decode_dataclass, "dataclass")
    return codec


def model_codec(
    session_factory: Callable[[], Session],
    codec: Codec | None = None,
    *,
    missing: Callable[[type, tuple[Any, ...]], Any] | None = None,
) -> Codec:
    """Register a codec for SQLAlchemy mapped instances on ``codec``, and return it.

    An instance travels as ``{"model": "module:Class", "pk": [...]}`` (its identity, so
    it must have been flushed). Decoding opens a session from ``session_factory``, loads
    the row with ``Session.get`` and closes the session: the instance comes back
    detached, its column attributes loaded. A row that no longer exists (say, after
    ``post_delete``) decodes to ``missing(model, pk)``, or to ``None`` by default.
    ``codec`` defaults to a new :func:`default_codecs`. SQLAlchemy is imported here, not
    when this module is imported.
    """
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import Mapper
    from sqlalchemy.orm.state import InstanceState

    target = default_codecs() if codec is None else codec

    def is_instance(value: Any) -> bool:
        return isinstance(sa_inspect(value, raiseerr=False), InstanceState)

    def encode(value: Any) -> dict[str, Any]:
        state: InstanceState[Any] = sa_inspect(value)
        identity = state.identity
        if identity is None:
            identity = tuple(state.mapper.primary_key_from_instance(value))
        if any(part is None for part in identity):
            raise TypeError(f"{type(value).__qualname__} instance has no primary key yet")
        return {"model": class_path(state.mapper.class_), "pk": list(identity)}

    def decode(payload: dict[str, Any]) -> Any:
        model = target.resolve_class(payload["model"])
        if not isinstance(sa_inspect(model, raiseerr=False), Mapper):
            raise TypeError("not a mapped class")
        pk = tuple(payload["pk"])
        with session_factory() as session:
            instance = session.get(model, pk[0] if len(pk) == 1 else pk)
        if instance is None:
            return None if missing is None else missing(model, pk)
        return instance

    target.register_codec(is_instance, encode, decode, "model")
    return target


# --------------------------------------------------------------------------- keys


def _check_key_id(key_id: str) -> None:
    # Key ids go into TOCSIN_KEYS ("id:secret,...") and into every message.
    if (
        not isinstance(key_id, str)
        or not key_id
        or len(key_id) > 64
        or not key_id.isascii()
        or not all(c.isalnum() or c in "-_." for c in key_id)
    ):
        raise ValueError(f"invalid key id {key_id!r}: use 1-64 of [A-Za-z0-9._-]")


class Keyring:
    """HMAC-SHA256 keys by id: the current one signs, all of them verify.

    Rotate by adding the new key everywhere, then making it current on the publishers,
    then removing the old one once no event signed with it can still be in flight.
    Use long random secrets (``secrets.token_bytes(32)``).
    """

    def __init__(self, keys: Mapping[str, bytes], current: str | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        for key_id, key in keys.items():
            self._store(key_id, key)
        if current is None:
            if len(self._keys) != 1:
                raise ValueError("Keyring needs current= to choose among several keys")
            current = next(iter(self._keys))
        if current not in self._keys:
            raise ValueError(f"current key {current!r} is not in the keyring")
        self._current = current

    @classmethod
    def from_env(
        cls,
        name: str = "TOCSIN_KEYS",
        *,
        current: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Keyring:
        """Return a keyring from an environment variable ``"k1:base64,k2:base64"``.

        The first key listed is current unless ``current`` says otherwise. Secrets are in
        standard or URL-safe base64. Raises ``ValueError`` (never quoting a secret).
        """
        env = os.environ if environ is None else environ
        text = env.get(name)
        if text is None or not text.strip():
            raise ValueError(f"environment variable {name} is not set")
        keys: dict[str, bytes] = {}
        for item in text.split(","):
            key_id, sep, encoded = item.strip().partition(":")
            if not sep:
                raise ValueError(f"{name}: each key must be written id:base64secret")
            _check_key_id(key_id)
            if key_id in keys:
                raise ValueError(f"{name}: key id {key_id!r} is listed twice")
            encoded = encoded.strip()
            if "-" in encoded or "_" in encoded:
                encoded = encoded.replace("-", "+").replace("_", "/")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{name}: the secret of key {key_id!r} is not base64") from None
        return cls(keys, current=current if current is not None else next(iter(keys)))

    def _store(self, key_id: str, key: bytes) -> None:
        _check_key_id(key_id)
        if not isinstance(key, bytes) or not key:
            raise TypeError(f"key {key_id!r} must be non-empty bytes")
        self._keys[key_id] = key

    @property
    def current(self) -> str:
        """The id of the key that signs."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of all keys accepted for verifying."""
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def add(self, key_id: str, key: bytes, *, make_current: bool = False) -> None:
        """Add (or replace) a key; make it the signing key if ``make_current``."""
        with self._lock:
            self._store(key_id, key)
            if make_current:
                self._current = key_id

    def set_current(self, key_id: str) -> None:
        """Sign with the key ``key_id`` from now on."""
        with self._lock:
            if key_id not in self._keys:
                raise ValueError(f"key {key_id!r} is not in the keyring")
            self._current = key_id

    def remove(self, key_id: str) -> None:
        """Stop accepting the key ``key_id`` (which must not be the current one)."""
        with self._lock:
            if key_id == self._current:
                raise ValueError("cannot remove the current key; set another current first")
            del self._keys[key_id]

    def sign(self, message: bytes) -> tuple[str, str]:
        """Return ``(key id, hex HMAC-SHA256 of message)`` with the current key."""
        with self._lock:
            key_id, key = self._current, self._keys[self._current]
        return key_id, hmac.new(key, message, hashlib.sha256).hexdigest()

    def verify(self, key_id: str, message: bytes, signature: str) -> bool:
        """Return whether ``signature`` is the key's HMAC of ``message`` (constant time).

        Raises ``KeyError`` if the keyring has no key ``key_id``.
        """
        key = self._keys[key_id]
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        # compare_digest takes str only when ASCII; anything else cannot match anyway.
        return signature.isascii() and hmac.compare_digest(expected, signature)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self.key_ids!r}, current={self._current!r})"


# --------------------------------------------------------------------------- replay cache


class _SeenIds:
    """The (id, attempt) keys accepted within the window, bounded in size.

    Entries are kept until their event's own timestamp leaves the window. When the cache
    is full, the entry with the oldest timestamp is dropped and ``floor`` rises to that
    timestamp: events that old are refused from then on (as expired), so that evicting
    never lets a replay through; under a flood the effective window shrinks instead.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.floor = -math.inf
        self._lock = threading.Lock()
        self._heap: list[tuple[float, str, int]] = []
        self._keys: set[tuple[str, int]] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: tuple[str, int], created_at: float, oldest: float, check: bool) -> str:
        """Record ``key``; return "" if accepted, else "replayed" or "expired"."""
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] < oldest:
                _, event_id, attempt = heapq.heappop(heap)
                self._keys.discard((event_id, attempt))
            if key in self._keys:
                return "replayed" if check else ""
            if check and created_at <= self.floor:
                return "expired"
            if len(self._keys) >= self.max_size:
                evicted_at, event_id, attempt = heapq.heappop(heap)
                self._keys.discard((event_id, attempt))
                self.floor = max(self.floor, evicted_at)
            heapq.heappush(heap, (created_at, *key))
            self._keys.add(key)
            return ""


# --------------------------------------------------------------------------- envelope


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
        self._seen = _SeenIds(max_seen)
        if keyring is None:
            logger.warning("tocsin.remote: signatures are disabled (insecure development mode)")

    def with_own_replay_cache(self) -> Envelope:
        """Return a copy with the same policy, keyring, codec and stats, and an empty cache.

        For consumers that legitimately see the same event more than once (one consumer
        group per receiver): each needs its own seen-ids cache, while rejections are still
        counted in one place.
        """
        clone = copy.copy(self)
        clone._seen = _SeenIds(self._seen.max_size)
        return clone

    # -- encoding

    def encode(self, event: Event) -> bytes:
        """Return the event as signed JSON bytes, ready for a broker.

        Raises ``TypeError`` for a value no codec handles and ``ValueError`` for an
        event larger than ``max_bytes`` (every worker would refuse it).
        """
        if not isinstance(event.signal, str) or not event.signal:
            raise ValueError("an event needs the signal's name")
        if not isinstance(event.id, str) or not 0 < len(event.id) <= _MAX_ID_LENGTH:
            raise ValueError(f"an event id is a str of 1 to {_MAX_ID_LENGTH} characters")
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
            raise ValueError(
                f"encoded event is {len(encoded)} bytes, over max_bytes={self.max_bytes}"
            )
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

    def _decode(self, data: bytes, redelivered: bool) -> Event:
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
        if type(event_id) is not str or not 0 < len(event_id) <= _MAX_ID_LENGTH:
            raise MalformedEvent("bad event id")
        if not event_id.isprintable():
            raise MalformedEvent("bad event id")
        signal, origin = fields["signal"], fields["origin"]
        created_at, attempt = fields["created_at"], fields["attempt"]
        if (
            type(signal) is not str
            or type(origin) is not str
            or not _is_finite_number(created_at)
            or type(attempt) is not int
            or attempt < 1
            or not isinstance(fields["kwargs"], dict)
        ):
            raise MalformedEvent("bad body field", event_id=event_id)

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
