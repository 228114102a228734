"""When the worker tries an event again, and when it gives up: a small policy object."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

__all__ = ["RetryPolicy", "backoff"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retries of an event whose receivers raised.

    Delivery *n* that fails is retried after ``backoff * 2 ** (n - 1)`` seconds, capped
    at ``backoff_max``, until ``max_deliveries`` deliveries; then it is dead-lettered.
    """

    max_deliveries: int = 5
    backoff: float = 1.0
    backoff_max: float = 300.0

    def __post_init__(self) -> None:
        if self.max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if self.backoff < 0 or self.backoff_max < 0:
            raise ValueError("retry backoff delays cannot be negative")

    def gives_up(self, attempt: int) -> bool:
        """Whether a failure of delivery *attempt* is the last one allowed."""
        return attempt >= self.max_deliveries

    def delay(self, attempt: int) -> float:
        """Seconds to wait before delivering again after delivery *attempt* failed."""
        return float(min(self.backoff_max, self.backoff * 2 ** (attempt - 1)))


def backoff(first: float = 0.5, cap: float = 10.0) -> Iterator[float]:
    """Delays for talking to a broker again: *first*, doubling, then *cap* for ever."""
    steps = itertools.takewhile(lambda d: d < cap, (first * 2**n for n in itertools.count()))
    return itertools.chain(steps, itertools.repeat(cap))
