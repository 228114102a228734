"""One way from a broker URL to a transport, for every command and for programs."""

from __future__ import annotations

import os
from typing import Any, Final, Literal

from tocsin.remote.broker import Transport

__all__ = ["DEFAULT_URL", "URL_VARIABLE", "broker_url", "transport_from_url"]

#: The broker every command uses unless told otherwise: the local Redis.
DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"
#: The environment variable that overrides :data:`DEFAULT_URL`.
URL_VARIABLE: Final = "TOCSIN_BROKER_URL"

_REDIS: Final = ("redis://", "rediss://", "unix://")
_NATS: Final = ("nats://", "tls://")


def broker_url(url: str | None = None) -> str:
    """*url*, else ``$TOCSIN_BROKER_URL``, else :data:`DEFAULT_URL`."""
    return url or os.environ.get(URL_VARIABLE) or DEFAULT_URL


def transport_from_url(
    url: str | None = None,
    *,
    prefix: str | None = None,
    kind: Literal["streams", "pubsub"] = "streams",
    **options: Any,
) -> Transport:
    """Return the transport for *url* (default :func:`broker_url`).

    ``redis://``, ``rediss://`` (TLS) and ``unix://`` make a
    :class:`~tocsin.remote.redis.RedisStreamsTransport` (``kind="pubsub"``: a
    :class:`~tocsin.remote.redis.RedisPubSubTransport`); ``nats://`` and ``tls://`` a
    :class:`~tocsin.remote.nats.NatsJetStreamTransport`. ``prefix`` (default: the
    transport's own) and *options* go to the transport. Raises ``ValueError`` for
    another scheme, or ``kind="pubsub"`` with NATS.
    """
    url = broker_url(url)
    if prefix is not None:
        options["prefix"] = prefix
    if url.startswith(_NATS):
        if kind != "streams":
            raise ValueError(f"kind={kind!r} is for Redis; NATS has JetStream (streams) only")
        from tocsin.remote.nats import NatsJetStreamTransport

        return NatsJetStreamTransport(url, **options)
    if url.startswith(_REDIS):
        from tocsin.remote.redis import RedisPubSubTransport, RedisStreamsTransport

        if kind == "pubsub":
            return RedisPubSubTransport(url, **options)
        if kind != "streams":
            raise ValueError(f"kind must be 'streams' or 'pubsub', not {kind!r}")
        return RedisStreamsTransport(url, **options)
    scheme = url.partition("://")[0] if "://" in url else url[:20]
    raise ValueError(
        f"no transport for the URL scheme {scheme!r}: use redis://, rediss:// or unix:// "
        "(Redis), or nats:// or tls:// (NATS JetStream)"
    )
