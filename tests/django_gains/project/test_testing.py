"""``mute_signals`` on Django TestCase classes (setUpTestData included), tests, blocks."""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Iterator
from typing import Any

import django.dispatch
import pytest
from django.db.models.signals import post_save, pre_save
from django.test import TestCase

from tests.django_gains.project.conftest import needs_switch
from tests.django_gains.project.shop.models import Order, Tag
from tocsin.contrib.django.testing import mute_signals

pytestmark = pytest.mark.django_db(transaction=True)

saves: list[tuple[str, str]] = []


def record(sender: Any, instance: Any, **kwargs: Any) -> None:
    saves.append((sender.__name__, str(getattr(instance, "number", instance.pk))))


@pytest.fixture(autouse=True)
def recording() -> Iterator[list[tuple[str, str]]]:
    saves.clear()
    post_save.connect(record, dispatch_uid="test-record")
    yield saves
    post_save.disconnect(dispatch_uid="test-record")


def run(case: type[unittest.TestCase]) -> unittest.TestResult:
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    assert not result.errors, result.errors
    assert not result.failures, result.failures
    return result


def test_a_test_case_class_is_muted_from_set_up_test_data_to_the_end() -> None:
    seen_in_tests: list[list[tuple[str, str]]] = []

    @mute_signals(pre_save, post_save)
    class OrderTests(TestCase):  # type: ignore[misc]
        @classmethod
        def setUpTestData(cls) -> None:
            cls.order = Order.objects.create(number="class-data")

        def test_one(self) -> None:
            Order.objects.create(number="in-test")
            seen_in_tests.append(list(saves))

        def test_two(self) -> None:
            self.order.save()
            seen_in_tests.append(list(saves))

    result = run(OrderTests)
    assert result.testsRun == 2
    assert seen_in_tests == [[], []]
    Order.objects.create(number="after")  # the class is done: no longer muted
    assert saves == [("Order", "after")]


def test_subclasses_inherit_the_muting_and_keep_their_own_set_up_class() -> None:
    calls: list[str] = []

    @mute_signals(post_save)
    class Base(TestCase):  # type: ignore[misc]
        @classmethod
        def setUpClass(cls) -> None:
            calls.append("base setUpClass")
            super().setUpClass()

    class Child(Base):
        @classmethod
        def setUpTestData(cls) -> None:
            Order.objects.create(number="child-data")

        def test_it(self) -> None:
            calls.append(f"saves seen: {len(saves)}")

    run(Child)
    assert calls == ["base setUpClass", "saves seen: 0"]


def test_one_test_method_only() -> None:
    class Tests(TestCase):  # type: ignore[misc]
        @mute_signals(post_save)
        def test_muted(self) -> None:
            Order.objects.create(number="muted")
            assert saves == []

        def test_not_muted(self) -> None:
            Order.objects.create(number="heard")
            assert ("Order", "heard") in saves

    assert run(Tests).testsRun == 2


@needs_switch
def test_a_block_and_one_sender() -> None:
    with mute_signals(post_save, sender=Tag):
        Tag.objects.create(name="muted")
        Order.objects.create(number="heard")
    with mute_signals(post_save):
        Order.objects.create(number="muted")
    Order.objects.create(number="heard again")
    assert saves == [("Order", "heard"), ("Order", "heard again")]


def test_an_async_function() -> None:
    @mute_signals(post_save)
    async def create() -> None:
        post_save.send(Order, instance=Order(number="async"), created=True)

    asyncio.run(create())
    assert saves == []


def test_a_factory_class_as_factory_boy_decorates_them() -> None:
    # factory_boy's factories create every object through the class method _generate.
    @mute_signals(post_save)
    class OrderFactory:
        @classmethod
        def _generate(cls, strategy: str, params: dict[str, Any]) -> Order:
            order: Order = Order.objects.create(**params)
            return order

        @classmethod
        def create(cls, **params: Any) -> Order:
            return cls._generate("create", params)

    assert OrderFactory.create(number="from a factory").pk is not None
    assert saves == []


def test_a_signal_of_a_third_party_app() -> None:
    paid = django.dispatch.Signal()
    heard: list[int] = []
    paid.connect(lambda sender, **kwargs: heard.append(kwargs["amount"]), weak=False)
    with mute_signals(paid):
        paid.send(None, amount=1)
        paid.connect(lambda sender, **kwargs: heard.append(-kwargs["amount"]), weak=False)
    paid.send(None, amount=2)
    assert heard == [2, -2]


def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(TypeError, match="needs at least one signal"):
        mute_signals()
    with pytest.raises(TypeError, match="expects signals, not 'post_save'"):
        mute_signals("post_save")
    with pytest.raises(TypeError, match="decorates TestCase classes, factory classes"):
        mute_signals(post_save)(type("Plain", (), {}))
