"""The replay window: which (event id, attempt) pairs an envelope has accepted lately."""

from __future__ import annotations

import heapq
import math
import threading

__all__ = ["ReplayCache"]


class ReplayCache:
    """The (id, attempt) keys accepted within the window, bounded in size.

    Entries are kept until their event's own timestamp leaves the window. When the cache
    is full, the entry with the oldest timestamp is dropped and ``floor`` rises to that
    timestamp: events that old are refused from then on (as expired), so that evicting
    never lets a replay through; under a flood the effective window shrinks instead.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.floor = -math.inf
        self._lock = threading.Lock()
        self._heap: list[tuple[float, str, int]] = []
        self._keys: set[tuple[str, int]] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: tuple[str, int], created_at: float, oldest: float, check: bool) -> str:
        """Record ``key``; return "" if accepted, else "replayed" or "expired"."""
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] < oldest:
                _, event_id, attempt = heapq.heappop(heap)
                self._keys.discard((event_id, attempt))
            if key in self._keys:
                return "replayed" if check else ""
            if check and created_at <= self.floor:
                return "expired"
            if len(self._keys) >= self.max_size:
                evicted_at, event_id, attempt = heapq.heappop(heap)
                self._keys.discard((event_id, attempt))
                self.floor = max(self.floor, evicted_at)
            heapq.heappush(heap, (created_at, *key))
            self._keys.add(key)
            return ""
