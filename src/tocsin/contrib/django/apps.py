"""The Django app that makes tocsin the dispatcher of a Django project."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig

from tocsin.contrib.django._switch import install


class TocsinConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """``"tocsin.contrib.django"`` in ``INSTALLED_APPS``: tocsin becomes the dispatcher.

    The switch happens when Django creates this config, in the first phase of
    ``django.setup()``: before any app's models are imported (so before the receivers
    that models connect), wherever the app is listed.
    """

    name = "tocsin.contrib.django"
    label = "tocsin"
    verbose_name = "tocsin"

    def __init__(self, app_name: str, app_module: Any) -> None:
        super().__init__(app_name, app_module)
        install()

    def ready(self) -> None:
        """Hook tocsin into the project once its apps are loaded."""
        from tocsin.contrib.django import transactions  # issue 14: after-commit on on_commit

        transactions.install_transactions()
