"""The `tocsin worker` and `tocsin deadletter` command lines (argument handling)."""

from __future__ import annotations

import pytest

from tocsin.cli import build_parser, main


def test_subcommands_are_registered():
    help_text = build_parser().format_help()
    assert "worker" in help_text
    assert "deadletter" in help_text


def test_worker_without_remote_receivers_says_so(capsys, monkeypatch):
    monkeypatch.setenv("TOCSIN_KEYS", "k:c2VjcmV0")
    assert main(["worker", "tests.sample_app.signals", "--group", "nobody"]) == 2
    assert "no remote receivers" in capsys.readouterr().err


def test_worker_without_keys_refuses_unless_insecure(capsys, monkeypatch):
    monkeypatch.delenv("TOCSIN_KEYS", raising=False)
    assert main(["worker", "tests.remote.sample_receivers"]) == 2
    assert "TOCSIN_KEYS" in capsys.readouterr().err


def test_deadletter_replay_needs_ids_or_all(capsys, redis_url, prefix):
    assert (
        main(["deadletter", "replay", "some.stream", "--url", redis_url, "--prefix", prefix]) == 2
    )
    assert "--all" in capsys.readouterr().err


def test_deadletter_needs_an_action():
    with pytest.raises(SystemExit):
        main(["deadletter"])
