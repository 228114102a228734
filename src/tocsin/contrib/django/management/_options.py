"""What the management commands share: the broker, the keys, the project's receivers.

Each comes from the command line, else the project's settings, else the environment:

- broker: ``--url``, ``settings.TOCSIN_BROKER_URL``, ``$TOCSIN_BROKER_URL``, else the
  local Redis (``redis://127.0.0.1:6379/0``); ``nats://`` for NATS JetStream,
  ``memory://`` for an in-process transport (for demos and tests);
- keys: ``settings.TOCSIN_KEYS`` or ``$TOCSIN_KEYS`` (``id:base64secret,...``);
  ``--insecure`` accepts unsigned events (local development only);
- receivers: the ``receivers`` and ``signals`` modules of every installed app are
  imported (``--module`` names others), as Django imports ``admin`` modules.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils.module_loading import autodiscover_modules

from tocsin.contrib.django.codec import django_model_codec
from tocsin.remote import Envelope, Keyring, MemoryTransport, Transport

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def add_broker_arguments(parser: CommandParser) -> None:
    """``--url``, ``--prefix``, ``--insecure``, ``--module``."""
    parser.add_argument("--url", default=None, help="broker URL (see the docs for defaults)")
    parser.add_argument("--prefix", default=None, help="key/subject prefix of the broker")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="accept unsigned events, without TOCSIN_KEYS (local development only)",
    )
    parser.add_argument(
        "--module",
        action="append",
        dest="modules",
        metavar="NAME",
        help="the module of each app to import for receivers (default: receivers, signals)",
    )


def broker_url(options: dict[str, Any]) -> str:
    """The broker URL the options, settings or environment name."""
    return str(
        options.get("url")
        or getattr(settings, "TOCSIN_BROKER_URL", None)
        or os.environ.get("TOCSIN_BROKER_URL")
        or DEFAULT_URL
    )


def transport(options: dict[str, Any]) -> Transport:
    """The broker's transport."""
    url = broker_url(options)
    prefix = options.get("prefix")
    if url.startswith("memory://"):
        return MemoryTransport()
    if url.startswith(("nats://", "tls://")):
        from tocsin.remote.nats import NatsJetStreamTransport

        return (
            NatsJetStreamTransport(url)
            if prefix is None
            else NatsJetStreamTransport(url, prefix=prefix)
        )
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise CommandError(f"unknown broker URL scheme in {url!r}: redis://, nats:// or memory://")
    from tocsin.remote.redis import RedisStreamsTransport

    return (
        RedisStreamsTransport(url) if prefix is None else RedisStreamsTransport(url, prefix=prefix)
    )


def envelope(options: dict[str, Any], allowed: set[str] | None = None) -> Envelope:
    """The envelope: the project's keys, the Django model codec."""
    codec = django_model_codec()
    if options.get("insecure"):
        return Envelope(None, require_signature=False, allowed_signals=allowed, codec=codec)
    keys = getattr(settings, "TOCSIN_KEYS", None)
    try:
        if keys:
            keyring = Keyring.from_env("TOCSIN_KEYS", environ={"TOCSIN_KEYS": str(keys)})
        else:
            keyring = Keyring.from_env()
    except ValueError as error:
        raise CommandError(
            f"{error}: set TOCSIN_KEYS in the settings or the environment (or --insecure)"
        ) from error
    return Envelope(keyring, allowed_signals=allowed, codec=codec)


def import_receivers(options: dict[str, Any]) -> None:
    """Import each installed app's receiver modules."""
    autodiscover_modules(*(options.get("modules") or ["receivers", "signals"]))
