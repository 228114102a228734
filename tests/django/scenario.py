"""One Django process from its start: ``python -m tests.django.scenario POSITION``.

Signals are made and receivers connected the way Django and third-party apps do it
before ``django.setup()``; then Django is set up with ``tocsin.contrib.django`` at
POSITION in INSTALLED_APPS (``first``, ``middle``, ``last`` or ``twice``). Prints one
JSON object: every Django signal's receivers before and after, and what the switch made
of the signals. The switch happens once per process, hence a process per scenario.
"""

from __future__ import annotations

import gc
import json
import sys
import weakref
from typing import Any

# Imported (and so created, with receivers connected at import) before the switch.
import django.contrib.auth.signals
import django.core.signals
import django.db.backends.signals
import django.db.models.signals
import django.dispatch
import django.test.signals
from django.conf import settings

import django
from tests.django import thirdparty

DjangoSignal = django.dispatch.Signal


def paid(sender: Any, **kwargs: Any) -> str:
    return "paid"


def paid_by_name(sender: Any, **kwargs: Any) -> str:
    return "by name"


def audit(sender: Any, **kwargs: Any) -> Any:
    return kwargs.get("audited")


# A sender that cannot be weakly referenced: Django keeps only its id.
SHOP_NAME = "-".join(["shop", "name"])
payment = thirdparty.Payment()
kept_alive = [payment]
thirdparty.order_paid.connect(paid)
thirdparty.order_paid.connect(lambda sender, **kwargs: "strong", weak=False)
thirdparty.order_paid.connect(paid, dispatch_uid="paid-once")
thirdparty.order_paid.connect(paid, sender=thirdparty.Payment)
thirdparty.order_paid.connect(payment.on_paid)
thirdparty.order_paid.connect(paid_by_name, sender=SHOP_NAME)
thirdparty.audited.connect(audit)
django.db.models.signals.post_save.connect(paid, sender="shop.Product")


def django_receivers(signal: Any) -> list[list[Any]]:
    """What Django's own tuples say: receiver, sender, weak, uid (None if none)."""
    rows = []
    for (receiver_key, sender_key), reference, *_rest in signal.receivers:
        weak = isinstance(reference, weakref.ReferenceType)
        receiver = reference() if weak else reference
        identity = (
            (id(receiver.__self__), id(receiver.__func__))
            if hasattr(receiver, "__func__")
            else id(receiver)
        )
        uid = None if receiver_key == identity else receiver_key
        sender = None if sender_key == id(None) else sender_key
        rows.append([describe(receiver), sender, weak, uid])
    return rows


def tocsin_receivers(signal: Any) -> list[list[Any]]:
    return [
        [
            describe(connection.receiver),
            None if connection.sender is None else id(connection.sender),
            connection.weak,
            connection.dispatch_uid,
        ]
        for connection in signal.connections()
    ]


def describe(receiver: Any) -> str:
    return f"{getattr(receiver, '__module__', '')}.{getattr(receiver, '__qualname__', receiver)}"


def django_signals() -> list[Any]:
    return [obj for obj in gc.get_objects() if issubclass(type(obj), DjangoSignal)]


def unfindable() -> None:
    """A sender Django knows by id only, that nothing the collector tracks refers to: the
    receiver cannot be kept, and the switch says so."""
    import warnings

    import tocsin.contrib.django

    # object() cannot be weakly referenced; a tuple of untracked objects is untracked too.
    holder = (object(),)
    gc.collect()
    assert not gc.is_tracked(holder)
    thirdparty.order_paid.connect(paid, sender=holder[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tocsin.contrib.django.install()
    print(json.dumps({
        "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
        "connected": [describe(c.receiver) for c in thirdparty.order_paid.connections()],
    }))  # fmt: skip


def main(position: str) -> None:
    apps = ["django.contrib.contenttypes", "django.contrib.auth", "tests.django.project.shop"]
    app = "tocsin.contrib.django"
    installed = {
        "first": [app, *apps],
        "middle": [apps[0], app, *apps[1:]],
        "last": [*apps, app],
        "twice": [app, *apps, "tocsin.contrib.django.apps.TocsinConfig"],
    }[position]
    before = {str(id(signal)): django_receivers(signal) for signal in django_signals()}
    settings.configure(
        INSTALLED_APPS=installed,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    error = None
    try:
        django.setup()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"

    import tocsin
    import tocsin.contrib.django

    after = {
        str(id(signal)): tocsin_receivers(signal)
        for signal in django_signals()
        if isinstance(signal, tocsin.Signal) and str(id(signal)) in before
    }
    if error is None:
        from tests.django.project.shop.models import Product

        lazy = [c.sender is Product for c in django.db.models.signals.post_save.connections()]
    else:
        lazy = []
    later = DjangoSignal()
    later_from_django_name = django.dispatch.Signal()
    result = {
        "error": error,
        "before": before,
        "after": after,
        "not_switched": [repr(s) for s in django_signals() if not isinstance(s, tocsin.Signal)],
        "post_save_class": type(django.db.models.signals.post_save).__name__,
        "later_is_tocsin": isinstance(later, tocsin.Signal),
        "later_from_django_name_is_tocsin": isinstance(later_from_django_name, tocsin.Signal),
        "audited_class": [cls.__name__ for cls in type(thirdparty.audited).__mro__],
        "audited_send": [r for _, r in thirdparty.audited.send(sender=None)],
        "order_paid_send": sorted(str(r) for _, r in thirdparty.order_paid.send(sender=None)),
        "order_paid_payment_send": sorted(
            str(r) for _, r in thirdparty.order_paid.send(sender=thirdparty.Payment)
        ),
        "order_paid_by_name_send": sorted(
            str(r) for _, r in thirdparty.order_paid.send(sender=SHOP_NAME)
        ),
        "lazy_post_save": lazy,
        "install_again": tocsin.contrib.django.install(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "unfindable":
        unfindable()
    else:
        main(sys.argv[1])
