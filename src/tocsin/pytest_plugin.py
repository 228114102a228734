"""tocsin's pytest plugin, registered through the ``pytest11`` entry point.

- ``signal_capture``: a fixture factory; ``signal_capture(signal, sender=...)`` starts
  recording sends at once and stops at the end of the test (see ``tocsin.testing``).
- ``mute_signals``: a fixture factory; ``mute_signals(signal, ...)`` mutes until the end
  of the test.
- ``@pytest.mark.mute_signals(post_save, ..., sender=..., receivers=...)``: mutes for the
  whole test, fixtures included; with no signals, every signal that exists then.
- Leak check (opt-in: ``--tocsin-leaks=warn|fail`` or the ``tocsin_leaks`` ini option):
  after each test, report receivers connected with ``weak=False`` during the test and
  still connected, which would go on receiving signals in every later test.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tocsin._dispatcher import Connection, Signal
from tocsin._hooks import Muting
from tocsin._registry import known_signals
from tocsin.inspect import describe_receiver
from tocsin.testing import ANY_SENDER, Capture, SignalSpec, capture, mute, signal_label

__all__ = ["ReceiverLeakWarning"]

LEAK_MODES = ("off", "warn", "fail")


class ReceiverLeakWarning(pytest.PytestWarning):
    """A test left a receiver connected with ``weak=False``."""


# -- options and marker ---------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tocsin", "tocsin signals")
    group.addoption(
        "--tocsin-leaks",
        choices=LEAK_MODES,
        default=None,
        help="report receivers a test connects with weak=False and leaves connected: "
        "warn, or fail the test (default: the tocsin_leaks ini option, else off)",
    )
    parser.addini(
        "tocsin_leaks",
        "report receivers left connected with weak=False after each test: off, warn, fail",
        default="off",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mute_signals(*signals, sender=ANY_SENDER, receivers=None, globally=False): mute "
        "these tocsin signals (by default every signal) for the test and its fixtures",
    )
    mode = _leak_mode(config)
    if mode not in LEAK_MODES:
        raise pytest.UsageError(
            f"tocsin_leaks must be one of {', '.join(LEAK_MODES)}, not {mode!r}"
        )


def _leak_mode(config: pytest.Config) -> str:
    option = config.getoption("tocsin_leaks", default=None)
    if option is not None:
        return str(option)
    return str(config.getini("tocsin_leaks")).strip().lower() or "off"


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def signal_capture() -> Iterator[Callable[..., Capture]]:
    """A factory: ``signal_capture(*signals, sender=...)`` returns a ``Capture`` that
    records sends from now until the end of the test."""
    with ExitStack() as stack:

        def start(*signals: SignalSpec, sender: object = ANY_SENDER) -> Capture:
            return stack.enter_context(capture(*signals, sender=sender))

        yield start


@pytest.fixture
def mute_signals() -> Iterator[Callable[..., Muting]]:
    """A factory: ``mute_signals(*signals, sender=..., receivers=..., globally=False)``
    mutes them (see ``tocsin.testing.mute``) from now until the end of the test."""
    with ExitStack() as stack:

        def start(*signals: SignalSpec, **options: Any) -> Muting:
            return stack.enter_context(mute(*signals, **options))

        yield start


# -- the marker and the leak check, around each test ---------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    # Before any fixture: the marker mutes what fixtures send too, and the leak check
    # starts from what was connected before the test.
    global _current
    if _leak_mode(item.config) != "off":
        item.stash[_before_key] = _strong_connections()
        item.stash[_fixtures_key] = {}
        _current = item
    marker = item.get_closest_marker("mute_signals")
    if marker is not None:
        signals = marker.args or tuple(known_signals())
        stack = ExitStack()
        item.stash[_muting_key] = stack
        stack.enter_context(mute(*signals, **marker.kwargs))
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        stack = item.stash.get(_muting_key, None)
        if stack is not None:
            del item.stash[_muting_key]
            stack.close()
        if _before_key in item.stash:
            global _current
            _current = None
            _check_leaks(item)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    # A module- or session-scoped fixture may connect receivers during the setup of the
    # first test that uses it and disconnect them after the last one: not that test's
    # leak. Note what such fixtures connect, so that the check leaves it out.
    item = _current
    if fixturedef.scope == "function" or item is None or _fixtures_key not in item.stash:
        return (yield)
    before = _strong_connections()
    try:
        return (yield)
    finally:
        after = _strong_connections()
        item.stash[_fixtures_key].update(
            (key, value) for key, value in after.items() if key not in before
        )


_Key = tuple[int, int, int, str]
# The test being set up or run, while the leak check is on.
_current: pytest.Item | None = None
_before_key = pytest.StashKey[dict[_Key, tuple[Signal, Connection]]]()
_fixtures_key = pytest.StashKey[dict[_Key, tuple[Signal, Connection]]]()
_muting_key = pytest.StashKey[ExitStack]()


def _strong_connections() -> dict[_Key, tuple[Signal, Connection]]:
    """Every connection held strongly now, by identity (the values keep them alive, so
    that an id cannot be reused while it is compared)."""
    found = {}
    for signal in known_signals():
        for connection in signal.connections():
            if not connection.weak:
                key = (
                    id(signal),
                    id(connection.receiver),
                    id(connection.sender),
                    repr(connection.dispatch_uid),
                )
                found[key] = (signal, connection)
    return found


def _check_leaks(item: pytest.Item) -> None:
    before = item.stash[_before_key]
    from_fixtures = item.stash[_fixtures_key]
    del item.stash[_before_key], item.stash[_fixtures_key]
    leaked = [
        value
        for key, value in _strong_connections().items()
        if key not in before and key not in from_fixtures
    ]
    if not leaked:
        return
    lines = []
    for signal, connection in leaked:
        info = describe_receiver(connection)
        where = f" ({info.file}:{info.line})" if info.file else ""
        sender = "" if info.sender is None else f", sender={info.sender}"
        lines.append(f"  {info.name}{where} on {signal_label(signal)}{sender}")
    message = (
        f"{item.nodeid} left {len(leaked)} receiver(s) connected with weak=False:\n"
        + "\n".join(lines)
        + "\nDisconnect them at the end of the test (or in a fixture's teardown), or "
        "connect them weakly."
    )
    if _leak_mode(item.config) == "fail":
        pytest.fail(message, pytrace=False)
    warnings.warn(ReceiverLeakWarning(message), stacklevel=1)
