"""tocsin inside Django: add ``"tocsin.contrib.django"`` to ``INSTALLED_APPS``.

This package is the only place that knows Django; nothing here is imported unless a
Django project lists the app (or imports it). From ``django.setup()`` on, every
``django.dispatch.Signal`` in the process is a tocsin Signal (see ``_switch``);
``install()`` switches earlier, ``uninstall()`` switches back.
"""

from tocsin.contrib.django._switch import (
    DjangoModelSignal,
    DjangoSignal,
    install,
    installed,
    uninstall,
)

__all__ = ["DjangoModelSignal", "DjangoSignal", "install", "installed", "uninstall"]
