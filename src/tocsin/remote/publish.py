"""Publishing: every local send of a signal also becomes an event on a broker.

::

    from tocsin.remote import Envelope, Keyring, publish
    from tocsin.remote.redis import RedisStreamsTransport

    transport = RedisStreamsTransport("rediss://:secret@redis.internal:6380/0")
    envelope = Envelope(Keyring.from_env())
    publish(order_placed, transport, envelope)                     # any sender
    publish(post_save, transport, envelope, sender=User, on_commit=True)

``publish`` connects a :class:`Publisher` to the signal as an ordinary receiver, held
strongly and with a very high priority (:data:`PUBLISH_PRIORITY`), so it runs first, and
whatever mutes the signal's receivers mutes its publishing too. Each send is encoded as
one :class:`~tocsin.remote.Event` (the signal's dotted path, the sender and the
keyword arguments, a fresh id and the origin) and written to the stream named after the
signal's dotted path (or ``stream=``).

*Broker down, event too large.* A publish that fails raises
:class:`~tocsin.remote.PublishError` out of ``send()``, like any failing receiver: the
event is never dropped in silence. That includes an event over the envelope's
``max_bytes`` (:class:`~tocsin.remote.EventTooLargeToPublish`, also a ``ValueError``) and a
broker that does not answer within the transport's timeout.

*Order, on purpose.* The publisher runs **before** the signal's local receivers (its
priority is the highest), so when publishing fails, ``send()`` raises before any local
receiver ran: a process never acts locally on an event that the other processes will
never see, and the caller can retry the whole send. ``send_robust`` runs the local
receivers anyway and returns the publish error among the responses (and logs it).

*After commit.* With ``on_commit=True`` the event is encoded when the signal is sent
(the values as they were then) and written when the current transaction commits, through
the same machinery as ``@tocsin.after_commit``: nothing is published for a transaction
that rolls back, and with no transaction declared it is written at once. A broker
failure *after* the commit cannot undo it: the error is logged by the integration that
runs commit callbacks. For never-lose publishing, write events to an outbox table in the
same transaction (the transactional-outbox pattern) and relay them from there.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from tocsin._commit import current_scheduler
from tocsin._dispatcher import Signal
from tocsin._registry import dotted_path
from tocsin.remote._event import new_event
from tocsin.remote.broker import Broker
from tocsin.remote.envelope import Envelope
from tocsin.remote.errors import EventTooLargeToPublish
from tocsin.remote.receivers import signal_path

__all__ = ["PUBLISH_PRIORITY", "Publisher", "publish", "unpublish"]

logger = logging.getLogger("tocsin.remote")

#: The priority publishers connect with: above any receiver a program would use.
PUBLISH_PRIORITY = 1_000_000


class Publisher:
    """The receiver that turns each send of a signal into an event on a transport.

    Called like any receiver; returns the broker's message id, or None when the write
    was deferred to the end of the transaction (``on_commit``).
    """

    def __init__(
        self,
        signal: Signal,
        transport: Broker,
        envelope: Envelope,
        *,
        name: str,
        stream: str,
        on_commit: bool,
    ) -> None:
        self.signal = signal
        self.transport = transport
        self.envelope = envelope
        self.name = name
        self.stream = stream
        self.on_commit = on_commit

    def __repr__(self) -> str:
        return f"<Publisher {self.name} -> {self.transport!r} stream={self.stream!r}>"

    def encode(self, sender: Any, kwargs: dict[str, Any]) -> bytes:
        """Return one signed event for a send of the signal by *sender* with *kwargs*.

        Raises :class:`~tocsin.remote.EventTooLargeToPublish` (a PublishError) naming
        the stream when it is over the envelope's ``max_bytes``.
        """
        try:
            return self.envelope.encode(new_event(self.name, sender, kwargs))
        except EventTooLargeToPublish as error:
            raise EventTooLargeToPublish(error.size, error.max_bytes, stream=self.stream) from None

    def __call__(self, signal: Signal, sender: Any, **kwargs: Any) -> str | None:
        data = self.encode(sender, kwargs)
        scheduler = current_scheduler() if self.on_commit else None
        if scheduler is not None:
            scheduler(functools.partial(self.transport.publish, self.stream, data))
            return None
        return self.transport.publish(self.stream, data)


def _uid(transport: Broker, stream: str) -> tuple[str, int, str]:
    return ("tocsin.remote.publish", id(transport), stream)


def publish(
    signal: Signal,
    transport: Broker,
    envelope: Envelope,
    *,
    sender: object = None,
    stream: str | None = None,
    on_commit: bool = False,
) -> Publisher:
    """Publish every send of *signal* (by *sender* only, if given) to *transport*.

    Events are encoded (and signed) by *envelope* and written to *stream* (default: the
    signal's dotted path, which is how workers find the signal). ``on_commit=True``
    writes them only once the current transaction commits (see the module docstring).
    Publishing the same signal to the same transport and stream twice is harmless.
    Returns the :class:`Publisher` connected. Raises ``ValueError`` for a signal that
    is not a module-level attribute (it has no dotted path to be found by).
    """
    name = signal_path(signal, "published")
    stream = name if stream is None else stream
    publisher = Publisher(
        signal, transport, envelope, name=name, stream=stream, on_commit=on_commit
    )
    signal.connect(
        publisher,
        sender=sender,
        weak=False,
        dispatch_uid=_uid(transport, stream),
        priority=PUBLISH_PRIORITY,
    )
    return publisher


def unpublish(
    signal: Signal,
    transport: Broker,
    *,
    sender: object = None,
    stream: str | None = None,
) -> bool:
    """Stop publishing *signal* to *transport* (as set up by :func:`publish`).

    Returns whether a publisher was disconnected.
    """
    if stream is None:
        stream = dotted_path(signal) or ""
    return signal.disconnect(sender=sender, dispatch_uid=_uid(transport, stream))
