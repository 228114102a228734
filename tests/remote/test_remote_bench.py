"""The remote benchmark runs end to end in quick mode (its figures are noise there)."""

from __future__ import annotations

import pytest
from benchmarks import remote


def test_remote_benchmark_quick(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    results = remote.run(quick=True, url=redis_url)
    assert results.publish_tocsin > 0
    assert results.publish_plain > 0
    assert results.e2e_tocsin > 0
    assert results.e2e_plain > 0
    assert results.latency_events == int(remote.QUICK.latency_rate * remote.QUICK.latency_seconds)
    assert 0 < results.latency_p50 <= results.latency_p99
    # Bounded: the worker never holds more than its concurrency.
    assert results.max_in_flight <= 4
    assert results.memory_small > 0
    assert sorted(results.lone_p50) == list(remote.QUICK.group_counts)
    assert all(0 < results.lone_p50[n] <= results.lone_p99[n] for n in results.lone_p50)
    assert "publish" in remote.markdown(results)
