"""Finding the servers the tests use (PostgreSQL, Redis, NATS): a bounded probe, once.

Each server is probed once per test session and URL, with the driver's own timeouts and,
behind them, a deadline of ``PROBE_TIMEOUT`` seconds in case a driver waits anyway (a port
that accepts connections and never answers). Without the server the tests skip with one
short line naming the server, the error and the variable to set; in CI (``CI=true``) they
fail instead, since CI starts every server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

PROBE_TIMEOUT = 5.0

# (server, url) -> None when it answered, else why not. Probing once keeps a suite without
# a server from paying the connect timeout in every test.
_verdicts: dict[tuple[str, str], str | None] = {}


def require_server(
    name: str,
    url: str,
    env_var: str,
    probe: Callable[[], object],
    *,
    timeout: float = PROBE_TIMEOUT,
) -> str:
    """Return *url* if ``probe()`` succeeds within *timeout* seconds; else skip the test
    (fail it when ``CI=true``) with one line saying why and that *env_var* picks the server.

    The verdict is remembered for the session: a missing server costs one probe.
    """
    key = (name, url)
    if key not in _verdicts:
        _verdicts[key] = _probe(probe, timeout)
    reason = _verdicts[key]
    if reason is not None:
        reason = f"{name} is not reachable at {url} ({reason})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI requires it (set {env_var})", pytrace=False)
        pytest.skip(f"{reason}; set {env_var} to run these tests")
    return url


def _probe(probe: Callable[[], object], timeout: float) -> str | None:
    """None if *probe* returned within *timeout*, else a one-line reason."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            probe()
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    # A daemon thread: a driver that ignores its own timeout cannot hold up the session.
    thread = threading.Thread(target=run, name="tocsin-test-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    error = outcome[0]
    if error is None:
        return None
    # SQLAlchemy wraps the driver's error and appends a link; the driver's own says it.
    error = getattr(error, "orig", None) or error
    # Drivers' messages run over several lines (psycopg adds hints): the first says it.
    lines = str(error).strip().splitlines()
    detail = lines[0][:160] if lines else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
