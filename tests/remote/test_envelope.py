"""The wire format: codecs, signing, key rotation, replay protection, and rejections."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ForeignKey, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from tocsin import Signal
from tocsin.contrib.sqlalchemy import model_codec
from tocsin.remote import (
    REASONS,
    BadSignature,
    Codec,
    Envelope,
    Event,
    EventTooLarge,
    ExpiredEvent,
    Keyring,
    MalformedEvent,
    RejectedEvent,
    ReplayedEvent,
    UnknownKey,
    UnknownSignal,
    UnsignedEvent,
    UnsupportedVersion,
    default_codecs,
    new_event,
)

NOW = 1_800_000_000.0
SECRET = "SECRET-PAYLOAD-7f3a"  # must never appear in a log record


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Color(enum.Enum):
    RED = "red"
    GREEN = (0, 255, 0)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    READ = "r"
    WRITE = "w"


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int
    label: str = ""


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    total: Decimal
    placed: dt.datetime
    where: Point
    tags: list[str] = dataclasses.field(default_factory=list)
    computed: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        self.computed = len(self.tags)


class Outer:
    class Inner:
        pass


def make_keyring(*ids: str, current: str | None = None) -> Keyring:
    ids = ids or ("k1",)
    return Keyring({k: f"secret-of-{k}".encode() for k in ids}, current=current or ids[0])


def make_envelope(**options: Any) -> Envelope:
    options.setdefault("clock", Clock())
    keyring = options.pop("keyring", None) or make_keyring()
    return Envelope(keyring, **options)


def make_event(signal: str = "order_paid", **kwargs: Any) -> Event:
    event = new_event(signal, Point, kwargs or {"amount": Decimal("9.99")}, origin="test:1")
    return dataclasses.replace(event, created_at=NOW)


def wire(data: bytes) -> dict[str, Any]:
    return json.loads(data)  # type: ignore[no-any-return]


def signed(body: dict[str, Any] | str, keyring: Keyring | None = None, **outer: Any) -> bytes:
    """An envelope around ``body`` signed like Envelope.encode does, with overrides."""
    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
    kid, sig = (keyring or make_keyring()).sign(text.encode())
    fields = {"v": 1, "kid": kid, "sig": sig, "body": text, **outer}
    return json.dumps(fields).encode()


def body_of(data: bytes) -> dict[str, Any]:
    return json.loads(wire(data)["body"])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- round trips

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.just("__tocsin__"), inner, max_size=4)
    ),
    max_leaves=20,
)
hashables = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.uuids()
rich_scalars = (
    json_scalars
    | st.datetimes()
    | st.datetimes(timezones=st.timezones())
    | st.dates()
    | st.times()
    | st.times(
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
    )
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.binary(max_size=20)
    | st.binary(max_size=8).map(bytearray)
    | st.sampled_from([*Color, *Level, *Mode, Perm.R | Perm.W, Perm(0)])
    | st.builds(Point, st.integers(), st.integers(), st.text(max_size=5))
    | st.sampled_from([int, Point, Outer.Inner, Signal, dt.datetime])
)
rich_values = st.recursive(
    rich_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(hashables, max_size=3)
        | st.sets(hashables, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        | st.dictionaries(hashables, inner, max_size=3)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, all the way down (so 1 is not True and tz offsets match)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime | dt.time):
        # Inter-zone equality is defined as False in a fold or gap (PEP 495): compare text.
        return bool(a.isoformat() == b.isoformat() and a.fold == b.fold)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, float) and a != a:
        return bool(b != b)
    if isinstance(a, float):
        return a == b and str(a) == str(b)  # keeps -0.0
    return bool(a == b)


@given(json_values)
def test_json_values_travel_as_plain_json(value: Any) -> None:
    codec = default_codecs()
    encoded = codec.encode_value(value)
    if not _has_tag_key(value):
        assert encoded == value  # readable by any JSON consumer
    assert same(codec.decode_value(json.loads(json.dumps(encoded))), value)


def _has_tag_key(value: Any) -> bool:
    if isinstance(value, dict):
        return "__tocsin__" in value or any(_has_tag_key(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_tag_key(v) for v in value)
    return False


@given(rich_values)
def test_codec_round_trips(value: Any) -> None:
    codec = default_codecs()
    encoded = codec.encode_value(value)
    assert same(codec.decode_value(json.loads(json.dumps(encoded, allow_nan=False))), value)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(sender=rich_values, kwargs=st.dictionaries(st.text(max_size=10), rich_values, max_size=4))
def test_envelope_round_trips(sender: Any, kwargs: dict[str, Any]) -> None:
    envelope = make_envelope()
    event = dataclasses.replace(make_event(), sender=sender, kwargs=kwargs)
    data = envelope.encode(event)
    assert data.isascii()
    decoded = envelope.decode(data)
    assert same(decoded.sender, sender)
    assert same(decoded.kwargs, kwargs)
    assert (decoded.id, decoded.signal, decoded.origin) == (event.id, event.signal, "test:1")
    assert (decoded.created_at, decoded.attempt) == (NOW, 1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -0.0])
def test_special_floats(value: float) -> None:
    codec = default_codecs()
    encoded = json.dumps(codec.encode_value([value]), allow_nan=False)
    assert same(codec.decode_value(json.loads(encoded)), [value])


@given(st.decimals())
def test_decimals_including_nan(value: Decimal) -> None:
    codec = default_codecs()
    assert str(codec.decode_value(codec.encode_value(value))) == str(value)


def test_dataclasses_rebuild_through_their_constructor() -> None:
    order = Order(
        uuid.uuid4(),
        Decimal("12.50"),
        dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC),
        Point(1, 2, "a"),
        ["x", "y"],
    )
    codec = default_codecs()
    decoded = codec.decode_value(json.loads(json.dumps(codec.encode_value(order))))
    assert decoded == order
    assert decoded.computed == 2  # init=False fields are recomputed, not sent


def test_naive_datetime_in_a_repeated_hour_keeps_its_fold() -> None:
    value = dt.datetime(2026, 11, 1, 1, 30, fold=1)
    codec = default_codecs()
    assert codec.decode_value(codec.encode_value(value)).fold == 1


def test_new_event() -> None:
    first = new_event("a", None, {"x": 1})
    second = new_event("a", None, {"x": 1}, origin="elsewhere")
    assert first.id != second.id
    assert len(first.id) == 32
    assert first.id[:12] <= second.id[:12]  # sortable by creation time
    assert first.origin.endswith(f":{__import__('os').getpid()}")
    assert second.origin == "elsewhere"
    assert first.attempt == 1
    with pytest.raises(ValueError, match="signal"):
        new_event("", None, {})


def test_wire_format() -> None:
    envelope = make_envelope()
    data = envelope.encode(make_event())
    outer = wire(data)
    assert sorted(outer) == ["body", "kid", "sig", "v"]
    assert outer["v"] == 1
    assert outer["kid"] == "k1"
    assert outer["sig"] == hmac.new(b"secret-of-k1", outer["body"].encode(), "sha256").hexdigest()
    body = json.loads(outer["body"])
    assert body["v"] == 1
    assert body["sender"] == {"__tocsin__": "class", "v": f"{__name__}:Point"}
    # Canonical: sorted keys, no spaces, so signatures are reproducible.
    assert outer["body"] == json.dumps(body, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- encode errors


def test_encode_refuses_what_it_cannot_name() -> None:
    envelope = make_envelope()

    class Local:
        pass

    with pytest.raises(TypeError, match="no codec"):
        envelope.encode(make_event(obj=object()))
    with pytest.raises(TypeError, match="cannot be named"):
        envelope.encode(make_event(cls=Local))
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match="deeply"):
        envelope.encode(make_event(cyclic=cyclic))
    with pytest.raises(ValueError, match="max_bytes"):
        make_envelope(max_bytes=1000).encode(make_event(blob="x" * 1000))


# --------------------------------------------------------------------------- custom codecs


class Money:
    def __init__(self, amount: Decimal, currency: str) -> None:
        self.amount, self.currency = amount, currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.amount, self.currency) == (
            other.amount,
            other.currency,
        )

    __hash__ = None  # type: ignore[assignment]


def test_register_codec_by_type_and_by_predicate() -> None:
    codec = default_codecs()
    codec.register_codec(
        Money,
        lambda m: [m.amount, m.currency],  # the payload may hold a Decimal: encoded too
        lambda p: Money(p[0], p[1]),
        "money",
    )
    codec.register_codec(
        lambda v: hasattr(v, "__tocsin_ref__"),
        lambda v: v.__tocsin_ref__,
        lambda p: f"ref:{p}",
        "ref",
    )

    class Ref:
        __tocsin_ref__ = "abc"

    value = {"price": Money(Decimal("1.10"), "EUR"), "ref": Ref()}
    encoded = codec.encode_value(value)
    assert encoded["price"] == {
        "__tocsin__": "money",
        "v": [{"__tocsin__": "decimal", "v": "1.10"}, "EUR"],
    }
    assert codec.decode_value(encoded) == {
        "price": Money(Decimal("1.10"), "EUR"),
        "ref": "ref:abc",
    }
    assert codec.tags[-2:] == ("money", "ref")


def test_later_codecs_win_over_built_in_ones() -> None:
    codec = default_codecs()
    codec.register_codec(lambda v: isinstance(v, Point), lambda p: [p.x, p.y], lambda p: p, "pt")
    assert codec.encode_value(Point(1, 2)) == {"__tocsin__": "pt", "v": [1, 2]}


@pytest.mark.parametrize("tag", ["", "dict", "tuple", "class", "float", "decimal"])
def test_register_codec_refuses_reserved_or_taken_tags(tag: str) -> None:
    with pytest.raises(ValueError, match="tag"):
        default_codecs().register_codec(Money, repr, repr, tag)


def test_a_failing_decoder_is_malformed_without_quoting_the_payload() -> None:
    codec = default_codecs()
    with pytest.raises(ValueError, match="'enum' value") as info:
        codec.decode_value(
            {"__tocsin__": "enum", "v": {"cls": f"{__name__}:Color", "value": SECRET}}
        )
    assert SECRET not in str(info.value)


# --------------------------------------------------------------------------- class decoding


def test_classes_resolve_only_from_imported_or_allowed_modules() -> None:
    assert "tabnanny" not in sys.modules, "pick another never-imported stdlib module"
    codec = Codec()
    with pytest.raises(ValueError, match="not imported"):
        codec.decode_value({"__tocsin__": "class", "v": "tabnanny:NannyNag"})
    assert "tabnanny" not in sys.modules  # the message did not make us import it

    allowing = Codec(import_modules=["tabnanny"])
    cls = allowing.decode_value({"__tocsin__": "class", "v": "tabnanny:NannyNag"})
    assert cls.__name__ == "NannyNag"
    assert Codec(import_modules=["xml"])._may_import("xml.dom")
    assert not Codec(import_modules=["xml"])._may_import("xmlrpc")


@pytest.mark.parametrize(
    "path",
    [
        "os:system",  # a function, not a class
        "os",  # no qualname
        "builtins:__import__",  # dunder names are never looked up
        f"{__name__}:Outer.__dict__",
        "os:path.join",
        "no such module:X",
        f"{__name__}:Missing",
        f"{__name__}:<locals>.X",
    ],
)
def test_class_paths_that_do_not_resolve(path: str) -> None:
    with pytest.raises(ValueError, match=r"class|import"):
        Codec().resolve_class(path)


def test_nested_classes_resolve() -> None:
    assert Codec().resolve_class(f"{__name__}:Outer.Inner") is Outer.Inner


# --------------------------------------------------------------------------- rejections


def reject(envelope: Envelope, data: Any, error: type[RejectedEvent], **kw: Any) -> RejectedEvent:
    with pytest.raises(error) as info:
        envelope.decode(data, **kw)
    assert info.value.reason in REASONS
    assert info.value.reason == error.reason
    return info.value


def test_forged_signature_is_rejected() -> None:
    envelope = make_envelope()
    data = envelope.encode(make_event())
    outer = wire(data)
    outer["sig"] = hmac.new(b"guessed", outer["body"].encode(), hashlib.sha256).hexdigest()
    reject(envelope, json.dumps(outer).encode(), BadSignature)
    outer["sig"] = "é" * 64  # not even ASCII
    reject(envelope, json.dumps(outer).encode(), BadSignature)


def test_altered_body_is_rejected() -> None:
    envelope = make_envelope()
    data = envelope.encode(make_event(amount=1))
    tampered = data.replace(b'\\"amount\\":1', b'\\"amount\\":9')
    assert tampered != data
    reject(envelope, tampered, BadSignature)


@given(st.data())
def test_any_flipped_byte_is_rejected(data: st.DataObject) -> None:
    envelope = make_envelope()
    original = envelope.encode(make_event())
    position = data.draw(st.integers(0, len(original) - 1))
    mask = data.draw(st.integers(1, 255))
    flipped = bytearray(original)
    flipped[position] ^= mask
    with pytest.raises(RejectedEvent):
        envelope.decode(bytes(flipped))
    assert envelope.stats.accepted == 0


def test_unknown_key_id_is_rejected() -> None:
    envelope = make_envelope()
    other = make_keyring("k9")
    data = Envelope(other, clock=Clock()).encode(make_event())
    error = reject(envelope, data, UnknownKey)
    assert "'k9'" in error.detail


def test_unsigned_event_is_rejected() -> None:
    envelope = make_envelope()
    outer = wire(envelope.encode(make_event()))
    outer["kid"] = outer["sig"] = None
    reject(envelope, json.dumps(outer).encode(), UnsignedEvent)


def test_replayed_event_is_rejected() -> None:
    envelope = make_envelope()
    data = envelope.encode(make_event())
    envelope.decode(data)
    reject(envelope, data, ReplayedEvent)
    # Another process's envelope has its own cache: replay protection is per consumer.
    make_envelope().decode(data)


def test_replay_check_is_atomic_across_threads() -> None:
    envelope = make_envelope()
    data = envelope.encode(make_event())
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def consume() -> None:
        barrier.wait()
        try:
            envelope.decode(data)
            outcomes.append("ok")
        except ReplayedEvent:
            outcomes.append("replayed")

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


def test_a_copy_with_its_own_replay_cache_shares_policy_and_stats() -> None:
    envelope = make_envelope(allowed_signals={"order_paid"})
    data = envelope.encode(make_event())
    envelope.decode(data)
    other = envelope.with_own_replay_cache()
    assert other.keyring is envelope.keyring
    assert other.allowed_signals == envelope.allowed_signals
    other.decode(data)  # a separate consumer: not a replay for it
    reject(other, data, ReplayedEvent)
    assert envelope.stats.accepted == 2
    assert envelope.stats["replayed"] == 1


def test_broker_redeliveries_and_republished_attempts_are_not_replays() -> None:
    envelope = make_envelope()
    event = make_event()
    data = envelope.encode(event)
    assert envelope.decode(data).attempt == 1
    envelope.decode(data, redelivered=True)  # the broker says so: not an injected copy
    retry = envelope.encode(dataclasses.replace(event, attempt=2))  # re-signed by a publisher
    assert envelope.decode(retry).attempt == 2
    reject(envelope, retry, ReplayedEvent)


def test_rejected_events_are_not_remembered_as_seen() -> None:
    envelope = make_envelope(allowed_signals={"order_paid"})
    data = envelope.encode(make_event())
    reject(make_envelope(allowed_signals={"other"}), data, UnknownSignal)
    envelope.decode(data)


def test_expired_and_future_events_are_rejected() -> None:
    clock = Clock()
    envelope = make_envelope(clock=clock, replay_window=300, max_future=60)
    event = make_event()
    data = envelope.encode(event)

    clock.now = NOW + 300.5
    error = reject(envelope, data, ExpiredEvent)
    assert "window" in error.detail
    assert error.event_id == event.id
    clock.now = NOW - 60.5
    assert "future" in reject(envelope, data, ExpiredEvent).detail

    clock.now = NOW + 299  # just inside
    envelope.decode(data)
    clock.now = NOW - 59
    reject(envelope, data, ReplayedEvent)  # within the window, remembered


def test_oversized_event_is_rejected_before_parsing() -> None:
    data = make_envelope().encode(make_event(blob="x" * 2000))
    reject(make_envelope(max_bytes=2000), data, EventTooLarge)
    reject(make_envelope(max_bytes=10), b"{" * 11, EventTooLarge)


def test_signal_outside_the_allow_list_is_rejected() -> None:
    envelope = make_envelope(allowed_signals=["order_paid"])
    envelope.decode(envelope.encode(make_event("order_paid")))
    error = reject(envelope, envelope.encode(make_event("drop_tables")), UnknownSignal)
    assert "drop_tables" not in error.detail


@given(st.binary(max_size=300))
def test_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(RejectedEvent):
        make_envelope().decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'{"v": "1", "kid": null, "sig": null, "body": "{}"}',
        b'{"kid": null, "sig": null, "body": "{}"}',
        b'{"v": 1, "kid": null, "sig": null, "body": "{}", "extra": 1}',
        b'{"v": 1, "v": 1, "kid": null, "sig": null, "body": "{}"}',
        b'{"v": 1, "kid": "k1", "sig": null, "body": "{}"}',
        b'{"v": 1, "kid": 1, "sig": "00", "body": "{}"}',
        b'{"v": 1, "kid": null, "sig": null, "body": {}}',
        b'{"v": 1, "kid": null, "sig": null, "body": "\\udc00"}',
        b"[" * 100_000,
        "not bytes",
    ],
)
def test_malformed_envelopes_are_rejected(data: Any) -> None:
    reject(make_envelope(max_bytes=10**6), data, MalformedEvent)


def valid_body(**changes: Any) -> dict[str, Any]:
    body = body_of(make_envelope().encode(make_event()))
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "changes",
    [
        {"id": ""},
        {"id": "x" * 129},
        {"id": "a\nb"},
        {"id": 7},
        {"attempt": 0},
        {"attempt": True},
        {"created_at": "now"},
        {"kwargs": []},
        {"signal": None},
        {"sender": {"__tocsin__": "nope", "v": 1}},
        {"sender": {"__tocsin__": "class", "v": "tocsin_no_such_module:X"}},
        {"sender": {"__tocsin__": "class", "v": "os:system"}},
        {"sender": {"__tocsin__": "decimal"}},
        {"sender": {"__tocsin__": "float", "v": "1e999"}},
        {"kwargs": {"a": {"__tocsin__": "bytes", "v": "!!"}}},
        {"kwargs": {"a": {"__tocsin__": "set", "v": [[1]]}}},
        {"kwargs": {"a": {"__tocsin__": "dataclass", "v": {"cls": f"{__name__}:Color"}}}},
    ],
)
def test_signed_but_malformed_bodies_are_rejected(changes: dict[str, Any]) -> None:
    reject(make_envelope(), signed(valid_body(**changes)), MalformedEvent)


def test_signed_body_with_missing_field_or_not_json() -> None:
    body = valid_body()
    del body["origin"]
    reject(make_envelope(), signed(body), MalformedEvent)
    reject(make_envelope(), signed("{not json"), MalformedEvent)
    reject(make_envelope(), signed('{"v": NaN}'), MalformedEvent)


def test_wrong_version_is_rejected() -> None:
    envelope = make_envelope()
    outer = wire(envelope.encode(make_event()))
    outer["v"] = 2
    error = reject(envelope, json.dumps(outer).encode(), UnsupportedVersion)
    assert "version 2" in error.detail
    # The body's own (signed) version must agree too.
    reject(envelope, signed(valid_body(v=2)), UnsupportedVersion)


# --------------------------------------------------------------------------- keys


def test_key_rotation() -> None:
    keyring = make_keyring("old")
    publisher = Envelope(keyring, clock=Clock())
    before = publisher.encode(make_event())
    assert wire(before)["kid"] == "old"

    keyring.add("new", b"secret-of-new", make_current=True)
    after = publisher.encode(make_event())
    assert wire(after)["kid"] == "new"
    consumer = Envelope(keyring, clock=Clock())
    consumer.decode(before)  # the old key still verifies while it is in the keyring
    consumer.decode(after)

    keyring.remove("old")
    late = dataclasses.replace(make_event(), id="late-one")
    late_data = Envelope(make_keyring("old"), clock=Clock()).encode(late)
    error = reject(consumer, late_data, UnknownKey)
    assert error.event_id is None  # the body is not read before the signature is checked
    with pytest.raises(ValueError, match="current"):
        keyring.remove("new")


def test_keyring_construction() -> None:
    assert make_keyring("a").current == "a"
    with pytest.raises(ValueError, match="current"):
        Keyring({"a": b"1", "b": b"2"})
    with pytest.raises(ValueError, match="not in the keyring"):
        Keyring({"a": b"1"}, current="b")
    with pytest.raises(ValueError, match="key id"):
        Keyring({"a:b": b"1"})
    with pytest.raises(TypeError, match="bytes"):
        Keyring({"a": "text"})  # type: ignore[dict-item]
    keyring = Keyring({"a": b"s3cr3t-bytes", "b": b"other"}, current="b")
    keyring.set_current("a")
    assert keyring.current == "a"
    assert keyring.key_ids == ("a", "b")
    assert "s3cr3t" not in repr(keyring)
    kid, sig = keyring.sign(b"msg")
    assert kid == "a"
    assert keyring.verify("a", b"msg", sig)
    assert not keyring.verify("b", b"msg", sig)


def test_keyring_from_env() -> None:
    k1, k2 = b"\x00first-secret\xff", b"second-secret\xfb\xff"
    text = f"k1:{base64.b64encode(k1).decode()}, k2:{base64.urlsafe_b64encode(k2).decode()}"
    environ = {"TOCSIN_KEYS": text}
    keyring = Keyring.from_env(environ=environ)
    assert keyring.key_ids == ("k1", "k2")
    assert keyring.current == "k1"  # the first listed signs
    assert Keyring.from_env(environ=environ, current="k2").current == "k2"
    assert keyring.sign(b"m")[1] == hmac.new(k1, b"m", "sha256").hexdigest()
    assert keyring.verify("k2", b"m", hmac.new(k2, b"m", "sha256").hexdigest())


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "not set"),
        ("", "not set"),
        ("k1", "id:base64"),
        ("k1:not-base64!!", "not base64"),
        ("k1:YWJj,k1:YWJj", "twice"),
        ("bad id:YWJj", "key id"),
    ],
)
def test_keyring_from_env_errors(value: str | None, match: str) -> None:
    environ = {} if value is None else {"KEYS": value}
    with pytest.raises(ValueError, match=match) as info:
        Keyring.from_env("KEYS", environ=environ)
    assert "not-base64!!" not in str(info.value)


def test_keyring_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_KEYS", "main:" + base64.b64encode(b"x" * 32).decode())
    assert Keyring.from_env().key_ids == ("main",)


# --------------------------------------------------------------------------- insecure mode


def test_insecure_mode_must_be_explicit(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="require_signature=False"):
        Envelope(None)
    with caplog.at_level(logging.WARNING, logger="tocsin.remote"):
        insecure = Envelope(None, require_signature=False, clock=Clock())
    assert "insecure" in caplog.text
    data = insecure.encode(make_event())
    assert wire(data)["kid"] is None
    assert wire(data)["sig"] is None
    insecure.decode(data)
    reject(make_envelope(), data, UnsignedEvent)  # a secure consumer refuses it
    # Signed events cannot be verified without keys: refused rather than trusted.
    reject(insecure, make_envelope().encode(make_event()), UnknownKey)


def test_optional_signatures_still_check_present_ones() -> None:
    lenient = make_envelope(require_signature=False)
    lenient.decode(Envelope(None, require_signature=False, clock=Clock()).encode(make_event()))
    forged = wire(lenient.encode(make_event()))
    forged["sig"] = "0" * 64
    reject(lenient, json.dumps(forged).encode(), BadSignature)


@pytest.mark.parametrize(
    "options",
    [{"replay_window": 0}, {"max_bytes": 0}, {"max_seen": 0}, {"max_future": -1}],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_envelope(**options)


# --------------------------------------------------------------------------- seen-id cache


def test_seen_cache_forgets_events_that_left_the_window() -> None:
    clock = Clock()
    envelope = make_envelope(clock=clock, replay_window=10, max_future=10)
    for i in range(5):
        envelope.decode(envelope.encode(dataclasses.replace(make_event(), created_at=NOW + i)))
    assert len(envelope._seen) == 5
    clock.now = NOW + 14.5  # events created at NOW..NOW+4 have left the 10 s window
    envelope.decode(envelope.encode(dataclasses.replace(make_event(), created_at=clock.now)))
    assert len(envelope._seen) == 1


def test_a_full_seen_cache_never_lets_a_replay_through() -> None:
    clock = Clock(NOW + 10)
    envelope = make_envelope(clock=clock, max_seen=3)
    sent = [
        envelope.encode(dataclasses.replace(make_event(), created_at=NOW + i)) for i in range(5)
    ]
    for data in sent:
        envelope.decode(data)
    assert len(envelope._seen) == 3  # bounded
    # The two oldest were evicted: the floor rose, so their replays are refused anyway.
    reject(envelope, sent[0], ExpiredEvent)
    reject(envelope, sent[1], ExpiredEvent)
    for data in sent[2:]:
        reject(envelope, data, ReplayedEvent)
    newer = envelope.encode(dataclasses.replace(make_event(), created_at=NOW + 9))
    envelope.decode(newer)


# --------------------------------------------------------------------------- stats and logs


def every_rejection(clock: Clock) -> Iterator[tuple[Envelope, bytes]]:
    """One (envelope, data) pair per reason, each with the secret in its payload."""
    envelope = make_envelope(clock=clock, allowed_signals={"order_paid"}, max_bytes=4000)
    event = make_event(note=SECRET)
    data = envelope.encode(event)
    outer = wire(data)
    yield envelope, data + b" " * 4000  # too-large
    yield envelope, data.replace(b"order_paid", b"order_paiD")  # bad-signature
    yield envelope, signed(valid_body(note=SECRET), make_keyring("zz"))  # unknown-key
    yield envelope, json.dumps({**outer, "kid": None, "sig": None}).encode()  # unsigned
    yield envelope, json.dumps({**outer, "v": 7}).encode()  # unsupported-version
    yield envelope, signed(valid_body(kwargs={"n": SECRET}, attempt="x"))  # malformed
    yield envelope, envelope.encode(make_event("nope", note=SECRET))  # unknown-signal
    yield envelope, envelope.encode(dataclasses.replace(event, id="old", created_at=0.0))
    envelope.decode(data)
    yield envelope, data  # replayed


def test_stats_count_every_reason() -> None:
    envelope: Envelope | None = None
    for envelope, data in every_rejection(Clock()):
        with pytest.raises(RejectedEvent):
            envelope.decode(data)
    assert envelope is not None
    assert envelope.stats.as_dict() == dict.fromkeys(REASONS, 1)
    assert envelope.stats.rejected == len(REASONS)
    assert envelope.stats.accepted == 1
    assert envelope.stats["replayed"] == 1
    assert envelope.stats["other"] == 0
    assert "accepted=1" in repr(envelope.stats)
    envelope.stats.reset()
    assert envelope.stats.rejected == envelope.stats.accepted == 0


def test_rejections_are_logged_at_warning_without_the_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reasons = []
    with caplog.at_level(logging.DEBUG, logger="tocsin.remote"):
        for envelope, data in every_rejection(Clock()):
            caplog.clear()
            with pytest.raises(RejectedEvent) as info:
                envelope.decode(data)
            reasons.append(info.value.reason)
            [record] = caplog.records
            assert record.name == "tocsin.remote"
            assert record.levelno == logging.WARNING
            assert info.value.reason in record.getMessage()
            assert SECRET not in record.getMessage()
            assert record.exc_info is None
            assert SECRET not in str(info.value)
    assert sorted(reasons) == sorted(REASONS)


# --------------------------------------------------------------------------- SQLAlchemy models


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Membership(Base):
    __tablename__ = "membership"
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"), primary_key=True)
    group: Mapped[str] = mapped_column(primary_key=True)
    role: Mapped[str]


@pytest.fixture
def session_factory(tmp_path: Path) -> Iterator[Callable[[], Session]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    Base.metadata.create_all(engine)
    yield sessionmaker(engine)
    engine.dispose()


def test_model_instances_travel_as_model_and_primary_key(
    session_factory: Callable[[], Session],
) -> None:
    codec = model_codec(session_factory)
    with session_factory() as session:
        ada = Author(name="Ada")
        session.add(ada)
        session.flush()
        session.add(Membership(author_id=ada.id, group="admins", role="owner"))
        session.commit()
        member = session.get(Membership, (ada.id, "admins"))
        envelope = make_envelope(codec=codec)
        data = envelope.encode(make_event(instance=ada, member=member, model=Author))

    body = body_of(data)
    assert body["kwargs"]["instance"] == {
        "__tocsin__": "model",
        "v": {"model": f"{__name__}:Author", "pk": [1]},
    }
    decoded = envelope.decode(data).kwargs
    assert isinstance(decoded["instance"], Author)
    assert (decoded["instance"].id, decoded["instance"].name) == (1, "Ada")  # detached, loaded
    assert (decoded["member"].group, decoded["member"].role) == ("admins", "owner")
    assert decoded["model"] is Author  # a mapped class is a class, not an instance


def test_model_codec_missing_rows_and_unflushed_instances(
    session_factory: Callable[[], Session],
) -> None:
    encoded = {"__tocsin__": "model", "v": {"model": f"{__name__}:Author", "pk": [42]}}
    assert model_codec(session_factory).decode_value(encoded) is None
    custom = model_codec(session_factory, missing=lambda model, pk: (model.__name__, pk))
    assert custom.decode_value(encoded) == ("Author", (42,))
    with pytest.raises(TypeError, match="no primary key"):
        custom.encode_value(Author(name="new"))
    not_a_model = {"__tocsin__": "model", "v": {"model": f"{__name__}:Point", "pk": [1]}}
    with pytest.raises(ValueError, match="'model' value"):
        custom.decode_value(not_a_model)


def test_model_codec_registers_on_a_given_codec(session_factory: Callable[[], Session]) -> None:
    codec = Codec()
    assert model_codec(session_factory, codec) is codec
    assert codec.tags == ("model",)


def test_this_module_does_not_import_sqlalchemy() -> None:
    source = Path(sys.modules["tocsin.remote.envelope"].__file__ or "").read_text()
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in top_level if "sqlalchemy" in line]
