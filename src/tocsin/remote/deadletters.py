"""Dead letters delivered again: :func:`replay_dead_letters` (``tocsin deadletter replay``)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from tocsin.remote.broker import DeadLetter, Transport
from tocsin.remote.envelope import Envelope
from tocsin.remote.errors import RejectedEvent

__all__ = ["replay_dead_letters"]


async def replay_dead_letters(
    transport: Transport,
    envelope: Envelope,
    stream: str,
    ids: Sequence[str] | None = None,
    *,
    group: str | None = None,
) -> list[tuple[DeadLetter, str]]:
    """Deliver dead letters of *stream* again, each to the group that gave up on it.

    ``ids`` picks letters (default: all, or all of *group*). Each event's signature is
    checked with *envelope*'s keys (a forged one is never replayed), and the event is
    re-signed as its next attempt, stamped now (the original has usually left the
    replay window); the event id stays the same. The values are not decoded
    (:meth:`~tocsin.remote.Envelope.reissue`), so a sender or argument naming a class
    of a module this process never imported is no obstacle. Returns
    ``[(letter, outcome)]``: the new message id, or ``"not replayed: <reason>:
    <detail>"``, the rejection's own words.
    """
    letters = await transport.dead_letters(stream, group=group, count=1_000_000)
    if ids is not None:
        wanted = set(ids)
        letters = [letter for letter in letters if letter.id in wanted]
    results: list[tuple[DeadLetter, str]] = []
    for letter in letters:
        try:
            _, data = envelope.reissue(letter.data, created_at=time.time())
        except RejectedEvent as rejected:
            results.append((letter, f"not replayed: {rejected}"))
            continue
        new_id = await transport.republish_dead_letter(letter, data)
        results.append((letter, new_id))
    return results
