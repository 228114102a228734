"""The codec registry: Python values to JSON-able data and back, never pickle.

Plain JSON for JSON types, and ``{"__tocsin__": tag, "v": payload}`` for the others
(non-finite floats, tuples, sets, dicts with non-str keys, classes, and whatever a
registered codec handles: :func:`default_codecs` registers datetimes, decimals, UUIDs,
bytes, enums and dataclasses; ``tocsin.contrib.sqlalchemy.model_codec`` mapped instances).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import importlib
import math
import sys
import uuid
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any, Final

__all__ = ["Codec", "Decoder", "Encoder", "class_path", "default_codecs"]

# The key marking a tagged (non-JSON) value: {"__tocsin__": tag, "v": payload}.
_TAG: Final = "__tocsin__"
# Tags the codec handles itself; custom codecs may not take them.
_CORE_TAGS: Final = frozenset({"dict", "tuple", "set", "frozenset", "float", "class"})

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
