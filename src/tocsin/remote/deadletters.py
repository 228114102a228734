"""Dead letters delivered again: :func:`replay_dead_letters` (``tocsin deadletter replay``)."""

from __future__ import annotations

import dataclasses
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

    ``ids`` picks letters (default: all, or all of *group*). Each event is checked with
    *envelope*'s keys (a forged one is never replayed) and, as the original has usually
    left the replay window by now, re-signed as a new attempt stamped now; the event id
    stays the same. Returns ``[(letter, outcome)]``: the new message id, or why not.
    """
    letters = await transport.dead_letters(stream, group=group, count=1_000_000)
    if ids is not None:
        wanted = set(ids)
        letters = [letter for letter in letters if letter.id in wanted]
    lenient = envelope.with_own_replay_cache()
    lenient.replay_window = float("inf")
    lenient.max_future = float("inf")
    lenient.allowed_signals = None
    results: list[tuple[DeadLetter, str]] = []
    for letter in letters:
        try:
            event = lenient.decode(letter.data, redelivered=True)
        except RejectedEvent as rejected:
            results.append((letter, f"not replayed: {rejected.reason}"))
            continue
        fresh = dataclasses.replace(event, created_at=time.time(), attempt=event.attempt + 1)
        new_id = await transport.republish_dead_letter(letter, envelope.encode(fresh))
        results.append((letter, new_id))
    return results
