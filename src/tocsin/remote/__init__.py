"""Cross-process delivery of signals through brokers.

:mod:`tocsin.remote.envelope` is the wire format: events as signed, versioned JSON
(HMAC-SHA256 with key ids and rotation, a replay window, an allow-list of signal names,
a size limit, and a codec registry; never pickle).
"""

from tocsin.remote.envelope import (
    REASONS,
    WIRE_VERSION,
    BadSignature,
    Codec,
    Envelope,
    Event,
    EventTooLarge,
    ExpiredEvent,
    Keyring,
    MalformedEvent,
    RejectedEvent,
    RejectionStats,
    ReplayedEvent,
    UnknownKey,
    UnknownSignal,
    UnsignedEvent,
    UnsupportedVersion,
    default_codecs,
    model_codec,
    new_event,
)

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
    "default_codecs",
    "model_codec",
    "new_event",
]

# Transports, publishing and the worker (the Redis transports live in tocsin.remote.redis,
# imported only when used: they need the `redis` extra).
from tocsin.remote.memory import MemoryTransport
from tocsin.remote.publish import PUBLISH_PRIORITY, Publisher, publish, unpublish
from tocsin.remote.transport import (
    DeadLetter,
    Delivery,
    PublishError,
    Transport,
    TransportError,
)
from tocsin.remote.worker import (
    RemoteReceiver,
    Worker,
    clear_remote_receivers,
    remote_receiver,
    remote_receivers,
    replay_dead_letters,
)

__all__ += [
    "PUBLISH_PRIORITY",
    "DeadLetter",
    "Delivery",
    "MemoryTransport",
    "PublishError",
    "Publisher",
    "RemoteReceiver",
    "Transport",
    "TransportError",
    "Worker",
    "clear_remote_receivers",
    "publish",
    "remote_receiver",
    "remote_receivers",
    "replay_dead_letters",
    "unpublish",
]
