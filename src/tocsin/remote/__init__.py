"""Cross-process delivery of signals through brokers.

The public API, by concept (each in its own module):

- the wire format: :class:`Envelope` (``envelope``: signed, versioned JSON), :class:`Event`
  and :func:`new_event` (``_event``), :class:`Codec` and :func:`default_codecs`
  (``_codec``), :class:`Keyring` (``_keys``); never pickle;
- what can go wrong (``errors``): :class:`RejectedEvent` and its kinds, with
  :class:`RejectionStats`; :class:`TransportError` and :class:`PublishError`;
- the broker's roles (``broker``): :class:`Broker`, :class:`IdempotencyStore`,
  :class:`DeadLetterStore`, all three as :class:`Transport`; :func:`transport_from_url`;
- publishing (``publish``), remote receivers (``receivers``), the :class:`Worker`
  (``worker``) and dead-letter replay (``deadletters``).

``model_codec`` (SQLAlchemy mapped instances) lives in ``tocsin.contrib.sqlalchemy``; it is
still reachable here, loaded on first use (``remote`` imports nothing from ``contrib``
when it is imported). The Redis and NATS transports are in ``tocsin.remote.redis`` and
``tocsin.remote.nats``, imported only when used (they need the extras).
"""

from __future__ import annotations

import importlib
from typing import Any

from tocsin.remote._codec import Codec, default_codecs
from tocsin.remote._event import Event, new_event
from tocsin.remote._keys import Keyring
from tocsin.remote._retry import RetryPolicy
from tocsin.remote._url import DEFAULT_URL, transport_from_url
from tocsin.remote.broker import (
    Broker,
    Claim,
    DeadLetter,
    DeadLetterStore,
    Delivery,
    IdempotencyStore,
    Transport,
    TransportWrapper,
)
from tocsin.remote.deadletters import replay_dead_letters
from tocsin.remote.envelope import WIRE_VERSION, Envelope
from tocsin.remote.errors import (
    REASONS,
    BadSignature,
    EventTooLarge,
    EventTooLargeToPublish,
    ExpiredEvent,
    MalformedEvent,
    PublishError,
    RejectedEvent,
    RejectionStats,
    ReplayedEvent,
    TransportError,
    UnknownKey,
    UnknownSignal,
    UnsignedEvent,
    UnsupportedVersion,
)
from tocsin.remote.memory import MemoryTransport
from tocsin.remote.publish import PUBLISH_PRIORITY, Publisher, publish, unpublish
from tocsin.remote.receivers import (
    RemoteReceiver,
    RemoteSignalWarning,
    clear_remote_receivers,
    remote_receiver,
    remote_receivers,
)
from tocsin.remote.worker import Worker, WorkerStats

__all__ = [
    "DEFAULT_URL",
    "PUBLISH_PRIORITY",
    "REASONS",
    "WIRE_VERSION",
    "BadSignature",
    "Broker",
    "Claim",
    "Codec",
    "DeadLetter",
    "DeadLetterStore",
    "Delivery",
    "Envelope",
    "Event",
    "EventTooLarge",
    "EventTooLargeToPublish",
    "ExpiredEvent",
    "IdempotencyStore",
    "Keyring",
    "MalformedEvent",
    "MemoryTransport",
    "PublishError",
    "Publisher",
    "RejectedEvent",
    "RejectionStats",
    "RemoteReceiver",
    "RemoteSignalWarning",
    "ReplayedEvent",
    "RetryPolicy",
    "Transport",
    "TransportError",
    "TransportWrapper",
    "UnknownKey",
    "UnknownSignal",
    "UnsignedEvent",
    "UnsupportedVersion",
    "Worker",
    "WorkerStats",
    "clear_remote_receivers",
    "default_codecs",
    "new_event",
    "publish",
    "remote_receiver",
    "remote_receivers",
    "replay_dead_letters",
    "transport_from_url",
    "unpublish",
]


def __getattr__(name: str) -> Any:
    # model_codec moved to tocsin.contrib.sqlalchemy, where what knows the ORM lives; it
    # stays reachable here for existing code, loaded on first use only.
    if name == "model_codec":
        return importlib.import_module("tocsin.contrib.sqlalchemy._codec").model_codec
    raise AttributeError(f"module 'tocsin.remote' has no attribute {name!r}")
