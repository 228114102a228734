"""tocsin inside Django: add ``"tocsin.contrib.django"`` to ``INSTALLED_APPS``.

This package is the only place that knows Django; nothing here is imported unless a
Django project lists the app (or imports it).
"""
