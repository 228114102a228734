"""Django model instances in remote payloads: they travel as model label + primary key.

::

    from tocsin.remote import Envelope, Keyring
    from tocsin.contrib.django.codec import django_model_codec

    envelope = Envelope(Keyring.from_env(), codec=django_model_codec())
    publish(post_save, transport, envelope, sender=Order)

An instance is encoded as ``{"model": "shop.Order", "pk": 42, "db": "default"}`` (its
``_meta.label``, its primary key through the codec, so UUIDs and strings work, and the
database it was saved to). Decoding gives a :class:`ModelRef`, without touching the
database: the envelope decodes on the worker's event loop, where Django forbids queries,
and a database that is down must make the receiver retry, not the event be rejected.
The worker of :mod:`tocsin.contrib.django.worker` (``manage.py tocsin_worker``) loads
every reference just before it calls a receiver, in the receiver's thread, so receivers
get model instances; :func:`load_models` does the same by hand.

Only models of installed apps can be named (``apps.get_model``): a message can make the
worker load a row, never import a module. Senders that are model classes (the model
signals' ``sender=Order``) travel as classes do, by import path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from tocsin.remote import Codec, default_codecs

__all__ = ["TAG", "ModelRef", "django_model_codec", "load_models"]

# Django ships no types: pyright reads its source and cannot follow this one.
_connections: Any = connections

#: The codec's tag on the wire.
TAG = "django-model"


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A model instance named by a remote event, not loaded yet.

    ``model``: the model class; ``pk``: the primary key; ``using``: the database to load
    it from. ``missing``: what :meth:`load` returns when the row is gone (called with
    model and pk; None by default).
    """

    model: type[Model]
    pk: Any
    using: str = DEFAULT_DB_ALIAS
    missing: Callable[[type[Model], Any], Any] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    def load(self) -> Any:
        """Return the instance, fetched now with the model's default manager, or
        ``missing(model, pk)`` (None by default) when no row has that primary key
        (after ``post_delete``, say). Database errors propagate (the worker retries)."""
        model: Any = self.model
        manager = model._default_manager.db_manager(self.using)
        instance = manager.filter(pk=self.pk).first()
        if instance is None and self.missing is not None:
            return self.missing(self.model, self.pk)
        return instance


def django_model_codec(
    codec: Codec | None = None,
    *,
    using: str | None = None,
    missing: Callable[[type[Model], Any], Any] | None = None,
) -> Codec:
    """Register the Django model codec on *codec* (default: a new ``default_codecs()``)
    and return it.

    ``using`` forces the database references load from (default: the one the instance
    was saved to, if this process has it, else ``"default"``); ``missing`` as for
    :class:`ModelRef`. Encoding an unsaved instance (no primary key) raises TypeError.
    """
    target = default_codecs() if codec is None else codec

    def is_instance(value: Any) -> bool:
        return isinstance(value, Model)

    def encode(value: Any) -> dict[str, Any]:
        label = type(value)._meta.label
        if value.pk is None:
            raise TypeError(f"{label} instance has no primary key yet")
        return {"model": label, "pk": value.pk, "db": value._state.db}

    def decode(payload: dict[str, Any]) -> ModelRef:
        label = payload["model"]
        if not isinstance(label, str) or label.count(".") != 1:
            raise TypeError("bad model label")
        model = apps.get_model(label)  # LookupError for a model this project lacks
        database = payload.get("db")
        if using is not None:
            database = using
        elif not isinstance(database, str) or database not in _connections.settings:
            database = DEFAULT_DB_ALIAS
        return ModelRef(model, payload["pk"], database, missing)

    target.register_codec(is_instance, encode, decode, TAG)
    return target


def load_models(value: Any) -> Any:
    """Return *value* with every :class:`ModelRef` in it loaded (in lists, tuples, sets
    and dict values too). Queries the database: call it where Django allows that (not
    from async code; there, ``await sync_to_async(load_models)(value)``)."""
    if isinstance(value, ModelRef):
        return value.load()
    if isinstance(value, dict):
        return {key: load_models(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(load_models(item) for item in value)
    return value
