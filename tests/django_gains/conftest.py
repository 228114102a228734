"""The Django project of these tests: Django set up from ``tests.django_gains.settings``.

pytest-django (in the test extra) then sees configured settings and does the rest: the
test databases (SQLite in memory; PostgreSQL as ``"pg"`` when reachable) are created
once for the tests marked ``django_db``, Django's ``TestCase`` classes run as in
``manage.py test``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import django
import pytest
from django.conf import settings
from django.db import transaction

from tests.django_gains import settings as project

if not settings.configured:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_gains.settings")
    django.setup()


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
