"""Django's built-in signals, and model signals that name their sender lazily."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import tocsin
from tocsin import signals
from tocsin._lazy import SenderRegistry, registry
from tocsin.signals import ModelSignal, check_lazy_senders

DJANGO_NAMES = [
    "pre_init",
    "post_init",
    "pre_save",
    "post_save",
    "pre_delete",
    "post_delete",
    "m2m_changed",
    "class_prepared",
    "pre_migrate",
    "post_migrate",
    "connection_created",
    "request_started",
    "request_finished",
    "got_request_exception",
    "template_rendered",
]
MODEL_SIGNALS = [
    "pre_init",
    "post_init",
    "pre_save",
    "post_save",
    "pre_delete",
    "post_delete",
    "m2m_changed",
]


@pytest.fixture
def registered() -> Iterator[list[type]]:
    """Classes a test registers as lazy senders, forgotten again afterwards."""
    classes: list[type] = []
    waiting_before = registry.pending()
    yield classes
    for cls in classes:
        registry.forget(cls)
    left_waiting = [pending for pending in registry.pending() if pending not in waiting_before]
    for pending in left_waiting:
        registry.cancel(pending.name, pending.signal, left_waiting.__contains__)


def register(classes: list[type], cls: type) -> type:
    classes.append(cls)
    registry.register(cls)
    return cls


@pytest.mark.parametrize("name", DJANGO_NAMES)
def test_every_django_builtin_signal_exists_with_its_name_and_a_docstring(name):
    signal = getattr(signals, name)
    assert isinstance(signal, tocsin.Signal)
    assert signal.name == name
    assert "sender" in (signal.__doc__ or "")


@pytest.mark.parametrize("name", MODEL_SIGNALS)
def test_model_signals_are_caching_model_signals(name):
    signal = getattr(signals, name)
    assert isinstance(signal, ModelSignal)
    assert signal.use_caching is True


def test_post_syncdb_is_the_old_name_of_post_migrate():
    assert signals.post_syncdb is signals.post_migrate


def test_a_lazy_sender_connects_once_its_class_is_registered(registered):
    calls: list[Any] = []

    def on_save(sender: type, **kwargs: Any) -> None:
        calls.append(sender)

    signals.post_save.connect(on_save, sender="LazyArticle")

    class LazyArticle:
        pass

    signals.post_save.send(LazyArticle)
    assert calls == []  # not registered yet: nothing is connected

    register(registered, LazyArticle)
    signals.post_save.send(LazyArticle)
    assert calls == [LazyArticle]
    assert signals.post_save.disconnect(on_save, sender=LazyArticle)


def test_a_lazy_sender_already_registered_connects_at_once(registered):
    class Author:
        pass

    register(registered, Author)
    calls: list[Any] = []

    @tocsin.receiver(signals.pre_save, sender=f"{__name__}.{Author.__qualname__}")
    def on_save(sender: type, **kwargs: Any) -> None:
        calls.append(sender)

    signals.pre_save.send(Author)
    signals.pre_save.send(object)  # another sender: not called
    assert calls == [Author]
    signals.pre_save.disconnect(on_save, sender=Author)


def test_an_ambiguous_lazy_sender_is_refused_naming_the_candidates(registered):
    first = register(registered, type("Twin", (), {"__module__": "shop.models"}))
    second = register(registered, type("Twin", (), {"__module__": "blog.models"}))

    def on_save(**kwargs: Any) -> None:
        pass

    with pytest.raises(LookupError, match=r"ambiguous.*blog\.models\.Twin.*shop\.models\.Twin"):
        signals.post_save.connect(on_save, sender="Twin")

    # The dotted path says which one is meant.
    signals.post_save.connect(on_save, sender="shop.models.Twin", weak=False)
    assert [r for r, _ in signals.post_save.send(first)] == [on_save]
    assert signals.post_save.send(second) == []
    signals.post_save.disconnect(on_save, sender=first)


def test_a_name_becoming_ambiguous_after_connecting_warns(registered):
    register(registered, type("Clash", (), {"__module__": "one.models"}))

    def on_save(**kwargs: Any) -> None:
        pass

    first = registry.resolve("Clash")
    signals.post_save.connect(on_save, sender="Clash", weak=False)
    with pytest.warns(tocsin.LazySenderWarning, match="several classes"):
        register(registered, type("Clash", (), {"__module__": "two.models"}))
    assert signals.post_save.disconnect(on_save, sender=first)


def test_unresolved_lazy_senders_are_reported_by_check(registered):
    def on_save(**kwargs: Any) -> None:
        pass

    signals.post_save.connect(on_save, sender="NeverDefined")
    with pytest.raises(LookupError, match=r"on_save.*'NeverDefined'"):
        check_lazy_senders()


def test_disconnecting_by_name_returns_none_and_cancels_a_waiting_connection(registered):
    calls: list[Any] = []

    def on_save(sender: type, **kwargs: Any) -> None:
        calls.append(sender)

    signals.post_save.connect(on_save, sender="Cancelled")
    assert signals.post_save.disconnect(on_save, sender="Cancelled") is None

    class Cancelled:
        pass

    register(registered, Cancelled)
    signals.post_save.send(Cancelled)
    assert calls == []
    check_lazy_senders()  # nothing waits any more


def test_disconnecting_by_name_after_resolution_disconnects_the_class(registered):
    class Resolved:
        pass

    register(registered, Resolved)

    def on_save(**kwargs: Any) -> None:
        pass

    signals.post_save.connect(on_save, sender="Resolved")
    assert signals.post_save.has_listeners(Resolved)
    assert signals.post_save.disconnect(on_save, sender="Resolved") is None
    assert not signals.post_save.has_listeners(Resolved)


def test_non_string_senders_are_connected_at_once_as_on_a_plain_signal():
    class Model:
        pass

    def on_save(**kwargs: Any) -> str:
        return "saved"

    signals.post_save.connect(on_save, sender=Model)
    assert signals.post_save.send(Model) == [(on_save, "saved")]
    assert signals.post_save.disconnect(on_save, sender=Model) is True


def test_registered_classes_are_held_weakly():
    import gc

    own = SenderRegistry()

    class Temporary:
        pass

    own.register(Temporary)
    assert own.resolve("Temporary") is Temporary
    del Temporary
    gc.collect()
    assert own.resolve("Temporary") is None


def test_the_registry_never_warns_when_a_class_is_registered_again(registered):
    class Again:
        pass

    register(registered, Again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.register(Again)  # the same class: not ambiguous
    assert registry.resolve("Again") is Again


def test_disconnecting_by_name_and_dispatch_uid_cancels_that_waiting_connection(registered):
    calls: list[str] = []

    def on_save(**kwargs: Any) -> None:
        calls.append("saved")

    signals.post_save.connect(on_save, sender="ByUid", dispatch_uid="audit", weak=False)
    signals.post_save.disconnect(sender="ByUid", dispatch_uid="other")  # not this one
    signals.post_save.disconnect(on_save, sender="ByUid")  # keyed by uid, not receiver

    class ByUid:
        pass

    register(registered, ByUid)
    signals.post_save.send(ByUid)
    assert calls == ["saved"]
    assert signals.post_save.disconnect(sender="ByUid", dispatch_uid="audit") is None
    signals.post_save.send(ByUid)
    assert calls == ["saved"]


def test_check_says_why_each_connection_still_waits(registered):
    def on_save(**kwargs: Any) -> None:
        pass

    signals.post_save.connect(on_save, sender="Misspelt", weak=False)
    with pytest.raises(LookupError, match="'Misspelt': no class of that name was registered"):
        check_lazy_senders()


def test_forgetting_a_class_forgets_the_connections_made_to_its_name(registered):
    first = register(registered, type("Reused", (), {"__module__": "first.models"}))

    def on_save(**kwargs: Any) -> None:
        pass

    signals.post_save.connect(on_save, sender="Reused", weak=False)
    assert signals.post_save.disconnect(on_save, sender=first)
    registry.forget(first)
    registered.remove(first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale record would warn about ambiguity here
        register(registered, type("Reused", (), {"__module__": "second.models"}))


def test_has_async_listeners_tells_whether_send_would_need_an_event_loop():
    signal = tocsin.Signal()

    def sync_receiver(**kwargs: Any) -> None:
        pass

    async def async_receiver(**kwargs: Any) -> None:
        pass

    class Sender:
        pass

    sender = Sender()
    signal.connect(sync_receiver)
    assert not signal.has_async_listeners(sender)
    signal.connect(async_receiver, sender=sender)
    assert signal.has_async_listeners(sender)
    assert not signal.has_async_listeners()  # any-sender receivers only: none async
    assert signal.disconnect(async_receiver, sender=sender)
    assert not signal.has_async_listeners(sender)
