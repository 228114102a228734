"""``manage.py tocsin_inspect`` and ``tocsin_graph``: the project's receivers, all of them."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.django_gains.project.conftest import needs_switch
from tests.django_gains.project.shop import receivers

RECEIVERS_FILE = Path(receivers.__file__).resolve()


def inspect_json(*args: str) -> dict[str, dict[str, Any]]:
    out = io.StringIO()
    call_command("tocsin_inspect", "--json", *args, stdout=out)
    return {signal["name"]: signal for signal in json.loads(out.getvalue())}


def line_of(function: Any) -> int:
    return (
        int(function.__wrapped__.__code__.co_firstlineno)
        if hasattr(function, "__wrapped__")
        else int(function.__code__.co_firstlineno)
    )


def test_local_and_remote_receivers_with_where_and_how() -> None:
    signal = inspect_json()["tests.django_gains.project.shop.signals.order_placed"]
    [local] = signal["receivers"]
    assert local["name"] == "tests.django_gains.project.shop.receivers.audit_order"
    assert (Path(local["file"]), local["line"]) == (RECEIVERS_FILE, line_of(receivers.audit_order))
    assert local["after_commit"] is True
    assert local["weak"] is False
    assert local["dispatch_uid"] == "shop-audit"
    [remote] = signal["remote"]
    assert remote["name"] == "tests.django_gains.project.shop.receivers.make_invoice"
    assert remote["group"] == "shop-invoices"
    assert remote["broadcast"] is False
    assert (Path(remote["file"]), remote["line"]) == (
        RECEIVERS_FILE,
        receivers.make_invoice.__code__.co_firstlineno,
    )


def test_the_table() -> None:
    out = io.StringIO()
    call_command("tocsin_inspect", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["SIGNAL", "RECEIVER", "SENDER", "HOW", "DEFINED", "AT"]
    [audit] = [line for line in lines if "receivers.audit_order" in line]
    assert "sync, strong, after commit, uid=shop-audit" in audit
    assert f"receivers.py:{line_of(receivers.audit_order)}" in audit
    [invoice] = [line for line in lines if "receivers.make_invoice" in line]
    assert "remote, group=shop-invoices, sync" in invoice
    assert lines[-1].endswith("remote receiver(s)")


@needs_switch
def test_djangos_own_signals_and_receivers_are_listed() -> None:
    signals = inspect_json()
    saved = signals["django.db.models.signals.post_save"]
    [mine] = [r for r in saved["receivers"] if r["dispatch_uid"] == "shop-order-saved"]
    assert mine["sender"] == "tests.django_gains.project.shop.models.Order"
    assert mine["weak"] is True
    assert mine["line"] == receivers.order_saved.__code__.co_firstlineno
    # Receivers Django's own apps connect (contenttypes, auth) are there too.
    migrated = {r["name"] for r in signals["django.db.models.signals.post_migrate"]["receivers"]}
    assert "django.contrib.contenttypes.management.create_contenttypes" in migrated
    assert "django.contrib.auth.management.create_permissions" in migrated


def test_the_graph_draws_remote_receivers_with_their_group() -> None:
    out = io.StringIO()
    call_command("tocsin_graph", stdout=out)
    text = out.getvalue()
    assert text.startswith("flowchart LR")
    assert "make_invoice [remote: shop-invoices]" in text
    assert "audit_order" in text


def test_the_graph_as_dot_and_svg(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("tocsin_graph", "--format", "dot", stdout=out)
    assert out.getvalue().startswith("digraph")
    if shutil.which("dot") is None:
        with pytest.raises(CommandError, match="Graphviz"):
            call_command("tocsin_graph", "-o", str(tmp_path / "g.svg"))
    else:
        call_command("tocsin_graph", "-o", str(tmp_path / "g.svg"))
        assert b"<svg" in (tmp_path / "g.svg").read_bytes()
    with pytest.raises(CommandError, match="PNG is binary"):
        call_command("tocsin_graph", "--format", "png")


@needs_switch
def test_only_the_receivers_of_one_app() -> None:
    signals = inspect_json("--only", "tests.django_gains.project.shop")
    assert set(signals) == {
        "django.db.models.signals.post_save",
        "tests.django_gains.project.shop.signals.order_placed",
    }
    [mine] = signals["django.db.models.signals.post_save"]["receivers"]
    assert mine["name"] == "tests.django_gains.project.shop.receivers.order_saved"
    everything = inspect_json()
    assert "django.db.models.signals.post_migrate" in everything
