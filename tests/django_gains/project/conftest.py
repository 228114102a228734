"""A real Django project's tests, run by pytest-django as a Django project runs them.

tests/django_gains/test_project.py runs them in a pytest process of their own with
``--ds=tests.django_gains.project.settings``: a process has one Django set-up (and one
switch), which the rest of tocsin's suite must not see. Tests marked ``django_db`` get
the test databases (SQLite in memory; PostgreSQL as ``"pg"`` when reachable); Django's
``TestCase`` classes run as under ``manage.py test``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import transaction

from tests.django_gains.project import settings as project


def postgres_or_skip() -> str:
    """The alias of the PostgreSQL database; skips (fails in CI) when it is not there."""
    if "pg" in settings.DATABASES:
        return "pg"
    reason = f"PostgreSQL is not reachable ({project.POSTGRES_UNREACHABLE})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI requires it (set TOCSIN_POSTGRES_HOST)")
    pytest.skip(reason)


class _Rollback(Exception):
    pass


@contextlib.contextmanager
def rolled_back(using: str = "default") -> Iterator[None]:
    """An ``atomic(using=...)`` block that rolls back when it ends, as if it had raised."""
    with contextlib.suppress(_Rollback), transaction.atomic(using=using):
        yield
        raise _Rollback


def _switched() -> bool:
    from django.db.models.signals import post_save

    from tocsin import Signal

    return isinstance(post_save, Signal)


#: Tests of what needs Django's signals to be tocsin signals (the app's switch, issue 13).
needs_switch = pytest.mark.skipif(
    not _switched(), reason="Django's signals are not tocsin signals in this build"
)
