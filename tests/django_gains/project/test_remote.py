"""Django models through brokers: the model codec, the Django worker, on_commit, the outbox."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from tests.django_gains.project.conftest import needs_switch, postgres_or_skip, rolled_back
from tests.django_gains.project.shop.models import Order, Sku
from tests.django_gains.project.shop.signals import order_placed
from tocsin import Signal
from tocsin.contrib.django.codec import TAG, ModelRef, django_model_codec, load_models
from tocsin.contrib.django.models import OutboxEvent
from tocsin.contrib.django.outbox import DjangoOutboxTransport, DjangoRelay, writing_to
from tocsin.contrib.django.worker import django_receiver, django_worker
from tocsin.remote import (
    Envelope,
    Keyring,
    MemoryTransport,
    Publisher,
    PublishError,
    Worker,
    clear_remote_receivers,
    new_event,
    publish,
    remote_receiver,
)

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

STREAM = "tests.django_gains.project.shop.signals.order_placed"
POST_SAVE = "django.db.models.signals.post_save"


@pytest.fixture
def envelope() -> Envelope:
    keyring = Keyring({"k1": base64.b64decode("dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzISE=")})
    return Envelope(keyring, codec=django_model_codec())


@pytest.fixture
def memory() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture(autouse=True)
def forget_receivers() -> Iterator[None]:
    """Remote receivers and publishers set up by a test are gone after it."""
    yield
    clear_remote_receivers(["test-invoices"])
    for signal in (order_placed, post_save):
        if not isinstance(signal, Signal):  # Django's own dispatcher: nothing was published
            continue
        for connection in signal.connections():
            if isinstance(connection.receiver, Publisher):
                signal.disconnect(sender=connection.sender, dispatch_uid=connection.dispatch_uid)


async def run_until(worker: Worker, condition: Any, timeout: float = 10.0) -> None:
    task = worker.start()
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    assert task.done()


# -- the codec ---------------------------------------------------------------------------


def test_an_instance_travels_as_label_and_primary_key(envelope: Envelope) -> None:
    order = Order.objects.create(number="C1", total="12.50")
    data = envelope.codec.encode_value(order)
    assert data == {
        "__tocsin__": TAG,
        "v": {"model": "shop.Order", "pk": order.pk, "db": "default"},
    }
    reference = envelope.codec.decode_value(data)
    assert reference == ModelRef(Order, order.pk, "default")
    loaded = reference.load()
    assert isinstance(loaded, Order)
    assert (loaded.pk, loaded.number, str(loaded.total)) == (order.pk, "C1", "12.50")
    assert loaded is not order


def test_primary_keys_that_are_not_integers(envelope: Envelope) -> None:
    sku = Sku.objects.create(code="TEA-01", price=4)
    decoded = load_models(envelope.codec.decode_value(envelope.codec.encode_value([sku, (sku,)])))
    assert [type(decoded[0]), decoded[0].price, decoded[1][0].code] == [Sku, 4, "TEA-01"]


def test_a_row_deleted_since_loads_as_none_or_missing(envelope: Envelope) -> None:
    order = Order.objects.create(number="C2")
    data = envelope.codec.encode_value(order)
    order.delete()
    assert envelope.codec.decode_value(data).load() is None
    codec = django_model_codec(missing=lambda model, pk: ("gone", model, pk))
    assert codec.decode_value(data).load() == ("gone", Order, data["v"]["pk"])


def test_an_unsaved_instance_cannot_be_encoded(envelope: Envelope) -> None:
    with pytest.raises(TypeError, match=r"shop\.Order instance has no primary key"):
        envelope.codec.encode_value(Order(number="new"))


def test_a_model_the_project_lacks_is_malformed(envelope: Envelope) -> None:
    data = envelope.codec.encode_value(Order.objects.create(number="C3"))
    data["v"]["model"] = "auth.Nope"
    with pytest.raises(ValueError, match="cannot decode a 'django-model' value"):
        envelope.codec.decode_value(data)
    data["v"]["model"] = "os.path.join"
    with pytest.raises(ValueError, match="django-model"):
        envelope.codec.decode_value(data)


def test_decoding_an_event_touches_no_database(envelope: Envelope) -> None:
    order = Order.objects.create(number="C4")
    data = envelope.encode(new_event(STREAM, None, {"order": order}))
    Order.objects.all().delete()
    with CaptureQueriesContext(connections["default"]) as queries:
        event = envelope.decode(data)  # the row being gone is no error here
    assert len(queries) == 0
    assert event.kwargs["order"] == ModelRef(Order, order.pk, "default")
    assert event.kwargs["order"].load() is None


# -- the worker --------------------------------------------------------------------------


def test_the_worker_gives_receivers_model_instances(
    memory: MemoryTransport, envelope: Envelope
) -> None:
    got: list[tuple[Any, str, bool]] = []

    @remote_receiver(order_placed, group="test-invoices")
    def invoice(sender: Any, order: Order, **kwargs: Any) -> None:
        got.append(
            (type(order), order.number, threading.current_thread() is threading.main_thread())
        )

    publish(order_placed, memory, envelope)
    order = Order.objects.create(number="W1")
    order_placed.send(None, order=order)
    worker = django_worker(memory, envelope, groups=["test-invoices"], poll_timeout=0.05)
    asyncio.run(run_until(worker, lambda: got))
    assert got == [(Order, "W1", False)]


def test_an_async_receiver_gets_instances_too(memory: MemoryTransport, envelope: Envelope) -> None:
    got: list[str] = []

    @remote_receiver(order_placed, group="test-invoices")
    async def invoice(sender: Any, order: Order, **kwargs: Any) -> None:
        got.append(order.number)

    publish(order_placed, memory, envelope)
    order_placed.send(None, order=Order.objects.create(number="W2"))
    worker = django_worker(memory, envelope, groups=["test-invoices"], poll_timeout=0.05)
    asyncio.run(run_until(worker, lambda: got))
    assert got == ["W2"]


def test_connections_are_closed_after_each_event() -> None:
    pg = postgres_or_skip()
    open_during: list[bool] = []

    def count(**kwargs: Any) -> None:
        Order.objects.using(pg).count()
        open_during.append(connections[pg].connection is not None)

    wrapped = django_receiver(count, is_async=False)
    with ThreadPoolExecutor(1) as thread:
        thread.submit(wrapped).result()
        closed_after = thread.submit(lambda: connections[pg].connection is None).result()
    assert open_during == [True]
    assert closed_after  # CONN_MAX_AGE = 0: closed at the end, as after a request


@pytest.mark.parametrize("wrapped", [True, False], ids=["django_receiver", "bare"])
def test_a_receiver_survives_a_database_restart(wrapped: bool) -> None:
    """A persistent connection killed by the server (a restart) is replaced after the
    one event that met it fails, as a worker's retry would do."""
    pg = postgres_or_skip()
    settings = connections.settings[pg]
    saved = settings["CONN_MAX_AGE"]
    settings["CONN_MAX_AGE"] = None  # persistent connections: the case that goes stale

    def backend_pid(**kwargs: Any) -> int:
        with connections[pg].cursor() as cursor:
            cursor.execute("select pg_backend_pid()")
            return int(cursor.fetchone()[0])

    receiver = django_receiver(backend_pid, is_async=False) if wrapped else backend_pid
    outcomes: list[object] = []
    try:
        with ThreadPoolExecutor(1) as thread:

            def attempt() -> None:
                try:
                    outcomes.append(thread.submit(receiver).result())
                except OperationalError:
                    outcomes.append("failed")

            attempt()
            first = outcomes[0]
            with connections[pg].cursor() as cursor:  # the "restart"
                cursor.execute("select pg_terminate_backend(%s)", [first])
            attempt()
            attempt()
            thread.submit(connections.close_all).result()
    finally:
        settings["CONN_MAX_AGE"] = saved
    if wrapped:
        assert outcomes[1] == "failed"  # the event that met the dead connection
        assert isinstance(outcomes[2], int)
        assert outcomes[2] != first  # its retry ran on a new connection
    else:
        assert outcomes[1:] == ["failed", "failed"]  # stuck on the dead connection


# -- publishing after commit -------------------------------------------------------------


def test_on_commit_publishing_waits_for_djangos_commit(
    memory: MemoryTransport, envelope: Envelope
) -> None:
    publish(order_placed, memory, envelope, on_commit=True)
    with rolled_back():
        order_placed.send(None, order=Order.objects.create(number="R1"))
    assert memory.messages(STREAM) == []
    with transaction.atomic():
        order_placed.send(None, order=Order.objects.create(number="R2"))
        assert memory.messages(STREAM) == []
    [data] = memory.messages(STREAM)
    assert envelope.decode(data).kwargs["order"].load().number == "R2"


# -- the outbox --------------------------------------------------------------------------


class Refusing(MemoryTransport):
    def publish(self, stream: str, data: bytes) -> str:
        raise PublishError("broker down", stream=stream)


@pytest.fixture(params=["default", "pg"])
def alias(request: pytest.FixtureRequest) -> str:
    return "default" if request.param == "default" else postgres_or_skip()


def test_outbox_rows_commit_and_roll_back_with_the_data(
    alias: str, memory: MemoryTransport, envelope: Envelope
) -> None:
    publish(order_placed, DjangoOutboxTransport(memory, using=alias), envelope)
    with rolled_back(alias):
        order_placed.send(None, order=Order.objects.using(alias).create(number="O1"))
        assert OutboxEvent.objects.using(alias).count() == 1
    assert OutboxEvent.objects.using(alias).count() == 0
    with transaction.atomic(using=alias):
        order_placed.send(None, order=Order.objects.using(alias).create(number="O2"))
        with rolled_back(alias):
            order_placed.send(None, order=Order.objects.using(alias).create(number="O3"))
    assert memory.messages(STREAM) == []  # nothing reaches the broker by itself
    [row] = OutboxEvent.objects.using(alias).all()
    assert row.stream == STREAM

    relay = DjangoRelay(memory, using=alias)
    assert relay.relay_once() == 1
    assert relay.pending() == 0
    [data] = memory.messages(STREAM)
    assert envelope.decode(data).kwargs["order"].load().number == "O2"


def test_a_refused_row_stays_with_its_error(alias: str, envelope: Envelope) -> None:
    broker = Refusing()
    publish(order_placed, DjangoOutboxTransport(broker, using=alias), envelope)
    for number in ("F1", "F2"):
        order_placed.send(None, order=Order.objects.using(alias).create(number=number))
    relay = DjangoRelay(broker, using=alias)
    assert relay.run_forever(once=True) == 0
    first, second = OutboxEvent.objects.using(alias).order_by("id")
    assert (first.attempts, first.last_error) == (1, "broker down")
    assert (second.attempts, second.last_error) == (0, None)  # the batch stopped at the first

    working = MemoryTransport()
    assert DjangoRelay(working, using=alias, batch=1).run_forever(once=True) == 2
    assert len(working.messages(STREAM)) == 2


def test_writing_to_another_database(memory: MemoryTransport, envelope: Envelope) -> None:
    pg = postgres_or_skip()
    publish(order_placed, DjangoOutboxTransport(memory), envelope)
    with transaction.atomic(using=pg), writing_to(pg):
        order_placed.send(None, order=Order.objects.using(pg).create(number="P1"))
    assert OutboxEvent.objects.using(pg).count() == 1
    assert OutboxEvent.objects.using("default").count() == 0
    with pytest.raises(ValueError, match=r"no database 'nope' in settings\.DATABASES"):
        writing_to("nope").__enter__()


def test_relay_arguments_are_checked(memory: MemoryTransport) -> None:
    with pytest.raises(ValueError, match="batch and interval must be positive"):
        DjangoRelay(memory, batch=0)


@needs_switch
def test_djangos_post_save_through_a_broker(memory: MemoryTransport, envelope: Envelope) -> None:
    """Django's own post_save, published on commit and received in a worker, the saved
    instance loaded there, the sender filter applied to the model class."""
    got: list[tuple[Any, ...]] = []

    @remote_receiver(post_save, group="test-invoices", sender=Order)
    def on_saved(sender: Any, instance: Order, created: bool, **kwargs: Any) -> None:
        got.append((sender, type(instance), instance.number, created, kwargs["using"]))

    publish(post_save, memory, envelope, sender=Order, on_commit=True)
    with transaction.atomic():
        order = Order.objects.create(number="S1")
        Sku.objects.create(code="not-published")
        assert memory.messages(POST_SAVE) == []
    order.number = "S1-renamed"
    order.save(update_fields=["number"])
    assert len(memory.messages(POST_SAVE)) == 2
    worker = django_worker(memory, envelope, groups=["test-invoices"], poll_timeout=0.05)
    asyncio.run(run_until(worker, lambda: len(got) == 2))
    # Both events load the row as it is now: references name rows, not their old values.
    # (The worker runs events concurrently: their order is not kept.)
    assert sorted(got, key=lambda call: not call[3]) == [
        (Order, Order, "S1-renamed", True, "default"),
        (Order, Order, "S1-renamed", False, "default"),
    ]


def test_a_worker_relays_the_outbox_and_consumes_it(envelope: Envelope) -> None:
    """tocsin_worker --relay: one process moves committed outbox rows to the broker and
    runs the receivers of the events it finds there."""
    broker = MemoryTransport()
    got: list[str] = []

    @remote_receiver(order_placed, group="test-invoices")
    def invoice(sender: Any, order: Order, **kwargs: Any) -> None:
        got.append(order.number)

    publish(order_placed, DjangoOutboxTransport(broker), envelope)
    with transaction.atomic():
        order_placed.send(None, order=Order.objects.create(number="WR1"))
    with rolled_back():
        order_placed.send(None, order=Order.objects.create(number="never"))
    relay = DjangoRelay(broker, interval=0.05)
    worker = django_worker(
        broker, envelope, groups=["test-invoices"], poll_timeout=0.05, relays=[relay]
    )
    asyncio.run(run_until(worker, lambda: got))
    assert got == ["WR1"]
    assert relay.relayed == 1
    assert OutboxEvent.objects.count() == 0
