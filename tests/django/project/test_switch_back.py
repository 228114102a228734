"""Switching off and on again, in a running Django project; what a switched signal runs."""

from __future__ import annotations

import weakref
from typing import Any

import tocsin
import tocsin.contrib.django


def test_install_is_idempotent():
    assert tocsin.contrib.django.installed()
    assert tocsin.contrib.django.install() == 0


def test_switching_back_gives_django_its_own_signals_with_their_receivers():
    import django.dispatch
    from django.core import signals as core_signals
    from django.db.models import signals as model_signals

    from tests.django.project.shop.models import Product

    def on_save(sender: Any, **kwargs: Any) -> None:
        pass

    model_signals.post_save.connect(on_save, sender=Product, dispatch_uid="switch-back")
    before = [
        (c.receiver, c.sender, c.weak, c.dispatch_uid)
        for c in core_signals.request_started.connections()
    ]
    try:
        assert tocsin.contrib.django.uninstall() > 0
        assert not tocsin.contrib.django.installed()
        assert not isinstance(model_signals.post_save, tocsin.Signal)
        assert type(model_signals.post_save) is model_signals.ModelSignal
        assert type(core_signals.request_started) is django.dispatch.Signal
        assert not isinstance(django.dispatch.Signal(), tocsin.Signal)
        # Django's own tuples now, with the same receivers.
        entries = core_signals.request_started.receivers
        assert isinstance(entries[0], tuple)
        receivers = [
            ref() if isinstance(ref, weakref.ReferenceType) else ref for _, ref, *_ in entries
        ]
        assert receivers == [receiver for receiver, *_ in before]
        assert model_signals.post_save.disconnect(sender=Product, dispatch_uid="switch-back")
        model_signals.post_save.connect(on_save, sender=Product, dispatch_uid="switch-back")
    finally:
        assert tocsin.contrib.django.install() > 0
    assert isinstance(model_signals.post_save, tocsin.Signal)
    assert isinstance(django.dispatch.Signal(), tocsin.Signal)
    after = [
        (c.receiver, c.sender, c.weak, c.dispatch_uid)
        for c in core_signals.request_started.connections()
    ]
    assert after == before
    assert model_signals.post_save.disconnect(sender=Product, dispatch_uid="switch-back")


def test_no_method_of_djangos_dispatcher_runs_on_a_switched_signal():
    from tocsin.contrib.django import DjangoModelSignal, DjangoSignal, _switch

    # Django's classes, which the switch keeps (the names now lead to tocsin's).
    django_signal, django_model_signal = _switch._DJANGO_SIGNAL, _switch._DJANGO_MODEL_SIGNAL
    for tocsin_class, django_class in [
        (DjangoSignal, django_signal),
        (DjangoModelSignal, django_signal),
        (DjangoModelSignal, django_model_signal),
    ]:
        for name, value in vars(django_class).items():
            if callable(value) and name not in {"_lazy_method", "__init_subclass__"}:
                assert getattr(tocsin_class, name) is not value, name
