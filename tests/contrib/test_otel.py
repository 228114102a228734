"""OpenTelemetry spans for sends and receiver calls, checked with the SDK's memory exporter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tocsin import Signal
from tocsin.contrib import otel

order_placed = Signal(name="order_placed_traced")
invoice_sent = Signal(name="invoice_sent_traced")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Instrumented with a private tracer provider whose spans stay in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(tracer_provider=provider)
    yield exporter
    otel.uninstrument()
    provider.shutdown()


def reserve(sender: Any, **kwargs: Any) -> str:
    invoice_sent.send(sender=sender)  # a send inside a receiver nests under it
    return "reserved"


async def notify(sender: Any, **kwargs: Any) -> str:
    return "notified"


def broken(sender: Any, **kwargs: Any) -> None:
    raise ValueError("out of stock")


@pytest.fixture
def receivers() -> Iterator[None]:
    order_placed.connect(reserve)
    order_placed.connect(notify)
    yield
    order_placed.disconnect(reserve)
    order_placed.disconnect(notify)


def spans_by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_a_span_per_send_and_per_receiver(exporter: InMemorySpanExporter, receivers: None) -> None:
    order_placed.send(sender="shop", order_id=1)
    spans = spans_by_name(exporter)
    assert set(spans) == {
        "send order_placed_traced",
        "receiver tests.contrib.test_otel.reserve",
        "receiver tests.contrib.test_otel.notify",
        "send invoice_sent_traced",
    }
    send = spans["send order_placed_traced"]
    assert send.parent is None
    assert send.attributes is not None
    assert send.attributes["tocsin.signal"] == "tests.contrib.test_otel.order_placed"
    assert send.attributes["tocsin.method"] == "send"
    assert send.attributes["tocsin.sender"] == "'shop'"
    assert send.attributes["tocsin.receivers"] == 2
    assert send.attributes["tocsin.muted"] is False

    for name in (
        "receiver tests.contrib.test_otel.reserve",
        "receiver tests.contrib.test_otel.notify",
    ):
        receiver = spans[name]
        assert receiver.parent is not None
        assert receiver.parent.span_id == send.context.span_id
        assert receiver.context.trace_id == send.context.trace_id
    reserve_span = spans["receiver tests.contrib.test_otel.reserve"]
    assert reserve_span.attributes is not None
    assert reserve_span.attributes["code.filepath"] == __file__
    assert reserve_span.attributes["code.lineno"] == reserve.__code__.co_firstlineno

    nested = spans["send invoice_sent_traced"]
    assert nested.parent is not None
    assert nested.parent.span_id == reserve_span.context.span_id


def test_asend_spans_nest_the_same_way(exporter: InMemorySpanExporter, receivers: None) -> None:
    asyncio.run(order_placed.asend(sender=None))
    spans = spans_by_name(exporter)
    send = spans["send order_placed_traced"]
    assert send.attributes is not None
    assert send.attributes["tocsin.method"] == "asend"
    for name in (
        "receiver tests.contrib.test_otel.reserve",
        "receiver tests.contrib.test_otel.notify",
    ):
        parent = spans[name].parent
        assert parent is not None
        assert parent.span_id == send.context.span_id


def test_exceptions_are_recorded_on_the_spans(exporter: InMemorySpanExporter) -> None:
    order_placed.connect(broken)
    try:
        with pytest.raises(ValueError, match="out of stock"):
            order_placed.send(sender=None)
        raised = spans_by_name(exporter)
        exporter.clear()
        logging.disable(logging.ERROR)  # send_robust logs the failure: expected here
        try:
            order_placed.send_robust(sender=None)
        finally:
            logging.disable(logging.NOTSET)
        robust = spans_by_name(exporter)
    finally:
        order_placed.disconnect(broken)

    for spans in (raised, robust):
        receiver = spans["receiver tests.contrib.test_otel.broken"]
        assert receiver.status.status_code is StatusCode.ERROR
        [event] = receiver.events
        assert event.name == "exception"
        assert event.attributes is not None
        assert event.attributes["exception.type"] == "ValueError"
    assert raised["send order_placed_traced"].status.status_code is StatusCode.ERROR
    robust_send = robust["send order_placed_traced"]
    assert robust_send.status.status_code is StatusCode.UNSET
    assert robust_send.attributes is not None
    assert robust_send.attributes["tocsin.failures"] == 1


def test_a_muted_send_is_a_span_without_receivers(
    exporter: InMemorySpanExporter, receivers: None
) -> None:
    with order_placed.muted():
        order_placed.send(sender=None)
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["tocsin.muted"] is True
    assert span.attributes["tocsin.receivers"] == 0


def test_instrument_once_and_uninstrument_restores_the_fast_path(receivers: None) -> None:
    assert not otel.is_instrumented()
    assert order_placed._intercept is None
    hook = otel.instrument()
    try:
        assert otel.instrument() is hook
        assert otel.is_instrumented()
        assert order_placed._intercept is not None
    finally:
        otel.uninstrument()
    otel.uninstrument()  # again: nothing to do
    assert order_placed._intercept is None
