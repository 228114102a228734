"""``tocsin worker`` and ``tocsin deadletter``: running remote receivers, and their failures.

::

    TOCSIN_KEYS=k1:BASE64SECRET tocsin worker myapp.receivers --url redis://localhost:6379/0
    tocsin deadletter list myapp.signals.order_placed
    tocsin deadletter replay myapp.signals.order_placed --all

The broker URL comes from ``--url`` or ``$TOCSIN_BROKER_URL`` (default the local Redis);
AUTH and TLS go in it (``rediss://user:password@host:6380/0``). Signing keys come from
``$TOCSIN_KEYS`` (``id:base64secret,...``, the first one signs); ``--insecure`` accepts
unsigned events instead, for local development only.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import time
from typing import Any

from tocsin.remote._keys import Keyring
from tocsin.remote._url import DEFAULT_URL, URL_VARIABLE, broker_url, transport_from_url
from tocsin.remote.broker import Transport
from tocsin.remote.envelope import Envelope

# Both subcommands are registered with this module: add_arguments and run tell them
# apart by the subcommand's name.


def _common(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument(
        "--transport",
        choices=["streams", "pubsub"],
        default="streams",
        help="Redis Streams (at-least-once, default) or Pub/Sub (at-most-once broadcast)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="accept unsigned events, without $TOCSIN_KEYS (local development only)",
    )


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--prefix``, the same for every command that talks to a broker."""
    parser.add_argument(
        "--url",
        default=None,
        help=f"broker URL (default ${URL_VARIABLE} or {DEFAULT_URL}); rediss:// for TLS, "
        "nats:// for NATS JetStream",
    )
    parser.add_argument(
        "--prefix", default=None, help="key/subject prefix (default: the transport's own)"
    )


def _transport(args: argparse.Namespace) -> Transport:
    if getattr(args, "transport", "streams") == "pubsub":
        return transport_from_url(broker_url(args.url), prefix=args.prefix, kind="pubsub")
    return transport_from_url(broker_url(args.url), prefix=args.prefix)


def _envelope(args: argparse.Namespace, allowed: set[str] | None) -> Envelope:
    if args.insecure:
        return Envelope(None, require_signature=False, allowed_signals=allowed)
    return Envelope(Keyring.from_env(), allowed_signals=allowed)


def _import_targets(targets: list[str]) -> None:
    try:
        discovery: Any = importlib.import_module("tocsin.discovery")
    except ImportError:
        discovery = None
    if discovery is not None and hasattr(discovery, "autodiscover"):
        discovery.autodiscover()
    for target in targets:
        importlib.import_module(target)


# --------------------------------------------------------------------------- worker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tocsin worker`` or ``tocsin deadletter`` (by the parser's name)."""
    if parser.prog.rsplit(" ", 1)[-1] == "deadletter":
        _deadletter_arguments(parser)
        return
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="modules to import: they declare the remote receivers",
    )
    _common(parser)
    parser.add_argument(
        "--group",
        action="append",
        dest="groups",
        metavar="GROUP",
        help="run only this group (repeatable; default: every group declared)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="events handled at once (default %(default)s)"
    )
    parser.add_argument(
        "--claim-idle",
        type=float,
        default=60.0,
        help="seconds before a silent worker's events are taken over (default %(default)s)",
    )
    parser.add_argument(
        "--max-deliveries",
        type=int,
        default=5,
        help="deliveries before an event is dead-lettered (default %(default)s)",
    )
    parser.add_argument(
        "--retry-backoff",
        type=float,
        default=1.0,
        help="first retry delay in seconds, doubled each time (default %(default)s)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds to let in-flight events finish on SIGTERM (default %(default)s)",
    )
    parser.add_argument(
        "--log-every",
        type=float,
        default=60.0,
        help="seconds between progress lines (default %(default)s)",
    )
    parser.add_argument(
        "--relay-db",
        metavar="URL",
        default=None,
        help="also relay the outbox of this SQLAlchemy database URL to the broker "
        "(as `tocsin relay` does), in this process",
    )
    parser.add_argument(
        "--relay-table", default="tocsin_outbox", help="the outbox table (default %(default)s)"
    )
    parser.add_argument("--log-level", default="INFO", help="default %(default)s")


def _relays(args: argparse.Namespace, transport: Transport) -> list[Any]:
    if not args.relay_db:
        return []
    from sqlalchemy import MetaData, create_engine

    from tocsin.remote.outbox import Relay, outbox_table

    table = outbox_table(MetaData(), args.relay_table)
    return [Relay(create_engine(args.relay_db), transport, table)]


def run(args: argparse.Namespace) -> int:
    """Run ``tocsin worker`` (import the targets, then consume until SIGTERM/SIGINT) or
    ``tocsin deadletter``; returns the exit status."""
    if args.command == "deadletter":
        return asyncio.run(_deadletter(args))
    from tocsin.remote.receivers import remote_receivers
    from tocsin.remote.worker import Worker

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # TARGETs are importable from here, as with -m
    _import_targets(args.targets)
    declared = remote_receivers(args.groups)
    if not declared:
        print(f"tocsin worker: no remote receivers declared in {args.targets}", file=sys.stderr)
        return 2
    try:
        envelope = _envelope(args, {r.signal_path for r in declared})
    except ValueError as error:
        print(f"tocsin worker: {error} (or pass --insecure)", file=sys.stderr)
        return 2
    transport = _transport(args)
    relays = _relays(args, transport)
    worker = Worker(
        transport,
        envelope,
        receivers=declared,
        concurrency=args.concurrency,
        claim_idle=args.claim_idle,
        max_deliveries=args.max_deliveries,
        retry_backoff=args.retry_backoff,
        shutdown_timeout=args.shutdown_timeout,
        log_every=args.log_every,
        relays=relays,
    )
    try:
        asyncio.run(worker.run(handle_signals=True))
    finally:
        for relay in relays:
            relay.engine.dispose()
        transport.close()
    return 0


# --------------------------------------------------------------------------- deadletter


def _deadletter_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the dead letters of a stream")
    replay = actions.add_parser(
        "replay", help="deliver dead letters again, each to the group that failed it"
    )
    for sub in (listing, replay):
        sub.add_argument("stream", help="the stream: the signal's dotted path by default")
        sub.add_argument("--group", help="only the dead letters of this group")
        _common(sub)
    listing.add_argument("--count", type=int, default=100, help="default %(default)s")
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids to replay")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")


async def _deadletter(args: argparse.Namespace) -> int:
    from tocsin.remote.deadletters import replay_dead_letters

    transport = _transport(args)
    try:
        if args.action == "list":
            letters = await transport.dead_letters(args.stream, group=args.group, count=args.count)
            for letter in letters:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.failed_at))
                print(
                    f"{letter.id}\t{when}\tgroup={letter.group}\t"
                    f"attempts={letter.attempts}\t{letter.reason}"
                )
            print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return 0
        if not args.ids and not args.all:
            print("tocsin deadletter replay: give dead-letter ids, or --all", file=sys.stderr)
            return 2
        try:
            envelope = _envelope(args, None)
        except ValueError as error:
            print(f"tocsin deadletter: {error} (or pass --insecure)", file=sys.stderr)
            return 2
        results = await replay_dead_letters(
            transport, envelope, args.stream, None if args.all else args.ids, group=args.group
        )
        failed = 0
        for letter, outcome in results:
            failed += outcome.startswith("not replayed")
            print(f"{letter.id}\tgroup={letter.group}\t{outcome}")
        print(f"{len(results) - failed} replayed, {failed} refused", file=sys.stderr)
        return 1 if failed else 0
    finally:
        await transport.aclose()
        transport.close()
