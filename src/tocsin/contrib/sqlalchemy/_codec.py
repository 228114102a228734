"""Mapped instances as values of cross-process events: :func:`model_codec`.

It lives here, with what knows SQLAlchemy, rather than in ``tocsin.remote`` (which
imports only the core); ``tocsin.remote`` is imported when the codec is made, so that
``import tocsin.contrib.sqlalchemy`` does not load the remote machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.state import InstanceState

if TYPE_CHECKING:
    from tocsin.remote import Codec

__all__ = ["model_codec"]


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
    ``codec`` defaults to a new ``tocsin.remote.default_codecs()``.
    """
    from tocsin.remote._codec import class_path, default_codecs

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
