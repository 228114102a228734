"""A real Django project for these tests, set up once, in a pytest process of its own.

tests/django/test_project.py runs these tests in a separate pytest process: a process has
one Django set-up and one switch, and the rest of tocsin's suite must see neither.

SQLite in memory is the default database; PostgreSQL (found at $TOCSIN_POSTGRES_URL, or
the local server) is the "postgres" alias when it is reachable, in a schema of its own.
``tocsin.contrib.django`` is in the middle of INSTALLED_APPS.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

POSTGRES_URL = os.environ.get("TOCSIN_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_schema = f"tocsin_django_{uuid.uuid4().hex[:10]}"


def _postgres() -> tuple[dict[str, Any] | None, str]:
    """Django's settings for the PostgreSQL alias, or None and why it is unreachable."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{_schema}"')
    except Exception as error:
        return None, f"PostgreSQL is not reachable at {POSTGRES_URL} ({error})"
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": info.get("dbname", "test"),
        "USER": info.get("user", "postgres"),
        "PASSWORD": info.get("password", ""),
        "HOST": info.get("host", "127.0.0.1"),
        "PORT": info.get("port", "5432"),
        "OPTIONS": {"options": f"-c search_path={_schema}"},
    }, ""


@pytest.fixture(scope="session")
def django_project() -> Iterator[dict[str, Any]]:
    """Django, set up with the app installed; yields {"postgres": reason-or-""}."""
    from django.conf import settings
    from django.core.management import call_command

    import django
    import tocsin.contrib.django

    postgres, unreachable = _postgres()
    databases: dict[str, Any] = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    }
    if postgres is not None:
        databases["postgres"] = postgres
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "tocsin.contrib.django",
            "django.contrib.auth",
            "django.contrib.sessions",
            "tests.django.project.shop",
        ],
        DATABASES=databases,
        ROOT_URLCONF="tests.django.project.shop.urls",
        MIDDLEWARE=[],
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        SECRET_KEY="tests only",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    for alias in databases:
        call_command("migrate", run_syncdb=True, database=alias, verbosity=0)
    try:
        yield {"postgres": unreachable}
    finally:
        from django.db import connections

        connections.close_all()
        tocsin.contrib.django.uninstall()
        if postgres is not None:
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{_schema}" CASCADE')


@pytest.fixture(autouse=True)
def switched(django_project: dict[str, Any]) -> Iterator[None]:
    """Every test here starts (and leaves the next one) with the switch on."""
    import tocsin.contrib.django

    tocsin.contrib.django.install()
    yield
    tocsin.contrib.django.install()


@pytest.fixture
def postgres_alias(django_project: dict[str, Any]) -> str:
    """The PostgreSQL database alias; skips (fails in CI) when the server is unreachable."""
    reason = django_project["postgres"]
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI requires it (set TOCSIN_POSTGRES_URL)")
        pytest.skip(reason)
    return "postgres"
