"""Real databases for the integration tests: SQLite (memory and file) and PostgreSQL.

PostgreSQL is found at $TOCSIN_POSTGRES_URL (default: the local server, user postgres,
database test). Each engine gets a schema of its own there, dropped afterwards. Without a
server the PostgreSQL tests skip, saying why; in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from tests.services import require_server

POSTGRES_URL = os.environ.get(
    "TOCSIN_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATABASES = ["sqlite-memory", "sqlite-file", "postgresql"]


def postgres_or_skip(url: str = POSTGRES_URL) -> str:
    """The PostgreSQL URL, or skip the test (fail it in CI) if the server is unreachable."""

    def probe() -> None:
        # libpq's connect_timeout bounds the TCP connect and the start-up exchange.
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as connection:
                connection.execute(text("select 1"))
        finally:
            engine.dispose()

    return require_server("PostgreSQL", url, "TOCSIN_POSTGRES_URL", probe)


def with_sqlite_savepoints(engine: Engine) -> Engine:
    """SQLAlchemy's documented recipe: let pysqlite honour BEGIN and SAVEPOINT properly."""

    @event.listens_for(engine, "connect")
    def no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def create_schema(url: str) -> str:
    """Create a fresh schema for one test and return its name."""
    schema = f"tocsin_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema


def make_engine(kind: str, tmp_path: Path) -> tuple[Engine, str | None]:
    """An engine of *kind*, and the PostgreSQL schema it works in (None for SQLite)."""
    if kind == "sqlite-memory":
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        return with_sqlite_savepoints(engine), None
    if kind == "sqlite-file":
        return with_sqlite_savepoints(create_engine(f"sqlite:///{tmp_path / 'test.db'}")), None
    url = postgres_or_skip()
    schema = create_schema(url)
    engine = create_engine(url, connect_args={"options": f"-c search_path={schema}"})
    return engine, schema


def drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def async_engine(kind: str, tmp_path: Path) -> tuple[Any, str | None]:
    """An AsyncEngine of *kind* ("sqlite" via aiosqlite, or "postgresql" via psycopg)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    if kind == "sqlite":
        return create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}"), None
    url = postgres_or_skip()
    schema = create_schema(url)
    return (
        create_async_engine(url, connect_args={"options": f"-c search_path={schema}"}),
        schema,
    )
