"""Calibrated, interleaved, median-of-repeats timing.

A *sampler* runs an operation ``number`` times and returns the nanoseconds that took
(``time.perf_counter_ns``), leaving out any setup of its own. ``measure`` calibrates
``number`` for each implementation so that one sample lasts about ``sample_ns``, then
takes samples round-robin over the implementations (the first in each round rotates) and
reports the median. The garbage collector is paused during each sample, as ``timeit``
does.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

# Runs the operation `number` times; returns the nanoseconds that took.
Sampler = Callable[[int], int]


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure."""

    quick: bool
    # The least one calibrated sample should last.
    sample_ns: int
    # Samples per figure.
    repeats: int
    # An implementation whose single sample lasts longer than this gets `slow_repeats`.
    slow_sample_ns: int
    slow_repeats: int
    # Measurements that need a fresh setup each time (case 8).
    fresh_repeats: int
    # Receivers connected and disconnected in case 5, and measured in case 6.
    churn_receivers: int
    memory_receivers: int
    memory_repeats: int


FULL = Settings(
    quick=False,
    sample_ns=20_000_000,
    repeats=15,
    slow_sample_ns=500_000_000,
    slow_repeats=3,
    fresh_repeats=21,
    churn_receivers=10_000,
    memory_receivers=10_000,
    memory_repeats=3,
)

QUICK = Settings(
    quick=True,
    sample_ns=200_000,
    repeats=2,
    slow_sample_ns=20_000_000,
    slow_repeats=1,
    fresh_repeats=2,
    churn_receivers=500,
    memory_receivers=1_000,
    memory_repeats=1,
)


@dataclass
class Timing:
    """One implementation's figure: the median time per operation, and what it came from."""

    per_op_ns: float
    samples_ns: list[float] = field(default_factory=list)
    number: int = 1


@contextmanager
def paused_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector from running in the middle of a measurement."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rounds(names: Sequence[str], count: int) -> Iterator[list[str]]:
    """``count`` orderings of *names*, each rotated by one from the last."""
    for index in range(count):
        shift = index % len(names)
        yield [*names[shift:], *names[:shift]]


def calibrate(sampler: Sampler, sample_ns: int) -> int:
    """The number of operations that makes one sample last at least *sample_ns*."""
    number = 1
    while True:
        with paused_gc():
            elapsed = sampler(number)
        if elapsed >= sample_ns:
            return number
        # Aim a little past the target, growing at least 2x and at most 100x per step.
        estimate = int(number * sample_ns * 1.2 / max(elapsed, 1))
        number = min(max(estimate, 2 * number), 100 * number)


def measure(
    samplers: Mapping[str, Sampler],
    settings: Settings,
    number: int | None = None,
    ops_per_call: int = 1,
) -> dict[str, Timing]:
    """Median time per operation for each sampler, sampled round-robin.

    With *number* given, every sample runs exactly that many operations (no calibration:
    for operations that are slow or need a fresh setup each time). *ops_per_call* says how
    many operations one call of the timed loop body performs.
    """
    names = list(samplers)
    if not names:
        return {}
    numbers = {
        name: number if number is not None else calibrate(samplers[name], settings.sample_ns)
        for name in names
    }
    wanted = dict.fromkeys(names, settings.repeats)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for order in rounds(names, settings.repeats):
        for name in order:
            if len(samples[name]) >= wanted[name]:
                continue
            with paused_gc():
                elapsed = samplers[name](numbers[name])
            samples[name].append(elapsed / (numbers[name] * ops_per_call))
            if elapsed > settings.slow_sample_ns:
                wanted[name] = min(wanted[name], settings.slow_repeats)
        gc.collect()
    return {
        name: Timing(statistics.median(samples[name]), samples[name], numbers[name])
        for name in names
    }
