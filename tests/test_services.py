"""The probes that find the test servers answer quickly, with one line, without a server."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.services import require_server


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word; yields the port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_probe_that_never_returns_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    release = threading.Event()
    try:
        with pytest.raises(pytest.skip.Exception) as skipped:
            require_server("Stuck", "stuck://1", "STUCK_URL", release.wait, timeout=0.2)
    finally:
        release.set()
    assert str(skipped.value) == (
        "Stuck is not reachable at stuck://1 (no answer within 0.2 s); "
        "set STUCK_URL to run these tests"
    )


def test_a_server_that_answers_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    calls: list[str] = []
    for _ in range(3):
        assert require_server("Here", "here://1", "HERE_URL", lambda: calls.append("probe")) == (
            "here://1"
        )
    assert calls == ["probe"]


def test_a_multi_line_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)

    def refuse() -> None:
        raise ConnectionError("refused\nHINT: is the server running?\n")

    with pytest.raises(pytest.skip.Exception) as skipped:
        require_server("Multi", "multi://1", "MULTI_URL", refuse)
    assert str(skipped.value) == (
        "Multi is not reachable at multi://1 (ConnectionError: refused); "
        "set MULTI_URL to run these tests"
    )


def _redis(port: int) -> str:
    from tests.remote.helpers import redis_or_skip

    return redis_or_skip(f"redis://127.0.0.1:{port}/0")


def _postgres(port: int) -> str:
    pytest.importorskip("psycopg")
    from tests.contrib.databases import postgres_or_skip

    return postgres_or_skip(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")


@pytest.mark.parametrize(("name", "probe"), [("Redis", _redis), ("PostgreSQL", _postgres)])
def test_a_silent_server_times_out_in_the_driver(
    name: str, probe: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with silent_server() as port, pytest.raises(pytest.skip.Exception) as skipped:
        probe(port)
    reason = str(skipped.value)
    assert reason.startswith(f"{name} is not reachable at ")
    assert f":{port}/" in reason
    # The driver's own timeout ended the wait, not the probe's last-resort deadline.
    assert "no answer within" not in reason
