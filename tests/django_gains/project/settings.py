"""Settings of the Django project the tests of tocsin's Django gains run against.

SQLite always ($TOCSIN_DJANGO_SQLITE names a file, for the management commands run in
subprocesses; else Django's in-memory test database). PostgreSQL as the second database
``"pg"`` when a server answers at $TOCSIN_POSTGRES_HOST (default 127.0.0.1:5432, user
postgres, database test); each test run gets a test database of its own name.
"""

from __future__ import annotations

import os

SECRET_KEY = "tocsin-tests-only"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "tocsin.contrib.django",
    "tests.django_gains.project.shop",
]
ROOT_URLCONF = "tests.django_gains.project.urls"
MIDDLEWARE: list[str] = []

_sqlite = os.environ.get("TOCSIN_DJANGO_SQLITE")
DATABASES: dict[str, dict[str, object]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _sqlite or ":memory:",
        "TEST": {"NAME": _sqlite} if _sqlite else {},
    }
}

POSTGRES_HOST = os.environ.get("TOCSIN_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("TOCSIN_POSTGRES_PORT", "5432"))


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        psycopg.connect(
            host=POSTGRES_HOST,
            port=POSTGRES_PORT,
            user="postgres",
            dbname="test",
            connect_timeout=3,
        ).close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


POSTGRES_UNREACHABLE = None if os.environ.get("TOCSIN_DJANGO_NO_PG") else _postgres_reachable()
if POSTGRES_UNREACHABLE is None and not os.environ.get("TOCSIN_DJANGO_NO_PG"):
    DATABASES["pg"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": POSTGRES_HOST,
        "PORT": POSTGRES_PORT,
        "USER": "postgres",
        "NAME": "test",
        # Engineers and CI jobs share the server: a test database per process.
        "TEST": {"NAME": f"test_tocsin_django_{os.getpid()}"},
    }

LOGGING_CONFIG = None
