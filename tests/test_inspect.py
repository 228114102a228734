"""tocsin.inspect: describing signals and their receivers, whatever the receiver is."""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

from tests.sample_app import receivers as sample
from tests.sample_app.signals import order_placed, order_shipped
from tocsin import Signal, after_commit
from tocsin._lazy import registry
from tocsin.inspect import (
    describe,
    describe_all,
    receiver_location,
    receiver_name,
    sender_label,
)
from tocsin.signals import post_save


def handler(sender: Any, **kwargs: Any) -> None:
    pass


class Handlers:
    def method(self, sender: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        pass


def line_of(function: Any) -> int:
    return inspect.getsourcelines(function)[1]


def test_describe_names_every_receiver_and_where_it_is() -> None:
    info = describe(order_placed)
    assert info.name == "tests.sample_app.signals.order_placed"
    assert info.explicit_name == "order_placed"
    assert info.module == "tests.sample_app.signals"
    assert info.doc == "Sent when an order is placed."
    by_name = {receiver.name: receiver for receiver in info.receivers}

    reserve = by_name["tests.sample_app.receivers.reserve_stock"]
    assert info.receivers[0] is reserve  # dispatch order: priority 10 first
    assert (reserve.kind, reserve.priority, reserve.weak) == ("function", 10, True)
    assert reserve.file == sample.__file__
    assert reserve.line == sample.reserve_stock.__code__.co_firstlineno

    email = by_name["tests.sample_app.receivers.email_customer"]
    assert email.after_commit
    assert email.dispatch_uid == "sample-app-email"
    # The function written by the user, not @after_commit's wrapper.
    assert email.line == sample.email_customer.__wrapped__.__code__.co_firstlineno  # type: ignore[attr-defined]

    method = by_name["tests.sample_app.receivers.Ledger.record"]
    assert method.kind == "method"
    assert method.line == sample.Ledger.record.__code__.co_firstlineno


def test_describe_shows_sender_filters_strong_and_async_receivers() -> None:
    by_name = {receiver.name: receiver for receiver in describe(order_shipped).receivers}
    tracking = by_name["tests.sample_app.receivers.notify_tracking"]
    assert tracking.is_async
    assert tracking.sender == "tests.sample_app.receivers.Warehouse"
    assert tracking.sender_object is sample.Warehouse

    auditor = by_name["tests.sample_app.receivers.Auditor"]
    assert (auditor.kind, auditor.weak, auditor.sender) == ("callable object", False, None)
    assert auditor.line == sample.Auditor.__call__.__code__.co_firstlineno

    partial = by_name["functools.partial(tests.sample_app.receivers.log_event)"]
    assert partial.kind == "partial"
    assert partial.line == sample.log_event.__code__.co_firstlineno


def test_receiver_names_are_robust_for_any_callable() -> None:
    handlers = Handlers()
    assert receiver_name(handler) == "tests.test_inspect.handler"
    assert receiver_name(handlers.method) == "tests.test_inspect.Handlers.method"
    assert receiver_name(handlers) == "tests.test_inspect.Handlers"
    assert (
        receiver_name(functools.partial(handler))
        == "functools.partial(tests.test_inspect.handler)"
    )
    assert receiver_name(functools.partial(functools.partial(handlers.method))) == (
        "functools.partial(tests.test_inspect.Handlers.method)"
    )
    assert receiver_name(after_commit(handler)) == "tests.test_inspect.handler"
    assert receiver_name(print) == "print"
    assert receiver_name(len) == "len"
    assert receiver_name(Handlers) == "tests.test_inspect.Handlers"


def test_receiver_locations_are_robust_for_any_callable() -> None:
    here = __file__
    assert receiver_location(handler) == (here, line_of(handler))
    assert receiver_location(Handlers().method) == (here, line_of(Handlers.method))
    assert receiver_location(Handlers()) == (here, line_of(Handlers.__call__))
    assert receiver_location(functools.partial(handler)) == (here, line_of(handler))
    assert receiver_location(Handlers, exact=True) == (here, line_of(Handlers))
    assert receiver_location(print) == (None, None)


def test_describe_a_signal_made_in_a_function() -> None:
    signal = Signal(name="local_signal")
    signal.connect(handler, sender=7, weak=False, dispatch_uid=("uid", 1))
    info = describe(signal)
    assert info.name == "local_signal"
    assert info.dotted_path is None
    [receiver] = info.receivers
    assert receiver.sender == "7"
    assert receiver.dispatch_uid == "('uid', 1)"


def test_describe_all_is_sorted_and_can_skip_unconnected_signals() -> None:
    infos = describe_all()
    names = [info.name for info in infos]
    assert names == sorted(names)
    assert "tocsin.signals.post_save" in names
    assert describe(post_save) in infos
    connected = describe_all(connected_only=True)
    assert all(info.receivers for info in connected)
    assert "tests.sample_app.signals.order_placed" in [info.name for info in connected]


def test_to_dict_is_json_ready() -> None:
    data = describe(order_shipped).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["receivers"][0].keys() == {
        "name",
        "module",
        "qualname",
        "kind",
        "file",
        "line",
        "sender",
        "weak",
        "dispatch_uid",
        "priority",
        "is_async",
        "after_commit",
        "waiting_for",
    }
    assert data["waiting"] == []


def test_signal_label_names_a_signal_by_path_then_name_then_repr() -> None:
    import tocsin.testing
    from tocsin import Signal
    from tocsin.inspect import signal_label
    from tocsin.signals import post_save

    assert signal_label(post_save) == "tocsin.signals.post_save"
    assert signal_label(Signal(name="local")) == "local"
    anonymous = Signal()
    assert signal_label(anonymous) == repr(anonymous)
    # Still importable from where it was first defined.
    assert tocsin.testing.signal_label is signal_label


def test_a_receiver_waiting_for_its_lazy_sender_is_listed_as_waiting() -> None:
    def index_order(sender: Any, **kwargs: Any) -> None:
        pass

    post_save.connect(index_order, sender="InspectOrder", weak=False, dispatch_uid="idx")
    try:
        info = describe(post_save)
        (waiting,) = [r for r in info.waiting if r.qualname.endswith("index_order")]
        assert waiting.waiting_for == "InspectOrder"
        assert waiting.sender == "'InspectOrder'"
        assert (waiting.weak, waiting.dispatch_uid, waiting.is_async) == (False, "idx", False)
        assert waiting.line == line_of(index_order)
        # Not live yet: a send cannot reach it, so it is not among the receivers.
        assert all(r.receiver is not index_order for r in info.receivers)
        listed = info.to_dict()["waiting"]
        assert [r["waiting_for"] for r in listed if r["qualname"] == waiting.qualname] == [
            "InspectOrder"
        ]

        class InspectOrder:
            pass

        registry.register(InspectOrder)
        try:
            info = describe(post_save)
            assert all(r.receiver is not index_order for r in info.waiting)
            (live,) = [r for r in info.receivers if r.receiver is index_order]
            assert live.waiting_for is None
            assert live.sender == sender_label(InspectOrder)
            assert live.to_dict()["waiting_for"] is None
        finally:
            post_save.disconnect(index_order, sender=InspectOrder, dispatch_uid="idx")
            registry.forget(InspectOrder)
    finally:
        post_save.disconnect(sender="InspectOrder", dispatch_uid="idx")
