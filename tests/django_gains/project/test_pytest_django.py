"""tocsin's pytest plugin (fixtures and marker) under pytest-django, on Django's signals.

The tests run in a pytest of their own (pytester, in a subprocess), configured the way a
Django project configures pytest-django: ``--ds`` names the settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.django_gains.project.conftest import needs_switch

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[3]

TESTS = """
import pytest
from django.db.models.signals import post_save, pre_save

from tests.django_gains.project.shop.models import Order, Tag

heard = []


@pytest.fixture(autouse=True)
def listening():
    heard.clear()
    post_save.connect(lambda sender, **kw: heard.append(sender.__name__), weak=False,
                      dispatch_uid="listening")
    yield
    post_save.disconnect(dispatch_uid="listening")


@pytest.fixture
def order(db):
    return Order.objects.create(number="from a fixture")


@pytest.mark.mute_signals(post_save)
def test_the_marker_mutes_the_test_and_its_fixtures(order):
    Order.objects.create(number="in the test")
    assert heard == []


@pytest.mark.mute_signals(post_save, sender=Tag)
def test_the_marker_for_one_sender(db):
    Tag.objects.create(name="muted")
    Order.objects.create(number="heard")
    assert heard == ["Order"]


@pytest.mark.django_db
def test_signal_capture(signal_capture):
    saves = signal_capture(post_save, sender=Order)
    order = Order.objects.create(number="A1")
    record = saves.assert_sent_once(Order, created=True, instance=order)
    assert record.kwargs["using"] == "default"
    saves.assert_not_sent(Order, created=False)


@pytest.mark.django_db
def test_the_mute_signals_fixture(mute_signals, signal_capture):
    mute_signals(pre_save, post_save)
    saves = signal_capture(post_save)
    Order.objects.create(number="A2")
    assert heard == []
    assert [record.muted for record in saves] == [True]  # recorded, marked muted


@pytest.mark.django_db(transaction=True)
def test_after_commit_under_pytest_django(signal_capture):
    import tocsin
    from django.db import transaction

    done = []
    receiver = tocsin.after_commit(lambda sender, instance, **kw: done.append(instance.number))
    post_save.connect(receiver, sender=Order, weak=False, dispatch_uid="after")
    try:
        with transaction.atomic():
            Order.objects.create(number="A3")
            assert done == []
        assert done == ["A3"]
    finally:
        post_save.disconnect(sender=Order, dispatch_uid="after")
"""


@needs_switch
def test_fixtures_and_marker_under_pytest_django(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("TOCSIN_DJANGO_NO_PG", "1")
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("TOCSIN_DJANGO_SQLITE", raising=False)
    pytester.makepyfile(test_shop=TESTS)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    result = pytester.runpytest_subprocess(
        "--ds=tests.django_gains.project.settings", "-p", "no:cacheprovider", "-q"
    )
    result.assert_outcomes(passed=5)
