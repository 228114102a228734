"""OpenTelemetry tracing of sends and receiver calls (``pip install 'tocsin[otel]'``).

::

    from tocsin.contrib import otel

    otel.instrument()            # uses the global tracer provider

Every send of every signal becomes a span named ``send <signal>`` (``tocsin.signal``,
``tocsin.method``, ``tocsin.sender``, ``tocsin.muted``, ``tocsin.receivers``, and
``tocsin.failures`` for robust sends), and each receiver call a child span named
``receiver <receiver>`` with its ``code.*`` attributes. An exception a receiver raises
is recorded on its span (status ERROR), also when ``send_robust`` catches it; one that
escapes the send is recorded on the send span too.

Built on the hook API (``tocsin.add_hook``): while not instrumented, sends pay nothing.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from tocsin._hooks import Hook, ReceiverCall, SendRecord, add_hook, remove_hook
from tocsin.inspect import receiver_location, receiver_name, sender_label, signal_label

__all__ = ["TracingHook", "instrument", "is_instrumented", "uninstrument"]

_SCOPE = "tocsin"

_lock = threading.Lock()
_installed: TracingHook | None = None


class TracingHook(Hook):
    """A hook that makes an OpenTelemetry span of each send and each receiver call."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        from tocsin import __version__

        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)

    def send_started(self, record: SendRecord) -> None:
        """Start the send's span and make it current (receiver spans are its children)."""
        attributes: dict[str, Any] = {
            "tocsin.signal": signal_label(record.signal),
            "tocsin.method": record.method,
            "tocsin.sender": _sender_text(record.sender),
            "tocsin.muted": record.muted,
        }
        span = self.tracer.start_span(
            f"send {_signal_name(record)}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        record.state[self] = (span, token)

    def send_finished(self, record: SendRecord) -> None:
        """End the send's span, with the receivers' count and the error, if any."""
        span, token = record.state.pop(self)
        responses = record.responses or []
        span.set_attribute("tocsin.receivers", len(responses))
        if record.method.endswith("robust"):
            failures = sum(isinstance(response, Exception) for _, response in responses)
            span.set_attribute("tocsin.failures", failures)
        if record.error is not None:
            _record_error(span, record.error)
        otel_context.detach(token)
        span.end()

    def receiver_started(self, call: ReceiverCall) -> None:
        """Start the receiver's span as a child of the send's span."""
        send_span, _ = call.send.state.get(self, (None, None))
        parent = trace.set_span_in_context(send_span) if send_span is not None else None
        file, line = receiver_location(call.receiver)
        name = receiver_name(call.receiver)
        attributes: dict[str, Any] = {"tocsin.receiver": name, "code.function": name}
        if file is not None:
            attributes["code.filepath"] = file
        if line is not None:
            attributes["code.lineno"] = line
        span = self.tracer.start_span(
            f"receiver {name}", context=parent, kind=SpanKind.INTERNAL, attributes=attributes
        )
        token = None
        # Async receivers of one send run concurrently in one shared context (Django's
        # semantics), so making their spans current there would leak one task's span
        # into its siblings. Sync receivers run one at a time: sends they make nest.
        if not _is_async(call.receiver):
            token = otel_context.attach(trace.set_span_in_context(span))
        call.state[self] = (span, token)

    def receiver_finished(self, call: ReceiverCall) -> None:
        """End the receiver's span, recording its exception if it raised."""
        span, token = call.state.pop(self)
        if call.error is not None:
            _record_error(span, call.error)
        if token is not None:
            otel_context.detach(token)
        span.end()


def instrument(tracer_provider: TracerProvider | None = None) -> TracingHook:
    """Trace every send and receiver call from now on; returns the hook installed.

    Uses *tracer_provider*, or the global one. Calling it again while instrumented
    returns the hook already installed.
    """
    global _installed
    with _lock:
        if _installed is None:
            _installed = TracingHook(tracer_provider)
            add_hook(_installed)
        return _installed


def uninstrument() -> None:
    """Stop tracing sends (does nothing if not instrumented)."""
    global _installed
    with _lock:
        if _installed is not None:
            remove_hook(_installed)
            _installed = None


def is_instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _installed is not None


def _signal_name(record: SendRecord) -> str:
    # Span names should have a low cardinality: the signal's short name, not a repr.
    signal = record.signal
    if signal.name:
        return signal.name
    return signal_label(signal).rpartition(".")[2]


def _sender_text(sender: object) -> str:
    return "None" if sender is None else sender_label(sender)[:200]


def _record_error(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _is_async(receiver: object) -> bool:
    if inspect.iscoroutinefunction(receiver):
        return True
    call = inspect.getattr_static(type(receiver), "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)
