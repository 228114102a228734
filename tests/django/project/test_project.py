"""A Django project with the app installed: Django's signals, sent by Django, are tocsin's.

Requests go through Django's test client, rows through the ORM (SQLite, and PostgreSQL
when reachable); what tocsin adds (testing helpers, connections(), hooks, OpenTelemetry)
works on them, and what Django's internals and Django users read still reads the same.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import tocsin
from tocsin import testing

pytestmark = pytest.mark.usefixtures("django_project")


@pytest.fixture
def saved() -> Iterator[list[dict[str, Any]]]:
    """A post_save receiver for Product, recording what it was sent."""
    from django.db.models.signals import post_save

    from tests.django.project.shop.models import Product

    calls: list[dict[str, Any]] = []

    def on_saved(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    post_save.connect(on_saved, sender=Product)
    yield calls
    post_save.disconnect(on_saved, sender=Product)


def test_djangos_builtin_signals_are_tocsin_signals():
    from django.contrib.auth import signals as auth_signals
    from django.core import signals as core_signals
    from django.db.backends import signals as backend_signals
    from django.db.models import signals as model_signals
    from django.dispatch import Signal
    from django.test import signals as test_signals

    builtins = [
        model_signals.pre_save,
        model_signals.post_save,
        model_signals.m2m_changed,
        model_signals.class_prepared,
        model_signals.post_migrate,
        core_signals.request_started,
        core_signals.request_finished,
        core_signals.got_request_exception,
        test_signals.template_rendered,
        test_signals.setting_changed,
        backend_signals.connection_created,
        auth_signals.user_logged_in,
        auth_signals.user_login_failed,
    ]
    for signal in builtins:
        assert isinstance(signal, tocsin.Signal)
        assert isinstance(signal, Signal)
    assert isinstance(model_signals.post_save, model_signals.ModelSignal)
    assert tocsin.dotted_path(model_signals.post_save) == "django.db.models.signals.post_save"


def test_a_model_save_fires_post_save_with_djangos_arguments(saved):
    from tests.django.project.shop.models import Product

    product = Product.objects.create(name="tea")
    product.name = "green tea"
    product.save(update_fields=["name"])
    assert [(call["instance"], call["created"]) for call in saved] == [
        (product, True),
        (product, False),
    ]
    assert saved[1]["update_fields"] == frozenset({"name"})
    assert saved[1]["using"] == "default"
    assert saved[0]["sender"] is Product


def test_a_model_save_on_postgresql_fires_post_save(saved, postgres_alias):
    from tests.django.project.shop.models import Product

    product = Product.objects.using(postgres_alias).create(name="oolong")
    assert [(call["instance"], call["using"]) for call in saved] == [(product, postgres_alias)]
    assert Product.objects.using(postgres_alias).get(pk=product.pk).name == "oolong"


def test_m2m_changed_is_sent_for_the_through_model():
    from django.db.models.signals import m2m_changed

    from tests.django.project.shop.models import Product, Tag

    def on_change(sender: Any, **kwargs: Any) -> None:
        pass

    product, tag = Product.objects.create(name="mate"), Tag.objects.create(label="herbal")
    # Django sends m2m_changed only when someone listens (has_listeners).
    m2m_changed.connect(on_change, sender=Product.tags.through)
    try:
        with testing.capture(m2m_changed, sender=Product.tags.through) as sent:
            product.tags.add(tag)
    finally:
        m2m_changed.disconnect(on_change, sender=Product.tags.through)
    assert [record.kwargs["action"] for record in sent] == ["pre_add", "post_add"]
    assert sent[1].kwargs["pk_set"] == {tag.pk}


def test_the_test_client_fires_request_signals_and_a_save():
    from django.core.signals import request_finished, request_started
    from django.db.models.signals import post_save
    from django.test import Client

    from tests.django.project.shop.models import Product

    with testing.capture(request_started, request_finished, post_save) as sent:
        response = Client().get("/create/", {"name": "rooibos"})
    assert response.status_code == 200
    assert [record.signal for record in sent] == [request_started, post_save, request_finished]
    sent.assert_sent(Product, created=True)
    assert sent.of(post_save)[0].kwargs["instance"].name == "rooibos"


def test_the_async_test_client_fires_request_signals_through_asend():
    from django.core.signals import request_finished, request_started
    from django.test import AsyncClient

    threads: list[int] = []
    main_thread = threading.get_ident()

    def on_request(sender: Any, **kwargs: Any) -> None:
        threads.append(threading.get_ident())

    request_started.connect(on_request)
    request_finished.connect(on_request)
    try:
        with testing.capture(request_started, request_finished) as sent:
            response = asyncio.run(AsyncClient().get("/hello/"))
    finally:
        request_started.disconnect(on_request)
        request_finished.disconnect(on_request)
    assert response.status_code == 200
    # request_started goes through asend; request_finished too (Django 6) or through
    # send from the response's close(), run by sync_to_async (Django 5.2).
    assert [record.signal for record in sent] == [request_started, request_finished]
    assert sent[0].method == "asend"
    # Not on the event loop's thread: sync receivers under asend go to a worker.
    assert len(threads) == 2
    assert main_thread not in threads


def test_mute_silences_a_django_signal_for_one_sender(saved):
    from django.db.models.signals import post_save

    from tests.django.project.shop.models import Product, Tag

    with testing.mute(post_save, sender=Product):
        Product.objects.create(name="muted")
        Tag.objects.create(label="not muted")
    assert saved == []
    Product.objects.create(name="heard")
    assert [call["instance"].name for call in saved] == ["heard"]


def test_assertions_read_djangos_sends():
    from django.db.models.signals import pre_save

    from tests.django.project.shop.models import Product

    with testing.capture(pre_save) as sent:
        Product.objects.create(name="earl grey")
    testing.assert_sent_once(sent, Product, raw=False, using="default")
    with pytest.raises(AssertionError):
        testing.assert_not_sent(sent, Product)


def test_connections_show_djangos_own_receivers():
    from django.core.signals import request_started
    from django.db import reset_queries
    from django.db.models.signals import post_migrate

    connections = request_started.connections()
    assert reset_queries in [connection.receiver for connection in connections]
    receiver_names = [c.receiver.__qualname__ for c in post_migrate.connections()]
    assert "create_permissions" in receiver_names
    assert "create_contenttypes" in receiver_names


def test_a_hook_sees_every_django_send():
    from django.db.models.signals import post_init, post_save, pre_init, pre_save

    from tests.django.project.shop.models import Product

    class Recorder(tocsin.Hook):
        def __init__(self) -> None:
            self.sends: list[tuple[Any, Any]] = []

        def send_started(self, record: tocsin.SendRecord) -> None:
            self.sends.append((record.signal, record.sender))

    recorder = Recorder()
    tocsin.add_hook(recorder)
    try:
        Product(name="assam").save()
    finally:
        tocsin.remove_hook(recorder)
    assert recorder.sends == [
        (pre_init, Product),
        (post_init, Product),
        (pre_save, Product),
        (post_save, Product),
    ]


def test_opentelemetry_traces_djangos_signals(saved):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.django.project.shop.models import Product
    from tocsin.contrib import otel

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(tracer_provider=provider)
    try:
        Product.objects.create(name="darjeeling")
    finally:
        otel.uninstrument()
        provider.shutdown()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    send = spans["send post_save"]
    assert send.attributes is not None
    assert send.attributes["tocsin.receivers"] == 1
    receiver = next(name for name in spans if name.startswith("receiver ") and "on_saved" in name)
    parent = spans[receiver].parent
    assert parent is not None
    assert parent.span_id == send.context.span_id


def test_send_robust_logs_on_djangos_logger_with_djangos_message(caplog):
    from django.core.signals import got_request_exception

    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError("no tea left")

    got_request_exception.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="django.dispatch"):
            responses = got_request_exception.send_robust(sender=None, request=None)
    finally:
        got_request_exception.disconnect(broken)
    assert isinstance(responses[0][1], ValueError)
    [record] = [r for r in caplog.records if r.name == "django.dispatch"]
    assert record.getMessage() == (
        "Error calling test_send_robust_logs_on_djangos_logger_with_djangos_message."
        "<locals>.broken in Signal.send_robust() (no tea left)"
    )
    assert record.exc_info is not None


def test_sync_receivers_under_asend_run_in_asgirefs_thread_sensitive_thread():
    from asgiref.sync import async_to_sync
    from django.db.models.signals import post_delete

    outer = threading.get_ident()
    threads: list[int] = []

    def on_delete(sender: Any, **kwargs: Any) -> None:
        threads.append(threading.get_ident())

    post_delete.connect(on_delete)
    try:
        # As in a Django view: sync code calls async code, which sends with asend.
        async_to_sync(post_delete.asend)(sender=None)
    finally:
        post_delete.disconnect(on_delete)
    assert threads == [outer]  # the thread that owns the database connection


def test_a_lazy_sender_resolves_through_djangos_app_registry(saved):
    from django.db.models.signals import post_save

    from tests.django.project.shop.models import Product

    calls: list[Any] = []

    def on_saved(sender: Any, **kwargs: Any) -> None:
        calls.append(sender)

    post_save.connect(on_saved, sender="shop.Product")
    try:
        Product.objects.create(name="lazy")
    finally:
        assert post_save.disconnect(on_saved, sender="shop.Product") is None
    assert calls == [Product]
    Product.objects.create(name="disconnected")
    assert calls == [Product]


def test_the_system_check_names_a_receiver_waiting_for_a_missing_model():
    from django.apps import apps
    from django.core import checks
    from django.db.models.signals import post_save

    def waiting(sender: Any, **kwargs: Any) -> None:
        pass

    pending = dict(apps._pending_operations)
    post_save.connect(waiting, sender="shop.Missing")
    try:
        errors = [error for error in checks.run_checks() if error.id == "signals.E001"]
    finally:
        apps._pending_operations.clear()
        apps._pending_operations.update(pending)
    assert [error.msg for error in errors] == [
        "The function 'waiting' was connected to the 'post_save' signal with a lazy "
        "reference to the sender 'shop.missing', but app 'shop' doesn't provide model "
        "'missing'."
    ]


def test_djangos_internals_read_as_in_django():
    from django.core.signals import request_started
    from django.db import close_old_connections, reset_queries
    from django.db.models.signals import pre_save

    import django

    sync, async_ = request_started._live_receivers(None)
    assert sync[:2] == [reset_queries, close_old_connections]
    assert async_ == []
    entry = request_started.receivers[0]
    assert len(entry) == (4 if django.VERSION >= (6, 0) else 3)
    assert isinstance(entry[1], weakref.ReferenceType)
    assert entry[1]() is reset_queries
    assert pre_save.use_caching is True
    with request_started.lock:
        request_started._clear_dead_receivers()
    request_started.sender_receivers_cache.clear()
    assert request_started._live_receivers(None)[0][:2] == [reset_queries, close_old_connections]


def test_a_strong_receivers_entry_holds_the_receiver_itself():
    from django.core.signals import request_finished

    def strong(sender: Any, **kwargs: Any) -> None:
        pass

    request_finished.connect(strong, weak=False, dispatch_uid="strong-one")
    try:
        [entry] = [e for e in request_finished.receivers if e[0][0] == "strong-one"]
        assert entry[1] is strong
    finally:
        assert request_finished.disconnect(dispatch_uid="strong-one")


def test_third_party_code_that_swaps_receivers_under_the_lock_works(saved):
    # factory_boy's mute_signals, and many test helpers, do exactly this.
    from django.db.models.signals import post_save

    from tests.django.project.shop.models import Product

    with post_save.lock:
        paused = post_save.receivers
        post_save.receivers = []
        post_save.sender_receivers_cache.clear()
    Product.objects.create(name="unheard")
    with post_save.lock:
        post_save.receivers += paused
        post_save.sender_receivers_cache.clear()
    Product.objects.create(name="heard")
    assert [call["instance"].name for call in saved] == ["heard"]
