"""The switch: from django.setup() on, every Django signal is a tocsin Signal.

What happens at set-up is seen in fresh processes (tests/django/scenario.py), one per
place of the app in INSTALLED_APPS; switching off and on again is seen in this one.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def scenario(position: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.django.scenario", position],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_every_django_signal_is_a_tocsin_signal_wherever_the_app_is_listed(position: str):
    result = scenario(position)
    assert result["error"] is None
    assert result["not_switched"] == []
    assert result["post_save_class"] == "DjangoModelSignal"
    # Signals made after the switch, from Django's name or from a kept reference to
    # Django's class, are tocsin's too.
    assert result["later_is_tocsin"] is True
    assert result["later_from_django_name_is_tocsin"] is True


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_receivers_connected_before_the_switch_are_kept_in_order(position: str):
    result = scenario(position)
    before, after = result["before"], result["after"]
    assert set(after) == set(before)
    for signal, receivers in before.items():
        # Receivers, senders, weak or strong, dispatch_uids, in order; apps set up after
        # the switch may only have added receivers at the end.
        assert after[signal][: len(receivers)] == receivers
    third_party = [rows for rows in before.values() if rows and rows[0][0] == "__main__.paid"]
    assert third_party == [
        [
            ["__main__.paid", None, True, None],
            ["__main__.<lambda>", None, False, None],
            ["__main__.paid", None, True, "paid-once"],
            ["__main__.paid", third_party[0][3][1], True, None],
            ["tests.django.thirdparty.Payment.on_paid", None, True, None],
            ["__main__.paid_by_name", third_party[0][5][1], True, None],
        ]
    ]


def test_the_kept_receivers_are_called_by_the_tocsin_signal():
    result = scenario("middle")
    assert result["order_paid_send"] == ["method", "paid", "paid", "strong"]
    # The receiver connected for the Payment class only is called for it only.
    assert result["order_paid_payment_send"] == ["method", "paid", "paid", "paid", "strong"]
    # A sender Django knew by id only (a string) was found, and still matches.
    assert result["order_paid_by_name_send"] == ["by name", "method", "paid", "paid", "strong"]


def test_a_subclass_of_djangos_signal_keeps_its_overrides():
    result = scenario("middle")
    assert result["audited_class"][:3] == ["AuditSignal", "AuditSignal", "DjangoSignal"]
    assert result["audited_send"] == [True]


def test_a_lazy_sender_connected_before_the_switch_resolves_to_the_model():
    assert scenario("last")["lazy_post_save"] == [True]


def test_listing_the_app_twice_is_djangos_duplicate_error_and_switches_once():
    result = scenario("twice")
    assert result["error"] == (
        "ImproperlyConfigured: Application labels aren't unique, duplicates: tocsin"
    )
    assert result["not_switched"] == []
    for signal, receivers in result["before"].items():
        assert result["after"][signal] == receivers  # nothing connected twice
    assert result["install_again"] == 0


def test_a_receiver_whose_sender_cannot_be_found_is_dropped_with_a_warning():
    result = scenario("unfindable")
    [warning] = result["warnings"]
    assert warning.startswith("tocsin could not keep <function paid at ")
    assert "its sender (id 0x" in warning
    assert "Connect it after the switch" in warning
    # The receivers Django could name a sender for are all still there.
    assert result["connected"] == [
        "__main__.paid",
        "__main__.<lambda>",
        "__main__.paid",
        "__main__.paid",
        "tests.django.thirdparty.Payment.on_paid",
        "__main__.paid_by_name",
    ]
