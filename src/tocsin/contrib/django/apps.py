"""The Django app that makes tocsin the dispatcher of a Django project."""

from __future__ import annotations

from django.apps import AppConfig


class TocsinConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """``"tocsin.contrib.django"`` in ``INSTALLED_APPS``."""

    name = "tocsin.contrib.django"
    label = "tocsin"
    verbose_name = "tocsin"

    def ready(self) -> None:
        """Hook tocsin into the project once its apps are loaded."""
        from tocsin.contrib.django import transactions  # issue 14: after-commit on on_commit

        transactions.install_transactions()
